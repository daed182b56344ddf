"""Restart records and the search result: the plain data the search passes around.

A restart record is a plain dict (it travels through Ray, JSON and the library
store unchanged)::

    {"index": k, "seed": int, "status": "converged"|"stopped"|"diverged"|"failed",
     "reason": str, "jump_step": int|None, "steps": int,
     "trajectory": [[step, val_acc], ...], "program": Program.to_dict() or None,
     "program_val_acc": float|None, "error": str|None, "wall_s": float, "actor": str,
     "finished_at": float|None}

``wall_s`` is the restart's own time in its worker; ``finished_at`` the Unix
time its worker finished it (throughput over time, tails of a search).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .policy import winner as _winner

STATUSES = ("converged", "stopped", "diverged", "failed")
RECORD_KEYS = (
    "index", "seed", "status", "reason", "jump_step", "steps", "trajectory",
    "program", "program_val_acc", "error", "wall_s", "actor", "finished_at",
)  # fmt: skip


def make_record(index: int, seed: int, status: str, **fields: Any) -> dict[str, Any]:
    """A complete restart record; missing fields get their empty value.

    Example:
        >>> make_record(3, 42, "stopped", reason="budget")["trajectory"]
        []
    """
    assert status in STATUSES, status
    record: dict[str, Any] = {
        "index": int(index), "seed": int(seed), "status": status, "reason": "", "jump_step": None,
        "steps": 0, "trajectory": [], "program": None, "program_val_acc": None, "error": None,
        "wall_s": 0.0, "actor": "", "finished_at": None,
    }  # fmt: skip
    unknown = set(fields) - set(RECORD_KEYS)
    assert not unknown, unknown
    record.update(fields)
    return record


def restart_seed(seed: int, index: int) -> int:
    """The seed of restart ``index`` in a search with seed ``seed`` (``engine.restart_seed``)."""
    from ..interpreter.engine import restart_seed as engine_restart_seed

    return int(engine_restart_seed(seed, index))


# ------------------------------------------------------------------ JSON codec
# Program.to_dict() holds numpy arrays; JSON keeps them exactly as base64 bytes.


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy arrays/scalars made JSON-safe (exact round trip via :func:`from_jsonable`).

    Example:
        >>> from_jsonable(to_jsonable({"w": np.arange(3.0)}))["w"].tolist()
        [0.0, 1.0, 2.0]
    """
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return {"__ndarray__": base64.b64encode(data.tobytes()).decode("ascii"), "dtype": data.dtype.str, "shape": list(data.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def from_jsonable(value: Any) -> Any:
    """Inverse of :func:`to_jsonable`."""
    if isinstance(value, dict):
        if "__ndarray__" in value:
            raw = base64.b64decode(value["__ndarray__"])
            return np.frombuffer(raw, dtype=np.dtype(value["dtype"])).reshape(value["shape"]).copy()
        return {k: from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value


# --------------------------------------------------------------- search result


@dataclass
class SearchResult:
    """Everything a search produced.

    Attributes:
        search_id: the id to resume it with.
        records: one record per finished restart, by restart index.
        winner: the best converged record (see :func:`policy.winner`), or ``None``.
        counts: restarts per status, plus ``"started"``.
        wall_s: seconds the search ran (this session only when resumed).
        stop_reason: why it ended: ``"done"``, ``"first_k"``, ``"wall_clock"``, ``"interrupted"``.
        resumed: restarts taken from the journal/store instead of being run.
    """

    search_id: str
    records: dict[int, dict[str, Any]]
    winner: Optional[dict[str, Any]]
    counts: dict[str, int]
    wall_s: float
    stop_reason: str
    resumed: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, search_id: str, records: Mapping[int, dict], started: int, **kw: Any) -> SearchResult:
        """Assemble the result from records (counts and winner derived)."""
        counts = {s: 0 for s in STATUSES}
        for r in records.values():
            counts[r["status"]] += 1
        counts["started"] = started
        ordered = dict(sorted(records.items()))
        return cls(search_id, ordered, _winner(ordered.values()), counts, **kw)

    @property
    def trajectories(self) -> dict[int, list[list[float]]]:
        """Validation-accuracy trajectory ``[[step, acc], ...]`` of every restart."""
        return {k: r["trajectory"] for k, r in self.records.items()}

    def best_program(self):
        """The winning restart's :class:`Program`, or ``None`` if no restart converged.

        Example:
            >>> result = search(model, data, restarts=32)   # doctest: +SKIP
            >>> print(result.best_program().source)         # doctest: +SKIP
        """
        if self.winner is None or self.winner.get("program") is None:
            return None
        from ..interpreter.program import Program

        return Program.from_dict(self.winner["program"])

    def summary(self) -> dict[str, Any]:
        """A small JSON-safe summary (for the store and logs)."""
        best = self.winner
        return {
            "search_id": self.search_id,
            "counts": dict(self.counts),
            "wall_s": round(self.wall_s, 3),
            "stop_reason": self.stop_reason,
            "resumed": self.resumed,
            "winner_index": None if best is None else best["index"],
            "winner_program_val_acc": None if best is None else best["program_val_acc"],
        }

    def __repr__(self) -> str:
        c = self.counts
        best = "none" if self.winner is None else f"#{self.winner['index']} acc={self.winner['program_val_acc']:.3f}"
        return (
            f"SearchResult({self.search_id!r}: {len(self.records)} restarts, {c['converged']} converged, "
            f"{c['stopped']} stopped, {c['diverged']} diverged, {c['failed']} failed; best {best}; "
            f"{self.wall_s:.1f}s, {self.stop_reason})"
        )
