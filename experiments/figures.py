"""Figures of the lifelong experiment: Fig. 6-style curves (PNG) and the Fig. 7 table (markdown).

Combine results of separate runs (e.g. one model per machine)::

    python -m ntpt_dist.experiments.figures runs/a/lifelong_pnn.json runs/b/lifelong_mtnn2.json --out runs/fig

Example:
    >>> r = LifelongResult("mtnn2", ["ADD2x2:top"], [0, 100], {"ADD2x2:top": [0.1, 0.6]})
    >>> print(accuracy_table([r]))
    | scenario | task | MTNN-2 |
    |---|---|---|
    | ADD2x2 | top | 60% |
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..interpreter.errors import NtptError
from .lifelong import LifelongResult, Schedule

DISPLAY = {
    "indep": "indep", "pnn": "PNN", "mtnn1": "MTNN-1", "mtnn2": "MTNN-2",
    "mtnn1-shared": "MTNN-1 (shared)", "mtnn2-shared": "MTNN-2 (shared)", "ntpt": "NTPT",
}


def display_name(learner: str) -> str:
    """The paper's name of a learner (``"mtnn2" -> "MTNN-2"``); unknown names unchanged.

    Example:
        >>> display_name("pnn"), display_name("MyNet")
        ('PNN', 'MyNet')
    """
    return DISPLAY.get(learner, learner)


def accuracy_table(results: Sequence[LifelongResult]) -> str:
    """Final accuracy of every task (rows) for every learner (columns), as a markdown table (Fig. 7).

    Raises:
        NtptError: no results.
    """
    if not results:
        raise NtptError("accuracy_table needs at least one LifelongResult, got none")
    tasks = list(dict.fromkeys(t for r in results for t in r.tasks))
    lines = [
        "| scenario | task | " + " | ".join(display_name(r.learner) for r in results) + " |",
        "|---|---|" + "---|" * len(results),
    ]
    for task in tasks:
        scenario, _, side = task.partition(":")
        cells = [f"{r.final()[task]:.0%}" if task in r.tasks else "-" for r in results]
        lines.append(f"| {scenario} | {side or '-'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_lifelong(results: Sequence[LifelongResult], path: Union[str, Path], columns: int = 4) -> Path:
    """Fig. 6-style figure: the schedule on top, then one accuracy panel per task with a curve per learner.

    Thin bars at the bottom of each task panel show the share of that task's
    examples in each evaluation interval of the first result (the paper's red
    bars). The x axis is training examples seen (thousands).

    Args:
        results: lifelong results to overlay (the first one's schedule is drawn).
        path: PNG file to write.
        columns: task panels per row.

    Returns:
        the path written.

    Raises:
        NtptError: no results.

    Example:
        >>> plot_lifelong([result], "runs/lifelong/lifelong.png")  # doctest: +SKIP
        PosixPath('runs/lifelong/lifelong.png')
    """
    if not results:
        raise NtptError("plot_lifelong needs at least one LifelongResult, got none")
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on workers or CI
    import matplotlib.pyplot as plt

    first = results[0]
    tasks = list(dict.fromkeys(t for r in results for t in r.tasks))
    rows = math.ceil(len(tasks) / columns)
    fig = plt.figure(figsize=(3.2 * columns, 2.0 + 2.4 * rows))
    grid = fig.add_gridspec(rows + 1, columns, height_ratios=[1.0] + [1.4] * rows, hspace=0.55, wspace=0.25)
    end = max(r.examples[-1] for r in results) / 1000

    top = fig.add_subplot(grid[0, :])
    schedule = Schedule(tuple(first.schedule["tasks"]), first.schedule["period"], first.schedule["width"])
    seen = np.linspace(0, schedule.total, 400)
    probs = np.array([schedule.probabilities(s) for s in seen])
    for k, task in enumerate(schedule.tasks):
        top.plot(seen / 1000, probs[:, k], label=task)
    top.set(xlim=(0, end), ylim=(0, 1.05), ylabel="probability", title=f"schedule (scale {first.scale:g})")
    top.legend(fontsize=6, ncol=min(len(schedule.tasks), 8), loc="upper center", bbox_to_anchor=(0.5, -0.25))

    for i, task in enumerate(tasks):
        ax = fig.add_subplot(grid[1 + i // columns, i % columns])
        for r in results:
            if task in r.accuracy:
                ax.plot(np.asarray(r.examples) / 1000, r.accuracy[task], label=display_name(r.learner))
        if task in first.presented and len(first.examples) > 1:
            x = np.asarray(first.examples) / 1000
            gaps = np.diff(np.asarray(first.examples, dtype=float))
            share = np.asarray(first.presented[task][1:], dtype=float) / np.maximum(gaps, 1)
            ax.bar(x[:-1], 0.12 * share, width=np.diff(x), align="edge", color="tab:red", alpha=0.4, linewidth=0)
        ax.set(xlim=(0, end), ylim=(0, 1.02), title=task)
        ax.title.set_fontsize(9)
        ax.tick_params(labelsize=7)
        if i % columns == 0:
            ax.set_ylabel("test accuracy", fontsize=8)
        if i // columns == rows - 1:
            ax.set_xlabel("training example (1000s)", fontsize=8)
        if i == 0:
            ax.legend(fontsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Read ``lifelong_<model>.json`` files and write ``<out>/lifelong.png`` and ``<out>/lifelong.md`` for all of them.

    Returns the exit status: 0, or 2 after printing ``error: ...`` for unreadable input.

    Example:
        >>> main(["runs/lifelong/lifelong_pnn.json", "--out", "runs/fig"])  # doctest: +SKIP
        0
    """
    p = argparse.ArgumentParser(prog="python -m ntpt_dist.experiments.figures", description=main.__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", help="LifelongResult JSON files (from experiments.lifelong)")
    p.add_argument("--out", default="runs/lifelong", help="folder for lifelong.png and lifelong.md")
    args = p.parse_args(argv)
    try:
        results = []
        for name in args.results:
            try:
                results.append(LifelongResult.from_dict(json.loads(Path(name).read_text())))
            except (OSError, ValueError, TypeError) as err:
                raise NtptError(f"cannot read a LifelongResult from {name}: {err}; fix: pass lifelong_<model>.json files") from err
        out = Path(args.out)
        plot_lifelong(results, out / "lifelong.png")
        table = accuracy_table(results)
        (out / "lifelong.md").write_text(table + "\n")
        print(table)
    except NtptError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
