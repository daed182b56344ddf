"""One suite for every LibraryStore backend (like optuna/testing/pytest_storages.py).

The MLflow stores are shared per module (creating one costs seconds), so every
test uses names of its own (``uid``) and checks membership, not equality, of
store-wide listings.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.interpreter.program import Program
from ntpt_dist.library_store.evaluate import champion_accuracies
from ntpt_dist.library_store.memory import MemoryStore

from .helpers import lookup_batch, lookup_program, net, program, quality, uid

BACKENDS = ["memory", "sqlite", pytest.param("http", marks=pytest.mark.slow)]


@pytest.fixture(scope="module")
def _sqlite_store(tmp_path_factory):
    from ntpt_dist.library_store.mlflow_store import MlflowStore

    folder = tmp_path_factory.mktemp("store")
    return MlflowStore(f"sqlite:///{folder}/mlflow.db")


@pytest.fixture(params=BACKENDS)
def store(request):
    if request.param == "memory":
        return MemoryStore()
    if request.param == "sqlite":
        return request.getfixturevalue("_sqlite_store")
    from ntpt_dist.library_store.mlflow_store import MlflowStore

    return MlflowStore(request.getfixturevalue("mlflow_server"))


def by_quality(*tasks: str, name: str, default: float = 0.5, sleep: float = 0.0):
    """evaluate(task, library): the quality of ``name`` for ``tasks``, else ``default``."""

    def evaluate(task: str, library: dict) -> float:
        time.sleep(sleep)
        return quality(library[name]) if task in tasks and name in library else default

    return evaluate


def restart(index: int, status: str = "stopped", acc: float = 0.3, prog=None) -> dict:
    return {"index": index, "seed": 1000 + index, "status": status, "reason": "test", "jump_step": None,
            "steps": 40, "trajectory": [[10 * i, acc * i / 4] for i in range(5)], "program": prog,
            "program_val_acc": acc, "error": None, "wall_s": 0.1, "actor": "a0"}


# ---------------------------------------------------------------- library versions


def test_net_versions_are_numbered_and_immutable(store):
    name = uid("net")
    given = net(0.1)
    assert store.add_net_version(name, given) == 1
    assert store.add_net_version(name, net(0.2), task="T", search_id=None, parent=1, tags={"k": "v"}) == 2
    assert store.net_versions(name) == [1, 2]
    given["state"]["w0"][:] = 9.0  # the caller's later edits must not reach the store
    first, second = store.get_net_version(name, 1), store.get_net_version(name, 2)
    assert quality(first.net) == pytest.approx(0.1)
    assert second.net["state"]["w0"].dtype == np.float32 and second.net["state"]["w0"].shape == (4, 3)
    assert (second.task, second.parent, second.tags["k"]) == ("T", 1, "v")
    second.net["state"]["w0"][:] = 7.0
    assert quality(store.get_net_version(name, 2).net) == pytest.approx(0.2)
    assert store.net_versions(uid("absent")) == []


def test_champion_alias_moves_and_library_loads(store):
    name = uid("net")
    for q in (0.1, 0.2):
        store.add_net_version(name, net(q))
    with pytest.raises(NtptError, match=f"{name}.*no champion"):
        store.get_net_version(name)
    store.set_champion(name, 2)
    assert store.champion_versions()[name] == 2
    assert quality(store.load_library()[name]) == pytest.approx(0.2)
    assert store.load_library()[name]["signature"] == "net(img[4]) -> digit"
    assert quality(store.load_library({name: 1})[name]) == pytest.approx(0.1)
    store.set_champion(name, 1)  # a rollback moves the alias; versions stay
    assert store.champion_versions()[name] == 1 and store.net_versions(name) == [1, 2]
    with pytest.raises(NtptError, match=r"no version 5.*\[1, 2\]"):
        store.set_champion(name, 5)


def test_unknown_network_version_and_bad_library_version(store):
    name = uid("net")
    store.add_net_version(name, net(0.3))
    with pytest.raises(NtptError, match=f"{name}.*version 9"):
        store.get_net_version(name, 9)
    with pytest.raises(NtptError, match="'latest'"):
        store.load_library("latest")


# ------------------------------------------------------------------------ programs


def test_program_round_trip_and_champion(store):
    task, name = uid("T"), uid("net")
    version = store.add_program(task, program({name: net(0.4)}, p=2), val_acc=0.9, test_acc=0.8,
                                library_version={name: 1}, seed=3, hypers={"N": 2})
    assert version == 1 and store.program_versions(task) == [1]
    assert store.program_champion(task) is None and task not in store.tasks()
    with pytest.raises(NtptError, match=f"{task}.*no champion program"):
        store.get_program(task)
    store.set_program_champion(task, 1)
    assert task in store.tasks()
    record = store.get_program(task)
    assert (record.val_acc, record.test_acc, record.library_version) == (0.9, 0.8, {name: 1})
    assert (record.seed, record.hypers, record.program["params"]) == (3, {"N": 2}, {"p": 2})
    assert record.program["meta"] == {"note": "stand-in"}
    np.testing.assert_array_equal(record.program["networks"][name]["state"]["w0"], net(0.4)["state"]["w0"])


def test_task_names_with_colon_and_slash(store):
    # the paper's task names ("ADD2x2:top") must work although MLflow model names refuse ':' and '/'
    task = uid("ADD2x2") + ":top/x"
    store.add_program(task, program({}), val_acc=0.7)
    store.set_program_champion(task, 1)
    assert task in store.tasks() and store.get_program(task).val_acc == 0.7


@pytest.mark.parametrize("name", ["program.T", "lock.merge", "net-0", "", "a b"])
def test_a_network_name_that_is_not_an_identifier_is_refused_before_anything_is_written(store, name):
    # a network named 'program.T' would share the registered model ntpt.program.T with task T's programs
    with pytest.raises(NtptError, match="a network name is a Python identifier"):
        store.add_net_version(name, net(0.5))
    assert store.champion_versions() == {} or name not in store.champion_versions()


def test_unknown_program_version(store):
    task = uid("T")
    store.add_program(task, program({}), val_acc=0.5)
    with pytest.raises(NtptError, match=f"{task}.*version 7"):
        store.get_program(task, 7)
    with pytest.raises(NtptError, match="version 7"):
        store.set_program_champion(task, 7)


# --------------------------------------------------------------------------- merge


def test_merge_adds_new_networks(store):
    task, name = uid("T"), uid("net")
    out = store.merge(task, program({name: net(0.6)}), by_quality(task, name=name), seed=5)
    assert out.decision.accepted and out.decision.added == [name] and out.decision.updated == []
    assert store.champion_versions()[name] == out.new_versions[name] == 1
    assert store.program_champion(task) == out.program.version
    assert out.program.library_version == {name: 1} and out.program.val_acc == pytest.approx(0.6)


def test_merge_accepts_improvement_and_records_reverse_transfer(store):
    a, b, other, name = uid("A"), uid("B"), uid("C"), uid("net")
    evaluate = by_quality(a, b, name=name)
    store.merge(a, program({name: net(0.5)}), evaluate)
    store.merge(other, program({uid("net"): net(0.5)}), evaluate)  # calls another network only
    out = store.merge(b, program({name: net(0.7)}), evaluate, search_id=None)
    d = out.decision
    assert other not in d.earlier  # not re-evaluated: it cannot change
    assert d.accepted and d.updated == [name]
    assert (d.new_task["before"], d.new_task["after"]) == pytest.approx((0.5, 0.7))
    assert d.earlier[a]["delta"] == pytest.approx(0.2) and d.reverse_transfer[a] == pytest.approx(0.2)
    assert store.champion_versions()[name] == 2 and store.get_net_version(name, 2).parent == 1
    assert store.get_program(b).library_version == {name: 2}
    recorded = store.merges(b)[-1]
    assert recorded["accepted"] and recorded["reverse_transfer"][a] == pytest.approx(0.2)


def test_merge_rejects_regression_and_stores_against_champion(store):
    a, b, name = uid("A"), uid("B"), uid("net")

    def evaluate(task, library):  # A likes a high quality, B a low one
        q = quality(library[name]) if name in library else 0.5
        return {a: q, b: 1.0 - q}.get(task, 0.5)

    store.merge(a, program({name: net(0.8)}), evaluate)
    out = store.merge(b, program({name: net(0.3)}), evaluate, epsilon=0.01)
    d = out.decision
    assert not d.accepted and d.regressions == [a] and "rejected" in d.reason
    assert d.earlier[a]["before"] == pytest.approx(0.8) and d.earlier[a]["after"] == pytest.approx(0.3)
    assert store.champion_versions()[name] == 1 and store.net_versions(name) == [1]
    stored = store.get_program(b)
    assert stored.val_acc == pytest.approx(0.2) and stored.library_version == {name: 1}
    assert quality(stored.program["networks"][name]) == pytest.approx(0.8)  # the champion's weights
    assert not store.merges(b)[-1]["accepted"] and store.merges(b)[-1]["regressions"] == [a]


def test_merge_rejects_no_improvement_and_keeps_better_program(store):
    a, name = uid("A"), uid("net")
    evaluate = by_quality(a, name=name)
    first = store.merge(a, program({name: net(0.7)}, p=1), evaluate)
    again = store.merge(a, program({name: net(0.7)}, p=2), evaluate)
    assert not again.decision.accepted and "does not improve" in again.decision.reason
    worse = store.merge(a, program({name: net(0.6)}, p=0), evaluate)
    assert not worse.decision.accepted
    assert worse.program.val_acc == pytest.approx(0.7)  # stored against the champion (0.7), not its own 0.6
    assert store.program_versions(a) == [1, 2, 3] and store.program_champion(a) == first.program.version == 1
    better = store.merge(a, program({name: net(0.9)}, p=2), evaluate)
    assert better.decision.accepted and store.program_champion(a) == better.program.version == 4


def test_concurrent_merges_lose_nothing(store):
    base, t1, t2, name = uid("T0"), uid("T1"), uid("T2"), uid("net")
    evaluate = by_quality(base, t1, t2, name=name, sleep=0.02)
    store.merge(base, program({name: net(0.5)}), evaluate)
    errors: list[BaseException] = []

    def run(task, q):
        try:
            store.merge(task, program({name: net(q)}), evaluate)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=args) for args in ((t1, 0.6), (t2, 0.8))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert store.program_versions(t1) == [1] and store.program_versions(t2) == [1]
    assert len(store.merges(t1)) == 1 and len(store.merges(t2)) == 1
    champion = store.champion_versions()[name]
    assert quality(store.get_net_version(name, champion).net) == pytest.approx(0.8)


# ------------------------------------------------------------- the store's own gate

IDENTITY = list(range(8))
LOW_ONLY = [0, 1, 3, 2, 5, 4, 7, 6]  # right on 0 and 1 only
SHIFT = [(k + 1) % 8 for k in range(8)]


def test_validation_data_is_kept_at_the_first_merge(store):
    task, f = uid("T"), uid("f")
    val = lookup_batch([0, 1, 2, 3])
    assert store.validation_data(task) is None
    with pytest.raises(NtptError, match="val_data=batch at its first merge"):
        store.merge(task, lookup_program(f, IDENTITY))
    store.merge(task, lookup_program(f, IDENTITY), val_data=val)
    kept = store.validation_data(task)
    assert set(kept) == {"x", "y"} and kept["x"].dtype == np.int64
    np.testing.assert_array_equal(kept["y"], val["y"])
    kept["y"][:] = 5  # a copy: the store's batch does not change
    np.testing.assert_array_equal(store.validation_data(task)["y"], val["y"])
    again = store.merge(task, lookup_program(f, IDENTITY))  # no val_data: the kept batch gates it
    assert again.decision.new_task["before"] == pytest.approx(1.0)
    with pytest.raises(NtptError, match="already has validation data"):
        store.merge(task, lookup_program(f, IDENTITY), val_data=lookup_batch([0, 1]))
    with pytest.raises(NtptError, match="only for the store's own gate"):
        store.merge(task, lookup_program(f, IDENTITY), lambda t, lib: 0.5, val_data=val)
    with pytest.raises(NtptError, match="only for the store's own gate"):
        store.merge(task, lookup_program(f, IDENTITY), lambda t, lib: 0.5, test_data=val)


def test_store_gate_rejects_forgetting_accepts_improvement_and_versions_only_called_networks(store):
    a, b, c, f, g = uid("A"), uid("B"), uid("C"), uid("f"), uid("g")
    first = store.merge(a, lookup_program(f, LOW_ONLY), val_data=lookup_batch([0, 1]))
    assert first.decision.added == [f] and store.net_versions(f) == [1]

    # B would retrain f into x + 1: B gains, A (1.0 on 0 and 1) would lose everything
    forget = store.merge(b, lookup_program(f, SHIFT), val_data=lookup_batch([0, 1], shift=1),
                         test_data=lookup_batch([0, 1] * 3, shift=1))
    d = forget.decision
    assert not d.accepted and d.regressions == [a] and "rejected" in d.reason
    assert (d.new_task["before"], d.new_task["after"]) == (0.0, 1.0)
    assert (d.earlier[a]["before"], d.earlier[a]["after"]) == (1.0, 0.0)
    assert store.net_versions(f) == [1] and store.champion_versions()[f] == 1
    assert store.get_program(b).val_acc == 0.0 and store.get_program(b).library_version == {f: 1}
    assert store.get_program(b).test_acc == 0.0  # measured as stored (champion f), not with the rejected f

    # C's f is right everywhere: C gains (0.25 -> 1), A keeps 1.0, B keeps 0.0; C's program never calls g
    improve = store.merge(c, lookup_program(f, IDENTITY, unused=g), val_data=lookup_batch(IDENTITY * 2))
    d = improve.decision
    assert d.accepted and d.updated == [f] and d.added == []
    assert (d.new_task["before"], d.new_task["after"]) == (0.25, 1.0)
    assert set(d.earlier) == {a, b} and all(e["delta"] == 0.0 for e in d.earlier.values())
    assert store.net_versions(f) == [1, 2] and store.champion_versions()[f] == 2
    assert store.net_versions(g) == [] and g not in store.champion_versions()
    assert improve.new_versions == {f: 2} and store.get_program(c).library_version == {f: 2}
    assert [m["accepted"] for m in store.merges(b) + store.merges(c)] == [False, True]
    program = Program.from_dict(store.get_program(c).program)  # runs as stored, g included
    assert program.accuracy(lookup_batch(IDENTITY)) == 1.0 and program.called_networks() == {f}


def test_champion_accuracies_use_the_library_champion(store):
    a, c, f = uid("A"), uid("C"), uid("f")
    store.merge(a, lookup_program(f, LOW_ONLY), val_data=lookup_batch([0, 1]))
    wide = lookup_batch(IDENTITY)  # A's test set reaches inputs its training never saw
    assert champion_accuracies(store, {a: wide}) == {a: 0.25}
    store.merge(c, lookup_program(f, IDENTITY), val_data=lookup_batch(IDENTITY))
    # A's stored program still holds the old f; the champion library lifts it (reverse transfer)
    assert champion_accuracies(store, {a: wide, c: wide, uid("absent"): wide}) == {a: 1.0, c: 1.0}


def test_evaluations_are_numbered_per_series_with_the_versions_they_measured(store):
    a, f, life, other = uid("A"), uid("f"), uid("life"), uid("life")
    store.merge(a, lookup_program(f, LOW_ONLY), val_data=lookup_batch(IDENTITY))
    first = store.log_evaluation(life, {a: 0.25}, after=a)
    store.merge(a, lookup_program(f, IDENTITY))
    second = store.log_evaluation(life, {a: 1.0})
    store.log_evaluation(other, {a: 0.5}, split="val")
    assert (first.step, second.step) == (1, 2)
    assert first.library_version[f] == 1 and second.library_version[f] == 2
    assert first.programs == {a: 1} and second.programs == {a: 2} and first.after == a and second.after is None
    assert store.evaluations(life) == [first, second]
    mine = [e for e in store.evaluations() if e.series in (life, other)]
    assert [(e.series, e.step, e.split) for e in mine] == sorted([(life, 1, "test"), (life, 2, "test"), (other, 1, "val")])
    with pytest.raises(NtptError, match=r"in \[0, 1\]"):
        store.log_evaluation(life, {a: 97.0})
    with pytest.raises(NtptError, match="series name"):
        store.log_evaluation("it's", {a: 0.5})


# ------------------------------------------------------------------------ searches


def test_search_lifecycle_and_resume(store):
    task, name = uid("T"), uid("net")
    sid = store.start_search(task, {"restarts": 3, "policy": {"window": 5}})
    assert store.finished_restarts(sid) == {}
    prog = program({name: net(0.9)})
    store.log_restarts(sid, [restart(0), restart(1, "converged", 0.9, prog)])
    store.log_restarts(sid, [restart(2, "diverged")])
    done = store.finished_restarts(sid)
    assert sorted(done) == [0, 1, 2] and done[2]["status"] == "diverged"
    assert done[1]["trajectory"][-1] == pytest.approx([40, 0.9])
    np.testing.assert_array_equal(done[1]["program"]["networks"][name]["state"]["w0"], net(0.9)["state"]["w0"])
    info = store.get_search(sid)
    assert (info["task"], info["status"], info["config"]["policy"]) == (task, "running", {"window": 5})
    store.end_search(sid, {"converged": 1, "wall_s": 3.5}, restart(1, "converged", 0.9, prog))
    info = store.get_search(sid)
    assert info["status"] == "finished" and info["summary"]["converged"] == 1 and info["winner"]["index"] == 1
    assert store.start_search(task, {"restarts": 3}, sid) == sid  # resume
    assert store.get_search(sid)["status"] == "running" and sorted(store.finished_restarts(sid)) == [0, 1, 2]
    store.log_restarts(sid, [restart(0, "converged", 0.8)])  # a re-run restart: the later record wins
    assert store.finished_restarts(sid)[0]["status"] == "converged"


def test_search_without_winner(store):
    task = uid("T")
    sid = store.start_search(task, {"restarts": 1})
    store.log_restarts(sid, [])  # an empty flush is allowed
    store.log_restarts(sid, [restart(0, "failed")])
    store.end_search(sid, {"converged": 0}, None)
    info = store.get_search(sid)
    assert info["status"] == "finished" and info["winner"] is None and info["summary"] == {"converged": 0}


def test_search_explicit_id_and_errors(store):
    task = uid("T")
    sid = uid("search")
    assert store.start_search(task, {}, sid) == sid
    with pytest.raises(NtptError, match=f"belongs to task '{task}'"):
        store.start_search(uid("other"), {}, sid)
    with pytest.raises(NtptError, match="status must be one of"):
        store.log_restarts(sid, [restart(0, "exploded")])
    with pytest.raises(NtptError, match="missing"):
        store.log_restarts(sid, [{"index": 0}])
    with pytest.raises(NtptError, match="not in store"):
        store.finished_restarts(uid("nosuch"))


def test_an_unreadable_champion_network_blocks_only_the_merges_that_need_it(store, monkeypatch):
    # stands in for a deleted or damaged net.npz (test_mlflow_store deletes the real file)
    a, b, c, f, g = uid("A"), uid("B"), uid("C"), uid("f"), uid("g")
    val = lookup_batch(list(range(8)))
    store.merge(a, lookup_program(f, IDENTITY), val_data=val)
    read = store._get_net_version

    def damaged(name, version):
        if name == f:
            raise NtptError(f"weights of network {name!r} version {version} is missing: no file; fix: restore it")
        return read(name, version)

    monkeypatch.setattr(store, "_get_net_version", damaged)
    out = store.merge(b, lookup_program(g, IDENTITY), val_data=val)  # another task, another network
    assert out.decision.accepted and out.new_versions == {g: 1}
    with pytest.raises(NtptError, match=rf"the merge of task '{c}' needs champion version 1 of network '{f}'.* is "
                                        rf"missing: no file; fix: restore that file, .*set_champion\('{f}', N\)"):
        store.merge(c, lookup_program(f, SHIFT), val_data=val)
