"""A user's data file -> the train/val/test batches training and search take.

Two formats (chosen by the file's suffix):

- ``.json``: TerpreT's data file, a list of batches
  ``[{"batch_name": "train", "hypers": "<name>", "instances": [...]}, ...]``
  (see :mod:`.terpret_data`). The batches named ``train`` (required), ``val``
  and ``test`` (optional) are used; batches of other names are ignored.
- ``.npz``: numpy arrays named ``<batch>.<variable>``, e.g. ``train.x``,
  ``train.y``, ``test.x``, ``test.y``; ``-1`` marks a don't-care output.

Hyper-parameters come from TerpreT's hypers file (``{name: {hyper: value}}``):
``hypers_name`` picks an entry; without it a file of one entry gives that one,
else the entry the ``train`` batch names. The ``val`` and ``test`` batches of a
JSON file must name the same entry as ``train`` (or none).

Without a ``val`` batch, validation data is split off ``train``
deterministically: the instances are shuffled with ``numpy.random.default_rng(0)``
and the last 10% (at least one) become ``val``, the rest ``train``. The split
does not depend on any search seed, so every search of one file gates its
merges on the same validation batch. A ``train`` batch of one instance is used
for both.

Example:
    >>> import json, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "d.json")
    >>> rows = [{"x": k % 3, "y": (k + 1) % 3} for k in range(20)]
    >>> _ = open(path, "w").write(json.dumps([{"batch_name": "train", "instances": rows}]))
    >>> splits = load_data_file(path)
    >>> len(splits.train["x"]), len(splits.val["x"]), splits.test is None
    (18, 2, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .errors import DataError
from .terpret_data import load_terpret_data, parse_hypers, read_json

__all__ = ["DataSplits", "load_data_file", "load_hypers", "split_off_val", "VAL_FRACTION"]

VAL_FRACTION = 0.1
SPLIT_SEED = 0
Batch = dict[str, np.ndarray]
PathLike = Union[str, Path]


@dataclass
class DataSplits:
    """The batches of one data file.

    Attributes:
        train, val: batches (name -> array ``[B, ...]``).
        test: a batch, or None when the file has no ``test`` batch.
        hypers: the model's hyper-parameters (empty without a hypers file).
        hypers_name: the hypers file's entry they come from, or None.
        val_from: where ``val`` came from, in words (for reports).
    """

    train: Batch
    val: Batch
    test: Optional[Batch]
    hypers: dict[str, int] = field(default_factory=dict)
    hypers_name: Optional[str] = None
    val_from: str = "the 'val' batch"

    def as_dict(self) -> dict[str, Optional[Batch]]:
        return {"train": self.train, "val": self.val, "test": self.test}


def load_hypers(path: Optional[PathLike], name: Optional[str] = None,
                named_by_data: Optional[str] = None) -> tuple[dict[str, int], Optional[str]]:
    """The entry of a TerpreT hypers file to compile with, and its name.

    Args:
        path: the hypers file (None: no hypers, ``({}, None)``).
        name: the entry to use; None: the only entry, else ``named_by_data``.
        named_by_data: the entry the data's ``train`` batch names, if any.

    Raises:
        DataError: an unreadable file, an unknown ``name``, or several entries and no way to choose.
    """
    if path is None:
        if name is not None:
            raise DataError(f"--hypers-name {name!r} needs a hypers file; fix: pass --hypers HYPERS.json")
        return {}, None
    entries = parse_hypers(read_json(Path(path), "hypers"))
    if name is None:
        if len(entries) == 1:
            name = next(iter(entries))
        elif named_by_data in entries:
            name = named_by_data
        else:
            raise DataError(f"hypers file {str(path)!r} has {len(entries)} entries {sorted(entries)} and nothing "
                            "says which to use; fix: pass --hypers-name NAME")
    if name not in entries:
        raise DataError(f"hypers file {str(path)!r} has no entry {name!r}; it has {sorted(entries)}")
    return dict(entries[name]), name


def load_data_file(path: PathLike, hypers: Optional[PathLike] = None, hypers_name: Optional[str] = None) -> DataSplits:
    """Load a ``.json`` (TerpreT) or ``.npz`` data file into train/val/test batches (rules: module docstring).

    Args:
        path: the data file.
        hypers: TerpreT hypers file, or None.
        hypers_name: its entry to use (see :func:`load_hypers`).

    Returns:
        a :class:`DataSplits`.

    Raises:
        DataError: an unreadable or malformed file, no ``train`` batch, an unknown suffix,
            batches that name different hypers.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {str(path)!r} does not exist; fix: pass --data with a .json or .npz file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        batches, named = _json_batches(path)
    elif suffix == ".npz":
        batches, named = _npz_batches(path), {}
    else:
        raise DataError(f"data file {str(path)!r}: expected a .json (TerpreT data) or .npz file, "
                        f"but the suffix is {path.suffix or 'missing'!r}")
    if "train" not in batches:
        raise DataError(f"data file {str(path)!r} has no batch named 'train' (it has {sorted(batches)}); "
                        "fix: name the training batch 'train'")
    values, name = load_hypers(hypers, hypers_name, named.get("train"))
    for split in ("val", "test"):
        if split in batches and named.get(split) not in (None, named.get("train")):
            raise DataError(f"data file {str(path)!r}: batch {split!r} uses hypers {named[split]!r} but 'train' "
                            f"uses {named.get('train')!r}; fix: give train, val and test the same hypers")
    train = batches["train"]
    if "val" in batches:
        return DataSplits(train, batches["val"], batches.get("test"), values, name)
    train, val, rule = split_off_val(train)
    return DataSplits(train, val, batches.get("test"), values, name, rule)


def split_off_val(train: Batch, fraction: float = VAL_FRACTION, seed: int = SPLIT_SEED) -> tuple[Batch, Batch, str]:
    """``(train, val, rule)``: the last ``fraction`` (at least one) of a seeded shuffle of ``train`` is ``val``.

    Example:
        >>> t, v, rule = split_off_val({"x": np.arange(10)})
        >>> len(t["x"]), len(v["x"]), sorted(t["x"].tolist() + v["x"].tolist()) == list(range(10))
        (9, 1, True)
    """
    n = len(next(iter(train.values())))
    if n < 2:
        return train, train, "the 'train' batch itself (it has one instance)"
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * fraction)))
    keep, held = np.sort(order[: n - n_val]), np.sort(order[n - n_val:])
    rule = (f"the last {n_val} of {n} 'train' instances after a shuffle with numpy.random.default_rng({seed}) "
            "(the file has no 'val' batch)")
    return {k: v[keep] for k, v in train.items()}, {k: v[held] for k, v in train.items()}, rule


def _json_batches(path: Path) -> tuple[dict[str, Batch], dict[str, Optional[str]]]:
    loaded = load_terpret_data(path)
    return ({name: dict(b.data) for name, b in loaded.items()},
            {name: b.hypers_name for name, b in loaded.items()})


def _npz_batches(path: Path) -> dict[str, Batch]:
    try:
        archive = np.load(path, allow_pickle=False)  # never unpickle what a user hands us
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read data file {str(path)!r} as .npz: {e}") from None
    batches: dict[str, Batch] = {}
    with archive:
        for key in archive.files:
            batch, dot, var = key.partition(".")
            if not dot or not batch or not var:
                raise DataError(f"data file {str(path)!r}: array {key!r} is not named <batch>.<variable>; "
                                "fix: save e.g. train.x, train.y (and val.*, test.*)")
            array = _int_array(archive[key], path, key)
            batches.setdefault(batch, {})[var] = array
    for batch, arrays in batches.items():
        sizes = {k: len(v) for k, v in arrays.items()}
        if len(set(sizes.values())) > 1:
            raise DataError(f"data file {str(path)!r}: the arrays of batch {batch!r} have different lengths "
                            f"{sizes}; every array holds one row per instance")
    return batches


def _int_array(value: Any, path: Path, key: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim == 0 or len(array) == 0:
        raise DataError(f"data file {str(path)!r}: array {key!r} must hold one row per instance, "
                        f"but has shape {list(array.shape)}")
    if array.dtype.kind in "iub":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        return array  # a float input (an InputTensor); training checks it against the model
    raise DataError(f"data file {str(path)!r}: array {key!r} has dtype {array.dtype}; expected integers "
                    "(or floats for an InputTensor)")
