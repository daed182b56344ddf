"""One-file serialisation of plain data with numpy arrays (programs, restart records, NetStates).

A blob is an ``.npz`` holding the JSON skeleton of the object (as bytes) and one
entry per array, so it loads with ``allow_pickle=False``: a stored program can
never execute code when it is read back.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np

from ..interpreter.errors import NtptError

_ARRAY = "__ndarray__"
_SKELETON = "__json__"


def encode(obj: Any) -> bytes:
    """Serialise nested dicts/lists of JSON scalars and numpy arrays to bytes.

    Args:
        obj: the value; dict keys must be strings, tuples become lists.

    Returns:
        The bytes of an ``.npz`` file.

    Example:
        >>> decode(encode({"w": np.zeros(2, np.float32)}))["w"].dtype
        dtype('float32')
    """
    arrays: dict[str, np.ndarray] = {}

    def walk(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = value
            return {_ARRAY: key}
        if isinstance(value, dict):
            return {str(k): walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, without importing torch
            return walk(value.detach().cpu().numpy())
        return value

    skeleton = json.dumps(walk(obj)).encode()
    buffer = io.BytesIO()
    np.savez(buffer, **{_SKELETON: np.frombuffer(skeleton, dtype=np.uint8)}, **arrays)
    return buffer.getvalue()


def decode(data: bytes, what: str = "blob") -> Any:
    """Inverse of :func:`encode`.

    Args:
        data: bytes written by :func:`encode`.
        what: names the artifact in the error message (task, version, path).

    Returns:
        The value, arrays restored with their dtypes and shapes.

    Raises:
        NtptError: the bytes are not a blob written by :func:`encode` (corrupted or truncated),
            or its skeleton refers to an array it does not hold.
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            skeleton = json.loads(bytes(npz[_SKELETON]).decode())
            arrays = {key: npz[key] for key in npz.files if key != _SKELETON}
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise NtptError(
            f"{what} is corrupted: it is not an ntpt-dist .npz blob ({type(exc).__name__}: {exc}); "
            "fix: re-run the search that wrote it, or point the store's alias at another version"
        ) from exc

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {_ARRAY}:
                key = value[_ARRAY]
                if not isinstance(key, str) or key not in arrays:
                    raise NtptError(
                        f"{what} is corrupted: it refers to array {key!r}, which it does not hold "
                        f"(arrays: {sorted(arrays)}); fix: re-run the search that wrote it, "
                        "or point the store's alias at another version"
                    )
                return arrays[key]
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(skeleton)


def read_file(path: str, what: str) -> Any:
    """Decode the blob at ``path``; a missing file is an :class:`NtptError` naming ``what`` and the path."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as exc:
        raise NtptError(f"{what} is missing: no file at {path}; fix: restore the file or re-run the search") from exc
    return decode(data, f"{what} ({path})")


def write_file(path: str, obj: Any) -> None:
    """Encode ``obj`` into the file at ``path``."""
    with open(path, "wb") as handle:
        handle.write(encode(obj))
