"""Re-running stored programs with a library swapped in, from the store alone.

The merge gate asks ``evaluate(task, library) -> accuracy`` for the task being
merged and for every stored task whose champion program calls an updated
network. :class:`StoreEvaluator` answers it with nothing but the store: each
task's champion program (recompiled from its stored source, never imported or
unpickled) and the validation data the store keeps for the task (written at
its first merge). No task-specific code is involved, so any model's tasks can
share a library.

:func:`champion_accuracies` measures every task's champion with the current
library on data the caller holds (a lifetime's test sets).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

from ..interpreter.errors import NtptError
from ..interpreter.program import Program

Batch = Mapping[str, Any]


def with_library(program: Program, library: Mapping[str, Any], calls: Optional[frozenset[str]] = None) -> Program:
    """``program`` with the networks it calls taken from ``library`` (others keep the program's own).

    Example:
        >>> from ntpt_dist.interpreter.model import compile_source
        >>> p = Program(compile_source("x = Input(2)\\ny = Output(2)\\ny.set_to(x)\\n"), {})
        >>> with_library(p, {}).params
        {}
    """
    calls = program.called_networks() if calls is None else calls
    nets = {**program.networks, **{n: s for n, s in library.items() if n in calls}}
    return Program(program.model, program.params, nets, program.meta)


def same_batch(a: Batch, b: Batch) -> bool:
    """Whether two batches hold the same names and equal arrays."""
    return set(a) == set(b) and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


class StoreEvaluator:
    """``evaluate(task, library) -> accuracy`` from the store alone (see the module doc).

    Args:
        store: a ``LibraryStore``.
        task: the task being merged (evaluated with ``program`` and ``val_data``), or None.
        program: that task's new :class:`Program`.
        val_data: that task's validation batch (default: the store's).

    Example:
        >>> evaluate = StoreEvaluator(store, "B", program, val_data)     # doctest: +SKIP
        >>> evaluate("A", store.load_library())                          # doctest: +SKIP
        0.97
    """

    def __init__(self, store: Any, task: Optional[str] = None, program: Optional[Program] = None,
                 val_data: Optional[Batch] = None) -> None:
        self.store = store
        self._programs: dict[str, Program] = {} if task is None or program is None else {task: program}
        self._data: dict[str, Batch] = {} if task is None or val_data is None else {task: val_data}
        self._calls: dict[str, frozenset[str]] = {}

    def program(self, task: str) -> Program:
        """The task's program: the new one for the task being merged, else the stored champion."""
        if task not in self._programs:
            self._programs[task] = Program.from_dict(self.store.get_program(task).program)
        return self._programs[task]

    def calls(self, task: str) -> frozenset[str]:
        """The networks the task's program calls (only those can change its accuracy)."""
        if task not in self._calls:
            self._calls[task] = self.program(task).called_networks()
        return self._calls[task]

    def data(self, task: str) -> Batch:
        """The task's validation batch from the store.

        Raises:
            NtptError: the store holds none for the task.
        """
        if task not in self._data:
            found = self.store.validation_data(task)
            if found is None:
                raise NtptError(
                    f"task {task!r} has no validation data in store {self.store.uri}, so the merge gate cannot "
                    "re-evaluate it; fix: merge it again with store.merge(task, program, val_data=batch), which "
                    "keeps the batch, or pass your own evaluate function"
                )
            self._data[task] = found
        return self._data[task]

    def __call__(self, task: str, library: dict) -> float:
        program = with_library(self.program(task), library, self.calls(task))
        return float(program.accuracy(self.data(task)))


def champion_accuracies(store: Any, data: Mapping[str, Batch], library: Optional[Mapping[str, Any]] = None) -> dict[str, float]:
    """Accuracy of every stored task's champion program with the library champion, on ``data[task]``.

    Args:
        store: a ``LibraryStore``.
        data: task -> batch (e.g. test sets); stored tasks without one are skipped.
        library: the library to swap in (default: the store's champions).

    Returns:
        task -> accuracy, for the tasks that are both stored and in ``data``.

    Example:
        >>> champion_accuracies(store, {"A": test_a, "B": test_b})     # doctest: +SKIP
        {'A': 0.98, 'B': 0.91}
    """
    library = store.load_library() if library is None else library
    evaluator = StoreEvaluator(store)
    return {
        task: float(with_library(evaluator.program(task), library, evaluator.calls(task)).accuracy(data[task]))
        for task in store.tasks() if task in data
    }
