"""The product's lifetime through the store, on tiny synthetic tasks (no data files).

One network ``f`` (a lookup on 8 integers) is shared by three tasks:

- T1 learns ``f(x) = x`` from inputs 0 and 1 only; its test set covers all 8 inputs;
- T2 wants ``f(x) = x + 1`` on 0 and 1: its search retrains ``f`` (a forgetting update:
  T1 would fall from 1.0 to 0.0), so the gate must reject it;
- T3 wants ``f(x) = x`` on all 8 inputs (an improving update: T1 and T2 keep their
  validation accuracy), so the gate must accept it, and T1's test accuracy rises
  (reverse transfer). T3's model also holds a network ``g`` its program never calls.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ntpt_dist.experiments import lifelong_store
from ntpt_dist.experiments.lifelong_store import LifetimeTask, run_lifetime
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.interpreter.model import compile_source
from ntpt_dist.library_store.api import best_program
from ntpt_dist.library_store.memory import MemoryStore

NET = "@Learn([8], 8, hid_sizes=[16])\ndef f(a):\n    pass\n\n"
ONE = NET + "x = Input(8)\ny = Output(8)\ny.set_to(f(x))\n"
TWO = NET + """\
@Learn([8], 2, hid_sizes=[16])
def g(a):
    pass

@Runtime([2], 8)
def widen(b):
    return b

x = Input(8)
p = Param(2)
y = Output(8)
if p == 0:
    y.set_to(f(x))
else:
    y.set_to(widen(g(x)))
"""
# fast networks on a tiny model, full-batch steps
CONFIG = {"new_net_lr_scale": 0.4, "net_lr_scale": 0.4, "batch_size": None}
SEARCH = {"restarts": 2, "steps": 400, "backend": "local", "actors": 1, "restarts_per_actor": 2, "eval_every": 10}


def batch(xs: list[int], shift: int = 0) -> dict[str, np.ndarray]:
    x = np.array(xs, dtype=np.int64)
    return {"x": x, "y": (x + shift) % 8}


def tasks() -> list[LifetimeTask]:
    low, every = [0, 1] * 20, list(range(8)) * 5
    one = lambda library: compile_source(ONE, filename="one.py")  # noqa: E731
    two = lambda library: compile_source(TWO, filename="two.py")  # noqa: E731
    return [
        LifetimeTask("T1", batch(low), batch(low), batch(every), one, CONFIG),
        LifetimeTask("T2", batch(low, 1), batch(low, 1), batch(low, 1), one, CONFIG),
        LifetimeTask("T3", batch(every), batch(every), batch(every), two, CONFIG),
    ]


@pytest.fixture(scope="module")
def lifetime():
    store = MemoryStore()
    return store, run_lifetime(store, tasks(), **SEARCH)


def test_the_gate_rejects_the_forgetting_update(lifetime):
    store, out = lifetime
    t2 = out["tasks"][1]
    assert t2["own_val_acc"] == 1.0 and t2["own_test_acc"] == 1.0  # the search solved T2 by retraining f
    assert t2["stored_test_acc"] == 0.0  # but the program is stored with the champion f
    assert t2["merged"] and t2["accepted"] is False and "'T1' 1.0000 -> 0.0000" in t2["reason"]
    assert t2["gate"]["earlier"]["T1"] == {"before": 1.0, "after": 0.0, "delta": -1.0}
    assert t2["new_versions"] == {}
    record = store.get_program("T2")
    assert record.library_version == {"f": 1} and record.val_acc == 0.0  # stored against the champion f
    assert out["after_own_training"]["T2"] == 0.0


def test_the_gate_accepts_the_improving_update_and_earlier_tasks_gain(lifetime):
    store, out = lifetime
    t3 = out["tasks"][2]
    assert t3["accepted"] and t3["gate"]["updated"] == ["f"] and t3["new_versions"] == {"f": 2}
    assert t3["gate"]["new_task"]["before"] < 1.0 == t3["gate"]["new_task"]["after"]
    assert {t: e["delta"] for t, e in t3["gate"]["earlier"].items()} == {"T1": 0.0, "T2": 0.0}
    assert store.champion_versions() == {"f": 2} and store.net_versions("f") == [1, 2]
    # reverse transfer, seen on T1's test set: inputs 2..7 were fixed by T3's merge
    assert out["after_own_training"]["T1"] < 1.0 == out["final"]["T1"] == out["peak"]["T1"]
    assert out["reverse_transfer"]["T1"] == pytest.approx(1.0 - out["after_own_training"]["T1"])
    assert out["final"] == {"T1": 1.0, "T2": 0.0, "T3": 1.0}


def test_a_network_the_program_never_calls_is_not_versioned(lifetime):
    store, _ = lifetime
    assert store.net_versions("g") == [] and "g" not in store.champion_versions()
    t3 = best_program("T3", store)
    assert t3.library_version == {"f": 2} and t3.params == {"p": 0}
    assert t3.program.called_networks() == {"f"} and "g" in t3.networks  # kept to run, not versioned
    assert t3.evaluate(batch(list(range(8)))) == 1.0


def test_the_history_is_the_stores_per_version_accuracies(lifetime):
    store, out = lifetime
    history = store.evaluations(out["series"])
    assert out["history"] == [e.to_dict() for e in history]
    assert [(e.step, e.after, sorted(e.accuracies)) for e in history] == [
        (1, "T1", ["T1"]), (2, "T2", ["T1", "T2"]), (3, "T3", ["T1", "T2", "T3"])]
    assert [e.library_version for e in history] == [{"f": 1}, {"f": 1}, {"f": 2}]
    assert [e.programs for e in history] == [{"T1": 1}, {"T1": 1, "T2": 1}, {"T1": 1, "T2": 1, "T3": 1}]
    assert history[0].accuracies["T1"] == history[1].accuracies["T1"] < history[2].accuracies["T1"]
    json.dumps(out)  # the result is plain JSON


@pytest.mark.ray
def test_the_same_gate_through_ray():
    store = MemoryStore()
    out = run_lifetime(store, tasks()[:2], **{**SEARCH, "backend": "ray"})
    assert out["tasks"][1]["accepted"] is False and store.net_versions("f") == [1]
    assert out["final"] == {"T1": out["after_own_training"]["T1"], "T2": 0.0}


def test_paper_models_call_only_the_networks_their_program_routes(real_data_dir):
    from ntpt_dist.experiments.registry import load_model
    from ntpt_dist.interpreter.program import Program

    model = load_model("add2x2")
    right = {"read_net": 0, "instr": [2, 3, 5, 0], "net_choice": [0, 0, 0, 0], "arg1": [0, 0, 1, 0],
             "arg2": [0, 0, 2, 0], "ret": 3}  # the model file's intended ADD2x2:right
    assert Program(model, right).called_networks() == {"net_0"}
    assert Program(model, {**right, "net_choice": [1, 0, 0, 0]}).called_networks() == {"net_0", "net_1"}
    assert Program(model, {**right, "ret": 4}).called_networks() == frozenset()  # returns a NOOP register


def test_paper_task_splits_the_distinct_grids(real_data_dir):
    from ntpt_dist.experiments.tasks import make_task

    task = lifelong_store.paper_task("ADD2x2:left", seed=3, distinct=50, val_size=10, test_size=20, data_dir=real_data_dir)
    grids = make_task("ADD2x2:left", "train", 50, 3, data_dir=real_data_dir, distinct=50).batch()
    assert (len(task.train["result"]), len(task.val["result"]), len(task.test["result"])) == (40, 10, 20)
    np.testing.assert_array_equal(np.concatenate([task.train["grid"], task.val["grid"]]), grids["grid"])
    with pytest.raises(NtptError, match="val_size"):
        lifelong_store.paper_task("ADD2x2:left", distinct=50, val_size=50, data_dir=real_data_dir)


def test_main_writes_the_result_with_its_command(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake(store, tasks, **kwargs):
        seen.update(kwargs, tasks=tasks, store=store.uri)
        return {"final": {t: 0.5 for t in tasks}}

    monkeypatch.setattr(lifelong_store, "run_store_lifetime", fake)
    out = tmp_path / "ll.json"
    argv = ["--store", "memory://", "--tasks", "ADD2x2:top,APPLY2x2:top", "--restarts", "3", "--option", "lr=0.1",
            "--out", str(out)]
    assert lifelong_store.main(argv, prog="ntpt-dist lifelong --mode store") == 0
    written = json.loads(out.read_text())
    assert written["final"] == {"ADD2x2:top": 0.5, "APPLY2x2:top": 0.5}
    assert written["command"] == "ntpt-dist lifelong --mode store " + " ".join(argv)
    assert (seen["restarts"], seen["config"], seen["store"], seen["val_size"]) == (3, {"lr": 0.1}, "memory://", 200)
    assert lifelong_store.main(["--store", "memory://", "--option", "learning_rate=0.1"]) == 2
    assert "learning_rate" in capsys.readouterr().err
