"""The PNG of a search's restart trajectories (logged by the MLflow store at ``end_search``)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

_COLOURS = {"converged": "tab:green", "stopped": "tab:gray", "diverged": "tab:red", "failed": "tab:orange"}


def trajectories_png(task: str, records: Mapping[int, Mapping[str, Any]], winner: int | None = None) -> bytes:
    """Validation accuracy against step for every restart, as a PNG (see :func:`trajectories_figure`).

    Example:
        >>> png = trajectories_png("MATH", {0: {"status": "converged", "trajectory": [[0, 0.1], [5, 0.9]],
        ...                                     "jump_step": 5}})
        >>> png[:4]
        b'\\x89PNG'
    """
    buffer = io.BytesIO()
    trajectories_figure(task, records, winner).savefig(buffer, format="png")
    return buffer.getvalue()


def trajectories_figure(task: str, records: Mapping[int, Mapping[str, Any]], winner: int | None = None) -> Any:
    """The matplotlib ``Figure``: one line per restart coloured by status, jumps as dots, the winner bold.

    The legend names each status with its count and the winner by its restart index.

    Args:
        task: shown in the title.
        records: restart index -> restart record (``trajectory``, ``status``, ``jump_step``).
        winner: index of the winning restart, if any.

    Example:
        >>> figure = trajectories_figure("T", {3: {"status": "converged", "trajectory": [[0, 0.2], [5, 1.0]]}}, 3)
        >>> [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
        ['winner: restart 3 (converged)', 'converged: 1']
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    figure = Figure(figsize=(8, 4.5), dpi=100)
    axes = figure.add_subplot()
    counts: dict[str, int] = {}
    handles = []
    for index, record in sorted(records.items()):
        points = record.get("trajectory") or []
        status = record.get("status", "stopped")
        counts[status] = counts.get(status, 0) + 1
        if not points:
            continue
        steps, accs = zip(*[(p[0], p[1]) for p in points])
        bold = index == winner
        (line,) = axes.plot(steps, accs, color=_COLOURS.get(status, "tab:blue"), lw=2.5 if bold else 0.8,
                            alpha=1.0 if bold or status == "converged" else 0.4, zorder=3 if bold else 2)
        if bold:
            line.set_label(f"winner: restart {index} ({status})")
            handles.append(line)
        jump = record.get("jump_step")
        if jump is not None:
            near = min(range(len(steps)), key=lambda i: abs(steps[i] - jump))
            axes.plot([steps[near]], [accs[near]], "o", color="black", ms=4, zorder=4)
    handles += [Line2D([], [], color=_COLOURS.get(k, "tab:blue"), lw=0.8, label=f"{k}: {v}")
                for k, v in sorted(counts.items())]
    if handles:
        axes.legend(handles=handles, loc="lower right", fontsize="small")
    axes.set_title(f"{task}: {len(records)} restarts; dots = jumps" + ("" if winner is None else ", bold = winner"))
    axes.set_xlabel("training step")
    axes.set_ylabel("validation accuracy")
    axes.set_ylim(-0.02, 1.02)
    axes.grid(alpha=0.3)
    return figure
