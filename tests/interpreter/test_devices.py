"""A device name the user passes is checked once, with one clear error, in training and in a search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.interpreter.lower import as_device

import ntpt_dist

SOURCE = "x = Input(3)\ny = Output(3)\np = Param(3)\nif p == 0:\n    y.set_to(x)\nelse:\n    y.set_to(p)\n"
DATA = {"x": np.array([0, 1, 2]), "y": np.array([0, 1, 2])}


def test_a_known_device_is_a_torch_device():
    assert as_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("device", ["nonsense", "cpu:x", None])
def test_a_misspelt_device_is_one_error(device):
    with pytest.raises(NtptError, match="unknown torch device"):
        as_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without a GPU")
def test_cuda_without_a_gpu_is_refused_here_but_not_for_remote_workers():
    with pytest.raises(NtptError, match="torch sees no GPU here"):
        as_device("cuda")
    assert as_device("cuda", here=False).type == "cuda"


@pytest.mark.parametrize("run", ["train", "search"])
def test_training_and_search_refuse_a_misspelt_device_before_any_work(run):
    model = ntpt_dist.compile_source(SOURCE)
    with pytest.raises(NtptError, match="unknown torch device 'gpu0'"):
        if run == "train":
            model.train(DATA, restarts=1, steps=1, device="gpu0")
        else:
            ntpt_dist.search(model, DATA, restarts=1, backend="local", device="gpu0", progress=False)
