"""runner.train_task: a task's model trained by Model.train, its winner scored on val and test.

The paper's models need minutes; the task is swapped for the half adder on the circuit
fixture model, so what is tested is train_task's own work: the splits it makes, the recipe
and options it passes, the winner it reports and its accuracies, and its error when no
restart converged.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ntpt_dist.experiments import registry, runner
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.interpreter.model import compile_file
from ntpt_dist.interpreter.policy import JumpPolicy
from ntpt_dist.interpreter.records import SearchResult

from ..interpreter.fixture_data import MODELS, circuit_data


def half_adder(rows: np.ndarray) -> dict:
    full = {k: v[rows] for k, v in circuit_data().items()}
    a, b = full["a"], full["b"]
    return {"a": a, "b": b, "carry_in": full["carry_in"], "total": a ^ b, "carry_out": a & b}


@pytest.fixture
def tiny_task(monkeypatch):
    """The task 'HALF' with the circuit model, trained on one torch thread; returns the calls train_task made."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    calls = {}

    def splits(task, seed=0, sizes=None, data_dir=None, **kw):
        calls["splits"] = (task, seed, sizes)
        return {"train": half_adder(np.arange(8)), "val": half_adder(np.arange(8)), "test": half_adder(np.arange(4))}

    monkeypatch.setattr(runner, "task_splits", splits)
    monkeypatch.setattr(registry, "model_for_task", lambda task, library: "circuit")
    monkeypatch.setattr(registry, "load_model", lambda name: compile_file(MODELS / "circuit.py"))
    monkeypatch.setattr(registry, "recipe", lambda task: {"optimizer": "rmsprop", "batch_size": None, "lr": 0.1})
    yield calls
    torch.set_num_threads(threads)


def test_train_task_reports_the_winner_with_its_accuracies(tiny_task):
    outcome = runner.train_task("HALF", restarts=4, steps=150, seed=0, progress=False, device="cpu",
                                sizes={"train": 8}, policy=JumpPolicy(floor=0.9, budget_steps=150, solved=None))
    assert tiny_task["splits"] == ("HALF", 0, {"train": 8})
    assert isinstance(outcome.result, SearchResult) and sorted(outcome.result.records) == [0, 1, 2, 3]
    assert outcome.result.config["train"]["optimizer"] == "rmsprop"  # the recipe reached training
    assert outcome.program.params == outcome.result.best_program().params
    assert outcome.validation_accuracy == outcome.result.winner.program_val_acc == 1.0
    assert outcome.test_accuracy == outcome.program.accuracy(half_adder(np.arange(4))) == 1.0
    assert outcome.task == "HALF" and outcome.wall_s > 0 and outcome.extra == {}


def test_train_task_says_when_no_restart_converged(tiny_task):
    never = JumpPolicy(delta=1.0, floor=1.0, solved=None, budget_steps=25)  # a rise of 1.0 from the start: never
    with pytest.raises(NtptError, match=r"no restart of HALF converged in 2 restarts .*'stopped': 2"):
        runner.train_task("HALF", restarts=2, steps=25, progress=False, device="cpu", policy=never)
