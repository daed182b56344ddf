"""One status line on stderr while a search runs."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


class Progress:
    """Prints ``started/alive/converged/stopped, best accuracy, restarts per minute``.

    On a terminal the line is redrawn every ``interval`` seconds; elsewhere
    (logs, CI) a line is written every ``10 * interval`` seconds.

    Example:
        >>> p = Progress(total=100, enabled=False)
        >>> p.line(started=10, alive=8, counts={"converged": 1, "stopped": 1, "diverged": 0, "failed": 0},
        ...        best=0.97, elapsed=60.0)
        'restarts 10/100 started  8 alive  1 converged  1 stopped  0 diverged  0 failed  best 0.970  2.0/min'
    """

    def __init__(self, total: int, enabled: bool = True, interval: float = 1.0, stream: Optional[TextIO] = None):
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if self.tty else 10 * interval
        self._last = 0.0

    def line(self, started: int, alive: int, counts: dict[str, int], best: Optional[float], elapsed: float,
             finished: Optional[int] = None) -> str:
        """The status text; the rate is ``finished`` (default: all counted) per minute of ``elapsed``."""
        if finished is None:
            finished = sum(counts.get(k, 0) for k in ("converged", "stopped", "diverged", "failed"))
        rate = 60.0 * finished / elapsed if elapsed > 0 else 0.0
        best_s = "-" if best is None else f"{best:.3f}"
        return (
            f"restarts {started}/{self.total} started  {alive} alive  {counts.get('converged', 0)} converged  "
            f"{counts.get('stopped', 0)} stopped  {counts.get('diverged', 0)} diverged  {counts.get('failed', 0)} failed  "
            f"best {best_s}  {rate:.1f}/min"
        )

    def update(self, force: bool = False, **state) -> None:
        """Write the line if ``interval`` has passed (or ``force``)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        text = self.line(**state)
        self.stream.write(("\r" + text) if self.tty else text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the redrawn line."""
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
