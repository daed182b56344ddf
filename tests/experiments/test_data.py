"""Data loaders: where data is looked for, operator grouping by drawing, and the real files (skipped if absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from ntpt_dist.experiments import data, operator_symbols
from ntpt_dist.interpreter.errors import NtptError

# --- locating data -------------------------------------------------------------


def test_data_dir_prefers_explicit_then_env_then_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("NTPT_DATA_DIR", str(tmp_path / "env"))
    assert data.data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert data.data_dir() == tmp_path / "env"
    monkeypatch.delenv("NTPT_DATA_DIR")
    monkeypatch.delenv("NTPT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.data_dir() == tmp_path / "xdg" / "ntpt-dist"


@pytest.mark.parametrize("loader", [data.mnist, data.operators, data.signs])
def test_missing_data_says_where_it_looked_and_how_to_fix(loader, tmp_path):
    with pytest.raises(NtptError) as info:
        loader("train", tmp_path)
    text = str(info.value)
    assert str(tmp_path) in text and "NTPT_DATA_DIR" in text


def test_unknown_split_is_refused(tmp_path):
    with pytest.raises(NtptError, match="split must be one of train, val, test, got 'dev'"):
        data.operators("dev", tmp_path)


# --- operator grouping and normalisation (synthetic) ---------------------------


def _drawing(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.zeros((28, 28), np.uint8)
    image[rng.integers(4, 24, 40), rng.integers(4, 24, 40)] = 255
    return image


def test_symmetries_are_the_eight_distinct_copies_of_an_asymmetric_image():
    copies = {np.ascontiguousarray(t).tobytes() for t in operator_symbols.symmetries(_drawing(0))}
    assert len(copies) == 8
    assert all(operator_symbols.canonical_key(t) == operator_symbols.canonical_key(_drawing(0)) for t in operator_symbols.symmetries(_drawing(0)))


def test_group_drawings_joins_rotations_and_near_copies_but_not_other_drawings_or_classes():
    a, b = _drawing(1), _drawing(2)
    near = a.copy()
    near[a > 0] = 252  # resampled: every stroke pixel a little darker, ~1% of the ink
    images = np.stack([a, np.rot90(a), a[:, ::-1], near, b, np.rot90(b, 2), a])
    labels = np.array([0, 0, 0, 0, 0, 0, 1])
    groups = operator_symbols.group_drawings(images, labels, tolerance=0.02)
    assert groups[0] == groups[1] == groups[2] == groups[3]
    assert groups[4] == groups[5] != groups[0]
    assert groups[6] not in groups[:6]  # same pixels, other class: never one drawing
    exact = operator_symbols.group_drawings(images, labels, tolerance=0)
    assert exact[3] != exact[0]  # without tolerance a resampled copy stays apart


def test_mnist_like_thickens_and_centres():
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 2:4, 2:12] = 255  # a thin stroke in the top-left corner
    out = operator_symbols.mnist_like(image)
    assert out.dtype == np.float32 and out.max() == 1.0
    assert out.sum() > 2 * image.sum() / 255  # thicker
    rows, cols = np.nonzero(out[0])
    assert abs(rows.mean() - 13.5) <= 0.5 and abs(cols.mean() - 13.5) <= 0.5


# --- the real files ------------------------------------------------------------


@pytest.mark.parametrize("loader, shape, classes", [(data.mnist, (28, 28), 10), (data.operators, (28, 28), 4), (data.signs, (3, 32, 32), 5)])
def test_real_sets_have_the_documented_shapes_and_disjoint_ids(real_data_dir, loader, shape, classes):
    sets = {split: loader(split, real_data_dir) for split in data.SPLITS}
    for split, (images, labels, ids) in sets.items():
        assert images.dtype == np.float32 and images.shape[1:] == shape and len(images) == len(labels) == len(ids)
        assert 0.0 <= images.min() and images.max() <= 1.0
        assert labels.dtype == np.int64 and ids.dtype == np.int64
        assert sorted(set(labels.tolist())) == list(range(classes)), split
        assert not images.flags.writeable
    train, val, test = (set(sets[s].ids.tolist()) for s in data.SPLITS)
    assert not train & test and not train & val and not val & test


def test_mnist_splits_follow_the_official_files(real_data_dir):
    train, val, test = (data.mnist(s, real_data_dir) for s in data.SPLITS)
    assert (len(train.labels), len(val.labels), len(test.labels)) == (50_000, 10_000, 10_000)
    raw = (real_data_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").read_bytes()[8:]
    assert np.array_equal(test.labels, np.frombuffer(raw, np.uint8))
    assert abs(float(train.images.mean()) - 0.1307) < 0.002


def test_operators_have_about_200_drawings_per_class_and_mnist_like_ink(real_data_dir):
    sets = [data.operators(s, real_data_dir) for s in data.SPLITS]
    labels = np.concatenate([s.labels for s in sets])
    ids = np.concatenate([s.ids for s in sets])
    drawings = [len(set(ids[labels == c].tolist())) for c in range(4)]
    assert all(150 <= d <= 260 for d in drawings), drawings
    for s in sets:
        assert 0.10 < float(s.images.mean()) < 0.16
        assert len(set(zip(s.ids.tolist(), s.labels.tolist()))) == len(set(s.ids.tolist()))  # one class per drawing


def test_no_operator_test_drawing_appears_in_training_even_flipped_or_rotated(real_data_dir):
    train, test = data.operators("train", real_data_dir), data.operators("test", real_data_dir)
    train_keys = {operator_symbols.canonical_key(image) for image in train.images}
    assert not any(operator_symbols.canonical_key(image) in train_keys for image in test.images)
    # Nor a resampled near copy. Thickening and centring blur the difference
    # between near copies and distinct short strokes, so compare the zip's raw
    # pixels: find each returned image's raw original by its normalised bytes.
    raw, _, _ = operator_symbols.decode_zip(real_data_dir / "operators" / "mdas_symbols_v1.zip")
    original = {image.tobytes(): r for image, r in zip(operator_symbols.mnist_like(raw), raw)}
    for cls in range(4):
        a = np.stack([original[i.tobytes()] for i in test.images[test.labels == cls]]).astype(np.float32)
        b_raw = np.stack([original[i.tobytes()] for i in train.images[train.labels == cls]]).astype(np.float32)
        a = torch.from_numpy(a.reshape(len(a), -1))
        for sym in operator_symbols.symmetries(b_raw):
            b = torch.from_numpy(np.ascontiguousarray(sym).reshape(len(b_raw), -1))
            rel = torch.cdist(a, b, p=1) / (a.sum(1)[:, None] + b.sum(1)[None, :])
            assert float(rel.min()) >= operator_symbols.DEFAULT_TOLERANCE, cls


def test_operator_split_is_fixed_by_seed(real_data_dir):
    first = data.operators("test", real_data_dir, seed=0)
    again = data.operators("test", real_data_dir, seed=0)
    other = data.operators("test", real_data_dir, seed=1)
    assert np.array_equal(first.ids, again.ids) and np.array_equal(first.images, again.images)
    assert set(first.ids.tolist()) != set(other.ids.tolist())


def test_signs_map_gtsrb_classes_to_directions_and_keep_tracks_together(real_data_dir):
    with np.load(Path(real_data_dir) / "gtsrb" / "gtsrb32_signs5.npz") as raw:
        y_train, y_test = raw["y_train"], raw["y_test"]
    train, val, test = (data.signs(s, real_data_dir) for s in data.SPLITS)
    for gtsrb, direction in {14: 0, 33: 1, 35: 2, 34: 3, 38: 4}.items():
        assert (train.labels == direction).sum() + (val.labels == direction).sum() == (y_train == gtsrb).sum()
        assert (test.labels == direction).sum() == (y_test == gtsrb).sum()
    # validation is whole tracks: each val block starts where consecutive frames change most
    everything = np.concatenate([train.images, val.images])[np.argsort(np.concatenate([train.ids, val.ids]))]
    change = np.abs(np.diff(everything, axis=0)).mean(axis=(1, 2, 3))
    is_val = np.isin(np.arange(len(everything)), val.ids)
    starts = np.nonzero(np.diff(is_val.astype(int)) == 1)[0] + 1
    assert len(starts) == 5 and all(change[s - 1] > 2 * np.median(change) for s in starts)
