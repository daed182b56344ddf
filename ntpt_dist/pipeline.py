"""A task's whole life, for any model: train it, or search it and publish the winner to the store.

A :class:`Task` is a compiled model, its data splits and its training recipe.
:func:`model_file_task` builds one from a user's model file and data file;
the paper's task names build theirs in ``ntpt_dist.paper_tasks``; from there
the same two functions run:

- :func:`train_task` trains restarts in one process (``Model.train``) and
  reports the best program's validation and test accuracy;
- :func:`search_and_merge` runs the restart search (``ntpt_dist.search``)
  starting from the store's library and offers the winner to the store's merge
  gate (``search/publish.py``), which re-evaluates the earlier tasks' stored
  programs from the store alone; the winner becomes the task's champion if
  nothing learned before gets worse.

Example:
    >>> task = model_file_task("model.py", "data.json", hypers="hypers.json")     # doctest: +SKIP
    >>> report = search_and_merge(task, LibraryStore("./store"), restarts=16)    # doctest: +SKIP
    >>> print(report.text())                                                     # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ntpt_dist.config import default_device
from ntpt_dist.interpreter.data_files import load_data_file
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.interpreter.model import compile_file
from ntpt_dist.interpreter.train_config import config_with
from ntpt_dist.interpreter.tune import tune_networks
from ntpt_dist.search import driver
from ntpt_dist.search.policy import JumpPolicy, StopRule
from ntpt_dist.search.progress import count_line
from ntpt_dist.search.publish import check_publishable, publish, winner_field

__all__ = ["Task", "TrainReport", "SearchReport", "model_file_task", "train_task", "search_and_merge"]


@dataclass
class Task:
    """What a task trains: a model, its data and its recipe.

    Attributes:
        name: the task's name in the store.
        model: the compiled ``Model``.
        data: ``{"train": batch, "val": batch, "test": batch or None}``.
        recipe: TrainConfig options the task trains with by default (a caller's options override them).
        val_from: where the validation batch came from, in words.
        extra: ``extra(program) -> {label: accuracy}``, more numbers to report (e.g. per tape length).
        tuning: how a winner found with the library held fixed is tuned: ``steps`` and the
            TrainConfig fields that differ from the search's (e.g. larger batches).
    """

    name: str
    model: Any
    data: dict[str, Any]
    recipe: dict[str, Any] = field(default_factory=dict)
    val_from: str = "the 'val' batch"
    extra: Optional[Callable[[Any], dict[str, float]]] = None
    tuning: dict[str, Any] = field(default_factory=dict)


def model_file_task(model: str | Path, data: str | Path, hypers: Optional[str | Path] = None,
                    hypers_name: Optional[str] = None, name: Optional[str] = None) -> Task:
    """A :class:`Task` from a model file and a data file (``.json`` or ``.npz``, see ``interpreter/data_files.py``).

    Args:
        model: the NTPT/TerpreT model file (compiled, never imported).
        data: the data file; without a ``val`` batch one is split off ``train`` deterministically.
        hypers, hypers_name: TerpreT's hypers file and the entry to compile with.
        name: the task's name (default: the model file's stem).

    Raises:
        DataError: a bad data or hypers file. SourceError: a model that does not compile.
    """
    splits = load_data_file(data, hypers, hypers_name)
    compiled = compile_file(model, splits.hypers)
    return Task(name or Path(model).stem, compiled, splits.as_dict(), {}, splits.val_from)


def _config(task: Task, options: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    config = {**task.recipe, **dict(options or {})}
    config_with(**config)  # a misspelt option or a bad value fails here, with its name, before any work
    return config


@dataclass
class TrainReport:
    """What :func:`train_task` found."""

    task: str
    program: Any
    validation_accuracy: float
    test_accuracy: Optional[float]
    wall_s: float
    restarts: int
    steps: int
    extra: dict[str, float] = field(default_factory=dict)

    def text(self) -> str:
        test = "-" if self.test_accuracy is None else f"{self.test_accuracy:.4f}"
        lines = [f"best program for {self.task} ({self.restarts} restarts x {self.steps} steps, {self.wall_s:.0f} s):",
                 "", self.program.listing(), "",
                 f"validation accuracy {self.validation_accuracy:.4f}   test accuracy {test}"]
        lines += [f"  {label}: {acc:.4f}" for label, acc in self.extra.items()]
        return "\n".join(lines)


def train_task(task: Task, restarts: int = 16, steps: int = 2000, seed: int = 0, library: Any = None,
               device: Optional[str] = None, options: Optional[Mapping[str, Any]] = None) -> TrainReport:
    """Train ``restarts`` restarts of the task's model in this process and evaluate the best program.

    Args:
        options: TrainConfig options; they override the task's recipe.
        library: networks to start from (``store.load_library()``).
    """
    started = time.perf_counter()
    config = config_with(**_config(task, options))
    result = task.model.train(task.data["train"], restarts=restarts, steps=steps, seed=seed,
                              val_data=task.data["val"], config=config, library=library,
                              device=device or default_device())
    program = result.best_program()
    if program is None:
        raise NtptError(f"no restart of {task.name} converged in {restarts} restarts of up to {steps} steps "
                        f"({count_line(result.counts.get('started', 0), result.counts)}); "
                        "fix: train more restarts or steps, or search on a cluster")
    test = task.data.get("test")
    return TrainReport(
        task.name, program, program.accuracy(task.data["val"]),
        None if test is None else program.accuracy(test), time.perf_counter() - started, restarts, steps,
        task.extra(program) if task.extra else {},
    )


@dataclass
class SearchReport:
    """What :func:`search_and_merge` did; ``text()`` is what ``ntpt-dist search`` prints."""

    task: str
    result: Any  # search.records.SearchResult
    merge: Any  # library_store MergeOutcome, or None
    test_accuracy: Optional[float]  # the winner with its own networks; merge.program.test_acc: as stored
    store_uri: str
    wall_s: float
    val_from: str = "the 'val' batch"
    extra: dict[str, float] = field(default_factory=dict)  # the task's own further numbers (Task.extra)

    def text(self) -> str:
        r = self.result
        lines = [f"search {r.search_id} on {self.task} ({self.wall_s:.0f} s, {r.stop_reason}): restarts "
                 + count_line(r.counts.get("started", 0), r.counts)]
        program = r.best_program()
        if program is None:
            lines.append("no restart converged: nothing merged (try more restarts or steps)")
        else:
            test = "-" if self.test_accuracy is None else f"{self.test_accuracy:.4f}"
            lines += ["", "best program:", program.listing(), "",
                      f"validation accuracy {winner_field(r, 'program_val_acc'):.4f} (as the search found it)"
                      f"   test accuracy {test}",
                      f"validation data: {self.val_from}"]
            lines += [f"  {label}: {acc:.4f}" for label, acc in self.extra.items()]
        if self.merge is not None:
            stored = self.merge.program
            stored_test = "-" if stored.test_acc is None else f"{stored.test_acc:.4f}"
            lines.append(f"merge: {self.merge.decision.reason}")
            lines.append(f"stored with library {self.merge.library_version}: validation accuracy "
                         f"{stored.val_acc:.4f}   test accuracy {stored_test}")
        lines += ["", f"store: {self.store_uri}", f"the champion: ntpt-dist show {self.task} --store {self.store_uri}",
                  f"open the UI: ntpt-dist ui --store {self.store_uri}"]
        return "\n".join(lines)


def search_and_merge(
    task: Task,
    store: Any,
    restarts: int = 100,
    steps: int = 3000,
    seed: int = 0,
    first_k: Optional[int] = None,
    search_id: Optional[str] = None,
    epsilon: float = 0.01,
    refine_evals: int = 5,
    tune_steps: Optional[int] = None,
    progress: bool = True,
    options: Optional[Mapping[str, Any]] = None,
    library: Any = None,
    device: Optional[str] = None,
    **search_kwargs: Any,
) -> SearchReport:
    """Search a task's programs starting from the store's library, then offer the winner to the store's gate.

    Args:
        task: a :class:`Task`.
        store: a ``LibraryStore``; the search is its only writer.
        restarts: restart budget; ``first_k`` stops after that many converged.
        steps: step budget of one restart.
        refine_evals: evaluations a restart keeps training after its jump (its networks improve).
        tune_steps: when the search held the library fixed (``freeze_library``), steps of
            :func:`~ntpt_dist.interpreter.tune.tune_networks` on the winner before the merge
            (default: the task's ``tuning["steps"]``, else 500; 0: no tuning).
        options: TrainConfig options; they override the task's recipe (``eval_every``: the
            search's steps between validation evaluations).
        library: the networks to start from (default: ``store.load_library()``).
        search_kwargs: passed to ``ntpt_dist.search`` (``address``, ``actors``, ``backend``,
            ``restarts_per_actor``, ``gpus_per_actor``, ``cpus_per_actor``, ...).

    Returns:
        a :class:`SearchReport`.
    """
    started = time.perf_counter()
    library = library if library is not None else (store.load_library() or None)
    config = _config(task, options)
    data = task.data
    check_publishable(store, task.name, data["val"])  # before any restart runs
    result = driver.search(
        task.model, data["train"], val_data=data["val"], restarts=restarts, seed=seed, library=library,
        store=store, config=config, search_id=search_id, progress=progress,
        policy=JumpPolicy(budget_steps=steps, refine_evals=refine_evals),
        stop=StopRule(first_k=first_k, max_restarts=restarts), task=task.name, device=device, **search_kwargs,
    )
    program = result.best_program()
    tuning = dict(task.tuning)
    task_steps = tuning.pop("steps", 500)
    tune_steps = task_steps if tune_steps is None else tune_steps
    if program is not None and config.get("freeze_library") and tune_steps:
        # the search held the library fixed; now the winner's networks improve on this task
        tune_config = {**{k: v for k, v in config.items() if k != "freeze_library"}, **tuning}
        program = tune_networks(program, data["train"], steps=tune_steps, val_data=data["val"], seed=seed,
                                device=device or default_device(), **tune_config)
    test_acc = None
    if program is not None and data.get("test") is not None:
        test_acc = program.accuracy(data["test"])
    extra = task.extra(program) if program is not None and task.extra else {}
    merge = publish(result, store, task.name, val_data=data["val"], test_data=data.get("test"),
                    hypers=task.model.hypers, program=program, epsilon=epsilon)
    return SearchReport(task.name, result, merge, test_acc, store.uri, time.perf_counter() - started, task.val_from,
                        extra)
