"""The paper's NTPT models by name, and which model each task trains.

Model sources live in ``experiments/models/*.py`` (NTPT text, never imported
as Python) and are compiled by the language's own compiler.

Example:
    >>> from ntpt_dist.experiments.registry import load_model
    >>> model = load_model("math", N=2)
"""

from __future__ import annotations

from importlib import resources
from typing import Optional

from ntpt_dist.interpreter.errors import NtptError

from . import listings

LISTINGS = {
    "add2x2_first": listings.listing_2x2,
    "add2x2": listings.listing_2x2,
    "apply2x2": listings.listing_2x2,
    "math": listings.listing_math,
    "math_symbolic": listings.listing_math,
    "maze": listings.listing_maze,
    "sign": None,  # no program: one network
}

DEFAULT_HYPERS = {
    "math": {"N": 2},
    "math_symbolic": {"N": 2},
    "maze": {"T": 45, "W": 5, "H": 3},
}


# The training recipe of each task family: TrainConfig fields that differ from the defaults,
# each measured (docs/results.md); a caller's own options override them.
RECIPES = {
    # random 2-pixel shifts of the digit images and larger batches: net_0 no longer over-fits
    # 4k grids (docs/add_apply_tuning.md: 95.7% test instead of 92.5%). The library is held fixed
    # while programs are searched (a first task has none, so ADD2x2:top alone is unchanged); the
    # winner's networks are tuned afterwards and offered to the merge gate. Free, a search re-trained
    # net_0 into an operator reader for APPLY2x2:top in the store lifetime (docs/results.md).
    "ADD2x2": {"augment_shift": 2, "batch_size": 128, "freeze_library": True},
    # larger batches fix net_1's last operator errors (shifts hurt here): 100% test
    "APPLY2x2": {"batch_size": 128, "freeze_library": True},
    # large initial logits spread the restarts over the program space; the 2x2 library is held
    # fixed while programs are searched, so a restart costs about a symbolic one; a local search
    # of up to 2 Param changes turns restarts that stalled near the program into programs
    "MATH": {"init_scale": 3.0, "freeze_library": True, "polish_edits": 2},
    # one new network and no program: the jump comes within ~150 steps, so the winner's LOOK is then
    # tuned on shifted images (held "fixed" while searching, as ADD2x2's first task, means tuned after)
    "SIGN": {"batch_size": 128, "augment_shift": 2, "freeze_library": True},
    # the MATH recipe, with LOOK taken from SIGN and held fixed: the search is the program's alone
    # (without the library, LOOK and the loop learned together found 0 of 8 programs: docs/maze.md)
    "MAZE": {"init_scale": 3.0, "freeze_library": True, "polish_edits": 2},
}


# How a winner found with the library held fixed has its networks tuned afterwards (the pipeline's
# tune_networks), where it differs from 500 steps of the search's recipe. MATH: 5000 steps of 128
# expressions shifted by up to 1 pixel take the 16-digit accuracy of the found program from 70.0% to
# 87.1% on the search's 4000 training expressions (90.5% on 20,000: docs/fig8.md).
TUNING = {"MATH": {"steps": 5000, "batch_size": 128, "augment_shift": 1}}


def tuning(task: str) -> dict:
    """``steps`` and TrainConfig options a task's winner is tuned with (see ``TUNING``).

    Example:
        >>> tuning("MATH")["steps"]
        5000
    """
    return dict(TUNING.get(task.split(":")[0], {}))


# The sizes a task is searched at, where they differ from its model's defaults. MAZE: short paths
# first: the program is searched on mazes of up to 3 moves (T=12) and judged on Fig. 1's (T=45) and a
# larger maze; its Params do not depend on T or the grid (docs/maze.md).
SEARCH_SIZES = {"MAZE": {"T": 12, "W": 5, "H": 3}}


def search_sizes(task: str) -> dict:
    """Hypers (and data sizes) a task's model is searched at (see ``SEARCH_SIZES``).

    Example:
        >>> search_sizes("MAZE")["T"], search_sizes("MATH")
        (12, {})
    """
    return dict(SEARCH_SIZES.get(task.split(":")[0], {}))


def recipe(task: str) -> dict:
    """TrainConfig options a task trains with by default (see ``RECIPES``).

    Example:
        >>> recipe("MATH")["freeze_library"]
        True
    """
    return dict(RECIPES.get(task.split(":")[0], {}))


def model_names() -> list[str]:
    return sorted(LISTINGS)


def model_path(name: str):
    """Path of a model source file shipped with the package."""
    if name not in LISTINGS:
        raise NtptError(f"unknown model {name!r}; known models: {', '.join(model_names())}")
    return resources.files("ntpt_dist.experiments.models").joinpath(f"{name}.py")


def model_source(name: str) -> str:
    return model_path(name).read_text()


def load_model(name: str, **hypers: int):
    """Compile a named model with its listing; ``hypers`` override the defaults."""
    from ntpt_dist.interpreter.model import compile_source

    merged = {**DEFAULT_HYPERS.get(name, {}), **hypers}
    return compile_source(model_source(name), merged, filename=f"experiments/models/{name}.py", listing=LISTINGS[name])


def model_for_task(task: str, library: Optional[dict] = None) -> str:
    """The model a task trains: ADD2x2 with only net_0 while the library is empty
    (the one-new-network rule of section 4.1), else the two-network models."""
    family = task.split(":")[0]
    if family == "ADD2x2":
        return "add2x2" if library else "add2x2_first"
    if family == "APPLY2x2":
        return "apply2x2"
    if family == "MATH":
        return "math"
    if family == "SIGN":
        return "sign"
    if family == "MAZE":
        return "maze"
    raise NtptError(f"unknown task {task!r}; tasks are ADD2x2:<pos>, APPLY2x2:<pos>, MATH, SIGN, MAZE")


def check_one_new_network(model, library: Optional[dict]) -> None:
    """Section 4.1: a task may introduce at most one untrained @Learn network."""
    new = [name for name in model.flat.learns if name not in (library or {})]
    if len(new) > 1:
        raise NtptError(
            f"model {model.filename} would introduce {len(new)} untrained networks ({', '.join(sorted(new))}); "
            "the one-new-network rule allows one per task: train a task that uses only one of them first, "
            "or pass a library that holds the others"
        )
