"""Typed restart records: the enum status, the dict form sinks see, JSON, and the result built from them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.search.records import (
    RECORD_KEYS,
    RestartRecord,
    RestartStatus,
    SearchResult,
    from_jsonable,
    to_jsonable,
)


def test_a_record_is_frozen_with_an_enum_status():
    r = RestartRecord(3, 42, "stopped", reason="budget", steps=300)
    assert r.status is RestartStatus.STOPPED and r.status == "stopped"
    with pytest.raises(AttributeError):
        r.status = RestartStatus.CONVERGED  # frozen
    with pytest.raises(NtptError, match=r"restart status must be one of .*'converged'.*but got 'won' for restart 3"):
        RestartRecord(3, 42, "won")


def test_the_dict_form_has_every_key_and_round_trips_through_json():
    program = {"params": {"p": [1, 2]}, "networks": {"n": {"state": {"w0": np.arange(4, dtype=np.float32)}}}}
    r = RestartRecord(0, 7, RestartStatus.CONVERGED, reason="jump", jump_step=50, steps=100,
                      trajectory=[[0, 0.2], [50, 0.9]], program=program, program_val_acc=0.95)
    d = r.to_dict()
    assert tuple(d) == RECORD_KEYS and d["status"] == "converged" and type(d["status"]) is str
    back = RestartRecord.from_dict(from_jsonable(json.loads(json.dumps(to_jsonable(r)))))
    w = back.program["networks"]["n"]["state"]["w0"]
    assert w.dtype == np.float32 and w.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert back.to_dict() | {"program": None} == d | {"program": None}


def test_from_dict_fills_missing_fields_and_drops_a_sinks_own_keys():
    r = RestartRecord.from_dict({"index": 1, "seed": 2, "status": "failed", "error": "boom", "run_id": "abc"})
    assert (r.index, r.status, r.error, r.trajectory, r.program) == (1, RestartStatus.FAILED, "boom", [], None)
    with pytest.raises(NtptError, match=r"lacks \['seed'\]"):
        RestartRecord.from_dict({"index": 1, "status": "failed"})
    with pytest.raises(NtptError, match="must be a dict, but got list"):
        RestartRecord.from_dict([1, 2])


def test_the_dict_forms_read_access_still_works():
    r = RestartRecord(5, 9, "diverged", reason="nan")
    assert r["index"] == 5 and r["status"] == "diverged" and r.get("program") is None and r.get("nope", 1) == 1
    with pytest.raises(KeyError):
        r["nope"]


def test_a_result_counts_statuses_and_picks_the_winner_from_typed_or_dict_records():
    records = {
        0: RestartRecord(0, 1, "converged", program_val_acc=0.9, jump_step=100, program={"p": 0}),
        1: {"index": 1, "seed": 2, "status": "converged", "program_val_acc": 0.9, "jump_step": 50, "program": {"p": 1}},
        2: RestartRecord(2, 3, "stopped", reason="budget"),
    }
    result = SearchResult.build("sid", records, started=4, wall_s=1.0, stop_reason="done")
    assert all(isinstance(r, RestartRecord) for r in result.records.values())
    assert result.counts == {"converged": 2, "stopped": 1, "diverged": 0, "failed": 0, "started": 4}
    assert result.winner.index == 1  # same accuracy, earlier jump
    assert result.summary()["winner_index"] == 1 and json.dumps(result.summary())
