"""The search's progress bar: tqdm with ETA, counts that add up, a last line that agrees with the result."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from ntpt_dist.search.progress import Progress, count_line

import ntpt_dist

MODEL = Path(__file__).parents[1] / "fixtures" / "mod_op.py"


def counts(converged=0, stopped=0, diverged=0, failed=0):
    return {"converged": converged, "stopped": stopped, "diverged": diverged, "failed": failed}


def test_the_bar_shows_eta_and_its_last_line_is_the_last_state_reported():
    out = io.StringIO()
    bar = Progress(total=10, stream=out, interval=100.0)  # throttled: the updates below draw nothing new
    bar.update(started=4, alive=4, counts=counts(), best=None, elapsed=1.0)
    bar.update(started=8, alive=5, counts=counts(1, 1, 0, 1), best=0.5, elapsed=2.0)
    bar.update(started=10, alive=3, counts=counts(3, 2, 1, 1), best=0.9, elapsed=3.0, finished=7)
    bar.close()
    last = bar.last_line()
    assert re.search(r"\| 7/10 \[\d\d:\d\d<\d\d:\d\d", last), last  # elapsed < remaining: the ETA
    assert last.endswith("10 started: 3 converged, 2 stopped, 1 diverged, 1 failed, 3 unfinished, best 0.900]")
    shown = out.getvalue().rstrip("\n").rsplit("\r", 1)[-1]  # what the stream shows last
    assert "| 7/10 [" in shown and shown.rstrip().endswith(last.split("restart/s, ")[1])


def test_counts_add_up_to_the_restarts_started():
    line = count_line(12, counts(2, 3, 1, 0))
    numbers = [int(n) for n in re.findall(r"(\d+) (?:converged|stopped|diverged|failed|unfinished)", line)]
    assert line.startswith("12 started") and sum(numbers) == 12 and numbers[-1] == 6


def test_a_disabled_bar_writes_nothing():
    out = io.StringIO()
    bar = Progress(total=3, enabled=False, stream=out)
    bar.update(started=1, alive=1, counts=counts(), best=None, elapsed=1.0)
    bar.close()
    assert out.getvalue() == "" and bar.last_line() == ""


def test_a_search_bar_ends_on_the_result_counts(capsys):
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 30), rng.integers(0, 5, 30)
    model = ntpt_dist.compile_file(MODEL, {"N": 5})
    result = ntpt_dist.search(model, {"x1": a, "x2": b, "y": (a + b) % 5}, restarts=6, backend="local", actors=1,
                              restarts_per_actor=3, slice_s=0.2, progress=True)
    shown = re.split(r"[\r\n]", capsys.readouterr().err.strip())[-1]
    assert shown.startswith("restarts: 100%") and "6/6" in shown
    assert count_line(result.counts["started"], result.counts) in shown, shown
