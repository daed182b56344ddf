"""The .npz blob format for programs, records and NetStates."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.library_store.codec import decode, encode, read_file, write_file


def test_round_trip_keeps_dtypes_shapes_and_structure():
    value = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": np.array([1, 2], np.int64),
             "mask": np.array([True, False]), "nested": [{"x": np.float64(1.5), "t": (1, 2)}], "none": None}
    back = decode(encode(value))
    assert back["w"].dtype == np.float32 and back["w"].shape == (2, 3)
    np.testing.assert_array_equal(back["w"], value["w"])
    assert back["ids"].dtype == np.int64 and back["mask"].dtype == np.bool_
    assert back["nested"] == [{"x": 1.5, "t": [1, 2]}] and back["none"] is None


def test_corrupted_blob_is_an_ntpt_error_naming_it():
    data = encode({"w": np.zeros(3)})
    with pytest.raises(NtptError, match="weights of net_0 is corrupted"):
        decode(data[: len(data) // 2], "weights of net_0")
    with pytest.raises(NtptError, match="corrupted"):
        decode(b"not a zip at all")


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "p.npz"
    write_file(str(path), {"a": 1})
    assert read_file(str(path), "x") == {"a": 1}
    with pytest.raises(NtptError, match=f"program of 'MATH' is missing: no file at {tmp_path}/gone.npz"):
        read_file(str(tmp_path / "gone.npz"), "program of 'MATH'")


class _Planted:
    """Unpickling this opens (creates) a file: what a hostile pickled array would do."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickled_array_in_a_blob_is_refused_and_never_unpickled(tmp_path):
    mark = tmp_path / "ran"
    buffer = io.BytesIO()
    skeleton = np.frombuffer(json.dumps({"w": {"__ndarray__": "a0"}}).encode(), dtype=np.uint8)
    np.savez(buffer, __json__=skeleton, a0=np.array([_Planted(str(mark))], dtype=object))
    with pytest.raises(NtptError, match="planted blob is corrupted"):
        decode(buffer.getvalue(), "planted blob")
    assert not mark.exists()
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=True) as npz:  # control: unpickling it does run it
        npz["a0"][0].close()
    assert mark.exists()


def test_a_blob_pointing_at_a_missing_array_names_the_artifact():
    skeleton = json.dumps({"w": {"__ndarray__": "a7"}}).encode()
    buffer = io.BytesIO()
    np.savez(buffer, __json__=np.frombuffer(skeleton, dtype=np.uint8), a0=np.zeros(2))
    with pytest.raises(NtptError, match=r"weights of net_0 is corrupted: it refers to array 'a7'.*\['a0'\]"):
        decode(buffer.getvalue(), "weights of net_0")
