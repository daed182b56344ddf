"""Image data sets of the paper's tasks: MNIST digits, handwritten operators, street signs.

Every loader returns an :class:`ImageSet` ``(images, labels, ids)``: float32
images in [0, 1], int64 class labels and int64 ids naming the source image (for
operators: the original drawing), unique across the splits of one data set so a
test can check that no test image was trained on. Arrays are read-only and
cached per process.

Where the files are (:func:`data_dir`): an explicit folder, else the
``NTPT_DATA_DIR`` environment variable, else a per-user cache folder into which
torchvision downloads MNIST. The operator and sign files have to be put there by
hand (see the error message when one is missing).

Example:
    >>> images, labels, ids = mnist("val")  # doctest: +SKIP
    >>> images.shape, labels[:3]  # doctest: +SKIP
    ((10000, 28, 28), array([3, 8, 6]))
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, Optional, Union

import numpy as np

from .. import config
from ..interpreter.errors import NtptError
from . import operator_symbols

SPLITS = ("train", "val", "test")
OPERATOR_SYMBOLS = ("+", "-", "*", "/")
# Maze directions read by LOOK, and the GTSRB class that shows each one.
DIRECTIONS = ("halt", "east", "north", "west", "south")
SIGN_CLASS_OF_GTSRB = {14: 0, 33: 1, 35: 2, 34: 3, 38: 4}  # stop, turn right, ahead only, turn left, keep right

MNIST_VAL = 10_000  # the last 10k MNIST training images are the validation split
OPERATOR_FRACTIONS = (0.7, 0.1, 0.2)  # drawings per class in train / val / test
SIGN_VAL_FRACTION = 0.15  # GTSRB training tracks per class kept for validation
GTSRB_TRACK = 30  # GTSRB training images come in tracks of 30 frames of one physical sign

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/ (torchvision's mirror of http://yann.lecun.com/exdb/mnist/)"
OPERATORS_URL = "https://github.com/jdmacleod/handwritten-calculator (file mdas_symbol_dataset/mdas_symbols_v1.zip, MIT)"
GTSRB_URL = "https://benchmark.ini.rub.de/gtsrb_dataset.html"

PathLike = Union[str, os.PathLike]


class ImageSet(NamedTuple):
    """Images of one split: ``images`` float32 [N, ...] in [0, 1], ``labels`` int64 [N], ``ids`` int64 [N]."""

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray


def data_dir(explicit: Optional[PathLike] = None) -> Path:
    """The folder the data sets are read from.

    Args:
        explicit: a folder given by the caller (e.g. ``--data-dir``); wins if set.

    Returns:
        ``explicit``, else ``$NTPT_DATA_DIR``, else the per-user cache
        (``$XDG_CACHE_HOME/ntpt-dist`` or ``~/.cache/ntpt-dist``).

    Example:
        >>> data_dir("/data/ntpt")
        PosixPath('/data/ntpt')
    """
    return _locate(explicit)[0]


def cache_dir() -> Path:
    """Per-user folder for downloads and decoded arrays (``$NTPT_CACHE_DIR`` overrides it).

    Example:
        >>> cache_dir().name  # doctest: +SKIP
        'ntpt-dist'
    """
    return config.cache_dir()


def mnist(split: str, data_dir: Optional[PathLike] = None) -> ImageSet:
    """MNIST digits of one split; train = first 50k training images, val = last 10k.

    Downloads through torchvision only when no folder was named (explicitly or
    by ``NTPT_DATA_DIR``); a named folder must already hold ``MNIST/raw``.

    Args:
        split: "train", "val" or "test".
        data_dir: folder holding ``MNIST/raw/*-ubyte``.

    Returns:
        ``ImageSet`` with images [N, 28, 28], labels 0..9, ids = index in the
        60k training file, or 60000 + index in the test file.

    Raises:
        NtptError: unknown split, or MNIST missing / not downloadable.

    Example:
        >>> images, labels, ids = mnist("test", "../shared/data")  # doctest: +SKIP
        >>> images.shape, int(ids[0])  # doctest: +SKIP
        ((10000, 28, 28), 60000)
    """
    _check_split(split)
    root, is_default = _locate(data_dir)
    images, labels = _mnist_file(str(root), split == "test", is_default)
    if split == "test":
        ids = 60_000 + np.arange(len(labels))
    else:
        ids = np.arange(len(labels))
        cut = len(labels) - MNIST_VAL
        part = slice(0, cut) if split == "train" else slice(cut, None)
        images, labels, ids = images[part], labels[part], ids[part]
    return _frozen(images, labels, ids)


def operators(split: str, data_dir: Optional[PathLike] = None, seed: int = 0) -> ImageSet:
    """Handwritten + - * / symbols, re-split by original drawing, strokes made MNIST-like.

    The zip's own split leaks (copies of one drawing, flipped or rotated, sit in
    different folders), so images are grouped by drawing
    (:func:`operator_symbols.group_drawings`) and each class's drawings are
    dealt to train/val/test in the proportions ``OPERATOR_FRACTIONS`` by
    ``seed``. All copies of a drawing go with it.

    Args:
        split: "train", "val" or "test".
        data_dir: folder holding ``operators/mdas_symbols_v1.zip``.
        seed: which deal of drawings to splits; fixed seed -> fixed split.

    Returns:
        ``ImageSet`` with images [N, 28, 28], labels 0 +, 1 -, 2 *, 3 /, and
        ids = drawing id (shared by the copies of one drawing).

    Raises:
        NtptError: unknown split or missing zip.

    Example:
        >>> images, labels, ids = operators("train", "../shared/data")  # doctest: +SKIP
        >>> sorted(set(labels.tolist()))  # doctest: +SKIP
        [0, 1, 2, 3]
    """
    _check_split(split)
    path = _locate(data_dir)[0] / "operators" / "mdas_symbols_v1.zip"
    if not path.is_file():
        raise NtptError(
            f"operator symbols not found: looked for {path}. Set NTPT_DATA_DIR (or pass --data-dir / data_dir=) "
            f"to a folder holding operators/mdas_symbols_v1.zip, or download that zip from {OPERATORS_URL} "
            f"into {path.parent}"
        )
    images, labels, groups = _operator_arrays(str(path))
    keep = _deal_groups(labels, groups, seed)[split]
    return _frozen(images[keep], labels[keep], groups[keep])


def signs(split: str, data_dir: Optional[PathLike] = None) -> ImageSet:
    """GTSRB street signs of the five maze classes, labelled with the direction they mean.

    Labels: 0 halt (stop, GTSRB 14), 1 east (turn right, 33), 2 north (ahead
    only, 35), 3 west (turn left, 34), 4 south (keep right, 38). Validation is
    carved from the training file by whole tracks (30 consecutive frames of one
    physical sign): the last ``SIGN_VAL_FRACTION`` of each class's tracks.

    Args:
        split: "train", "val" or "test".
        data_dir: folder holding ``gtsrb/gtsrb32_signs5.npz``.

    Returns:
        ``ImageSet`` with images [N, 3, 32, 32], labels 0..4, ids = index in
        the training arrays, or n_train + index in the test arrays.

    Raises:
        NtptError: unknown split or missing file.

    Example:
        >>> images, labels, ids = signs("val", "../shared/data")  # doctest: +SKIP
        >>> images.shape[1:]  # doctest: +SKIP
        (3, 32, 32)
    """
    _check_split(split)
    path = _locate(data_dir)[0] / "gtsrb" / "gtsrb32_signs5.npz"
    if not path.is_file():
        raise NtptError(
            f"street signs not found: looked for {path}. Set NTPT_DATA_DIR (or pass --data-dir / data_dir=) to a "
            f"folder holding gtsrb/gtsrb32_signs5.npz (arrays X_train, y_train, X_test, y_test: 32x32 RGB uint8 "
            f"GTSRB images of classes 14, 33, 34, 35, 38, training images in track order), built from {GTSRB_URL}"
        )
    train_x, train_y, test_x, test_y = _sign_arrays(str(path))
    if split == "test":
        return _frozen(test_x, test_y, len(train_y) + np.arange(len(test_y)))
    val = _sign_val_mask(train_x, train_y)
    keep = np.nonzero(val if split == "val" else ~val)[0]
    return _frozen(train_x[keep], train_y[keep], keep)


# --- helpers ---------------------------------------------------------------


def _locate(explicit: Optional[PathLike]) -> tuple[Path, bool]:
    """(folder, True if it is the default cache where downloads are allowed)."""
    if explicit is not None:
        return Path(explicit).expanduser(), False
    if config.NTPT_DATA_DIR.is_set():
        return config.NTPT_DATA_DIR.get(), False
    return cache_dir(), True


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise NtptError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


def _frozen(images: np.ndarray, labels: np.ndarray, ids: np.ndarray) -> ImageSet:
    """Read-only arrays, so a caller cannot corrupt the per-process cache."""
    arrays = [np.ascontiguousarray(images, np.float32), np.asarray(labels, np.int64), np.asarray(ids, np.int64)]
    for array in arrays:
        array.flags.writeable = False
    return ImageSet(*arrays)


@lru_cache(maxsize=4)
def _mnist_file(root: str, test: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    import torchvision  # heavy; only the MNIST loader needs it

    try:
        dataset = torchvision.datasets.MNIST(root, train=not test, download=download)
    except (RuntimeError, OSError) as error:  # torchvision: "Dataset not found" / "Error downloading"
        raw = Path(root) / "MNIST" / "raw"
        if download:
            raise NtptError(
                f"MNIST download into {raw} failed ({error}). Download the four *-ubyte files from {MNIST_URL} "
                f"into {raw}, or set NTPT_DATA_DIR (or pass --data-dir / data_dir=) to a folder holding MNIST/raw"
            ) from error
        raise NtptError(
            f"MNIST not found: looked in {raw} for train/t10k-images-idx3-ubyte and -labels-idx1-ubyte. Set "
            f"NTPT_DATA_DIR (or pass --data-dir / data_dir=) to a folder holding MNIST/raw, or unset both to let "
            f"torchvision download MNIST into {cache_dir()}"
        ) from error
    images = dataset.data.numpy().astype(np.float32) / 255.0
    return images, dataset.targets.numpy().astype(np.int64)


OPERATOR_CACHE_VERSION = 1  # bump when decoding or grouping changes


@lru_cache(maxsize=2)
def _operator_arrays(zip_path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(MNIST-like images, labels, drawing ids), decoded once per zip and cached as .npz."""
    digest = hashlib.sha1(Path(zip_path).read_bytes()).hexdigest()[:16]
    cached = cache_dir() / f"operators-v{OPERATOR_CACHE_VERSION}-{digest}.npz"
    if cached.is_file():
        with np.load(cached) as saved:
            raw, labels, groups = saved["images"], saved["labels"], saved["groups"]
    else:
        raw, labels, _ = operator_symbols.decode_zip(Path(zip_path))
        groups = operator_symbols.group_drawings(raw, labels)
        _save_npz(cached, images=raw, labels=labels, groups=groups)
    return operator_symbols.mnist_like(raw), labels, groups


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write atomically (parallel workers may race); a read-only cache is not an error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass


def _deal_groups(labels: np.ndarray, groups: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Indices of each split: every class's drawings shuffled by seed and cut by OPERATOR_FRACTIONS."""
    chosen: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
    for cls in np.unique(labels):
        drawings = np.unique(groups[labels == cls])
        order = np.random.default_rng([seed, int(cls)]).permutation(drawings)
        n_train = int(round(OPERATOR_FRACTIONS[0] * len(order)))
        n_val = int(round(OPERATOR_FRACTIONS[1] * len(order)))
        parts = {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}
        for split, part in parts.items():
            chosen[split].append(np.nonzero(np.isin(groups, part))[0])
    return {split: np.sort(np.concatenate(parts)) for split, parts in chosen.items()}


@lru_cache(maxsize=2)
def _sign_arrays(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path) as saved:
        arrays = [saved[key] for key in ("X_train", "y_train", "X_test", "y_test")]
    train_x, train_y, test_x, test_y = arrays
    to_direction = np.full(max(SIGN_CLASS_OF_GTSRB) + 1, -1, dtype=np.int64)
    for gtsrb, direction in SIGN_CLASS_OF_GTSRB.items():
        to_direction[gtsrb] = direction
    train_y, test_y = to_direction[train_y.astype(np.int64)], to_direction[test_y.astype(np.int64)]
    if (train_y < 0).any() or (test_y < 0).any():
        raise NtptError(f"{path}: labels must be the GTSRB classes {sorted(SIGN_CLASS_OF_GTSRB)}; found others")
    # [N, 32, 32, 3] uint8 -> [N, 3, 32, 32] float in [0, 1], channels first like torch
    train_x = train_x.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    test_x = test_x.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    return train_x, train_y, test_x, test_y


def _sign_val_mask(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Validation = the last tracks of each class's contiguous run of training images.

    The cut is put at the nominal track boundary (a multiple of 30 frames from
    the end of the class), moved by up to 2 frames to the largest change
    between consecutive frames, because a track may have lost a frame.
    """
    mask = np.zeros(len(labels), dtype=bool)
    starts = np.r_[0, np.nonzero(np.diff(labels))[0] + 1]
    ends = np.r_[starts[1:], len(labels)]
    for start, end in zip(starts, ends):
        tracks = max(1, (end - start) // GTSRB_TRACK)
        val_tracks = max(1, int(round(SIGN_VAL_FRACTION * tracks)))
        nominal = end - val_tracks * GTSRB_TRACK
        candidates = range(max(start + 1, nominal - 2), min(end - 1, nominal + 2) + 1)
        change = {c: float(np.abs(images[c] - images[c - 1]).mean()) for c in candidates}
        mask[max(change, key=change.get) : end] = True
    return mask
