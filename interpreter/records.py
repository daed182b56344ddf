"""What training restarts produces, as types: restart records, worker reports, the search result.

A :class:`RestartRecord` is a small frozen dataclass (like Optuna's
``FrozenTrial``) with a :class:`RestartStatus` enum; :meth:`RestartRecord.to_dict`
and :meth:`RestartRecord.from_dict` convert it at the boundaries where plain data
is needed: the sinks (``search.journal``, ``library_store``), which receive and
return the dict form::

    {"index": k, "seed": int, "status": "converged"|"stopped"|"diverged"|"failed",
     "reason": str, "jump_step": int|None, "steps": int,
     "trajectory": [[step, val_acc], ...], "program": Program.to_dict() or None,
     "program_val_acc": float|None, "error": str|None, "wall_s": float, "actor": str,
     "finished_at": float|None}

``wall_s`` is the restart's own time in its worker; ``finished_at`` the Unix
time its worker finished it (throughput over time, tails of a search).

These types live in the interpreter, next to the training loop that makes
them (``restarts.py``), so ``Model.train`` returns the same :class:`SearchResult`
as the search without the interpreter importing ``search`` (which re-exports them).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any, Optional

import numpy as np

from .errors import NtptError
from .policy import winner as _winner
from .program import Program

__all__ = ["RestartStatus", "RestartRecord", "CrashReport", "WorkerReport", "SearchResult", "STATUSES",
           "RECORD_KEYS", "new_search_id", "to_jsonable", "from_jsonable"]


class RestartStatus(str, Enum):
    """How a restart ended (a ``str``: ``RestartStatus.FAILED == "failed"``)."""

    CONVERGED = "converged"
    STOPPED = "stopped"
    DIVERGED = "diverged"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


STATUSES = tuple(s.value for s in RestartStatus)


def new_search_id() -> str:
    """A fresh search id: the one place ids are minted (the driver, ``Model.train`` and the journal call it).

    Example:
        >>> len(new_search_id())
        12
    """
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class RestartRecord:
    """One finished restart.

    Attributes:
        index, seed: which restart (its seed is ``restart_seed(search_seed, index)``).
        status: a :class:`RestartStatus`; ``reason`` says why (``"jump"``, ``"budget"``, ``"nan"``, ...).
        jump_step: the step at which the program was found (converged restarts).
        steps: training steps done; ``trajectory``: ``[[step, val_acc], ...]``.
        program: ``Program.to_dict()`` of a converged restart, else ``None``;
            ``program_val_acc`` its exact validation accuracy.
        error: what a failed restart raised; ``wall_s``, ``actor``, ``finished_at``: where and when.

    Reading a record like the dict it was (``record["status"]``, ``record.get("program")``)
    still works, for code written against the dict form.

    Example:
        >>> r = RestartRecord(3, 42, "stopped", reason="budget")
        >>> r.status is RestartStatus.STOPPED, RestartRecord.from_dict(r.to_dict()) == r
        (True, True)
    """

    index: int
    seed: int
    status: RestartStatus
    reason: str = ""
    jump_step: Optional[int] = None
    steps: int = 0
    trajectory: list = field(default_factory=list)
    program: Optional[dict] = None
    program_val_acc: Optional[float] = None
    error: Optional[str] = None
    wall_s: float = 0.0
    actor: str = ""
    finished_at: Optional[float] = None

    def __post_init__(self) -> None:
        try:
            status = RestartStatus(self.status)
        except ValueError:
            raise NtptError(f"restart status must be one of {list(STATUSES)}, but got {self.status!r} for restart "
                            f"{self.index}; fix: use a RestartStatus") from None
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "index", int(self.index))
        object.__setattr__(self, "seed", int(self.seed))

    def to_dict(self) -> dict[str, Any]:
        """The plain-dict form sinks receive (``status`` as its string)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["status"] = self.status.value
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RestartRecord:
        """A record from its dict form; missing fields get their empty value, keys it does not know
        (a sink's own bookkeeping) are dropped.

        Raises:
            NtptError: not a mapping, no ``index``/``seed``/``status``, an unknown status.
        """
        if isinstance(d, RestartRecord):
            return d
        if not isinstance(d, Mapping):
            raise NtptError(f"a restart record must be a dict, but got {type(d).__name__}")
        missing = [k for k in ("index", "seed", "status") if k not in d]
        if missing:
            raise NtptError(f"a restart record needs keys index, seed and status, but this one lacks {missing}")
        return cls(**{k: v for k, v in d.items() if k in RECORD_KEYS})

    # the dict form's read access, for callers written against it
    def __getitem__(self, key: str) -> Any:
        if key not in RECORD_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in RECORD_KEYS else default


RECORD_KEYS = tuple(f.name for f in fields(RestartRecord))


@dataclass(frozen=True)
class CrashReport:
    """A restart whose code raised in a worker (the driver retries it).

    ``scope`` is ``"restart"`` (only this restart was affected) or ``"block"``
    (its whole block raised: it is retried alone).
    """

    index: int
    seed: int
    attempt: int
    error: str
    scope: str


@dataclass(frozen=True)
class WorkerReport:
    """What one ``BlockWorker.run`` call reports.

    Attributes:
        records: restarts finished in this call.
        crashes: restarts whose code raised.
        in_flight: indices still queued or running in the worker; ``running``: those in a slot now.
        slot_steps: ``(busy, all)`` slot-steps since the worker started.
        train_s: seconds the worker spent in training steps and evaluations.
    """

    records: tuple[RestartRecord, ...] = ()
    crashes: tuple[CrashReport, ...] = ()
    in_flight: tuple[int, ...] = ()
    running: tuple[int, ...] = ()
    slot_steps: tuple[int, int] = (0, 0)
    train_s: float = 0.0


# ------------------------------------------------------------------ JSON codec
# Program.to_dict() holds numpy arrays; JSON keeps them exactly as base64 bytes.


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy arrays/scalars made JSON-safe (exact round trip via :func:`from_jsonable`).

    Example:
        >>> from_jsonable(to_jsonable({"w": np.arange(3.0)}))["w"].tolist()
        [0.0, 1.0, 2.0]
    """
    if isinstance(value, RestartRecord):
        return to_jsonable(value.to_dict())
    if isinstance(value, Enum):
        return value.value
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
    """Everything a search (or ``Model.train``) produced.

    Attributes:
        search_id: the id to resume it with.
        records: one :class:`RestartRecord` per finished restart, by restart index.
        winner: the best converged record (see :func:`policy.winner`), or ``None``.
        counts: restarts per status, plus ``"started"``.
        wall_s: seconds the search ran (this session only when resumed).
        stop_reason: why it ended, a ``policy.StopReason`` (a ``str``: ``"done"``, ``"first_k"``,
            ``"wall_clock"``, ``"interrupted"``).
        resumed: restarts taken from the journal/store instead of being run.
        config: the run's settings, as logged with it.
    """

    search_id: str
    records: dict[int, RestartRecord]
    winner: Optional[RestartRecord]
    counts: dict[str, int]
    wall_s: float
    stop_reason: str
    resumed: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, search_id: str, records: Mapping[int, Any], started: int, **kw: Any) -> SearchResult:
        """Assemble the result from records (dicts are converted; counts and winner derived)."""
        typed = {int(k): RestartRecord.from_dict(r) for k, r in records.items()}
        counts = {s: 0 for s in STATUSES}
        for r in typed.values():
            counts[r.status.value] += 1
        counts["started"] = started
        ordered = dict(sorted(typed.items()))
        return cls(search_id, ordered, _winner(ordered.values()), counts, **kw)

    @property
    def trajectories(self) -> dict[int, list[list[float]]]:
        """Validation-accuracy trajectory ``[[step, acc], ...]`` of every restart."""
        return {k: r.trajectory for k, r in self.records.items()}

    def best_program(self) -> Optional[Program]:
        """The winning restart's :class:`Program`, or ``None`` if no restart converged.

        Example:
            >>> result = search(model, data, restarts=32)   # doctest: +SKIP
            >>> print(result.best_program().source)         # doctest: +SKIP
        """
        if self.winner is None or self.winner.program is None:
            return None
        return Program.from_dict(self.winner.program)

    def programs(self) -> dict[int, Program]:
        """The ``Program`` of every restart that has one (converged restarts), by index."""
        return {k: Program.from_dict(r.program) for k, r in self.records.items() if r.program is not None}

    def summary(self) -> dict[str, Any]:
        """A small JSON-safe summary (for the store and logs)."""
        best = self.winner
        return {
            "search_id": self.search_id,
            "counts": dict(self.counts),
            "wall_s": round(self.wall_s, 3),
            "stop_reason": str(self.stop_reason),
            "resumed": self.resumed,
            "winner_index": None if best is None else best.index,
            "winner_program_val_acc": None if best is None else best.program_val_acc,
        }

    def __repr__(self) -> str:
        c = self.counts
        best = "none" if self.winner is None else f"#{self.winner.index} acc={self.winner.program_val_acc:.3f}"
        return (
            f"SearchResult({self.search_id!r}: {len(self.records)} restarts, {c['converged']} converged, "
            f"{c['stopped']} stopped, {c['diverged']} diverged, {c['failed']} failed; best {best}; "
            f"{self.wall_s:.1f}s, {self.stop_reason})"
        )


def config_dict(config: Any) -> dict[str, Any]:
    """A training configuration (``TrainConfig``, dict or ``None``) as a JSON-safe dict for logging."""
    if config is None:
        return {}
    if isinstance(config, Mapping):
        return dict(config)
    if hasattr(config, "__dataclass_fields__"):
        return asdict(config)
    return {"repr": repr(config)}
