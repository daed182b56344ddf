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
    "ntpt-lockstep": "NTPT (lock-step)",
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


def plot_fig6(results: Sequence[LifelongResult], path: Union[str, Path], ntpt: str = "ntpt", baseline: str = "mtnn2") -> Path:
    """The paper's Fig. 6 in its three panels.

    (a) top: the schedule; bottom: ADD2x2:top, NTPT solid and the baseline (MTNN-2) dashed, red bars
    where ADD2x2:top was presented. (b) the other ADD2x2 tasks, NTPT solid and the baseline dashed.
    (c) ADD2x2:left and APPLY2x2:left for every learner.

    Raises:
        NtptError: no NTPT result among ``results``.

    Example:
        >>> plot_fig6([ntpt_result, mtnn2_result, pnn_result], "docs/fig6.png")  # doctest: +SKIP
    """
    by_name = {r.learner: r for r in results}
    if ntpt not in by_name:
        raise NtptError(f"plot_fig6 needs the {ntpt!r} result, got {sorted(by_name)}; fix: pass its lifelong_{ntpt}.json")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main_result, base = by_name[ntpt], by_name.get(baseline)
    fig = plt.figure(figsize=(13, 5.2))
    grid = fig.add_gridspec(2, 3, height_ratios=[1, 1.6], hspace=0.35, wspace=0.22)
    end = main_result.examples[-1] / 1000

    def curve(ax, result, task, **kw):
        ax.plot(np.asarray(result.examples) / 1000, result.accuracy[task], **kw)

    top = fig.add_subplot(grid[0, 0])
    s = main_result.schedule
    schedule = Schedule(tuple(s["tasks"]), s["period"], s["width"])
    seen = np.linspace(0, schedule.total, 400)
    probs = np.array([schedule.probabilities(x) for x in seen])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, task in enumerate(schedule.tasks):
        top.plot(seen / 1000, probs[:, k], color=colors[k % len(colors)] if task.startswith("ADD") else "0.6",
                 label=task if task.startswith("ADD") else ("APPLY2x2 tasks" if task.endswith("top") else None))
    top.set(xlim=(0, end), ylim=(0, 1.05), ylabel="probability", title="(a)")
    top.legend(fontsize=6, loc="upper right")
    a = fig.add_subplot(grid[1, 0])
    curve(a, main_result, "ADD2x2:top", color=colors[0], label=display_name(ntpt))
    if base is not None:
        curve(a, base, "ADD2x2:top", color=colors[0], linestyle="--", label=display_name(baseline))
    x = np.asarray(main_result.examples) / 1000
    share = np.asarray(main_result.presented["ADD2x2:top"][1:], float) / np.maximum(np.diff(np.asarray(main_result.examples, float)), 1)
    a.bar(x[:-1], 0.1 * share, width=np.diff(x), align="edge", color="tab:red", alpha=0.5, linewidth=0)
    a.set(xlim=(0, end), ylim=(0, 1.02), ylabel="ADD2x2:top accuracy", xlabel="training example (1000s)")
    a.legend(fontsize=7, loc="lower right")

    b = fig.add_subplot(grid[:, 1])
    for k, task in enumerate(t for t in main_result.tasks if t.startswith("ADD2x2") and t != "ADD2x2:top"):
        curve(b, main_result, task, color=colors[k + 1], label=f"{task} {display_name(ntpt)}")
        if base is not None:
            curve(b, base, task, color=colors[k + 1], linestyle="--")
    b.set(xlim=(0, end), ylim=(0, 1.02), title="(b)", ylabel="accuracy", xlabel="training example (1000s)")
    b.legend(fontsize=7, loc="lower right", title=f"dashed: {display_name(baseline)}", title_fontsize=7)

    for row, task in enumerate(("ADD2x2:left", "APPLY2x2:left")):
        c = fig.add_subplot(grid[row, 2])
        for r in results:
            if task in r.accuracy:
                curve(c, r, task, label=display_name(r.learner), linewidth=2 if r.learner == ntpt else 1)
        c.set(xlim=(0, end), ylim=(0, 1.02), ylabel=f"{task} accuracy", title="(c)" if row == 0 else None)
        if row == 1:
            c.set_xlabel("training example (1000s)")
            c.legend(fontsize=6, loc="center right")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Read ``lifelong_<model>.json`` files and write ``<out>/lifelong.png``, ``<out>/lifelong.md`` and, with an
    NTPT result among them, the paper's three-panel ``<out>/fig6.png``.

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
        if any(r.learner == "ntpt" for r in results):
            plot_fig6(results, out / "fig6.png")
        table = accuracy_table(results)
        (out / "lifelong.md").write_text(table + "\n")
        print(table)
    except NtptError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
