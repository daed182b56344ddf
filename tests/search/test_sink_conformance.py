"""One suite for every RestartSink: the local journal, the in-memory store and an sqlite library store.

What the driver relies on (search/sinks.py): the id it mints is the id the sink keeps;
records come back equal to what was logged, numpy arrays exactly; a reopened
search keeps its records and takes more; searches do not mix.
"""

from __future__ import annotations

import numpy as np
import pytest
from ntpt_dist.search.journal import Journal
from ntpt_dist.search.records import RestartRecord, RestartStatus, SearchResult, new_search_id
from ntpt_dist.search.sinks import RestartSink

SINKS = ["journal", "memory", "sqlite"]


@pytest.fixture(scope="module")
def _sqlite_store(tmp_path_factory):
    from ntpt_dist.library_store.api import LibraryStore

    return LibraryStore(f"sqlite:///{tmp_path_factory.mktemp('sink-store')}/mlflow.db")


@pytest.fixture(params=SINKS)
def sink(request, tmp_path):
    if request.param == "journal":
        return Journal(tmp_path / "journal.jsonl")
    if request.param == "memory":
        from ntpt_dist.library_store.memory import MemoryStore

        return MemoryStore()
    return request.getfixturevalue("_sqlite_store")


def records() -> list[RestartRecord]:
    program = {"source": "p = Param(2)\n", "filename": "t.py", "hypers": {}, "params": {"p": 1},
               "networks": {"net": {"signature": "net([2]) -> 2", "state": {"w0": np.arange(6, dtype=np.float32).reshape(2, 3) / 7}}},
               "meta": {}, "listing": None}
    return [
        RestartRecord(0, 11, RestartStatus.CONVERGED, reason="jump", jump_step=50, steps=175,
                      trajectory=[[0, 0.25], [25, 0.5], [50, 1.0]], program=program, program_val_acc=1.0,
                      wall_s=0.5, actor="local-0", finished_at=1.7e9),
        RestartRecord(1, 12, RestartStatus.STOPPED, reason="budget", steps=300, trajectory=[[0, 0.25], [300, 0.3]]),
        RestartRecord(2, 13, RestartStatus.DIVERGED, reason="nan", steps=20, trajectory=[[0, 0.1]]),
        RestartRecord(3, 14, RestartStatus.FAILED, reason="crashed", error="RuntimeError: boom"),
    ]


def same(a: RestartRecord, b: RestartRecord) -> None:
    """Equal records, numpy arrays compared exactly (dtype and values)."""
    da, db = a.to_dict(), b.to_dict()
    pa, pb = da.pop("program"), db.pop("program")
    assert da == db
    assert (pa is None) == (pb is None)
    if pa is not None:
        wa, wb = pa["networks"]["net"]["state"]["w0"], pb["networks"]["net"]["state"]["w0"]
        assert wa.dtype == wb.dtype and np.array_equal(wa, wb)
        assert pa["params"] == pb["params"] and pa["source"] == pb["source"]


def test_it_is_a_restart_sink(sink):
    assert isinstance(sink, RestartSink)


def test_the_minted_id_is_kept_and_records_come_back_as_logged(sink):
    sid = new_search_id()
    assert sink.start_search("conformance", {"restarts": 4, "policy": {"window": 5}}, sid) == sid
    logged = records()
    sink.log_restarts(sid, [r.to_dict() for r in logged[:2]])
    sink.log_restarts(sid, [r.to_dict() for r in logged[2:]])
    back = sink.finished_restarts(sid)
    assert sorted(back) == [0, 1, 2, 3]
    for r in logged:
        same(RestartRecord.from_dict(back[r.index]), r)
    result = SearchResult.build(sid, back, started=4, wall_s=1.0, stop_reason="done")
    assert result.winner.index == 0 and result.counts["failed"] == 1
    sink.end_search(sid, result.summary(), result.winner.to_dict())


def test_a_reopened_search_keeps_its_records_and_takes_more(sink):
    sid = new_search_id()
    sink.start_search("conformance", {"restarts": 4}, sid)
    first, *rest = records()
    sink.log_restarts(sid, [first.to_dict()])
    sink.end_search(sid, {"counts": {"converged": 1}}, None)  # interrupted: no winner yet
    assert sink.start_search("conformance", {"restarts": 4}, sid) == sid
    assert sorted(sink.finished_restarts(sid)) == [0]
    sink.log_restarts(sid, [r.to_dict() for r in rest])
    assert sorted(sink.finished_restarts(sid)) == [0, 1, 2, 3]
    sink.end_search(sid, {"counts": {"converged": 1}}, first.to_dict())


def test_searches_do_not_mix(sink):
    a, b = new_search_id(), new_search_id()
    for sid in (a, b):
        sink.start_search("conformance", {}, sid)
    one, two, *_ = records()
    sink.log_restarts(a, [one.to_dict()])
    sink.log_restarts(b, [two.to_dict()])
    assert sorted(sink.finished_restarts(a)) == [0] and sorted(sink.finished_restarts(b)) == [1]
