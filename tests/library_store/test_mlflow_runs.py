"""What a user of the MLflow UI and of mlflow.pyfunc sees: one child run per restart, the winner named, hypers as params."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ntpt_dist.library_store.mlflow_plots import trajectories_figure
from ntpt_dist.library_store.mlflow_store import MlflowStore

from .helpers import champion_pyfunc, program, uid

# y[i] = x[i] when p == 0: a model with a Hyper, so a program can run at another size.
SIZED_MODEL = ("N = Hyper()\nx = Input(3)[N]\np = Param(3)\ny = Output(3)[N]\nfor i in range(N):\n"
               "    if p == 0:\n        y[i].set_to(x[i])\n    else:\n        y[i].set_to(p)\n")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> MlflowStore:
    return MlflowStore(f"sqlite:///{tmp_path_factory.mktemp('mlflow-runs')}/mlflow.db")


def restart(index: int, status: str, accs: list[float], jump: int | None = None) -> dict:
    return {"index": index, "seed": 100 + index, "status": status, "jump_step": jump,
            "trajectory": [[10 * i, a] for i, a in enumerate(accs)], "program": program({}, p=index % 3)}


def children(store: MlflowStore, sid: str) -> dict[int, object]:
    parent, _ = store._run(sid)
    experiment = store.client.get_run(parent).info.experiment_id
    runs = store.client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{parent}'")
    return {int(run.data.tags["ntpt.restart"]): run for run in runs}


def test_each_restart_is_a_child_run_of_the_search_with_its_curve(store):
    task = uid("T")
    sid = store.start_search(task, {"restarts": 3})
    store.log_restarts(sid, [restart(0, "stopped", [0.1, 0.2, 0.2]), restart(1, "converged", [0.1, 0.3, 0.9], 20)])
    store.log_restarts(sid, [restart(2, "diverged", [0.2, 0.1])])
    store.log_restarts(sid, [restart(1, "converged", [0.1, 0.3, 0.9, 0.95], 20)])  # logged again, one step longer
    store.end_search(sid, {"converged": 1}, restart(1, "converged", [0.1, 0.3, 0.9, 0.95], 20))

    runs = children(store, sid)
    assert sorted(runs) == [0, 1, 2]
    history = store.client.get_metric_history(runs[1].info.run_id, "val_acc")
    assert [(m.step, m.value) for m in history] == [(0, 0.1), (10, 0.3), (20, 0.9), (30, 0.95)]  # no step twice
    assert runs[1].data.tags["ntpt.winner"] == "true" and runs[1].info.run_name == "restart-1 (winner)"
    assert runs[0].info.run_name == "restart-0" and "ntpt.winner" not in runs[0].data.tags
    assert runs[2].data.tags["ntpt.status"] == "diverged" and runs[1].data.tags["ntpt.jump_step"] == "20"
    assert runs[0].data.params["seed"] == "100" and {r.info.status for r in runs.values()} == {"FINISHED"}
    # the children carry no ntpt.search_id tag: the search is still found as the one run of that id
    assert store.get_search(sid)["status"] == "finished" and store.get_search(sid)["winner"]["index"] == 1


def test_a_resumed_search_finds_its_restart_runs_again(store):
    task = uid("T")
    sid = store.start_search(task, {"restarts": 2})
    store.log_restarts(sid, [restart(0, "stopped", [0.1, 0.2])])
    reopened = MlflowStore(store.uri)
    reopened.start_search(task, {"restarts": 2}, search_id=sid)
    reopened.log_restarts(sid, [restart(0, "stopped", [0.1, 0.2, 0.25]), restart(1, "stopped", [0.3])])
    runs = children(reopened, sid)
    assert sorted(runs) == [0, 1]
    assert [m.step for m in reopened.client.get_metric_history(runs[0].info.run_id, "val_acc")] == [0, 10, 20]


def test_the_trajectories_legend_names_the_winner_and_counts_statuses():
    records = {0: restart(0, "stopped", [0.1, 0.2]), 4: restart(4, "converged", [0.1, 0.9], 10),
               5: restart(5, "converged", [0.2, 0.8], 10)}
    legend = trajectories_figure("T", records, winner=4).axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["winner: restart 4 (converged)", "converged: 2", "stopped: 1"]
    texts = [t.get_text() for t in trajectories_figure("T", records).axes[0].get_legend().get_texts()]
    assert not any("winner" in t for t in texts)


def test_the_program_model_takes_hypers_as_params_through_mlflow_pyfunc(store):
    task = uid("T")
    sized = {**program({}, p=0), "source": SIZED_MODEL, "hypers": {"N": 2}}
    store.merge(task, sized, lambda t, lib: 1.0)
    model = champion_pyfunc(store, task)
    spec = model.metadata.signature.params.to_dict()
    assert spec == [{"name": "hypers", "type": "object", "default": {"N": 2}, "shape": None,
                     "properties": {"N": {"type": "long", "required": False}}}]
    x3 = np.array([[0, 2, 1], [1, 1, 0]])
    out = model.predict(pd.DataFrame({"x": list(x3)}), params={"hypers": {"N": 3}})
    np.testing.assert_array_equal(out["y"], x3)  # without the params schema MLflow drops params: N stays 2
    np.testing.assert_array_equal(model.predict({"x": x3[:, :2]})["y"], x3[:, :2])  # the default: N = 2
