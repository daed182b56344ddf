"""Where a search's records go: the one :class:`RestartSink` protocol.

The driver writes every finished restart to each sink it was given (a local
:class:`~.journal.Journal`, a library store) and reads them back to resume.
Sinks speak plain data: restart records in their dict form
(``RestartRecord.to_dict()``, JSON-able except a program's numpy arrays), so a
store needs no import of the search's types; the driver converts at this
boundary. The search id is minted by the driver (``records.new_search_id``)
and handed to every sink. One conformance suite
(``tests/search/test_sink_conformance.py``) runs against every implementation.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, runtime_checkable

__all__ = ["RestartSink"]


@runtime_checkable
class RestartSink(Protocol):
    """What the search driver needs from a journal or a library store.

    Contract:
        * ``start_search(task, config, search_id)`` opens (or reopens) the search
          ``search_id`` and returns that id; ``config`` is JSON-safe.
        * ``log_restarts(search_id, records)`` makes each record durable; a record
          is logged at most once per search (the driver never sends one twice).
        * ``finished_restarts(search_id)`` returns ``{index: record}`` for every
          restart logged, as dicts equal to what was logged (numpy arrays exactly);
          ``{}`` for a search it has not seen.
        * ``end_search(search_id, summary, winner)`` marks it ended (``winner`` a
          record dict or ``None``); a later resume may reopen it and log more.
    """

    def start_search(self, task: str, config: dict[str, Any], search_id: Optional[str]) -> str: ...

    def finished_restarts(self, search_id: str) -> dict[int, dict[str, Any]]: ...

    def log_restarts(self, search_id: str, records: list[dict[str, Any]]) -> None: ...

    def end_search(self, search_id: str, summary: dict[str, Any], winner: Optional[dict[str, Any]]) -> None: ...
