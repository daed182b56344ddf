"""Restart records and the search result (``interpreter.records``), re-exported for the search.

The types are defined next to the training loop that makes them
(``interpreter/restarts.py``), so ``Model.train`` and the search return the same
:class:`SearchResult` without the interpreter importing the search. Sinks (the
journal, the library store) receive and return records in their dict form
(:meth:`RestartRecord.to_dict`); see :mod:`.sinks`.
"""

from ..interpreter.engine import restart_seed
from ..interpreter.records import *  # noqa: F403 - the interpreter's record types, under the search's name
from ..interpreter.records import __all__ as _records_all

__all__ = [*_records_all, "restart_seed"]
