"""The recorded best MATH program is Fig. 4(b): exact on long tapes, not only on the 2 and 9 digits search checks.

The program is read from ``docs/tasks_accuracy.json`` (the listing the MATH
stage printed), rebuilt as Param values of the symbolic MATH model
(``experiments/models/math_symbolic.py``: the networks replaced by exact symbol
readers) and executed discretely on random expressions whose values a plain
left-to-right fold computes here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from ntpt_dist.experiments.listings import listing_math
from ntpt_dist.experiments.registry import load_model
from ntpt_dist.experiments.tasks import apply_op

RECORD = Path(__file__).resolve().parents[2] / "docs" / "tasks_accuracy.json"
MOVE = re.compile(r"^L(\d): MOVE; R\1 = READ\(net_(\d)\); GOTO_IF L(\d)$")
APPLY = re.compile(r"^L(\d): R\1 = APPLY\(R(\d), R(\d), R(\d)\); GOTO_IF L(\d)$")
RETURN = re.compile(r"^halt: return R(\d)$")


def params_from_listing(listing: str) -> dict:
    """The Param values of a ``listing_math`` listing (three blocks, then the halt block)."""
    params = {key: [0, 0, 0] for key in ("instr", "net_choice", "arg1", "arg2", "arg3", "goto")}
    *blocks, halt = listing.strip().splitlines()
    assert len(blocks) == 3, listing
    for line in blocks:
        if found := MOVE.match(line):
            block, net, goto = map(int, found.groups())
            params["instr"][block], params["net_choice"][block] = 0, net
        else:
            found = APPLY.match(line)
            assert found, f"not a listing_math line: {line!r}"
            block, a, b, c, goto = map(int, found.groups())
            params["instr"][block] = 1
            params["arg1"][block], params["arg2"][block], params["arg3"][block] = a, b, c
        params["goto"][block] = goto
    found = RETURN.match(halt)
    assert found, f"not a halt line: {halt!r}"
    return {**params, "ret": int(found.group(1))}


def expressions(digits: int, n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` random tapes ``d op d ... d`` (symbols 0..9 digits, 10..13 + - * /) and their values mod 19."""
    rng = np.random.default_rng(seed)
    tape = np.empty((n, 2 * digits - 1), dtype=np.int64)
    tape[:, 0::2] = rng.integers(0, 10, size=(n, digits))
    tape[:, 1::2] = rng.integers(10, 14, size=(n, digits - 1))
    result = []
    for row in tape.tolist():
        value = row[0]
        for k in range(1, digits):
            value = apply_op(value, row[2 * k - 1] - 10, row[2 * k])
        result.append(value)
    return {"tape": tape, "result": np.array(result, dtype=np.int64)}


@pytest.fixture(scope="module")
def model():
    return load_model("math_symbolic")


@pytest.fixture(scope="module")
def recorded_params() -> dict:
    return params_from_listing(json.loads(RECORD.read_text())["stages"]["MATH"]["listing"])


def test_the_listing_parses_back_to_itself(model, recorded_params):
    listing = json.loads(RECORD.read_text())["stages"]["MATH"]["listing"]
    assert listing_math(model.program(recorded_params)) == listing


@pytest.mark.parametrize("digits", [1, 3, 7, 16])
def test_the_recorded_math_program_is_exact_at_n_digits(model, recorded_params, digits):
    batch = expressions(digits, 1000, seed=digits)
    program = model.program(recorded_params)
    out = program.run({"tape": batch["tape"]}, hypers={"N": digits})["result"]
    np.testing.assert_array_equal(out, batch["result"])
    assert program.accuracy(batch, hypers={"N": digits}) == 1.0


def test_a_wrong_program_is_caught(model, recorded_params):
    """The check can fail: the APPLY with its operands swapped (R0 op R2) is wrong on most 16-digit tapes."""
    apply = recorded_params["instr"].index(1)
    wrong = {key: list(value) if isinstance(value, list) else value for key, value in recorded_params.items()}
    wrong["arg1"][apply], wrong["arg2"][apply] = recorded_params["arg2"][apply], recorded_params["arg1"][apply]
    batch = expressions(16, 1000, seed=16)
    assert model.program(wrong).accuracy(batch, hypers={"N": 16}) < 0.5
