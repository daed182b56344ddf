"""The paper's tasks by name (``ADD2x2:top``, ``APPLY2x2:left``, ``MATH``, ``SIGN``, ``MAZE``) over the product pipeline.

This is the one place the command line reaches ``ntpt_dist.experiments``: a
task name becomes a :class:`~ntpt_dist.pipeline.Task` (the task's model,
generated data splits and measured recipe), and from there the same code runs
as for a user's ``MODEL.py --data DATA``.

Example:
    >>> from ntpt_dist.paper_tasks import is_paper_task
    >>> is_paper_task("ADD2x2:top"), is_paper_task("my_model.py")
    (True, False)
"""

from __future__ import annotations

import sys
from typing import Any, Optional, TextIO

from ntpt_dist.experiments import registry
from ntpt_dist.experiments.runner import DEFAULT_SIZES, math_generalisation, maze_generalisation, task_splits
from ntpt_dist.interpreter.errors import NtptError

from . import pipeline

__all__ = ["is_paper_task", "paper_task", "search_and_merge", "lifelong", "generalisation", "demo", "SEARCH_SIZES",
           "TRAIN_SIZES"]

SEARCH_SIZES = {"train": 4000, "val": 1000, "test": 2000}  # a search's data: a smaller test set than training's
TRAIN_SIZES = dict(DEFAULT_SIZES)
FAMILIES = ("ADD2x2", "APPLY2x2", "MATH", "SIGN", "MAZE")


def is_paper_task(name: str) -> bool:
    """Whether ``name`` is one of the paper's task names (not a model file)."""
    return name.split(":")[0] in FAMILIES and not name.endswith(".py")


def paper_task(name: str, library: Optional[dict] = None, seed: int = 0, sizes: Optional[dict] = None,
               data_dir: Any = None) -> pipeline.Task:
    """The :class:`~ntpt_dist.pipeline.Task` of a paper task name.

    Args:
        name: e.g. ``"ADD2x2:top"``, ``"MATH"``.
        library: the networks the task starts from; ADD2x2 without one trains its net_0-only model.
        sizes: instances per split (default: :data:`SEARCH_SIZES`).
        data_dir: folder with MNIST/, operators/, gtsrb/ (default: $NTPT_DATA_DIR).

    Raises:
        NtptError: an unknown task, or a model that would introduce two untrained networks.
    """
    at = registry.search_sizes(name)  # e.g. MAZE: short paths first
    model = registry.load_model(registry.model_for_task(name, library), **at)
    registry.check_one_new_network(model, library)
    data = task_splits(name, seed=seed, sizes={**SEARCH_SIZES, **(sizes or {})}, data_dir=data_dir, **at)
    extra = None
    if name == "MATH":
        def extra(program):
            return {f"MATH with {d:2d} digits": acc
                    for d, acc in math_generalisation(program, seed=seed, data_dir=data_dir).items()}
    if name == "MAZE":
        if "LOOK" not in (library or {}):
            print("MAZE: no LOOK in the library, so LOOK and the loop are learned together (it rarely finds the "
                  "program: docs/maze.md); search SIGN into the same store first", file=sys.stderr)

        def extra(program):
            return {f"MAZE {size}": acc for size, acc in maze_generalisation(program, seed=seed, data_dir=data_dir).items()}
    n_val = len(next(iter(data["val"].values())))
    return pipeline.Task(name, model, data, registry.recipe(name), f"{n_val} generated 'val' instances", extra,
                         registry.tuning(name))


def search_and_merge(task: str, store: Any, restarts: int = 100, steps: int = 3000, seed: int = 0, data_dir=None,
                     sizes: Optional[dict] = None, *, model: Any = None, data: Optional[dict] = None,
                     config: Optional[dict] = None, **kwargs: Any) -> pipeline.SearchReport:
    """:func:`ntpt_dist.pipeline.search_and_merge` of a paper task by name.

    Args:
        task: a paper task name.
        model, data: the model and ``{"train", "val", "test"}`` batches to use instead of the task's own.
        config: TrainConfig options over the task's recipe.
        kwargs: passed to :func:`ntpt_dist.pipeline.search_and_merge`.
    """
    library = store.load_library() or None
    extra = None
    if model is None or data is None:
        built = paper_task(task, library, seed=seed, sizes=sizes, data_dir=data_dir)
        model, data, extra = model or built.model, data or built.data, built.extra
    if model is not None:
        registry.check_one_new_network(model, library)
    spec = pipeline.Task(task, model, data, registry.recipe(task), extra=extra)
    return pipeline.search_and_merge(spec, store, restarts=restarts, steps=steps, seed=seed, options=config,
                                     library=library, **kwargs)


def check_paper_only(name: str, **given: Any) -> None:
    """A model file refuses the options only a paper task uses (``--data-dir``, ``--train-size``)."""
    for option, value in given.items():
        if value is not None:
            raise NtptError(f"{option} is for the paper's tasks, but {name!r} is a model file; "
                            "fix: drop it, its data comes from --data")


def lifelong(argv: list[str]) -> int:
    """``ntpt-dist lifelong ARGS``: the lifelong-learning experiment of section 6.1."""
    from ntpt_dist.experiments.lifelong import main  # its baselines load torchvision: only when asked for

    return main(argv)


def generalisation(argv: list[str]) -> int:
    """``ntpt-dist generalisation ARGS``: Fig. 8, MATH models tested on longer expressions than they trained on.

    Prints the result JSON (and writes ``--out``, ``--figure``); progress goes to stderr.

    Returns:
        the exit status: 0, or that of ``--help`` (0) or of a usage error (2, after one ``error:`` line).

    Raises:
        NtptError: an unknown model, an output path that cannot be written (one ``error:`` line in ``ntpt-dist``).

    Example:
        >>> generalisation(["--part", "a", "--models", "ntpt", "--max-digits", "2", "--test-n", "50"])  # doctest: +SKIP
        0
    """
    from ntpt_dist.experiments.generalisation import run  # torch and the baselines: only when asked for

    try:
        run(argv, prog="ntpt-dist generalisation")
    except SystemExit as exit_:  # --help, or a usage error whose line is printed
        return exit_.code if isinstance(exit_.code, int) else 2
    return 0


def demo(store_uri: Optional[str] = None, data_dir=None, seed: int = 0, device=None,
         out: TextIO = sys.stdout) -> pipeline.SearchReport:
    """The main job end to end on embedded defaults: local Ray, sqlite MLflow.

    Searches ADD2x2:top (the first task of a lifetime: only net_0 exists) with
    a small restart budget, merges the winner and its net_0 into the store,
    and prints the best program and how to open the UI.
    """
    from ntpt_dist.library_store.api import LibraryStore

    store = LibraryStore(store_uri)
    print(f"ntpt-dist demo: searching ADD2x2:top on a local Ray cluster; store {store.uri}", file=out, flush=True)
    report = search_and_merge(
        "ADD2x2:top", store, restarts=8, steps=1500, seed=seed, data_dir=data_dir, device=device,
        sizes={"train": 4000}, first_k=1, restarts_per_actor=4, actors=1, refine_evals=20,
    )
    print(report.text(), file=out, flush=True)
    return report
