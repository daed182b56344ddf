"""Where workers run: the small interface the driver needs, and the in-process backend.

The driver talks to workers only through :class:`Backend`: spawn one, submit
``run(assignments, seconds)`` to it, wait for whichever call finishes first,
kill it. ``ray_backend.RayBackend`` runs workers as Ray actors;
:class:`LocalBackend` runs them in this process (tests, machines without Ray,
and the baseline that measures Ray's overhead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .worker import Assignment, BlockWorker


@dataclass(frozen=True)
class ActorLost:
    """What ``Backend.wait`` returns for a call whose worker died (its restarts need a new home)."""

    error: str


class Backend(Protocol):
    """The driver's view of a pool of workers."""

    def spawn(self) -> Any:
        """Start a worker; returns its handle (the worker may still be starting)."""

    def submit(self, handle: Any, assignments: list[Assignment], seconds: float) -> Any:
        """Queue ``assignments`` on the worker and train ~``seconds``; returns a ticket."""

    def revoke(self, handle: Any, indices: list[int]) -> Any:
        """Ask the worker for queued restarts it has not started back; returns a ticket whose outcome is
        the list of indices it gave back (optional: without it the driver never steals work)."""

    def wait(self, tickets: list[Any], timeout: float) -> list[tuple[Any, Any]]:
        """Finished tickets with their outcome: the worker's ``WorkerReport`` (a revoke's: the indices
        given back) or :class:`ActorLost`."""

    def name(self, handle: Any) -> str:
        """A label for progress output and records."""

    def kill(self, handle: Any) -> None:
        """Stop a worker now (its restarts are abandoned)."""

    def shutdown(self) -> None:
        """Stop every worker and release what the backend started."""


class LocalBackend:
    """Workers in this process; a submitted call runs when it is waited for.

    Args:
        worker_kwargs: keyword arguments for :class:`BlockWorker`.

    Example:
        >>> b = LocalBackend({"model_spec": ("src", {}), "data": {}})   # doctest: +SKIP
        >>> h = b.spawn(); t = b.submit(h, [], 0.0); b.wait([t], 1.0)    # doctest: +SKIP
    """

    def __init__(self, worker_kwargs: dict[str, Any]):
        self.worker_kwargs = worker_kwargs
        self._workers: dict[int, BlockWorker] = {}
        self._calls: dict[int, tuple[int, list[Assignment], float]] = {}
        self._revokes: dict[int, tuple[int, list[int]]] = {}
        self._next_worker = 0
        self._next_ticket = 0

    def spawn(self) -> int:
        handle = self._next_worker
        self._next_worker += 1
        self._workers[handle] = BlockWorker(name=f"local-{handle}", **self.worker_kwargs)
        return handle

    def submit(self, handle: int, assignments: list[Assignment], seconds: float) -> int:
        ticket = self._next_ticket
        self._next_ticket += 1
        self._calls[ticket] = (handle, list(assignments), seconds)
        return ticket

    def revoke(self, handle: int, indices: list[int]) -> int:
        ticket = self._next_ticket
        self._next_ticket += 1
        self._revokes[ticket] = (handle, list(indices))
        return ticket

    def wait(self, tickets: list[int], timeout: float) -> list[tuple[int, Any]]:
        if not tickets:
            return []
        ticket = min(tickets)  # oldest call first: a fair round robin over workers
        if ticket in self._revokes:
            return [(ticket, self._revoke_now(*self._revokes.pop(ticket)))]
        handle, assignments, seconds = self._calls.pop(ticket)
        worker = self._workers.get(handle)
        if worker is None:
            return [(ticket, ActorLost(f"worker {handle} was killed"))]
        worker.assign(assignments)
        return [(ticket, worker.run(seconds))]

    def _revoke_now(self, handle: int, indices: list[int]) -> Any:
        """Take ``indices`` back from the worker's queue and from its calls not yet run."""
        worker = self._workers.get(handle)
        if worker is None:
            return ActorLost(f"worker {handle} was killed")
        taken = set(worker.revoke(indices))
        wanted = set(indices) - taken
        for ticket, (h, assignments, seconds) in self._calls.items():
            if h == handle:
                taken |= {a.index for a in assignments if a.index in wanted}
                self._calls[ticket] = (h, [a for a in assignments if a.index not in wanted], seconds)
        return sorted(taken)

    def name(self, handle: int) -> str:
        return f"local-{handle}"

    def kill(self, handle: int) -> None:
        self._workers.pop(handle, None)

    def shutdown(self) -> None:
        self._workers.clear()
        self._calls.clear()
        self._revokes.clear()
