"""Distributed random-restart search over compiled NTPT models.

The package itself is callable, so ``ntpt_dist.search(model, data, ...)`` is
:func:`ntpt_dist.search.driver.search` while ``ntpt_dist.search.policy`` and
friends stay importable (a plain function attribute would be shadowed by this
subpackage as soon as any of its modules is imported).
"""

import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from .driver import search

        return search(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
