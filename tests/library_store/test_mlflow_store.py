"""What only the MLflow backend does: its layout in MLflow, artifact errors, processes, pyfunc."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from urllib.parse import urlparse

import numpy as np
import pytest
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.library_store.api import best_program
from ntpt_dist.library_store.mlflow_store import MlflowStore, net_model, program_model

from .helpers import champion_pyfunc, net, program, quality, uid


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> MlflowStore:
    folder = tmp_path_factory.mktemp("mlflow-store")
    return MlflowStore(f"sqlite:///{folder}/mlflow.db")


def local_path(uri: str) -> str:
    return urlparse(uri).path


def test_a_logged_search_and_its_merge_are_laid_out_in_mlflow(store):
    """The layout docs/store.md describes, written through the store API (start_search ... merge)."""
    task, name = uid("MATH"), uid("net")
    sid = store.start_search(task, {"restarts": 2, "policy": {"window": 5}})
    prog = program({name: net(0.9)})
    records = [
        {"index": k, "seed": k, "status": s, "jump_step": j, "trajectory": [[10 * i, a * i / 4] for i in range(5)],
         "program": prog}
        for k, s, j, a in ((0, "stopped", None, 0.3), (1, "converged", 20, 0.9))
    ]
    store.log_restarts(sid, records)
    store.end_search(sid, {"converged": 1}, records[1])
    store.merge(task, prog, lambda t, lib: quality(lib[name]) if name in lib else 0.5, search_id=sid)

    client = store.client
    experiment = client.get_experiment_by_name(f"ntpt/{task}")
    run = client.search_runs([experiment.experiment_id], f"tags.`ntpt.search_id` = '{sid}'")[0]
    history = client.get_metric_history(run.info.run_id, "val_acc/restart_1")
    assert [m.step for m in history] == [0, 10, 20, 30, 40] and history[-1].value == pytest.approx(0.9)
    restarts = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")
    assert sorted(r.info.run_name for r in restarts) == ["restart-0", "restart-1 (winner)"]
    assert run.data.params["policy.window"] == "5" and run.data.tags["ntpt.status"] == "finished"
    assert run.data.tags["ntpt.merge.accepted"] == "true" and run.info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"program.txt", "trajectories.png", "summary.json", "config.json", "restarts", "merges"} <= artifacts
    png = local_path(f"{run.info.artifact_uri}/trajectories.png")
    assert open(png, "rb").read(4) == b"\x89PNG"
    assert "p" in open(local_path(f"{run.info.artifact_uri}/program.txt")).read()
    champion = client.get_model_version_by_alias(net_model(name), "champion")
    assert (champion.tags["ntpt.task"], champion.tags["ntpt.search_id"]) == (task, sid)
    assert champion.tags["ntpt.signature"] == "net(img[4]) -> digit"
    version = client.get_model_version_by_alias(program_model(task), "champion")
    assert version.tags["ntpt.val_acc"] == "0.900000" and version.run_id == run.info.run_id
    artifact_root = os.path.join(os.path.dirname(store.uri[len("sqlite:///"):]), "artifacts")
    assert local_path(run.info.artifact_uri).startswith(artifact_root)  # explicit folder next to the db


def test_missing_weights_name_network_version_and_path(store):
    name = uid("net")
    version = store.add_net_version(name, net(0.5))
    source = store.client.get_model_version(net_model(name), str(version)).source
    os.remove(local_path(f"{source}/net.npz"))
    with pytest.raises(NtptError, match=rf"weights of network '{name}' version 1 .* is missing: .*net\.npz"):
        store.get_net_version(name, version)


def test_corrupted_program_names_task_and_version(store):
    task = uid("T")
    store.set_program_champion(task, store.add_program(task, program({}), val_acc=0.5))
    source = store.client.get_model_version(program_model(task), "1").source
    with open(local_path(f"{source}/artifacts/program.npz"), "wb") as handle:
        handle.write(b"garbage")
    with pytest.raises(NtptError, match=rf"program of task '{task}' version 1 .* is corrupted"):
        best_program(task, store)


def test_best_program_from_an_sqlite_uri_skips_mlflow(store):
    task = uid("T")
    store.merge(task, program({"n": net(0.3)}, p=2), lambda t, lib: 0.75, test_acc=0.7, seed=4)
    fast, slow = best_program(task, store.uri), best_program(task, store)
    assert (fast.version, fast.accuracy, fast.test_accuracy, fast.seed) == (slow.version, 0.75, 0.7, 4)
    np.testing.assert_array_equal(fast.record.program["networks"]["n"]["state"]["w0"], net(0.3)["state"]["w0"])
    code = f"import sys, ntpt_dist; ntpt_dist.best_program({task!r}, {store.uri!r}); print('mlflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_the_program_model_is_saved_from_code_not_as_a_pickle(store, monkeypatch):
    import mlflow
    import yaml
    from ntpt_dist.library_store.mlflow_pyfunc import MODEL_CODE

    task = uid("T")
    store.merge(task, program({}, p=0), lambda t, lib: 1.0)
    folder = local_path(store.client.get_model_version(program_model(task), "1").source)
    files = {os.path.relpath(os.path.join(root, f), folder) for root, _, names in os.walk(folder) for f in names}
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".cloudpickle"))], files
    flavor = yaml.safe_load(open(os.path.join(folder, "MLmodel")))["flavors"]["python_function"]
    assert "python_model" not in flavor and flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert open(os.path.join(folder, MODEL_CODE.name)).read() == MODEL_CODE.read_text()
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")  # MLflow refuses pickled models now
    model = mlflow.pyfunc.load_model(folder)
    np.testing.assert_array_equal(model.predict({"x": np.array([2, 0])})["y"], [2, 0])


ESCAPE_MODEL = """\
x = Input(3)
y = Output(3)
@Runtime([3], 3)
def f(a):
    classes = ().__class__.__base__.__subclasses__()
    for c in classes:
        if c.__name__ == "catch_warnings":
            c()._module.__builtins__["open"]({mark!r}, "w").write("ran")
    return a
y.set_to(f(x))
"""


def test_a_hostile_stored_program_runs_no_code_when_read(tmp_path):
    import mlflow

    # a store of its own: merges into the module's store re-evaluate every stored task
    store = MlflowStore(f"sqlite:///{tmp_path}/hostile/mlflow.db")
    mark, task = tmp_path / "ran", uid("T")
    planted = {**program({}), "params": {}, "source": ESCAPE_MODEL.format(mark=str(mark)),
               "listing": "os:system"}
    store.set_program_champion(task, store.add_program(task, planted, val_acc=1.0))
    for reader in (store, store.uri):  # the MLflow client, and the sqlite fast path
        stored = best_program(task, reader)
        with pytest.raises(NtptError, match="not allowed in a @Runtime body: attribute access"):
            _ = stored.source  # the source is compiled when first read
    previous = mlflow.get_registry_uri()
    mlflow.set_registry_uri(store.uri)
    try:
        with pytest.raises(Exception, match="not allowed in a @Runtime body"):
            mlflow.pyfunc.load_model(f"models:/{program_model(task)}@champion")
    finally:
        mlflow.set_registry_uri(previous)
    assert not mark.exists()


_MERGER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from ntpt_dist.library_store.mlflow_store import MlflowStore
    uri, task, name, q, barrier = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
    state = {"w0": np.full((4, 3), q, np.float32), "b0": np.zeros(3, np.float32)}
    prog = {"source": "p = Param(2)\\n", "filename": "t", "hypers": {}, "params": {"p": 1},
            "networks": {name: {"signature": "s", "state": state}}}
    def evaluate(t, lib):
        time.sleep(0.3)
        return float(lib[name]["state"]["w0"][0, 0]) if name in lib else 0.5
    store = MlflowStore(uri)
    store.champion_versions()  # connect first, then wait for the other process: the merges overlap
    open(os.path.join(barrier, task), "w").close()
    deadline = time.time() + 60
    while len(os.listdir(barrier)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    out = store.merge(task, prog, evaluate)
    print(task, out.decision.accepted, out.attempts)
""")


def test_two_processes_merging_into_one_sqlite_store(tmp_path):
    # a store of its own: merges re-evaluate every task, and the module's store holds a deliberately corrupted one
    store = MlflowStore(f"sqlite:///{tmp_path}/own/mlflow.db")
    base, t1, t2, name = uid("T0"), uid("T1"), uid("T2"), uid("net")
    store.merge(base, program({name: net(0.5)}), lambda t, lib: quality(lib[name]) if name in lib else 0.5)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    procs = [
        subprocess.Popen([sys.executable, "-c", _MERGER, store.uri, task, name, str(q), str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for task, q in ((t1, 0.6), (t2, 0.8))
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
    assert store.program_versions(t1) == [1] and store.program_versions(t2) == [1]
    assert len(store.merges(t1)) == 1 and len(store.merges(t2)) == 1
    champion = store.champion_versions()[name]
    assert quality(store.get_net_version(name, champion).net) == pytest.approx(0.8)


def test_pyfunc_round_trip(store):
    import pandas as pd

    task = uid("T")
    store.merge(task, program({}, p=0), lambda t, lib: 1.0, test_acc=0.95)
    model = champion_pyfunc(store, task)
    x = np.array([0, 2, 1])
    np.testing.assert_array_equal(model.predict({"x": x})["y"], x)
    np.testing.assert_array_equal(model.predict(pd.DataFrame({"x": x}))["y"], x)
    stored = best_program(task, store)
    assert "p = 0" in stored.source and stored.test_accuracy == 0.95
    np.testing.assert_array_equal(stored.run({"x": x})["y"], x)


def test_evaluations_are_metrics_of_a_series_run_and_validation_an_artifact(tmp_path):
    from ntpt_dist.library_store.mlflow_history import SERIES_EXPERIMENT, VALIDATION

    from .helpers import lookup_batch, lookup_program

    store = MlflowStore(f"sqlite:///{tmp_path}/mlflow.db")  # its own: the gate reads every stored champion
    task, f, series = uid("ADD2x2") + ":top", uid("f"), uid("life")
    store.merge(task, lookup_program(f, [0, 1, 3, 2, 5, 4, 7, 6]), val_data=lookup_batch(list(range(8))))
    store.log_evaluation(series, {task: 0.25}, after=task)
    store.merge(task, lookup_program(f, list(range(8))))
    store.log_evaluation(series, {task: 1.0}, after=task)

    client = store.client
    experiment = client.get_experiment_by_name(SERIES_EXPERIMENT)
    run = client.search_runs([experiment.experiment_id], f"tags.`ntpt.series` = '{series}'")[0]
    history = client.get_metric_history(run.info.run_id, f"test_acc/{task}")  # Fig. 6 curve in the UI
    assert [(m.step, m.value) for m in history] == [(1, 0.25), (2, 1.0)]
    assert [m.value for m in client.get_metric_history(run.info.run_id, f"library/{f}")] == [1, 2]
    assert run.info.run_name == series and run.info.status == "FINISHED"
    home = client.search_runs([client.get_experiment_by_name(f"ntpt/{task}").experiment_id],
                              "tags.`ntpt.role` = 'store'")[0]
    assert home.data.tags["ntpt.validation"] == VALIDATION and home.data.tags["ntpt.validation.n"] == "8"
    assert os.path.isfile(local_path(f"{home.info.artifact_uri}/{VALIDATION}"))
    fresh = MlflowStore(store.uri)  # another client reads both from the store alone
    assert [e.accuracies[task] for e in fresh.evaluations(series)] == [0.25, 1.0]
    np.testing.assert_array_equal(fresh.validation_data(task)["x"], np.arange(8))


def _rewrite_program_blob(store, task, change):
    from ntpt_dist.library_store.codec import read_file, write_file

    source = store.client.get_model_version(program_model(task), "1").source
    path = local_path(f"{source}/artifacts/program.npz")
    record = read_file(path, "program")
    change(record)
    write_file(path, record)


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("val_acc"), r"its 'val_acc' must be an accuracy in \[0, 1\], but it is 'missing'"),
    (lambda r: r.update(val_acc="high"), "its 'val_acc' must be an accuracy"),
    (lambda r: r.update(program=[1, 2]), "its 'program' must be a dict"),
    (lambda r: r["program"].update(source=42), "'source' must be a str, but it is int"),
    (lambda r: r["program"].update(networks={"f": {"signature": "(8)->8|", "state": {"w0": "abc"}}}),
     "weight 'w0' must hold finite real numbers"),
    (lambda r: r["program"].update(networks={"f": {"signature": "(8)->8|",
                                                   "state": {"w0": np.zeros((3, 3)), "b0": np.zeros(8)}}}),
     r"weight 'w0' has shape \(3, 3\), expected \(8, 8\)"),
])
def test_a_corrupt_program_record_is_an_error_naming_it_on_both_read_paths(store, change, message):
    from .helpers import lookup_program

    task = uid("T")
    prog = lookup_program("f", list(range(8)))
    store.set_program_champion(task, store.add_program(task, prog.to_dict(), val_acc=0.5))
    _rewrite_program_blob(store, task, change)
    for reader in (lambda: best_program(task, store).source, lambda: best_program(task, store.uri).source):
        with pytest.raises(NtptError, match=message) as info:
            reader()
        if "weight" not in message and "source" not in message:
            assert f"program of task '{task}' version 1" in str(info.value)


@pytest.mark.parametrize("state, message", [
    ({"w0": np.zeros((8, 8), np.float32), "b0": np.zeros(3, np.float32)}, r"'b0' has shape \(3,\), expected \(8,\)"),
    ({"w0": np.array([["x"] * 8] * 8), "b0": np.zeros(8, np.float32)}, "must hold finite real numbers, got dtype <U1"),
    ({"w0": np.full((8, 8), np.nan, np.float32), "b0": np.zeros(8, np.float32)}, "with NaN or inf"),
])
def test_a_library_version_of_the_wrong_shape_or_type_is_refused_when_loaded(store, state, message):
    name = uid("net")
    version = store.add_net_version(name, {"signature": "(8)->8|", "state": state})
    with pytest.raises(NtptError, match=rf"weights of network '{name}' version {version} .* is corrupted: .*{message}"):
        store.get_net_version(name, version)
    with pytest.raises(NtptError, match=message):
        store.load_library({name: version})


def test_a_missing_champion_net_blocks_only_the_merges_that_need_it(tmp_path):
    from .helpers import lookup_batch, lookup_program

    store = MlflowStore(f"sqlite:///{tmp_path}/mlflow.db")  # of its own: its merges see every task
    f, g = uid("f"), uid("g")
    val = lookup_batch(list(range(8)))
    store.merge(uid("A"), lookup_program(f, list(range(8))), val_data=val)
    source = store.client.get_model_version(net_model(f), "1").source
    os.remove(local_path(f"{source}/net.npz"))
    out = store.merge(uid("B"), lookup_program(g, list(range(8))), val_data=val)  # does not touch f
    assert out.decision.accepted and out.new_versions == {g: 1}
    with pytest.raises(NtptError, match=rf"(?s)the merge of task 'C.*' needs champion version 1 of network '{f}'.*"
                                        rf"is missing.*fix: restore that file, or .*set_champion\('{f}', N\)"):
        store.merge(uid("C"), lookup_program(f, list(range(8))), val_data=val)
