"""A progress bar with ETA on stderr while a search runs (tqdm).

The bar counts finished restarts out of the search's total; its postfix says
how many are converged, stopped, diverged, failed and still unfinished, which
always add up to the restarts started, and the best program's validation
accuracy so far. When the search ends the bar is drawn once more with the
last state the driver reported, so its last line agrees with the search's
summary (``SearchResult.counts``).
"""

from __future__ import annotations

import sys
from typing import Any, Optional, TextIO

from tqdm import tqdm

FINISHED = ("converged", "stopped", "diverged", "failed")


def count_line(started: int, counts: dict[str, int]) -> str:
    """``started = converged + stopped + diverged + failed + unfinished`` in words.

    Example:
        >>> count_line(10, {"converged": 2, "stopped": 5, "diverged": 0, "failed": 1})
        '10 started: 2 converged, 5 stopped, 0 diverged, 1 failed, 2 unfinished'
    """
    finished = sum(counts.get(k, 0) for k in FINISHED)
    parts = ", ".join(f"{counts.get(k, 0)} {k}" for k in FINISHED)
    return f"{started} started: {parts}, {max(0, started - finished)} unfinished"


class Progress:
    """The search's progress bar: finished/total restarts, rate, ETA, counts and best accuracy.

    The driver calls :meth:`update` with its state as often as it likes (the
    bar redraws at most every ``interval`` seconds on a terminal, every
    ``10 * interval`` seconds elsewhere, e.g. logs and CI) and :meth:`close` at the end.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> p = Progress(total=4, stream=out)
        >>> p.update(started=4, alive=2, counts={"converged": 1, "stopped": 1, "diverged": 0, "failed": 0},
        ...          best=0.97, elapsed=6.0)
        >>> p.close()
        >>> p.last_line().split("|")[0], p.last_line().split("| ")[1].split(" [")[0]
        ('restarts:  50%', '2/4')
        >>> p.last_line().split(", ", 2)[2]
        '4 started: 1 converged, 1 stopped, 0 diverged, 0 failed, 2 unfinished, best 0.970]'
    """

    def __init__(self, total: int, enabled: bool = True, interval: float = 1.0, stream: Optional[TextIO] = None):
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if self.tty else 10 * interval
        self._bar: Optional[tqdm] = None
        self._state: Optional[dict[str, Any]] = None
        self._last_line = ""

    def line(self, started: int, alive: int, counts: dict[str, int], best: Optional[float], elapsed: float,
             finished: Optional[int] = None) -> str:
        """The postfix text: the counts (:func:`count_line`) and the best accuracy (``alive``, ``finished``
        and ``elapsed`` are the bar's, not repeated)."""
        best_s = "-" if best is None else f"{best:.3f}"
        return f"{count_line(started, counts)}, best {best_s}"

    def update(self, force: bool = False, **state: Any) -> None:
        """Record the driver's state; redraw the bar if ``interval`` has passed (or ``force``)."""
        if not self.enabled:
            return
        bar = self._apply(state)
        if force:
            bar.refresh()
        else:
            bar.update(0)  # redraws once mininterval has passed

    def close(self) -> None:
        """Draw the last reported state once more and end the bar's line."""
        if not self.enabled or self._bar is None:
            return
        self._apply(self._state)
        self._last_line = str(self._bar)
        self._bar.close()  # draws the bar a last time (leave=True keeps it)
        self._bar = None

    def _apply(self, state: dict[str, Any]) -> tqdm:
        self._state = state
        bar = self._open(state)
        bar.n = sum(state["counts"].get(k, 0) for k in FINISHED)
        bar.set_postfix_str(self.line(**state), refresh=False)
        return bar

    def last_line(self) -> str:
        """The bar's last text (after :meth:`close`): ``restarts: 50%|...| 2/4 [time<ETA, rate, counts]``."""
        return self._last_line

    def _open(self, state: dict[str, Any]) -> tqdm:
        if self._bar is None:
            # restarts finished before this session (a resumed search) do not count towards the rate
            done = sum(state["counts"].get(k, 0) for k in FINISHED) - state.get("finished", 0)
            self._bar = tqdm(total=self.total, initial=max(0, done), desc="restarts", unit="restart",
                             file=self.stream, mininterval=self.interval, dynamic_ncols=self.tty,
                             ncols=None if self.tty else 200, leave=True)
        return self._bar
