"""The Neural GPU baseline of Fig. 8(a): shapes, size, determinism by seed, and that it fits a tiny task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ntpt_dist.experiments.baselines import BaselineConfig
from ntpt_dist.experiments.math_symbolic_data import symbolic_math
from ntpt_dist.experiments.neural_gpu import NeuralGPU
from ntpt_dist.experiments.tasks import TaskData
from ntpt_dist.interpreter.errors import NtptError

torch.set_num_threads(1)  # as the other experiments tests: training tests on one thread


def sums(n: int, seed: int, width: int = 3) -> TaskData:
    """Tapes of ``width`` symbols 0..5 whose answer is their sum (at most 15, within the 19 classes)."""
    tape = np.random.default_rng(seed).integers(0, 6, size=(n, width))
    return TaskData("MATH", "train", {"tape": tape}, {"result": tape.sum(1)}, {}, {})


@pytest.mark.parametrize("digits", [1, 2, 7])
def test_scores_are_one_row_of_19_per_tape_at_any_length(digits):
    gpu = NeuralGPU(filters=8, height=2)
    assert gpu.scores("MATH", symbolic_math(digits, 6, seed=0)).shape == (6, 19)


def test_parameter_count_is_the_two_convgrus_the_embedding_and_the_readout():
    f, symbols = 16, 14
    per_cgru = (9 * f * 2 * f + 2 * f) + (9 * f * f + f)
    assert NeuralGPU(filters=f, height=3).parameter_count() == symbols * f + 2 * per_cgru + (f * 19 + 19)


def test_same_seed_same_network_other_seed_another():
    data = symbolic_math(4, 5, seed=1)
    a, b, c = (NeuralGPU(filters=8, height=2, seed=s).scores("MATH", data) for s in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_the_answer_depends_on_the_far_end_of_the_tape():
    """After ``width`` steps the first cell has seen the last symbol: changing only it changes the scores.

    (At initialisation the influence shrinks with distance, ~1e-7 over 7 cells, so any change counts;
    a network that stepped fewer than ``width / 2`` times would give exactly equal scores.)"""
    gpu = NeuralGPU(filters=8, height=2, seed=0)
    tape = np.array([[1, 10, 2, 11, 3, 12, 4]])
    other = tape.copy()
    other[0, -1] = 9
    score = [gpu.scores("MATH", TaskData("MATH", "test", {"tape": t}, {"result": np.zeros(1, np.int64)}, {}, {}))
             for t in (tape, other)]
    assert np.abs(score[0] - score[1]).max() > 0


@pytest.mark.parametrize("tape", [np.array([[0, 14]]), np.array([[-1, 2]]), np.zeros((1, 3), np.float32)])
def test_bad_tapes_are_refused(tape):
    with pytest.raises(NtptError, match="tape"):
        NeuralGPU(filters=4, height=1).scores("MATH", TaskData("MATH", "test", {"tape": tape}, {"result": np.zeros(1, np.int64)}, {}, {}))


def test_it_learns_the_sum_of_three_symbols_in_a_few_hundred_steps():
    train, test = sums(2000, 0), sums(500, 1)
    gpu = NeuralGPU(filters=16, height=2, config=BaselineConfig(lr=3e-3), seed=0)
    before = gpu.accuracy("MATH", test)
    rng = np.random.default_rng(0)
    for _ in range(250):
        gpu.train_step("MATH", train.take(rng.integers(0, len(train), 64)))
    assert before < 0.2 and gpu.accuracy("MATH", test) > 0.9
