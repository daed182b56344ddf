"""A finished search's winner, offered to the store's merge gate.

``ntpt_dist.search(..., store=store, task=t)`` ends here (unless
``publish=False``): the winning program goes to ``store.merge``, whose gate
keeps the task's validation data at its first merge, re-evaluates every earlier
task whose champion calls a network the winner updates, and makes the winner
the task's champion if it is accepted, so ``ntpt_dist.best_program(t)`` works
right after. The driver stays a search: it records restarts and never merges.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from ..interpreter.errors import NtptError
from ..library_store.evaluate import same_batch

__all__ = ["check_publishable", "publish", "winner_field"]


def winner_field(result: Any, name: str) -> Any:
    """A field of ``result.winner`` (a record dict, or a record object with that attribute)."""
    winner = result.winner
    return winner[name] if isinstance(winner, Mapping) else getattr(winner, name)


def check_publishable(store: Any, task: str, val_data: Mapping[str, Any]) -> None:
    """Refuse, before any restart runs, a search whose merge the gate would refuse for its validation data.

    The store gates every merge of a task on the validation batch it kept at the
    task's first merge; a search offering another batch would train for nothing.

    Raises:
        NtptError: the store keeps a different validation batch for ``task``.
    """
    kept = store.validation_data(task)
    if kept is not None and not same_batch(kept, val_data):
        raise NtptError(
            f"the store keeps validation data for task {task!r} from its first merge, and this search's "
            "validation data differs, so its winner could not be merged; fix: pass the same val_data as "
            "before, search under a new task name, or pass publish=False and merge yourself"
        )


def publish(
    result: Any,
    store: Any,
    task: str,
    *,
    val_data: Mapping[str, Any],
    test_data: Optional[Mapping[str, Any]] = None,
    hypers: Optional[Mapping[str, Any]] = None,
    program: Any = None,
    epsilon: float = 0.01,
) -> Any:
    """Offer the search's winner to ``store.merge``; None when no restart converged.

    Args:
        result: the search's ``SearchResult``.
        store: the library store the search recorded into.
        task: the task name the search ran under.
        val_data: the batch the gate validates the task on (kept at its first merge).
        test_data: a test batch; the stored program's test accuracy is measured on it.
        hypers: the model's hyper-parameters, stored with the program.
        program: the program to offer (default: ``result.best_program()``), e.g. one
            whose networks were tuned after the search.
        epsilon: tolerated accuracy drop on earlier tasks.

    Returns:
        the store's ``MergeOutcome`` (``.decision.accepted``, ``.program``, ...), or None.
    """
    program = program if program is not None else result.best_program()
    if program is None:
        return None
    return store.merge(
        task, program, val_data=val_data, test_data=test_data, search_id=result.search_id,
        seed=winner_field(result, "seed"), hypers=dict(hypers or {}), epsilon=epsilon,
    )
