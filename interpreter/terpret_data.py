"""TerpreT's JSON data and hypers files -> batches of numpy arrays.

TerpreT ships a model's examples as two JSON documents:

- hypers: ``{"<hypers name>": {"numTimesteps": 6, "tapeLength": 5}, ...}``
- data: ``[{"batch_name": "train", "hypers": "<hypers name>",
  "instances": [{"<Input>": 3, "<Output>": [1, null, 0]}, ...]}, ...]``

Each batch becomes a :class:`TerpretBatch` whose ``data`` maps every name to
an int64 array ``[B, *shape]`` (one row per instance, nested lists stacked,
``null`` -> ``-1``, the "don't care" of docs/design.md), ready to pass to
``Program.accuracy`` or training with ``compile_source(text, batch.hypers)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .errors import DataError

JsonLike = Union[str, Path, list, dict]
DONT_CARE = -1


@dataclass(frozen=True)
class TerpretBatch:
    """One batch of a TerpreT data file.

    Attributes:
        name: its ``batch_name``.
        hypers_name: the key of its hyper-parameters in the hypers file.
        hypers: those hyper-parameters, or None when no hypers file was given.
        data: name -> int64 array ``[B, *shape]``; ``-1`` marks ``null``.
    """

    name: str
    hypers_name: Optional[str]
    hypers: Optional[dict[str, int]]
    data: dict[str, np.ndarray]

    def __len__(self) -> int:
        return next(iter(self.data.values())).shape[0] if self.data else 0


def load_terpret_data(data_json: JsonLike, hypers_json: Optional[JsonLike] = None) -> dict[str, TerpretBatch]:
    """Load a TerpreT data file (and optionally its hypers file), keyed by batch name.

    Args:
        data_json: a path, a JSON string, or the already-parsed list of batches.
        hypers_json: likewise for the hypers file; None leaves ``batch.hypers`` None.

    Returns:
        ``{batch_name: TerpretBatch}`` in file order.

    Raises:
        DataError: unreadable or malformed JSON, a missing key, a batch naming
            unknown hypers, an instance missing a name the first one has, or a
            ragged or non-integer array, naming the batch and instance.

    Example:
        >>> batches = load_terpret_data('[{"batch_name": "train", "hypers": "h", '
        ...     '"instances": [{"x": [1, 0], "y": null}, {"x": [0, 1], "y": 1}]}]',
        ...     '{"h": {"tapeLength": 2}}')
        >>> batches["train"].data["x"].shape, batches["train"].data["y"].tolist(), batches["train"].hypers
        ((2, 2), [-1, 1], {'tapeLength': 2})
    """
    batches = read_json(data_json, "data")
    hypers = None if hypers_json is None else parse_hypers(read_json(hypers_json, "hypers"))
    if not isinstance(batches, list):
        raise DataError(f"a TerpreT data file is a JSON list of batches, but got a {type(batches).__name__}; "
                        'write [{"batch_name": ..., "hypers": ..., "instances": [...]}, ...]')
    out: dict[str, TerpretBatch] = {}
    for k, batch in enumerate(batches):
        loaded = _batch(batch, k, hypers)
        if loaded.name in out:
            raise DataError(f"batch name {loaded.name!r} appears twice (batches {list(out).index(loaded.name)} and {k}); "
                            "give every batch its own batch_name")
        out[loaded.name] = loaded
    return out


def read_json(source: JsonLike, what: str) -> Any:
    """Parsed JSON from a path, a JSON string, or an already-parsed object; ``what`` names it in errors.

    Raises:
        DataError: an unreadable file or invalid JSON, with the line and column.
    """
    if isinstance(source, (list, dict)):
        return source
    text = str(source)
    if isinstance(source, str) and text.lstrip()[:1] in ("[", "{"):
        origin = f"the {what} JSON string"
    else:
        origin = f"{what} file {text!r}"
        try:
            text = Path(text).read_text()
        except OSError as e:
            raise DataError(f"cannot read {origin}: {e.strerror}; pass a path, a JSON string or parsed JSON") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{origin} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None


def parse_hypers(doc: Any) -> dict[str, dict[str, int]]:
    """A parsed TerpreT hypers file, checked: ``{name: {hyper: int}}``; else a DataError naming the entry."""
    if not isinstance(doc, Mapping):
        raise DataError(f"a TerpreT hypers file is a JSON object {{name: {{hyper: value}}}}, but got a "
                        f"{type(doc).__name__}")
    out = {}
    for name, values in doc.items():
        if not isinstance(values, Mapping):
            raise DataError(f"hypers {name!r} must map names to integers, but got {values!r}")
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise DataError(f"hyper-parameter {key!r} of hypers {name!r} must be an integer, but got {value!r}")
        out[name] = dict(values)
    return out


def _batch(batch: Any, k: int, hypers: Optional[dict[str, dict[str, int]]]) -> TerpretBatch:
    if not isinstance(batch, Mapping):
        raise DataError(f"batch {k} must be a JSON object with batch_name, hypers and instances, but got {batch!r:.60}")
    for key in ("batch_name", "instances"):
        if key not in batch:
            raise DataError(f"batch {k} ({batch.get('batch_name', 'unnamed')!r}) has no {key!r} key; found "
                            f"{sorted(batch)}")
    name, instances = str(batch["batch_name"]), batch["instances"]
    hypers_name = batch.get("hypers")
    chosen = None
    if hypers is not None:
        if hypers_name not in hypers:
            raise DataError(f"batch {name!r} uses hypers {hypers_name!r}, which the hypers file does not define; "
                            f"it defines {sorted(hypers)}")
        chosen = dict(hypers[hypers_name])
    if not isinstance(instances, list) or not instances:
        raise DataError(f"batch {name!r}: 'instances' must be a non-empty list of objects, but got {instances!r:.60}")
    keys = _keys(instances[0], name, 0)
    columns: dict[str, list] = {key: [] for key in keys}
    for i, instance in enumerate(instances):
        found = _keys(instance, name, i)
        if found != keys:
            missing, extra = sorted(set(keys) - set(found)), sorted(set(found) - set(keys))
            raise DataError(f"batch {name!r} instance {i} has different names from instance 0: missing {missing}, "
                            f"extra {extra}; every instance must give the same names (null for don't care)")
        for key in keys:
            columns[key].append(instance[key])
    data = {key: _stack(values, name, key) for key, values in columns.items()}
    return TerpretBatch(name, hypers_name, chosen, data)


def _keys(instance: Any, batch: str, i: int) -> list[str]:
    if not isinstance(instance, Mapping):
        raise DataError(f"batch {batch!r} instance {i} must be a JSON object name -> value, but got {instance!r:.60}")
    return sorted(instance)


def _shape(value: Any, batch: str, i: int, key: str) -> tuple[int, ...]:
    """Shape of one nested-list value; raises on ragged lists and non-integers."""
    if value is None:
        return ()
    if isinstance(value, list):
        shapes = {_shape(v, batch, i, key) for v in value}
        if len(shapes) > 1:
            raise DataError(f"batch {batch!r} instance {i}: {key!r} is a ragged array (rows of shapes "
                            f"{sorted(shapes)}); every row must have the same length")
        return (len(value),) + (shapes.pop() if shapes else ())
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"batch {batch!r} instance {i}: {key!r} holds {value!r}, but TerpreT values are integers "
                        "or null")
    return ()


def _stack(values: list, batch: str, key: str) -> np.ndarray:
    # A whole-value null (don't care about any element) fits any shape.
    shapes = [None if v is None else _shape(v, batch, i, key) for i, v in enumerate(values)]
    first = next((i for i, sh in enumerate(shapes) if sh is not None), None)
    shape = () if first is None else shapes[first]
    for i, found in enumerate(shapes):
        if found is not None and found != shape:
            raise DataError(f"batch {batch!r} instance {i}: {key!r} has shape {list(found)} but instance {first} has "
                            f"{list(shape)}; all instances of a batch share one shape")
    out = np.full((len(values), *shape), DONT_CARE, dtype=np.int64)
    for i, value in enumerate(values):
        if value is not None:
            out[i] = _fill(value)
    return out


def _fill(value: Any) -> Any:
    if value is None:
        return DONT_CARE
    if isinstance(value, list):
        return [_fill(v) for v in value]
    return value
