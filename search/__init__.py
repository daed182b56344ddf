"""Distributed random-restart search over compiled NTPT models.

The package itself is callable: ``ntpt_dist.search(model, data, ...)`` runs
:func:`ntpt_dist.search.driver.search` and then, with a ``store``, offers the
winner to the store's merge gate (:mod:`.publish`), so the task's champion is
ready for ``ntpt_dist.best_program(task, store=store)`` right after. Keyword
arguments beyond the driver's:

- ``publish=True``: merge the winner; ``False`` leaves the store's library and
  champions as they were (the restarts are still recorded), to merge yourself.
- ``test_data=None``: a test batch; the stored program's test accuracy is measured on it.
- ``epsilon=0.01``: the accuracy drop on earlier tasks the gate tolerates.

``store`` may be a ``LibraryStore`` or its URI/folder (opened, or created, as
``LibraryStore(uri)`` does). A misspelt argument is an ``NtptError`` naming it.

The gate validates the task on ``val_data`` if given, else on the training
data; the store keeps that batch at the task's first merge and gates every
later merge of the task on it. The store's decision is ``result.merge`` (None
when nothing was merged). ``ntpt_dist.search.policy`` and friends stay
importable (a plain function attribute would be shadowed by this subpackage as
soon as any of its modules is imported).

Example:
    >>> store = ntpt_dist.LibraryStore("memory://")                            # doctest: +SKIP
    >>> result = ntpt_dist.search(model, data, restarts=8, store=store, task="t")  # doctest: +SKIP
    >>> ntpt_dist.best_program("t", store=store).source                         # doctest: +SKIP
"""

import inspect
import os
import sys
import types

from ..interpreter.errors import NtptError


class _CallableModule(types.ModuleType):
    def __call__(self, model_or_task, data, *args, publish=True, test_data=None, epsilon=0.01, **kwargs):
        from .driver import search
        from .publish import check_publishable
        from .publish import publish as offer
        from .worker import ModelSpec

        try:
            bound = inspect.signature(search).bind(model_or_task, data, *args, **kwargs)
        except TypeError as e:  # a misspelt or doubled argument: name it, as every other bad argument
            raise NtptError(f"ntpt_dist.search: {e}; fix: see help(ntpt_dist.search) for its arguments") from None
        store = bound.arguments["store"] = _as_store(bound.arguments.get("store"))
        val_data = bound.arguments.get("val_data")
        if store is None or not publish:
            return search(*bound.args, **bound.kwargs)
        spec = ModelSpec.of(model_or_task)
        # the name the driver would record under, fixed here so the merge uses the same one
        task = bound.arguments.get("task") or spec.filename.rsplit("/", 1)[-1].removesuffix(".py")
        bound.arguments["task"] = task
        gate_data = data if val_data is None else val_data
        check_publishable(store, task, gate_data)
        result = search(*bound.args, **bound.kwargs)
        result.merge = offer(result, store, task, val_data=gate_data, test_data=test_data, hypers=spec.hypers,
                             epsilon=epsilon)
        return result


def _as_store(store):
    """A store argument as a store: a URI or folder opens (or creates) the LibraryStore there."""
    if store is None or all(hasattr(store, name) for name in ("start_search", "log_restarts", "merge")):
        return store
    if isinstance(store, (str, os.PathLike)):
        from ..library_store.api import LibraryStore

        return LibraryStore(os.fspath(store))
    raise NtptError(f"store must be a LibraryStore or its URI/folder, but got {type(store).__name__}; "
                    "fix: pass e.g. store=ntpt_dist.LibraryStore('./ntpt-store')")


sys.modules[__name__].__class__ = _CallableModule
