"""Bad Python-API arguments are one NtptError naming the argument, never a raw exception."""

from __future__ import annotations

import numpy as np
import pytest
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.interpreter.model import compile_file, compile_source

SOURCE = "x = Input(2)\np = Param(2)\ny = Output(2)\nif p == 0:\n    y.set_to(x)\nelse:\n    y.set_to_constant(1)\n"
DATA = {"x": np.array([0, 1, 1, 0]), "y": np.array([0, 1, 1, 0])}


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": -5}, "steps must be an integer >= 1, but got steps=-5"),
    ({"steps": 2.5}, "steps must be an integer >= 1, but got steps=2.5"),
    ({"restarts": 0}, "restarts must be an integer >= 1, but got restarts=0"),
    ({"restarts": "4"}, "restarts must be an integer >= 1, but got restarts='4'"),
    ({"seed": None}, "seed must be an integer >= 0, but got seed=None"),
    ({"config": {"lr": 0.1}}, "config must be a TrainConfig .*, but got dict"),
    ({"policy": "jump"}, "policy must be a JumpPolicy, but got str"),
    ({"learning_rate": 0.1}, r"unknown training option\(s\) \['learning_rate'\]"),
    ({"lr": "fast"}, "TrainConfig.lr must be a number"),
])
def test_bad_train_arguments_are_ntpt_errors(kwargs, message):
    model = compile_source(SOURCE)
    with pytest.raises(NtptError, match=message):
        model.train(DATA, **kwargs)


@pytest.mark.parametrize("hypers, message", [
    (7, "hypers must be a dict name -> int, but got int"),
    ([("N", 3)], "hypers must be a dict name -> int, but got list"),
    ({"N": "3"}, "hypers must map names to integers, but got 'N': '3'"),
    ({3: 3}, "hypers must map names to integers, but got 3: 3"),
])
def test_non_mapping_hypers_are_ntpt_errors(hypers, message):
    with pytest.raises(NtptError, match=message):
        compile_source(SOURCE, hypers=hypers)


def test_other_bad_compile_arguments_are_ntpt_errors():
    with pytest.raises(NtptError, match="model source must be text"):
        compile_source(b"x = Input(2)\n")
    with pytest.raises(NtptError, match="filename must be a string"):
        compile_source(SOURCE, filename=3)
    with pytest.raises(NtptError, match="listing must be a function"):
        compile_source(SOURCE, listing="listing_math")
    with pytest.raises(NtptError, match="path must be a file path"):
        compile_file(42)
    with pytest.raises(NtptError, match="hypers must be a dict"):
        compile_source(SOURCE).with_hypers(7)


def test_good_arguments_still_train():
    result = compile_source(SOURCE).train(DATA, restarts=2, steps=25, seed=np.int64(0), batch_size=None)
    assert sorted(result.records) == [0, 1] and result.counts["started"] == 2
