"""The product's lifetime: the paper's 8 tasks in turn, each one restart search and one gated merge.

Each task of the lifetime (paper order: ADD2x2 top, left, bottom, right, then
APPLY2x2 top, left, bottom, right) runs :func:`~.pipeline.search_and_merge`:
a restart search on Ray starting from the store's current library (the
task's recipe, ``registry.RECIPES``), the winner's networks tuned where the
recipe held them fixed, and the store's own merge gate. The gate offers only
the networks the winning program calls, keeps the task's validation data at
its first merge, and makes an updated network champion only if the task
improves and no stored task loses more than ``epsilon`` on its kept
validation data. After every task, every stored task's champion program is
measured with the library champion on its test set and the store records the
accuracies with the library and program versions
(:meth:`LibraryStore.log_evaluation`, one step per task). The curves of
Fig. 6, the final and peak accuracies and the reverse transfer are all read
back from that store history.

Data, the paper's small regime: ``distinct`` (1k) distinct training grids per
task, of which the last ``val_size`` (200) are the validation split (the
search's jump detection and the merge gate) and the rest (800) train; test on
``test_size`` (10k) held-out grids from the test images.

Example:
    >>> from ntpt_dist.library_store.api import LibraryStore
    >>> out = run_store_lifetime(LibraryStore("sqlite:////tmp/ll/mlflow.db"), restarts=8)   # doctest: +SKIP
    >>> out["final"]["ADD2x2:top"], out["after_own_training"]["ADD2x2:top"]                 # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from ..interpreter.errors import NtptError
from ..library_store.base import Evaluation, new_search_id
from ..library_store.evaluate import champion_accuracies
from .lifelong import PAPER_TASKS
from .pipeline import search_and_merge

Batch = Mapping[str, Any]


@dataclass(frozen=True)
class LifetimeTask:
    """One task of a lifetime.

    Attributes:
        name: the task's name in the store.
        train, val, test: batches (name -> array); ``val`` is kept by the store at the first merge.
        model: ``model(library) -> Model`` (library: the store's champions, or None when
            empty); None: the paper task's model (``registry.model_for_task``).
        config: TrainConfig options over the task's recipe.
    """

    name: str
    train: Batch
    val: Batch
    test: Batch
    model: Optional[Callable[[Optional[dict]], Any]] = None
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskRun:
    """What one task's search and merge did (the numbers before and at the gate)."""

    task: str
    search_id: str
    counts: dict[str, int]
    merged: bool
    accepted: Optional[bool]
    reason: str
    own_val_acc: Optional[float]  # the winner with its own networks, on the task's validation data
    own_test_acc: Optional[float]  # ... and on its test data (before the gate)
    stored_test_acc: Optional[float]  # the program as stored (with the networks the gate left it)
    gate: Optional[dict[str, Any]]  # new_task {before, after}, earlier {task: {before, after, delta}}
    new_versions: dict[str, int]
    wall_s: float


def run_lifetime(
    store: Any,
    tasks: Sequence[LifetimeTask],
    *,
    restarts: int = 8,
    steps: int = 2000,
    seed: int = 0,
    first_k: Optional[int] = None,
    epsilon: float = 0.01,
    refine_evals: int = 5,
    tune_steps: int = 500,
    series: Optional[str] = None,
    progress: bool = False,
    log: Optional[Callable[[str], None]] = None,
    **search_kwargs: Any,
) -> dict[str, Any]:
    """Search and merge ``tasks`` in turn through ``store``; evaluate every stored task after each.

    Args:
        store: a ``LibraryStore``; the lifetime starts from its current library.
        tasks: the lifetime's tasks, in order.
        restarts, steps, first_k, refine_evals, tune_steps: per task, as in ``search_and_merge``.
        seed: task ``i`` searches with seed ``seed + i``.
        epsilon: the gate's tolerated drop on a stored task.
        series: name of the store's evaluation series (default: ``lifetime-<8 hex>``).
        log: called with one line per task.
        search_kwargs: passed to ``search_and_merge`` (``address``, ``actors``, ``backend``, ...).

    Returns:
        ``{"series", "final", "peak", "after_own_training", "reverse_transfer", "history", "tasks"}``
        (see :func:`summarise`), every accuracy read back from the store's evaluations.

    Raises:
        NtptError: no tasks, or two with one name.
    """
    names = [t.name for t in tasks]
    if not names or len(set(names)) != len(names):
        raise NtptError(f"a lifetime needs tasks with distinct names, got {names}; fix: list each task once")
    series = series or f"lifetime-{new_search_id()[:8]}"
    tests = {t.name: t.test for t in tasks}
    runs = []
    for i, task in enumerate(tasks):
        started = time.perf_counter()
        library = store.load_library() or None
        report = search_and_merge(
            task.name, store, restarts=restarts, steps=steps, seed=seed + i, first_k=first_k, epsilon=epsilon,
            refine_evals=refine_evals, tune_steps=tune_steps, progress=progress,
            model=task.model(library) if task.model else None,
            data={"train": task.train, "val": task.val, "test": task.test}, config=dict(task.config), **search_kwargs,
        )
        evaluation = store.log_evaluation(series, champion_accuracies(store, tests), after=task.name)
        runs.append(_task_run(task.name, report, time.perf_counter() - started))
        if log:
            accs = " ".join(f"{t}={a:.3f}" for t, a in evaluation.accuracies.items())
            log(f"[{i + 1}/{len(tasks)}] {task.name}: {runs[-1].reason} ({runs[-1].wall_s:.0f} s); test {accs}")
    return {"series": series, **summarise(store.evaluations(series), names), "tasks": [asdict(r) for r in runs]}


def summarise(evaluations: Sequence[Evaluation], tasks: Sequence[str]) -> dict[str, Any]:
    """Final, peak, after-own-training accuracy and reverse transfer of each task, from a series.

    A task that never had a program in the store gets None.

    Example:
        >>> ev = [Evaluation("s", 1, {"A": 0.8}, {}, {}, after="A"),
        ...       Evaluation("s", 2, {"A": 0.9, "B": 0.5}, {}, {}, after="B")]
        >>> out = summarise(ev, ["A", "B"])
        >>> out["final"], out["after_own_training"]["A"], round(out["reverse_transfer"]["A"], 3)
        ({'A': 0.9, 'B': 0.5}, 0.8, 0.1)
    """
    final = {t: evaluations[-1].accuracies.get(t) if evaluations else None for t in tasks}
    peak = {t: max((e.accuracies[t] for e in evaluations if t in e.accuracies), default=None) for t in tasks}
    own = {t: next((e.accuracies.get(t) for e in evaluations if e.after == t), None) for t in tasks}
    transfer = {t: None if final[t] is None or own[t] is None else final[t] - own[t] for t in tasks}
    return {
        "final": final, "peak": peak, "after_own_training": own, "reverse_transfer": transfer,
        "history": [e.to_dict() for e in evaluations],
    }


def _task_run(task: str, report: Any, wall_s: float) -> TaskRun:
    result, merge = report.result, report.merge
    if merge is None:
        return TaskRun(task, result.search_id, dict(result.counts), False, None,
                       "no restart converged: nothing merged", None, None, None, None, {}, wall_s)
    d = merge.decision
    return TaskRun(
        task, result.search_id, dict(result.counts), True, d.accepted, d.reason, result.winner.program_val_acc,
        report.test_accuracy, merge.program.test_acc, {"new_task": d.new_task, "earlier": d.earlier, "added": d.added, "updated": d.updated},
        dict(merge.new_versions), wall_s,
    )


# ------------------------------------------------------------------ the paper's tasks


def paper_task(name: str, seed: int = 0, distinct: int = 1000, val_size: int = 200, test_size: int = 10_000,
               data_dir: Any = None) -> LifetimeTask:
    """A paper task in the small-data regime: ``distinct`` grids split train/val, ``test_size`` test grids.

    Raises:
        NtptError: ``val_size`` leaves no training grids.

    Example:
        >>> t = paper_task("ADD2x2:top", distinct=100, val_size=20, test_size=50)   # doctest: +SKIP
        >>> len(t.train["result"]), len(t.val["result"]), len(t.test["result"])     # doctest: +SKIP
        (80, 20, 50)
    """
    from .tasks import make_task

    if not 0 < val_size < distinct:
        raise NtptError(f"val_size must lie in 1..distinct-1 = {distinct - 1}, got {val_size}; fix: e.g. 200 of 1000")
    grids = make_task(name, "train", distinct, seed, data_dir=data_dir, distinct=distinct).batch()
    test = make_task(name, "test", test_size, seed, data_dir=data_dir).batch()
    cut = distinct - val_size
    return LifetimeTask(name, {k: v[:cut] for k, v in grids.items()}, {k: v[cut:] for k, v in grids.items()}, test)


def run_store_lifetime(
    store: Any,
    tasks: Sequence[str] = PAPER_TASKS,
    *,
    restarts: int = 8,
    steps: int = 2000,
    seed: int = 0,
    distinct: int = 1000,
    val_size: int = 200,
    test_size: int = 10_000,
    address: Optional[str] = None,
    data_dir: Any = None,
    config: Optional[Mapping[str, Any]] = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """The paper's lifetime through the store (module doc): 8 searches and gated merges.

    Args:
        store: a ``LibraryStore`` (e.g. ``LibraryStore("sqlite:////tmp/ll-store/mlflow.db")``).
        tasks: task names in lifetime order (default: the paper's 8).
        restarts, steps: per task.
        seed: data seed (every task's grids) and search seed base.
        distinct, val_size, test_size: the data regime (paper: 1k distinct grids, 10k test).
        address: Ray cluster address (default: a local Ray).
        config: TrainConfig options over every task's recipe.
        kwargs: passed to :func:`run_lifetime` (``first_k``, ``epsilon``, ``actors``, ...).

    Returns:
        :func:`run_lifetime`'s dict plus ``"split"`` and ``"wall_s"``.
    """
    started = time.perf_counter()
    lifetime = [replace(paper_task(t, seed, distinct, val_size, test_size, data_dir), config=dict(config or {}))
                for t in tasks]
    out = run_lifetime(store, lifetime, restarts=restarts, steps=steps, seed=seed, address=address, **kwargs)
    split = {"distinct": distinct, "train": distinct - val_size, "val": val_size, "test": test_size}
    return {**out, "split": split, "store": store.uri, "wall_s": time.perf_counter() - started}


# ------------------------------------------------------------------ command line


def build_parser(prog: str = "python -m ntpt_dist.experiments.lifelong_store") -> argparse.ArgumentParser:
    """The options of :func:`main`."""
    from ntpt_dist.interpreter.train_config import parse_option

    def option(text: str) -> tuple[str, Any]:
        try:
            return parse_option(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    p = argparse.ArgumentParser(prog=prog, description=(
        "The product's lifetime on the paper's 8 2x2 tasks: per task one restart search on Ray from the "
        "store's library and one gated merge; every stored task re-evaluated on its test set after each."))
    p.add_argument("--store", help="store URI or folder (default: $NTPT_STORE_URI, else ./ntpt-store with sqlite)")
    p.add_argument("--address", help="Ray cluster: 'auto' or ray://host:port (default: a local Ray)")
    p.add_argument("--tasks", default=",".join(PAPER_TASKS), help="comma-separated tasks in lifetime order (default: the paper's 8)")
    p.add_argument("--restarts", type=int, default=8, help="restarts per task (default: 8)")
    p.add_argument("--steps", type=int, default=2000, help="step budget of a restart (default: 2000)")
    p.add_argument("--first-k", type=int, help="stop a task's search after this many converged restarts (default: run all)")
    p.add_argument("--refine-evals", type=int, default=5, help="evaluations a restart trains on after its jump (default: 5)")
    p.add_argument("--tune-steps", type=int, default=500, help="network tuning steps where a recipe freezes the library (default: 500)")
    p.add_argument("--epsilon", type=float, default=0.01, help="largest accuracy drop the gate lets a stored task take (default: 0.01)")
    p.add_argument("--seed", type=int, default=0, help="data and search seed (default: 0)")
    p.add_argument("--distinct", type=int, default=1000, help="distinct training grids per task, validation included (default: 1000)")
    p.add_argument("--val-size", type=int, default=200, help="of those, grids held out for validation and the gate (default: 200)")
    p.add_argument("--test-size", type=int, default=10_000, help="held-out test grids per task (default: 10000)")
    p.add_argument("--actors", type=int, help="Ray workers (default: as many as the cluster's CPUs allow)")
    p.add_argument("--restarts-per-actor", type=int, default=8, help="restart slots per worker (default: 8)")
    p.add_argument("--cpus-per-actor", type=float, default=1, help="CPUs per worker (default: 1)")
    p.add_argument("--gpus-per-actor", type=float, default=0, help="GPUs per worker (default: 0)")
    p.add_argument("--option", type=option, action="append", default=[], metavar="KEY=VALUE",
                   help="training option (a TrainConfig field) over every task's recipe; repeatable")
    p.add_argument("--data-dir", help="folder with MNIST/ and operators/ (default: $NTPT_DATA_DIR)")
    p.add_argument("--device", help="torch device of the workers (default: cpu, or cuda with --gpus-per-actor)")
    p.add_argument("--out", help="write the result JSON here (default: print it)")
    return p


def main(argv: Optional[Sequence[str]] = None, prog: str = "python -m ntpt_dist.experiments.lifelong_store") -> int:
    """Run the lifetime; print one line per task and the result JSON (or write it to ``--out``).

    Returns the exit status: 0, or 2 after printing ``error: ...`` for a user error.

    Example:
        >>> main(["--store", "sqlite:////tmp/ll/mlflow.db", "--restarts", "8", "--out", "ll.json"])   # doctest: +SKIP
        0
    """
    from ntpt_dist.interpreter.train_config import config_with
    from ntpt_dist.library_store.api import LibraryStore

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(argv)
    try:
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
        config = dict(args.option)
        config_with(**config)  # a misspelt option fails before any data is made
        store = LibraryStore(args.store)
        out = run_store_lifetime(
            store, tasks, restarts=args.restarts, steps=args.steps, seed=args.seed, distinct=args.distinct,
            val_size=args.val_size, test_size=args.test_size, address=args.address, data_dir=args.data_dir,
            config=config, first_k=args.first_k, refine_evals=args.refine_evals, tune_steps=args.tune_steps,
            epsilon=args.epsilon, actors=args.actors, restarts_per_actor=args.restarts_per_actor,
            cpus_per_actor=args.cpus_per_actor, gpus_per_actor=args.gpus_per_actor, device=args.device,
            progress=True, log=lambda line: print(line, flush=True),
        )
    except NtptError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out["command"] = f"{prog} {shlex.join(argv)}".strip()
    text = json.dumps(out, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
