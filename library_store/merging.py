"""The merge transaction of a :class:`~.base.LibraryStore`: gate a task's new program, then apply the decision.

``LibraryStore.merge`` (its docstring states the contract) runs :func:`merge_into`: it measures the
offered networks with the gate of :mod:`.merge` (the store's own evaluator, or the caller's
``evaluate``), under the backend's merge lock writes the network versions it takes, moves the
champion aliases by compare-and-set, and stores the program against the library it ends up with.
It uses only the store's public and backend methods, so every backend shares it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Optional

import numpy as np

from ..interpreter.errors import NtptError
from ..interpreter.program import Program
from .evaluate import Batch, StoreEvaluator, same_batch
from .merge import Evaluate
from .merge import merge as merge_gate
from .records import MergeOutcome, NetState


def merge_into(
    store: Any,
    task: str,
    program: Any,
    evaluate: Optional[Evaluate] = None,
    *,
    val_data: Optional[Batch] = None,
    test_data: Optional[Batch] = None,
    candidate_nets: Optional[Mapping[str, NetState]] = None,
    test_acc: Optional[float] = None,
    search_id: Optional[str] = None,
    seed: Optional[int] = None,
    hypers: Optional[Mapping[str, Any]] = None,
    epsilon: float = 0.01,
    retries: int = 5,
) -> MergeOutcome:
    """``store.merge(...)``: see :meth:`.base.LibraryStore.merge` for the contract."""
    own_gate = evaluate is None
    if own_gate:
        runnable = program if isinstance(program, Program) else Program.from_dict(program)
        evaluate = gate = StoreEvaluator(store, task, runnable, _validation_for(store, task, val_data))
        calls = gate.calls  # what each stored champion really calls
        offered = dict(runnable.networks if candidate_nets is None else candidate_nets)
        candidate_nets = {n: offered[n] for n in sorted(runnable.called_networks()) if n in offered}
    elif val_data is not None or test_data is not None:
        raise NtptError(
            "merge takes val_data and test_data only for the store's own gate, not with an evaluate "
            "function; fix: drop evaluate (the store then measures every task on its kept data) or drop them"
        )
    else:
        def calls(t: str) -> set[str]:  # without the compiler's view: every network a champion holds
            return set(store.get_program(t).program.get("networks") or {})
    program = dict(program.to_dict() if hasattr(program, "to_dict") else program)
    own_nets = dict(program.get("networks") or {})
    candidates = dict(own_nets if candidate_nets is None else candidate_nets)
    for attempt in range(1, retries + 1):
        with store._merge_lock():
            current = store.champion_versions()
            earlier = _tasks_using(store, {n for n in candidates if n in current}, skip=task, calls=calls)
            if own_gate:  # only what the gate runs: an unrelated network's damaged file blocks nothing
                needed = set(candidates) | set(runnable.called_networks())
                needed |= {n for t in earlier for n in calls(t)}
                champion_lib = _load_champions(store, {n: v for n, v in current.items() if n in needed}, task)
            else:  # the caller's evaluate may read any network of the library
                champion_lib = _load_champions(store, current, task)
            decision = merge_gate(task, candidates, evaluate, epsilon, champion=champion_lib, earlier_tasks=earlier)
            taken = decision.added + (decision.updated if decision.accepted else [])
            tags = {"val_acc": f"{decision.val_acc:.6f}", "merge": "accepted" if decision.accepted else "added"}
            new_versions = {
                name: store.add_net_version(
                    name, candidates[name], task=task, search_id=search_id, parent=current.get(name), tags=tags
                )
                for name in taken
            }
            if not store._swap_champions({n: current.get(n) for n in new_versions}, new_versions):
                continue
            versions_after = {**current, **new_versions}
            library_after = {**champion_lib, **{n: candidates[n] for n in taken}}
            # the networks the program runs with: with the store's gate only those it calls
            used = set(candidates) if own_gate else set(own_nets) | set(candidates)
            networks = {**own_nets, **{n: library_after[n] for n in sorted(used) if n in library_after}}
            library_version = {n: versions_after[n] for n in sorted(used) if n in versions_after}
            if test_data is not None:  # measured as stored: a rejected update is not what runs
                test_acc = Program(runnable.model, runnable.params, networks).accuracy(test_data)
            version = store.add_program(
                task, {**program, "networks": networks}, val_acc=decision.val_acc, test_acc=test_acc,
                library_version=library_version, search_id=search_id, seed=seed, hypers=hypers,
                merge=decision.to_dict(),
            )
            champion = store.program_champion(task)
            if champion is None or store._get_program(task, champion).val_acc < decision.val_acc:
                store.set_program_champion(task, version)
            store._record_merge({**decision.to_dict(), "program_version": version}, search_id)
            record = store._get_program(task, version)
            return MergeOutcome(decision, record, library_version, new_versions, attempt)
    raise NtptError(
        f"merge of {task!r} lost the race for the champion aliases {retries} times in store {store.uri}; "
        "fix: retry later or serialise merges (one driver per store)"
    )


def _load_champions(store: Any, versions: Mapping[str, int], task: str) -> dict[str, NetState]:
    """The champion networks a merge of ``task`` needs; one that cannot be read names its version and the repair."""
    library = {}
    for name, version in sorted(versions.items()):
        try:
            library[name] = store._get_net_version(name, int(version)).net
        except NtptError as exc:
            older = [v for v in store.net_versions(name) if v != version]
            raise NtptError(
                f"the merge of task {task!r} needs champion version {version} of network {name!r}, which cannot "
                f"be read from store {store.uri}: {str(exc).split('; fix:')[0]}; fix: restore that file, or point the champion back at a "
                f"readable version with store.set_champion({name!r}, N) (other versions: {older}) and merge "
                f"again the task that trained it"
            ) from exc
    return library

def _tasks_using(store: Any, names: set[str], skip: str, calls: Callable[[str], Iterable[str]]) -> list[str]:
    """Tasks (other than ``skip``) whose champion program calls one of ``names`` (``calls(task)``).

    Only they can change when those networks change, so only they are re-evaluated.
    """
    if not names:
        return []
    return [t for t in store.tasks() if t != skip and names & set(calls(t))]

def _validation_for(store: Any, task: str, val_data: Optional[Batch]) -> Optional[dict[str, Any]]:
    """The task's kept validation batch; keeps ``val_data`` at the task's first merge."""
    with store._merge_lock():
        kept = store.validation_data(task)
        if kept is None:
            if val_data is None:
                raise NtptError(
                    f"the store's merge gate needs validation data for task {task!r}, and store {store.uri} "
                    "keeps none for it yet; fix: pass val_data=batch at its first merge"
                )
            store._put_validation_data(task, {k: np.asarray(v) for k, v in val_data.items()})
            return store.validation_data(task)
    if val_data is not None and not same_batch(kept, val_data):
        raise NtptError(
            f"task {task!r} already has validation data in store {store.uri} "
            f"({_count(kept)} instances), and the val_data given differs ({_count(val_data)} instances); "
            "its merges are gated on the kept batch; fix: omit val_data, or merge under a new task name"
        )
    return kept


def _count(batch: Batch) -> int:
    return len(np.asarray(next(iter(batch.values())))) if batch else 0
