"""Fixtures for the data and task tests: the real data folder (or a skip) and small fake image sets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from ntpt_dist.experiments import data

REPO = Path(__file__).resolve().parents[2]
NEEDED = ("MNIST/raw/train-images-idx3-ubyte", "operators/mdas_symbols_v1.zip", "gtsrb/gtsrb32_signs5.npz")


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """$NTPT_DATA_DIR, else ../shared/data beside the repo (as in CI); skip when the files are absent."""
    folder = Path(os.environ.get("NTPT_DATA_DIR") or REPO.parent / "shared" / "data")
    missing = [name for name in NEEDED if not (folder / name).is_file()]
    if missing:
        pytest.skip(f"real data not found in {folder} (missing {', '.join(missing)}); set NTPT_DATA_DIR to run these tests")
    return folder


def fake_set(labels: list[int], shape: tuple[int, ...], id_base: int) -> data.ImageSet:
    """An image set whose image k is filled with (its id) / 10000, so a test can read ids back from pixels."""
    ids = id_base + np.arange(len(labels))
    images = np.broadcast_to((ids / 10_000.0)[(slice(None),) + (None,) * len(shape)], (len(ids),) + shape)
    return data.ImageSet(images.astype(np.float32), np.asarray(labels, np.int64), ids.astype(np.int64))


@pytest.fixture
def fake_data(monkeypatch):
    """Replace the three loaders by tiny per-split sets (ids differ by split); returns a setter for the classes.

    ``fake_data(mnist=[...], operators=[...], signs=[...])`` sets the class of each image
    of every split; defaults: every digit, every operator, every sign twice.
    """
    offsets = {"train": 0, "val": 1000, "test": 2000}

    def install(mnist=None, operators=None, signs=None):
        classes = {"mnist": mnist or list(range(10)) * 2, "operators": operators or list(range(4)) * 2, "signs": signs or list(range(5)) * 2}
        shapes = {"mnist": (28, 28), "operators": (28, 28), "signs": (3, 32, 32)}
        for loader, labels in classes.items():
            base = {"mnist": 0, "operators": 100, "signs": 200}[loader]

            def load(split, data_dir=None, seed=0, _labels=labels, _shape=shapes[loader], _base=base):
                return fake_set(_labels, _shape, _base + offsets[split])

            monkeypatch.setattr(data, loader, load)

    install()
    return install
