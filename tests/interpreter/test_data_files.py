"""A user's data file -> train/val/test batches: TerpreT JSON and .npz, the val split rule, the hypers choice."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ntpt_dist.interpreter.data_files import load_data_file, load_hypers, split_off_val
from ntpt_dist.interpreter.errors import DataError


def write_json(tmp_path, batches, name="data.json"):
    path = tmp_path / name
    path.write_text(json.dumps(batches))
    return path


def rows(n, offset=0):
    return [{"x": (k + offset) % 3, "y": [(k + offset) % 2, None]} for k in range(n)]


def test_json_without_val_splits_off_the_last_tenth_of_a_seeded_shuffle(tmp_path):
    path = write_json(tmp_path, [{"batch_name": "train", "instances": rows(30)},
                                 {"batch_name": "test", "instances": rows(5, 1)},
                                 {"batch_name": "extra", "instances": rows(2)}])
    splits = load_data_file(path)
    assert len(splits.train["x"]) == 27 and len(splits.val["x"]) == 3 and len(splits.test["x"]) == 5
    order = np.random.default_rng(0).permutation(30)
    held = np.sort(order[27:])
    assert splits.val["x"].tolist() == [k % 3 for k in held]
    assert splits.val["y"][:, 1].tolist() == [-1, -1, -1]  # null -> don't care
    assert "default_rng(0)" in splits.val_from and "last 3 of 30" in splits.val_from
    again = load_data_file(path)  # deterministic: the same file gives the same validation batch
    assert all(np.array_equal(again.val[k], splits.val[k]) for k in splits.val)


def test_a_val_batch_is_used_as_given(tmp_path):
    path = write_json(tmp_path, [{"batch_name": "train", "instances": rows(4)},
                                 {"batch_name": "val", "instances": rows(2, 1)}])
    splits = load_data_file(path)
    assert len(splits.train["x"]) == 4 and splits.val["x"].tolist() == [1, 2] and splits.test is None


def test_one_instance_validates_on_itself():
    train, val, rule = split_off_val({"x": np.array([2])})
    assert val is train and "itself" in rule


def test_npz_arrays_named_batch_dot_variable(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, **{"train.x": np.arange(20) % 3, "train.y": np.arange(20) % 2, "test.x": np.array([1]),
                      "test.y": np.array([-1])})
    splits = load_data_file(path)
    assert len(splits.train["x"]) == 18 and len(splits.val["x"]) == 2 and splits.test["y"].tolist() == [-1]
    assert splits.train["x"].dtype == np.int64


@pytest.mark.parametrize("arrays, says", [
    ({"x": np.arange(3)}, "is not named <batch>.<variable>"),
    ({"train.x": np.arange(3), "train.y": np.arange(2)}, "different lengths"),
    ({"test.x": np.arange(3)}, "no batch named 'train'"),
    ({"train.x": np.array(["a", "b"])}, "expected integers"),
])
def test_bad_npz_files_say_what_to_fix(tmp_path, arrays, says):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=says):
        load_data_file(path)


def test_bad_files_are_one_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data_file(tmp_path / "missing.json")
    (tmp_path / "data.csv").write_text("x,y\n")
    with pytest.raises(DataError, match=r"expected a \.json .* or \.npz"):
        load_data_file(tmp_path / "data.csv")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read data file"):
        load_data_file(tmp_path / "bad.npz")


def test_hypers_choice(tmp_path):
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"small": {"N": 3}}))
    two = tmp_path / "two.json"
    two.write_text(json.dumps({"small": {"N": 3}, "big": {"N": 9}}))
    assert load_hypers(one) == ({"N": 3}, "small")
    assert load_hypers(two, "big") == ({"N": 9}, "big")
    assert load_hypers(two, named_by_data="small") == ({"N": 3}, "small")
    assert load_hypers(None) == ({}, None)
    with pytest.raises(DataError, match="--hypers-name NAME"):
        load_hypers(two)
    with pytest.raises(DataError, match="no entry 'huge'"):
        load_hypers(two, "huge")
    with pytest.raises(DataError, match="needs a hypers file"):
        load_hypers(None, "big")


def test_the_train_batch_names_the_hypers_and_the_others_must_agree(tmp_path):
    hypers = tmp_path / "hypers.json"
    hypers.write_text(json.dumps({"small": {"N": 3}, "big": {"N": 9}}))
    path = write_json(tmp_path, [{"batch_name": "train", "hypers": "big", "instances": rows(4)}])
    assert load_data_file(path, hypers).hypers == {"N": 9}
    bad = write_json(tmp_path, [{"batch_name": "train", "hypers": "big", "instances": rows(4)},
                                {"batch_name": "test", "hypers": "small", "instances": rows(2)}], "bad.json")
    with pytest.raises(DataError, match="batch 'test' uses hypers 'small' but 'train' uses 'big'"):
        load_data_file(bad, hypers)
