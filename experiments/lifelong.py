"""Lifelong learning over the eight 2x2 tasks (paper section 6.1, Fig. 6 and Fig. 7).

The learner sees minibatches, each of one task, drawn from a distribution over
the 8 tasks (ADD2x2 top, left, bottom, right, then APPLY2x2 top, left, bottom,
right) that moves with the number of training examples seen. The paper shows
its schedule only as a picture (Fig. 6a, top); the choice here:

- Task k (k = 0..7) has weight ``exp(-((t / period - (k + 1/2)) / width)^2 / 2)``
  at example t: a Gaussian bump peaking at ``(k + 1/2) * period`` with
  ``period = 64,000`` examples and ``width = 0.5`` periods. The probabilities
  are the normalised weights, so they always sum to 1.
- Each task dominates in turn for 64k examples (about 79% of the draws at its
  peak, 49% each midway between two neighbours; the first task has 98% at
  the start and the last 98% at the end, having one neighbour only); the
  lifetime is 8 x 64k = 512k examples, the length of the paper's x axis. A task is hardly drawn once
  two periods have passed, so later accuracy changes show transfer or
  forgetting.
- ``scale`` shrinks the lifetime (the period, hence every bump, and the
  evaluation interval) for tests and short runs; data sets keep their sizes.

Training data of each task are the paper's small regime: 1k distinct grids
(``make_task(..., distinct=1000)``), dealt in shuffled passes; accuracies are
measured on held-out test grids every ``eval_every`` examples.

Example:
    >>> schedule = Schedule()
    >>> schedule.total, int(schedule.probabilities(32_000).argmax()), round(float(schedule.probabilities(0).sum()), 6)
    (512000, 0, 1.0)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..interpreter.errors import NtptError
from .baselines import BaselineConfig, Learner
from .baselines_2x2 import MTNN, PNN, Indep
from .tasks import TaskData, make_task

PAPER_TASKS = tuple(f"{scenario}:{side}" for scenario in ("ADD2x2", "APPLY2x2") for side in ("top", "left", "bottom", "right"))
PERIOD = 64_000  # examples between two tasks' peaks
WIDTH = 0.5  # standard deviation of a task's bump, in periods

LearnerFactory = Callable[[Sequence[str], BaselineConfig, int, Mapping[str, float]], Learner]


def _ntpt(tasks, config, seed, given):
    from .ntpt_learner import NtptLearner  # imports the compiler: only when asked for

    return NtptLearner(tasks, seed=seed, device=config.device, **_ntpt_rates(given))


def _ntpt_lockstep(tasks, config, seed, given):
    from .ntpt_learner import LockstepLearner

    return LockstepLearner(tasks, restarts=4, seed=seed, device=config.device, **_ntpt_rates(given))


def _ntpt_rates(given: Mapping[str, float]) -> dict:
    """NTPT's own rate names for the rates given on the command line (NTPT's defaults differ from the baselines')."""
    names = {"lr": "lr", "perceptual_lr_scale": "net_lr_scale"}
    return {names[k]: v for k, v in given.items()}


LEARNERS: dict[str, LearnerFactory] = {
    "ntpt": _ntpt,
    "ntpt-lockstep": _ntpt_lockstep,
    "indep": lambda tasks, config, seed, given: Indep(tasks, config=config, seed=seed),
    "pnn": lambda tasks, config, seed, given: PNN(tasks, config=config, seed=seed),
    "mtnn1": lambda tasks, config, seed, given: MTNN(tasks, depth="mtnn1", config=config, seed=seed),
    "mtnn2": lambda tasks, config, seed, given: MTNN(tasks, depth="mtnn2", config=config, seed=seed),
    "mtnn1-shared": lambda tasks, config, seed, given: MTNN(tasks, depth="mtnn1", config=config, seed=seed, routing="shared"),
    "mtnn2-shared": lambda tasks, config, seed, given: MTNN(tasks, depth="mtnn2", config=config, seed=seed, routing="shared"),
}


def make_learner(name: str, tasks: Sequence[str], config: BaselineConfig = BaselineConfig(), seed: int = 0,
                 given: Optional[Mapping[str, float]] = None) -> Learner:
    """A learner from :data:`LEARNERS` by name, built for ``tasks`` (in lifetime order).

    ``given``: the rates the user set explicitly (``lr``, ``perceptual_lr_scale``); the baselines
    read them from ``config``, the NTPT learners, whose defaults differ, from here.

    Raises:
        NtptError: unknown name.

    Example:
        >>> make_learner("mtnn2", PAPER_TASKS, BaselineConfig(embed_hidden=(8,))).nets_for("APPLY2x2:top")
        ('net_1',)
    """
    if name not in LEARNERS:
        raise NtptError(f"unknown learner {name!r}; learners are {', '.join(LEARNERS)}")
    return LEARNERS[name](list(tasks), config, seed, dict(given or {}))


@dataclass(frozen=True)
class Schedule:
    """The time-evolving task distribution: Gaussian bumps, one per task, in order (module docstring).

    Attributes:
        tasks: task names in lifetime order.
        period: examples between consecutive peaks; the lifetime is ``period * len(tasks)``.
        width: a bump's standard deviation in periods (smaller: sharper switches).

    Example:
        >>> s = Schedule(("A", "B"), period=100)
        >>> s.probabilities(50).round(3).tolist(), s.probabilities(100).round(3).tolist()
        ([0.881, 0.119], [0.5, 0.5])
    """

    tasks: tuple[str, ...] = PAPER_TASKS
    period: float = PERIOD
    width: float = WIDTH

    def __post_init__(self) -> None:
        if not self.tasks or self.period <= 0 or self.width <= 0:
            raise NtptError(f"a schedule needs tasks, period > 0 and width > 0, got {len(self.tasks)} tasks, period={self.period}, width={self.width}")

    @property
    def total(self) -> int:
        """Examples in the whole lifetime."""
        return int(round(self.period * len(self.tasks)))

    def probabilities(self, seen: float) -> np.ndarray:
        """Probability of each task for the next batch after ``seen`` examples (sums to 1).

        Example:
            >>> int(Schedule().probabilities(7.5 * PERIOD).argmax())
            7
        """
        position = seen / self.period - (np.arange(len(self.tasks)) + 0.5)
        log_weight = -0.5 * (position / self.width) ** 2
        weight = np.exp(log_weight - log_weight.max())  # stable far out in the tails
        return weight / weight.sum()

    def scaled(self, scale: float) -> Schedule:
        """The same schedule over a lifetime ``scale`` times as long.

        Example:
            >>> Schedule().scaled(0.01).total
            5120
        """
        if scale <= 0:
            raise NtptError(f"scale must be > 0, got {scale}")
        return Schedule(self.tasks, self.period * scale, self.width)


@dataclass
class LifelongResult:
    """Per-task test accuracy over a lifetime (Fig. 6 curves) and at its end (Fig. 7).

    Attributes:
        learner: the learner's name.
        tasks: task names in lifetime order.
        examples: training examples seen at each evaluation (the first is 0).
        accuracy: task -> test accuracy at each evaluation.
        presented: task -> training examples of that task since the previous evaluation.
        loss: mean training loss since the previous evaluation (NaN for the first).
        schedule: the schedule as run (``period`` already scaled).
        scale: the lifetime's scale (1 = the paper's 512k examples).
        batch_size, seed: as run.
        train_s, eval_s: wall time spent training and evaluating.
        found: for a learner that searches programs (``learner.found()``), task -> the learner step
            at which its program was found, the restarts drawn until then and its validation accuracy.
    """

    learner: str
    tasks: list[str]
    examples: list[int] = field(default_factory=list)
    accuracy: dict[str, list[float]] = field(default_factory=dict)
    presented: dict[str, list[int]] = field(default_factory=dict)
    loss: list[float] = field(default_factory=list)
    schedule: dict = field(default_factory=dict)
    scale: float = 1.0
    batch_size: int = 0
    seed: int = 0
    train_s: float = 0.0
    eval_s: float = 0.0
    found: dict[str, dict] = field(default_factory=dict)  # NTPT: task -> when and how its program was found

    def final(self) -> dict[str, float]:
        """Each task's test accuracy at the end of the lifetime (one Fig. 7 column).

        Example:
            >>> LifelongResult("m", ["A"], [0, 10], {"A": [0.1, 0.7]}).final()
            {'A': 0.7}
        """
        return {task: self.accuracy[task][-1] for task in self.tasks}

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (NaN losses become None).

        Example:
            >>> LifelongResult.from_dict(LifelongResult("m", ["A"]).to_dict()).learner
            'm'
        """
        d = asdict(self)
        d["loss"] = [None if np.isnan(x) else x for x in self.loss]
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> LifelongResult:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["loss"] = [float("nan") if x is None else x for x in d.get("loss", [])]
        return cls(**d)


def own_training_end(result: LifelongResult, task: str, share: float = 0.01) -> int:
    """The evaluation index at which ``task``'s own training ended: the first one after which
    the schedule gives the task less than ``share`` of the draws for the rest of the lifetime.

    Example:
        >>> r = LifelongResult("m", ["A", "B"], [0, 100, 150, 200], {"A": [0, .5, .6, .6], "B": [0, .1, .8, .9]},
        ...                    schedule={"tasks": ["A", "B"], "period": 100, "width": 0.15})
        >>> own_training_end(r, "A"), own_training_end(r, "B")
        (2, 3)
    """
    s = result.schedule
    schedule = Schedule(tuple(s["tasks"]), s["period"], s["width"])
    k = schedule.tasks.index(task)
    seen = np.linspace(0, schedule.total, 2001)
    drawn = np.array([schedule.probabilities(t)[k] for t in seen]) >= share
    last = seen[np.flatnonzero(drawn)[-1]] if drawn.any() else 0.0
    return int(np.searchsorted(np.asarray(result.examples), last))  # first evaluation at or after it


def summary(result: LifelongResult, command: str = "") -> dict:
    """What docs/lifelong_schedule.json records: each task's final and peak accuracy, its accuracy when
    its own training ended (the schedule stops drawing it) and the change since (reverse transfer > 0,
    forgetting < 0), plus the wall times and, for NTPT, when each program was found.

    Example:
        >>> r = LifelongResult("m", ["A"], [0, 100], {"A": [0.1, 0.7]}, schedule={"tasks": ["A"], "period": 100, "width": 0.5})
        >>> summary(r)["peak"], summary(r)["after_own_training"]
        ({'A': 0.7}, {'A': 0.7})
    """
    ends = {t: min(own_training_end(result, t), len(result.examples) - 1) for t in result.tasks}
    after = {t: result.accuracy[t][ends[t]] for t in result.tasks}
    return {
        "learner": result.learner,
        "final": result.final(),
        "peak": {t: max(result.accuracy[t]) for t in result.tasks},
        "after_own_training": after,
        "own_training_ended_at": {t: result.examples[ends[t]] for t in result.tasks},
        "change_since_own_training": {t: result.final()[t] - after[t] for t in result.tasks},
        "examples": result.examples[-1],
        "train_s": result.train_s,
        "eval_s": result.eval_s,
        "found": result.found,
        "command": command,
    }


class _Deck:
    """Shuffled passes over a task's training instances (each used equally often)."""

    def __init__(self, data: TaskData, rng: np.random.Generator):
        self.data, self.rng = data, rng
        self.order, self.cursor = rng.permutation(len(data)), 0

    def draw(self, size: int) -> TaskData:
        picked = []
        while size:
            if self.cursor == len(self.order):
                self.order, self.cursor = self.rng.permutation(len(self.data)), 0
            take = min(size, len(self.order) - self.cursor)
            picked.append(self.order[self.cursor : self.cursor + take])
            self.cursor += take
            size -= take
        return self.data.take(np.concatenate(picked))


def run_lifelong(
    learner: Learner,
    tasks_data: Mapping[str, tuple[TaskData, TaskData]],
    schedule: Schedule = Schedule(),
    batch_size: int = 50,
    eval_every: int = 8_000,
    scale: float = 1.0,
    seed: int = 0,
    name: Optional[str] = None,
    log: Optional[Callable[[str], None]] = None,
) -> LifelongResult:
    """Train ``learner`` through the lifetime of ``schedule`` and record per-task test accuracy.

    Args:
        learner: a :class:`Learner` built for ``schedule.tasks``.
        tasks_data: task -> (train, test) TaskData for every task of the schedule.
        schedule: the task distribution over the lifetime (at scale 1).
        batch_size: instances per training step (each batch holds one task).
        eval_every: examples between evaluations, at scale 1.
        scale: shrink factor of the lifetime and of ``eval_every`` (e.g. 0.01).
        seed: seeds the task draws and the minibatch order (not the learner).
        name: the learner's name in the result (default: its class name).
        log: called with one progress line per evaluation.

    Returns:
        LifelongResult with accuracies at 0, every ``eval_every * scale`` examples and the end.

    Raises:
        NtptError: missing or empty task data, bad sizes.

    Example:
        >>> result = run_lifelong(learner, data, scale=0.01)  # doctest: +SKIP
        >>> result.final()["ADD2x2:top"]  # doctest: +SKIP
        0.41
    """
    missing = [t for t in schedule.tasks if t not in tasks_data]
    if missing:
        raise NtptError(f"tasks_data lacks (train, test) data for {missing}; fix: give data for every task of the schedule")
    empty = [t for t in schedule.tasks if len(tasks_data[t][0]) == 0 or len(tasks_data[t][1]) == 0]
    if empty:
        raise NtptError(f"tasks {empty} have no training or no test instances; fix: make both non-empty")
    if batch_size < 1 or eval_every < 1:
        raise NtptError(f"batch_size and eval_every must be >= 1, got batch_size={batch_size}, eval_every={eval_every}")
    run = schedule.scaled(scale)
    interval = max(batch_size, int(round(eval_every * scale)))
    rng = np.random.default_rng(seed)
    # a learner that selects among restarts keeps part of each task's training grids for validation
    hold_out = getattr(learner, "hold_out", None)
    decks = {t: _Deck(hold_out(t, tasks_data[t][0]) if hold_out else tasks_data[t][0], rng) for t in run.tasks}
    result = LifelongResult(
        name or type(learner).__name__, list(run.tasks),
        schedule={"tasks": list(run.tasks), "period": run.period, "width": run.width},
        scale=scale, batch_size=batch_size, seed=seed,
    )
    presented = dict.fromkeys(run.tasks, 0)
    losses: list[float] = []

    def evaluate(seen: int) -> None:
        start = time.perf_counter()
        result.examples.append(seen)
        for t in run.tasks:
            result.accuracy.setdefault(t, []).append(learner.accuracy(t, tasks_data[t][1]))
            result.presented.setdefault(t, []).append(presented[t])
            presented[t] = 0
        finite = [x for x in losses if np.isfinite(x)]  # a learner may skip a batch (NaN)
        result.loss.append(float(np.mean(finite)) if finite else float("nan"))
        losses.clear()
        result.eval_s += time.perf_counter() - start
        if log:
            accs = " ".join(f"{result.accuracy[t][-1]:.2f}" for t in run.tasks)
            log(f"{result.learner} {seen:>7}/{run.total} loss {result.loss[-1]:.3f} acc {accs}")

    evaluate(0)
    seen, next_eval = 0, interval
    while seen < run.total:
        task = run.tasks[rng.choice(len(run.tasks), p=run.probabilities(seen))]
        size = min(batch_size, run.total - seen)
        start = time.perf_counter()
        losses.append(learner.train_step(task, decks[task].draw(size)))
        result.train_s += time.perf_counter() - start
        seen += size
        presented[task] += size
        if seen >= next_eval or seen == run.total:
            evaluate(seen)
            next_eval = (seen // interval + 1) * interval
    if hasattr(learner, "found"):
        result.found = {task: asdict(event) for task, event in learner.found().items()}
    return result


def prepare_data(
    tasks: Sequence[str], distinct: int = 1_000, test_size: int = 10_000, seed: int = 0, data_dir: Optional[str] = None
) -> dict[str, tuple[TaskData, TaskData]]:
    """Each task's ``distinct`` training grids and ``test_size`` test grids (paper: 1k and 10k).

    Example:
        >>> data = prepare_data(["ADD2x2:top"], distinct=100, test_size=50)  # doctest: +SKIP
        >>> len(data["ADD2x2:top"][0]), len(data["ADD2x2:top"][1])  # doctest: +SKIP
        (100, 50)
    """
    return {
        t: (make_task(t, "train", distinct, seed, data_dir=data_dir, distinct=distinct), make_task(t, "test", test_size, seed, data_dir=data_dir))
        for t in tasks
    }


def build_parser() -> argparse.ArgumentParser:
    """The options of :func:`main`."""
    p = argparse.ArgumentParser(prog="ntpt-dist lifelong", description=(
        "Lifelong learning on the 8 2x2 tasks (paper Fig. 6, 7). --mode schedule (default): the paper's "
        "time-evolving task mixture, the options below; --mode store: the product's lifetime, one search and "
        "gated merge per task through the store (see `ntpt-dist lifelong --mode store --help`)."))
    p.add_argument("--mode", choices=MODES, default="schedule", help="schedule (default) or store")
    p.add_argument("--models", default="indep,pnn,mtnn1,mtnn2", help=f"comma-separated learners from: {', '.join(LEARNERS)}")
    p.add_argument("--scale", type=float, default=1.0, help="lifetime scale: 1 = 512k examples, 0.1 = 51.2k")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=8_000, help="examples between evaluations at scale 1")
    p.add_argument("--distinct", type=int, default=1_000, help="distinct training grids per task (paper: 1k)")
    p.add_argument("--test-size", type=int, default=1_000, help="test grids per task (paper: 10k)")
    p.add_argument("--lr", type=float, help="learning rate of the task-specific parts (default: each baseline's tuned "
                   "rate, docs/baselines.md; 0.05 for the NTPT Params)")
    p.add_argument("--perceptual-lr-scale", type=float,
                   help=f"shared networks' rate relative to --lr (default {BaselineConfig.perceptual_lr_scale}, the paper's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="folder with MNIST/ and operators/ (default: $NTPT_DATA_DIR)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", default="runs/lifelong", help="folder for results JSON, figure and table")
    return p


MODES = ("schedule", "store")


def _mode(argv: list[str]) -> tuple[str, list[str]]:
    """``--mode schedule|store`` taken out of ``argv`` (default: schedule), and the rest."""
    rest, mode = list(argv), "schedule"
    for i, arg in enumerate(rest):
        if arg == "--mode" or arg.startswith("--mode="):
            value = arg.partition("=")[2] if "=" in arg else (rest[i + 1] if i + 1 < len(rest) else "")
            del rest[i : i + (1 if "=" in arg else 2)]
            if value not in MODES:
                raise NtptError(f"--mode must be one of {', '.join(MODES)}, got {value!r}")
            mode = value
            break
    return mode, rest


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the lifelong experiment for each model; write ``<out>/lifelong_<model>.json``, ``lifelong.png``, ``lifelong.md``.

    ``--mode schedule`` (the default) is the paper's lifetime: batches from the time-evolving task
    mixture. ``--mode store`` is the product's lifetime (``experiments.lifelong_store``): per task one
    restart search on Ray and one gated merge into the store; its options are that module's.

    Returns the exit status: 0, or 2 after printing ``error: ...`` for a user error.

    Example:
        >>> main(["--models", "mtnn2", "--scale", "0.05", "--test-size", "500"])  # doctest: +SKIP
        0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        mode, rest = _mode(argv)
    except NtptError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if mode == "store":  # the product's lifetime: searches and gated merges through the store
        from . import lifelong_store

        return lifelong_store.main(rest, prog="ntpt-dist lifelong --mode store")
    import torch  # imported here so `--help` stays fast

    from . import figures

    args = build_parser().parse_args(rest)
    try:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = [m for m in models if m not in LEARNERS]
        if unknown or not models:
            raise NtptError(f"--models must list learners from {', '.join(LEARNERS)}, got {args.models!r}")
        torch.set_num_threads(args.threads)
        given = {k: v for k, v in (("lr", args.lr), ("perceptual_lr_scale", args.perceptual_lr_scale)) if v is not None}
        config = BaselineConfig(**given, device=args.device)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        data = prepare_data(PAPER_TASKS, args.distinct, args.test_size, args.seed, args.data_dir)
        print(f"data: {len(PAPER_TASKS)} tasks x {args.distinct} train / {args.test_size} test grids ({time.perf_counter() - start:.0f} s)", flush=True)
        results = []
        for model in models:
            learner = make_learner(model, PAPER_TASKS, config, args.seed, given)
            result = run_lifelong(learner, data, Schedule(), args.batch_size, args.eval_every, args.scale, args.seed, name=model,
                                  log=lambda line: print(line, flush=True))
            (out / f"lifelong_{model}.json").write_text(json.dumps(result.to_dict(), indent=1))
            command = "ntpt-dist lifelong " + " ".join(argv)
            (out / f"summary_{model}.json").write_text(json.dumps(summary(result, command), indent=1))
            print(f"{model}: train {result.train_s:.0f} s, eval {result.eval_s:.0f} s", flush=True)
            results.append(result)
        figures.plot_lifelong(results, out / "lifelong.png")
        if "ntpt" in models:
            figures.plot_fig6(results, out / "fig6.png")
        table = figures.accuracy_table(results)
        (out / "lifelong.md").write_text(table + "\n")
        print(table)
        print(f"wrote {out}/lifelong.png, lifelong.md and lifelong_<model>.json")
    except NtptError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
