"""Train one paper task in one process: ``ntpt-dist train TASK``.

The restarts of a task train together in one vectorised block (the lowering's
restart dimension); the best program is chosen on validation data and
reported with its test accuracy.

Example:
    >>> from ntpt_dist.experiments.runner import train_task
    >>> outcome = train_task("ADD2x2:top", restarts=8, steps=2000)
    >>> print(outcome.program.listing(), outcome.test_accuracy)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

from ntpt_dist.interpreter.errors import NtptError

from ntpt_dist.config import default_device

from . import registry

# Sizes of the paper's regimes (section 6.1): distinct training grids, held-out test grids.
DEFAULT_SIZES = {"train": 4000, "val": 1000, "test": 10000}
MATH_TEST_DIGITS = (1, 2, 4, 8, 16)
# Fig. 1's maze, and a larger one with a longer horizon (9x9 at T=150 unrolls past the compiler's work cap)
MAZE_TEST_SIZES = ({"W": 5, "H": 3, "T": 45}, {"W": 9, "H": 9, "T": 100})


@dataclass
class TaskOutcome:
    task: str
    program: Any  # interpreter.program.Program
    validation_accuracy: float
    test_accuracy: float
    wall_s: float
    result: Any = None  # interpreter.records.SearchResult, as Model.train returns it
    extra: dict = field(default_factory=dict)  # e.g. MATH accuracy per number of digits


def batch(task_data) -> dict:
    """A model batch (docs/design.md) from a TaskData: inputs and outputs by name."""
    return {**task_data.inputs, **task_data.outputs}


def task_splits(task: str, seed: int = 0, sizes: Optional[dict] = None, data_dir=None, **task_sizes) -> dict:
    """``{"train": batch, "val": batch, "test": batch}`` for a task."""
    from .tasks import make_task

    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    return {
        split: batch(make_task(task, split, n, seed=seed + i, data_dir=data_dir, **task_sizes))
        for i, (split, n) in enumerate(sizes.items())
    }


def train_task(
    task: str,
    restarts: int = 16,
    steps: int = 2000,
    seed: int = 0,
    library: Optional[dict] = None,
    data_dir=None,
    device: Optional[str] = None,
    sizes: Optional[dict] = None,
    progress: bool = True,
    **train_kwargs,
) -> TaskOutcome:
    """Train ``restarts`` restarts of the task's model and evaluate the best program.

    Args:
        task: e.g. ``"ADD2x2:top"``, ``"APPLY2x2:left"``, ``"MATH"``, ``"MAZE"``.
        library: networks to start from (``dict name -> NetState``), e.g.
            ``ntpt_dist.load_library()``; without one ADD2x2 uses its net_0-only model.
        sizes: number of train/val/test instances (defaults: the paper's 4k/1k/10k).
        train_kwargs: passed to ``Model.train`` (``lr``, ``batch_size``, ...); they override
            the task's recipe (``registry.recipe``).

    Returns:
        a :class:`TaskOutcome` with the best program and its test accuracy.
    """
    started = time.perf_counter()
    name = registry.model_for_task(task, library)
    model = registry.load_model(name)
    registry.check_one_new_network(model, library)
    data = task_splits(task, seed=seed, sizes=sizes, data_dir=data_dir)
    train_kwargs = {**registry.recipe(task), **train_kwargs}
    result = model.train(
        data["train"],
        restarts=restarts,
        steps=steps,
        seed=seed,
        device=device or default_device(),
        val_data=data["val"],
        library=library,
        progress=progress,
        **train_kwargs,
    )
    program = result.best_program()
    if program is None:
        raise NtptError(f"no restart of {task} converged in {restarts} restarts of up to {steps} steps "
                        f"({result.counts}); fix: train more restarts or steps")
    outcome = TaskOutcome(
        task=task,
        program=program,
        validation_accuracy=program.accuracy(data["val"]),
        test_accuracy=program.accuracy(data["test"]),
        wall_s=time.perf_counter() - started,
        result=result,
    )
    if task == "MATH":
        outcome.extra["accuracy_by_digits"] = math_generalisation(program, seed=seed, data_dir=data_dir)
    return outcome


def maze_generalisation(program, sizes=MAZE_TEST_SIZES, n: int = 500, seed: int = 0, data_dir=None) -> dict:
    """Accuracy of a MAZE program on held-out mazes of other sizes and horizons, run with those hypers.

    Returns:
        ``{"5x3, T=45": acc, ...}`` (every output exact; LOOK by argmax on the test split's signs).
    """
    from .tasks import make_task

    out = {}
    for size in sizes:
        test = batch(make_task("MAZE", "test", n, seed=seed + 200, data_dir=data_dir, **size))
        out[f"{size['W']}x{size['H']}, T={size['T']}"] = program.accuracy(test, hypers=size)
    return out


def math_generalisation(program, digits=MATH_TEST_DIGITS, n: int = 1000, seed: int = 0, data_dir=None) -> dict:
    """Accuracy of a MATH program on tapes of N digits, run with ``hypers={"N": N}``."""
    from .tasks import make_task

    out = {}
    for d in digits:
        test = batch(make_task("MATH", "test", n, seed=seed + 100 + d, data_dir=data_dir, digits=d))
        out[d] = program.accuracy(test, hypers={"N": d})
    return out
