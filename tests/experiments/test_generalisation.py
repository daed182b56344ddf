"""Fig. 8's pieces: the symbolic MATH data, the listing parser, the symbolic LSTM and the runner's outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ntpt_dist.experiments import generalisation
from ntpt_dist.experiments.baselines import BaselineConfig
from ntpt_dist.experiments.baselines_math import LSTMBaseline, accuracy_by_length, train_lstm
from ntpt_dist.experiments.listings import listing_math
from ntpt_dist.experiments.math_symbolic_data import (
    N_SYMBOLS,
    math_params_from_listing,
    misread_accuracy,
    symbolic_math,
    symbolic_sets,
)
from ntpt_dist.experiments.neural_gpu import NeuralGPU
from ntpt_dist.experiments.registry import load_model
from ntpt_dist.experiments.tasks import TaskData
from ntpt_dist.interpreter.errors import NtptError

FIG_4B = ("L0: MOVE; R0 = READ(net_0); GOTO_IF L2\nL1: MOVE; R1 = READ(net_1); GOTO_IF L0\n"
          "L2: R2 = APPLY(R2, R0, R1); GOTO_IF L1\nhalt: return R2")


torch.set_num_threads(1)  # as the other experiments tests: training tests on one thread


def plain_value(row: list[int]) -> int:
    """``((d0 op d1) op d2) ...`` mod 19 with Python ints (10 +, 11 -, 12 *, 13 /; x / 0 = 18)."""
    value = row[0]
    for op, d in zip(row[1::2], row[2::2]):
        if op == 10:
            value = value + d
        elif op == 11:
            value = value - d
        elif op == 12:
            value = value * d
        else:
            value = value // d if d else 18
        value %= 19
    return value


@pytest.mark.parametrize("digits", [1, 2, 5, 16])
def test_symbolic_tapes_alternate_digits_and_operators_and_their_labels_are_the_left_to_right_fold(digits):
    data = symbolic_math(digits, 400, seed=3)
    tape = data.inputs["tape"]
    assert tape.shape == (400, 2 * digits - 1) and tape.dtype == np.int64
    assert ((tape[:, 0::2] >= 0) & (tape[:, 0::2] <= 9)).all() and ((tape[:, 1::2] >= 10) & (tape[:, 1::2] <= 13)).all()
    assert data.outputs["result"].tolist() == [plain_value(row) for row in tape.tolist()]
    np.testing.assert_array_equal(data.labels["tape"], tape)


def test_symbolic_data_is_a_function_of_seed_and_length():
    a, b, c = symbolic_math(4, 50, seed=1), symbolic_math(4, 50, seed=1), symbolic_math(4, 50, seed=2)
    np.testing.assert_array_equal(a.inputs["tape"], b.inputs["tape"])
    assert not np.array_equal(a.inputs["tape"], c.inputs["tape"])
    assert sorted(symbolic_sets((1, 3), 5, seed=0)) == [1, 3]
    with pytest.raises(NtptError, match="digits >= 1"):
        symbolic_math(0, 5, seed=0)


def test_a_listing_parses_back_to_itself_and_runs_exactly_at_16_digits():
    model = load_model("math_symbolic")
    program = model.program(math_params_from_listing(FIG_4B))
    assert listing_math(program) == FIG_4B
    data = symbolic_math(16, 300, seed=0)
    assert program.accuracy({"tape": data.inputs["tape"], "result": data.outputs["result"]}, hypers={"N": 16}) == 1.0


@pytest.mark.parametrize("bad", ["", "halt: return R2", FIG_4B.replace("GOTO_IF L1", "GOTO L1"), FIG_4B.replace("L1:", "L0:")])
def test_a_listing_that_is_not_fig_4b_shaped_is_refused(bad):
    with pytest.raises(NtptError, match="three-block MATH listing"):
        math_params_from_listing(bad)


def test_symbolic_lstm_reads_one_hot_symbols_and_refuses_a_library():
    lstm = LSTMBaseline(hidden=8, layers=2, symbols=N_SYMBOLS)
    assert lstm.scores("MATH", symbolic_math(3, 4, seed=0)).shape == (4, 19)
    assert len(lstm.perceptual) == 0 and lstm.lstm.input_size == N_SYMBOLS
    with pytest.raises(NtptError, match="no library"):
        LSTMBaseline({"net_0": {}}, symbols=N_SYMBOLS)


def last_digit(digits: int, n: int, seed: int) -> TaskData:
    """Symbolic tapes whose answer is their last digit: a rule that holds at every length."""
    data = symbolic_math(digits, n, seed)
    return TaskData("MATH", "train", data.inputs, {"result": data.inputs["tape"][:, -1].copy()}, data.labels, {})


def test_symbolic_lstm_trained_on_short_tapes_generalises_a_length_free_rule():
    """Trained on 1..3 digits to return the last digit, the LSTM is right on 8-digit tapes too."""
    lstm = LSTMBaseline(hidden=32, layers=1, symbols=N_SYMBOLS, config=BaselineConfig(lr=1e-2), seed=0)
    train = {d: last_digit(d, 500, seed=d) for d in (1, 2, 3)}
    calls = []
    train_lstm(lstm, train, steps=300, batch_size=32, every=100, callback=lambda step, losses: calls.append(step))
    assert calls == [100, 200, 300]
    acc = accuracy_by_length(lstm, {2: last_digit(2, 300, seed=10), 8: last_digit(8, 300, seed=11)})
    assert acc[2] > 0.95 and acc[8] > 0.9


def test_part_a_runner_writes_every_model_at_every_length_and_a_figure(tmp_path):
    out, fig = tmp_path / "a.json", tmp_path / "a.png"
    argv = ["--part", "a", "--max-digits", "3", "--train-digits", "2", "--train-n", "50", "--test-n", "30",
            "--probe-n", "10", "--lstm-steps", "4", "--lstm-hidden", "8", "--lstm-layers", "1", "--gpu-steps", "4",
            "--gpu-filters", "4", "--gpu-height", "1", "--eval-every", "2", "--out", str(out), "--figure", str(fig)]
    generalisation.main(argv)
    result = json.loads(out.read_text())
    assert sorted(result["symbolic"]) == ["lstm", "neural_gpu", "ntpt"]
    for acc in result["symbolic"].values():
        assert list(acc) == ["1", "2", "3"] and all(0.0 <= a <= 1.0 for a in acc.values())
    assert set(result["symbolic"]["ntpt"].values()) == {1.0}
    assert [c["step"] for c in result["models"]["lstm"]["curve"]] == [2, 4]
    assert result["models"]["neural_gpu"]["parameters"] == sum(
        p.numel() for p in NeuralGPU(filters=4, height=1).parameters())
    assert result["train_digits"] == [1, 2] and result["command"].endswith(" ".join(argv))
    assert fig.stat().st_size > 1000


def test_part_b_runner_on_a_cached_library_and_fake_images(tmp_path, fake_data):
    """The perceptual runner end to end on tiny fake image sets, from a cached (random) library."""
    from ntpt_dist.experiments.baselines_2x2 import MTNN
    from ntpt_dist.library_store.codec import encode

    library = tmp_path / "library.npz"
    library.write_bytes(encode({k: dict(v) for k, v in MTNN(["ADD2x2:top", "APPLY2x2:top"]).library().items()}))
    out = tmp_path / "b.json"
    generalisation.main(["--part", "b", "--library", str(library), "--max-digits", "3", "--train-n", "20",
                         "--test-n", "10", "--probe-n", "5", "--lstm-steps", "2", "--eval-every", "1",
                         "--lstm-hidden", "4", "--lstm-layers", "1", "--ntpt-tune-steps", "0", "--out", str(out)])
    result = json.loads(out.read_text())
    assert sorted(result["perceptual"]) == ["lstm2", "lstm5", "ntpt"]
    assert all(list(acc) == ["1", "2", "3"] for acc in result["perceptual"].values())
    assert result["models"]["lstm2"]["train_digits"] == [2] and result["models"]["lstm5"]["train_digits"] == [1, 2, 3, 4, 5]
    sym = result["symbol_accuracy"]
    assert 0.0 <= sym["net_0"] <= 1.0 and sym["bound"] == round(sym["net_0"] ** 3 * sym["net_1"] ** 2, 4)


def test_combine_merges_runs_of_separate_models_and_refuses_a_model_twice(tmp_path):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    one.write_text(json.dumps({"part": "a", "command": "c1", "symbolic": {"lstm": {"1": 0.5}}, "models": {"lstm": {"parameters": 3}},
                               "train_digits": [1]}))
    two.write_text(json.dumps({"part": "a", "command": "c2", "symbolic": {"neural_gpu": {"1": 0.25}},
                               "models": {"neural_gpu": {"parameters": 4}}}))
    merged = generalisation.combine([one, two])
    assert merged["symbolic"] == {"lstm": {"1": 0.5}, "neural_gpu": {"1": 0.25}}
    assert sorted(merged["models"]) == ["lstm", "neural_gpu"] and [r["command"] for r in merged["runs"]] == ["c1", "c2"]
    with pytest.raises(NtptError, match="two of the files"):
        generalisation.combine([one, one])
    picked = generalisation.combine([f"{one}:lstm", f"{two}:neural_gpu"])
    assert sorted(picked["symbolic"]) == ["lstm", "neural_gpu"] and picked["runs"][0]["models"] == ["lstm"]
    both = tmp_path / "both.json"
    both.write_text(json.dumps({"symbolic": {"lstm": {"1": 0.1}, "neural_gpu": {"1": 0.2}}, "models": {}}))
    assert generalisation.combine([f"{both}:neural_gpu", one])["symbolic"] == {"neural_gpu": {"1": 0.2}, "lstm": {"1": 0.5}}
    with pytest.raises(NtptError, match="has no model"):
        generalisation.combine([f"{one}:ntpt"])


def test_combine_takes_an_earlier_combination_whole_with_its_runs(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    part_a = {"part": "a", "command": "ca", "symbolic": {"lstm": {"1": 0.5}}, "models": {"lstm": {"parameters": 3}}}
    part_b = {"part": "b", "command": "cb", "perceptual": {"ntpt": {"1": 0.9}}, "models": {"ntpt": {"tune_steps": 5}}}
    a.write_text(json.dumps(part_a))
    b.write_text(json.dumps(part_b))
    both = tmp_path / "both.json"
    both.write_text(json.dumps(generalisation.combine([a, b])))
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"part": "b", "command": "cc", "perceptual": {"lstm5": {"1": 0.8}}, "models": {"lstm5": {"steps": 7}}}))
    again = generalisation.combine([both, c])
    assert [r["command"] for r in again["runs"]] == ["ca", "cb", "cc"]
    assert again["perceptual"] == {"ntpt": {"1": 0.9}, "lstm5": {"1": 0.8}} and again["symbolic"] == {"lstm": {"1": 0.5}}
    assert again["models"] == {"symbolic": {"lstm": {"parameters": 3}},
                               "perceptual": {"ntpt": {"tune_steps": 5}, "lstm5": {"steps": 7}}}


def test_misread_digits_cost_less_than_every_misread_being_fatal():
    """At 97.5% per digit (the paper's net_0) an exact program is right on far more than 0.975^16 of 16-digit tapes."""
    assert misread_accuracy(1.0, 16, n=2000) == 1.0
    at_paper = misread_accuracy(0.975, 16, n=20000)
    assert 0.975 ** 16 + 0.1 < at_paper < 0.95
    assert misread_accuracy(0.9, 16, n=20000) < at_paper
