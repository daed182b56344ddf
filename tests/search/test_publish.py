"""``ntpt_dist.search(..., store=, task=)`` ends with the winner offered to the store's merge gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ntpt_dist.interpreter.errors import NtptError

import ntpt_dist

MODEL = Path(__file__).parents[1] / "fixtures" / "mod_op.py"
FAST = {"restarts": 4, "backend": "local", "actors": 1, "restarts_per_actor": 4, "progress": False, "slice_s": 0.2}


def batch(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 5, n), rng.integers(0, 5, n)
    return {"x1": a, "x2": b, "y": (a + b) % 5}


@pytest.fixture(scope="module")
def model():
    return ntpt_dist.compile_file(MODEL, {"N": 5})


def test_the_winner_is_the_champion_right_after_the_search(model):
    store = ntpt_dist.LibraryStore("memory://")
    train, val, test = batch(40, 0), batch(10, 1), batch(10, 2)
    result = ntpt_dist.search(model, train, val_data=val, store=store, task="t", test_data=test, **FAST)
    assert result.merge is not None and result.merge.decision.accepted
    program = ntpt_dist.best_program("t", store=store)
    assert program.params == {"op": 0} and program.search_id == result.search_id
    assert program.accuracy == 1.0 and program.test_accuracy == 1.0 and program.hypers == {"N": 5}
    kept = store.validation_data("t")  # the gate keeps the task's validation data
    assert all(np.array_equal(kept[k], val[k]) for k in val)


def test_without_val_data_the_gate_validates_on_the_training_data_under_the_file_name(model):
    store = ntpt_dist.LibraryStore("memory://")
    train = batch(30, 3)
    result = ntpt_dist.search(model, train, store=store, **FAST)
    assert result.merge.program.test_acc is None
    assert ntpt_dist.best_program("mod_op", store=store).params == {"op": 0}  # the model file's stem
    kept = store.validation_data("mod_op")
    assert all(np.array_equal(kept[k], train[k]) for k in train)


def test_publish_false_records_the_search_but_merges_nothing(model):
    store = ntpt_dist.LibraryStore("memory://")
    result = ntpt_dist.search(model, batch(30, 4), store=store, task="t", publish=False, **FAST)
    assert result.best_program() is not None and not hasattr(result, "merge")
    assert store.finished_restarts(result.search_id)  # the restarts are recorded
    with pytest.raises(NtptError):
        ntpt_dist.best_program("t", store=store)


def test_other_validation_data_for_a_published_task_is_refused_before_any_restart(model):
    store = ntpt_dist.LibraryStore("memory://")
    ntpt_dist.search(model, batch(30, 5), val_data=batch(10, 6), store=store, task="t", **FAST)
    searches = len(store.merges())
    with pytest.raises(NtptError, match="validation data differs.*publish=False"):
        ntpt_dist.search(model, batch(30, 5), val_data=batch(10, 7), store=store, task="t", **FAST)
    assert len(store.merges()) == searches
    again = ntpt_dist.search(model, batch(30, 8), val_data=batch(10, 6), store=store, task="t", **FAST)
    assert again.merge is not None  # the same validation data: merged again


def test_a_store_given_as_a_folder_opens_there_and_publishes(model, tmp_path):
    train = batch(40, 0)
    ntpt_dist.search(model, train, store=str(tmp_path / "store"), task="t", **FAST)
    assert ntpt_dist.best_program("t", store=str(tmp_path / "store")).params == {"op": 0}


@pytest.mark.parametrize("kwargs, says", [
    ({"store": 7}, "store must be a LibraryStore or its URI/folder, but got int"),
    ({"restrats": 2}, "ntpt_dist.search: got an unexpected keyword argument 'restrats'"),
])
def test_bad_search_arguments_are_one_clear_error(model, kwargs, says):
    with pytest.raises(NtptError, match=says):
        ntpt_dist.search(model, batch(8, 0), **{**FAST, **kwargs})
