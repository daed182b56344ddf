"""terpret_data: TerpreT's JSON data and hypers files -> int64 batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ntpt_dist.interpreter.errors import DataError, NtptError
from ntpt_dist.interpreter.model import compile_file
from ntpt_dist.interpreter.terpret_data import TerpretBatch, load_terpret_data

from .test_unroll import MODELS

HYPERS = {"small": {"numTimesteps": 4, "tapeLength": 3}, "big": {"numTimesteps": 9, "tapeLength": 8}}
DATA = [
    {"batch_name": "train", "hypers": "small", "instances": [
        {"initial_tape": [0, 1, 2], "final_tape": [1, 0, 2], "flag": 1},
        {"initial_tape": [1, 1, 2], "final_tape": [0, None, 2], "flag": None},
    ]},
    {"batch_name": "test", "hypers": "big", "instances": [
        {"initial_tape": [0] * 7 + [2], "final_tape": [1] * 7 + [2], "flag": 0},
    ]},
]


def test_round_trip_through_files(tmp_path):
    (tmp_path / "data.json").write_text(json.dumps(DATA))
    (tmp_path / "hypers.json").write_text(json.dumps(HYPERS))
    batches = load_terpret_data(tmp_path / "data.json", str(tmp_path / "hypers.json"))
    assert list(batches) == ["train", "test"]
    train = batches["train"]
    assert isinstance(train, TerpretBatch) and len(train) == 2
    assert (train.name, train.hypers_name, train.hypers) == ("train", "small", HYPERS["small"])
    assert train.data["initial_tape"].dtype == np.int64
    assert train.data["final_tape"].tolist() == [[1, 0, 2], [0, -1, 2]]
    assert train.data["flag"].tolist() == [1, -1]
    # back to TerpreT's JSON: the same instances
    again = [{k: [None if x == -1 else x for x in v] if v.ndim else (None if v == -1 else int(v))
              for k, v in ((k, train.data[k][i]) for k in train.data)} for i in range(len(train))]
    assert again == DATA[0]["instances"]


def test_json_strings_and_parsed_objects_give_the_same_batches():
    from_text = load_terpret_data(json.dumps(DATA), json.dumps(HYPERS))
    from_objects = load_terpret_data(DATA, HYPERS)
    for name in ("train", "test"):
        for key in DATA[0]["instances"][0]:
            assert np.array_equal(from_text[name].data[key], from_objects[name].data[key])


def test_without_a_hypers_file_hypers_are_none():
    batch = load_terpret_data(DATA)["test"]
    assert batch.hypers is None and batch.hypers_name == "big" and batch.data["initial_tape"].shape == (1, 8)


def test_a_whole_null_value_fills_an_array_with_dont_care():
    data = [{"batch_name": "b", "instances": [{"y": None}, {"y": [[1, 2], [3, 4]]}]}]
    assert load_terpret_data(data)["b"].data["y"].tolist() == [[[-1, -1], [-1, -1]], [[1, 2], [3, 4]]]


def test_loaded_batch_scores_a_compiled_program():
    model = compile_file(MODELS / "maze_int.py", {"T": 8, "W": 2, "H": 1})
    grid = [[1, 0]]  # east, then halt: one move
    data = [{"batch_name": "train", "hypers": "h", "instances": [
        {"sign_grid": grid, "init_X": 0, "init_Y": 0, "final_X": 1, "final_Y": 0, "path_len": 1,
         "is_halted_at_end": None}]}]
    batch = load_terpret_data(data, {"h": {"T": 8, "W": 2, "H": 1}})["train"]
    assert model.program({"instr": [3, 2, 0], "goto": [1, 2, 0]}).accuracy(batch.data) == 1.0
    assert model.program({"instr": [3, 1, 2], "goto": [1, 2, 0]}).accuracy(batch.data) == 0.0  # DEC: 14


BAD = {
    "not a list": ({"batch_name": "x"}, None, "a JSON list of batches"),
    "missing instances": ([{"batch_name": "train"}], None, "batch 0 ('train') has no 'instances' key"),
    "missing batch_name": ([{"instances": [{}]}], None, "batch 0 ('unnamed') has no 'batch_name' key"),
    "empty instances": ([{"batch_name": "t", "instances": []}], None, "'instances' must be a non-empty list"),
    "unknown hypers": (DATA, {"small": {}}, "batch 'test' uses hypers 'big', which the hypers file does not define"),
    "missing key": ([{"batch_name": "t", "instances": [{"a": 1, "b": 2}, {"a": 1}]}], None,
                    "batch 't' instance 1 has different names from instance 0: missing ['b']"),
    "ragged": ([{"batch_name": "t", "instances": [{"a": [[1, 2], [3]]}]}], None,
               "batch 't' instance 0: 'a' is a ragged array"),
    "shape differs": ([{"batch_name": "t", "instances": [{"a": [1, 2]}, {"a": [1, 2, 3]}]}], None,
                      "batch 't' instance 1: 'a' has shape [3] but instance 0 has [2]"),
    "float": ([{"batch_name": "t", "instances": [{"a": 1.5}]}], None, "'a' holds 1.5, but TerpreT values are integers"),
    "duplicate batch": ([{"batch_name": "t", "instances": [{}]}] * 2, None, "batch name 't' appears twice"),
    "non-integer hyper": (DATA, {"small": {"T": "4"}, "big": {}}, "hyper-parameter 'T' of hypers 'small' must be"),
    "bad JSON": ("[{", None, "is not valid JSON"),
    "missing file": ("/nonexistent/data.json", None, "cannot read data file '/nonexistent/data.json'"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_data_names_the_batch_and_instance(name):
    data, hypers, words = BAD[name]
    with pytest.raises(DataError) as info:
        load_terpret_data(data, hypers)
    assert isinstance(info.value, NtptError) and words in str(info.value), str(info.value)
