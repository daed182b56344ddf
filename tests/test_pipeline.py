"""The pipeline for any model (``ntpt_dist.pipeline``): a task from files, train, search and merge, options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ntpt_dist.interpreter.errors import NtptError

import ntpt_dist
from ntpt_dist.pipeline import model_file_task, search_and_merge, train_task

FIXTURES = Path(__file__).parent / "fixtures"
LOCAL = {"backend": "local", "actors": 1, "restarts_per_actor": 4, "slice_s": 0.2, "progress": False}
NETS = {"lr": 0.5, "net_lr_scale": 1.0, "new_net_lr_scale": 1.0}


def mod_op():
    return model_file_task(FIXTURES / "mod_op.py", FIXTURES / "mod_op_data.json", FIXTURES / "mod_op_hypers.json")


def test_a_task_from_a_model_file_and_terpret_data():
    task = mod_op()
    assert task.name == "mod_op" and task.model.hypers == {"N": 5} and task.recipe == {}
    assert (len(task.data["train"]["y"]), len(task.data["val"]["y"]), len(task.data["test"]["y"])) == (36, 4, 20)
    assert "default_rng(0)" in task.val_from
    named = model_file_task(FIXTURES / "lookup_a.py", FIXTURES / "lookup_a_data.json", name="digits")
    assert named.name == "digits" and named.val_from == "the 'val' batch"


def test_search_and_merge_publishes_and_reports_counts_that_add_up():
    store = ntpt_dist.LibraryStore("memory://")
    report = search_and_merge(mod_op(), store, restarts=4, steps=200, **LOCAL)
    text = report.text()
    c = report.result.counts
    assert c["started"] == 4 and c["converged"] + c["stopped"] + c["diverged"] + c["failed"] == 4
    assert "restarts 4 started: " in text and "0 unfinished" in text and "test accuracy 1.0000" in text
    assert report.merge.decision.accepted and report.test_accuracy == 1.0
    assert ntpt_dist.best_program("mod_op", store=store).params == {"op": 0}


def test_a_second_task_is_gated_on_the_first_from_the_store_alone():
    store = ntpt_dist.LibraryStore("memory://")
    for name in ("lookup_a", "lookup_b"):
        task = model_file_task(FIXTURES / f"{name}.py", FIXTURES / f"{name}_data.json")
        search_and_merge(task, store, restarts=4, steps=300, options=NETS, **LOCAL)
    first, second = store.merges()
    assert first["added"] == ["digit"] and second["updated"] == ["digit"]
    assert set(second["earlier"]) == {"lookup_a"}  # measured on the validation data the store kept for it
    assert second["earlier"]["lookup_a"]["before"] == 1.0
    assert ntpt_dist.best_program("lookup_b", store=store).params == {"op": 1}


def test_eval_every_is_honoured_by_the_search_and_a_misspelt_option_is_refused():
    store = ntpt_dist.LibraryStore("memory://")
    report = search_and_merge(mod_op(), store, restarts=4, steps=200, options={"eval_every": 7}, **LOCAL)
    assert report.result.config["eval_every"] == 7
    steps = [step for trajectory in report.result.trajectories.values() for step, _ in trajectory]
    assert steps and all(step % 7 == 0 for step in steps)
    with pytest.raises(NtptError, match="evall_every"):
        search_and_merge(mod_op(), ntpt_dist.LibraryStore("memory://"), options={"evall_every": 7}, **LOCAL)


def test_train_task_reports_validation_and_test_accuracy():
    report = train_task(mod_op(), restarts=4, steps=60, device="cpu")
    assert report.program.params == {"op": 0} and report.validation_accuracy == 1.0 and report.test_accuracy == 1.0
    assert report.text().startswith("best program for mod_op (4 restarts x 60 steps")


def test_an_npz_task_without_test_data(tmp_path):
    a, b = np.arange(30) % 5, (np.arange(30) * 3) % 5
    np.savez(tmp_path / "d.npz", **{"train.x1": a, "train.x2": b, "train.y": (a + b) % 5})
    task = model_file_task(FIXTURES / "mod_op.py", tmp_path / "d.npz", FIXTURES / "mod_op_hypers.json", "n5", "sums")
    store = ntpt_dist.LibraryStore("memory://")
    report = search_and_merge(task, store, restarts=4, steps=200, **LOCAL)
    assert report.test_accuracy is None and "test accuracy -" in report.text()
    assert ntpt_dist.best_program("sums", store=store).test_accuracy is None


def test_train_task_without_a_converged_restart_says_so():
    with pytest.raises(NtptError, match=r"no restart of mod_op converged in 2 restarts of up to 1 steps .*fix: "):
        train_task(mod_op(), restarts=2, steps=1, device="cpu")


def test_a_winner_found_with_the_library_fixed_is_tuned_as_its_task_says(monkeypatch):
    import dataclasses

    import ntpt_dist.pipeline as pipeline

    calls = []

    def tune(program, data, steps, **options):
        calls.append({"steps": steps, **options})
        return program

    monkeypatch.setattr(pipeline, "tune_networks", tune)
    store = ntpt_dist.LibraryStore("memory://")
    first = model_file_task(FIXTURES / "lookup_a.py", FIXTURES / "lookup_a_data.json")
    search_and_merge(first, store, restarts=4, steps=300, options=NETS, **LOCAL)
    second = dataclasses.replace(model_file_task(FIXTURES / "lookup_b.py", FIXTURES / "lookup_b_data.json"),
                                 tuning={"steps": 40, "batch_size": 3})
    fixed = {**NETS, "freeze_library": True}
    search_and_merge(second, store, restarts=4, steps=300, options=fixed, **LOCAL)
    assert len(calls) == 1 and calls[0]["steps"] == 40 and calls[0]["batch_size"] == 3
    assert "freeze_library" not in calls[0] and calls[0]["lr"] == NETS["lr"]
    search_and_merge(second, store, restarts=4, steps=300, options=fixed, tune_steps=0, **LOCAL)
    assert len(calls) == 1  # tune_steps=0: no tuning
