"""A task's whole life: restart search on Ray -> merge into the library store.

``search_and_merge`` is what ``ntpt-dist search`` runs and ``demo`` is what
``make demo`` runs. The merge is the store's own gate: the store keeps each
task's validation data from its first merge and re-evaluates the earlier
tasks' stored programs with the candidate networks on it, so a network version
becomes the library's champion only if nothing learned before gets worse; only
the networks the winning program calls are offered.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, Optional, TextIO

from . import registry
from .runner import task_splits

VAL_SIZE = 1000


@dataclass
class SearchReport:
    task: str
    result: Any  # search.records.SearchResult
    merge: Any  # library_store.base.MergeOutcome or None
    test_accuracy: Optional[float]  # the winner with its own networks; merge.program.test_acc: as stored
    store_uri: str
    wall_s: float

    def text(self) -> str:
        r = self.result
        lines = [
            f"search {r.search_id} on {self.task}: {r.counts.get('started', 0)} restarts started, "
            f"{r.counts['converged']} converged, {r.counts['stopped']} stopped, {r.counts['diverged']} diverged, "
            f"{r.counts['failed']} failed ({self.wall_s:.0f} s, {r.stop_reason})",
        ]
        program = r.best_program()
        if program is None:
            lines.append("no restart converged: nothing merged (try more restarts or steps)")
        else:
            lines += ["", "best program:", program.listing(), ""]
            lines.append(f"validation accuracy {r.winner['program_val_acc']:.4f}   test accuracy {self.test_accuracy:.4f}")
        if self.merge is not None:
            d = self.merge.decision
            stored = self.merge.program
            lines.append(f"merge: {d.reason}")
            lines.append(f"stored with library {self.merge.library_version}: validation accuracy "
                         f"{stored.val_acc:.4f}   test accuracy {stored.test_acc:.4f}")
        lines += ["", f"store: {self.store_uri}", f"open the UI: ntpt-dist ui --store {self.store_uri}"]
        return "\n".join(lines)


def search_and_merge(
    task: str,
    store,
    restarts: int = 100,
    steps: int = 3000,
    seed: int = 0,
    data_dir=None,
    device: Optional[str] = None,
    sizes: Optional[dict] = None,
    first_k: Optional[int] = None,
    search_id: Optional[str] = None,
    epsilon: float = 0.01,
    refine_evals: int = 5,
    tune_steps: int = 500,
    progress: bool = True,
    *,
    model: Any = None,
    data: Optional[dict] = None,
    **search_kwargs,
) -> SearchReport:
    """Search a task's programs on Ray starting from the store's library, then merge the winner.

    Args:
        task: a task name (see ``experiments.tasks.task_names()``).
        store: a ``LibraryStore``; the driver is its only writer.
        restarts: restart budget; ``first_k`` stops after that many converged.
        steps: step budget of one restart.
        refine_evals: evaluations a restart keeps training after its jump (its networks improve).
        tune_steps: when the search held the library fixed (``freeze_library``), steps of
            :func:`~ntpt_dist.interpreter.tune.tune_networks` on the winner before the merge.
        model: the compiled model to search (default: the task's, ``registry.model_for_task``).
        data: ``{"train", "val", "test"}`` batches (default: ``task_splits`` with ``sizes``);
            ``val`` is what the store keeps for the task at its first merge.
        search_kwargs: passed to ``ntpt_dist.search`` (``address``, ``actors``,
            ``restarts_per_actor``, ``gpus_per_actor``, ``cpus_per_actor``, ...); ``config``
            (TrainConfig options) overrides the task's recipe (``registry.recipe``).

    Returns:
        a :class:`SearchReport` (``.text()`` is what the CLI prints).
    """
    from ntpt_dist.interpreter.engine import config_with
    from ntpt_dist.interpreter.tune import tune_networks
    from ntpt_dist.search.driver import search
    from ntpt_dist.search.policy import JumpPolicy, StopRule

    from ntpt_dist.config import default_device

    started = time.perf_counter()
    library = store.load_library() or None
    model = model or registry.load_model(registry.model_for_task(task, library))
    registry.check_one_new_network(model, library)
    if data is None:
        data = task_splits(task, seed=seed, sizes={"val": VAL_SIZE, "test": 2000, **(sizes or {})}, data_dir=data_dir)
    config = {**registry.recipe(task), **dict(search_kwargs.pop("config", None) or {})}
    config_with(**config)  # a bad option fails here, with its name, not in every worker
    result = search(
        model, data["train"], val_data=data["val"], restarts=restarts, seed=seed, library=library, store=store,
        config=config,
        search_id=search_id, progress=progress, policy=JumpPolicy(budget_steps=steps, refine_evals=refine_evals),
        stop=StopRule(first_k=first_k, max_restarts=restarts), task=task, device=device, **search_kwargs,
    )
    program = result.best_program()
    merge = test_acc = None
    if program is not None and config.get("freeze_library") and tune_steps:
        # the search held the library fixed; now the winner's networks improve on this task
        program = tune_networks(program, data["train"], steps=tune_steps, val_data=data["val"], seed=seed,
                                device=device or default_device(), **{k: v for k, v in config.items() if k != "freeze_library"})
    if program is not None:
        test_acc = program.accuracy(data["test"])
        merge = store.merge(
            task, program, val_data=data["val"], test_data=data["test"], search_id=result.search_id,
            seed=result.winner["seed"], hypers=model.hypers, epsilon=epsilon,
        )
    return SearchReport(task, result, merge, test_acc, store.uri, time.perf_counter() - started)


def demo(store_uri: Optional[str] = None, data_dir=None, seed: int = 0, device=None, out: TextIO = sys.stdout) -> SearchReport:
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
