"""A local resume journal: append-only JSONL of finished restarts, fsync'd per batch.

It implements :class:`~.sinks.RestartSink`, the protocol the driver also
uses for a library store, so the driver treats the journal and a store alike.
Lines look like::

    {"search_id": "...", "event": "start", "task": "...", "config": {...}}
    {"search_id": "...", "event": "restart", "record": {...}}
    {"search_id": "...", "event": "end", "summary": {...}, "winner": 3}

A torn last line (the process died mid-write) is ignored on reading; every
complete line is a finished restart that a resume will not redo.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from ..interpreter.errors import NtptError
from ..interpreter.records import from_jsonable, new_search_id, to_jsonable


class Journal:
    """Append-only JSONL file of finished restarts, keyed by search id.

    Args:
        path: the journal file; created (with its folder) on first write.

    Example:
        >>> j = Journal("/tmp/ntpt-journal.jsonl")
        >>> sid = j.start_search("math", {"restarts": 4}, None)
        >>> j.log_restarts(sid, [{"index": 0, "status": "stopped"}])
        >>> sorted(j.finished_restarts(sid))
        [0]
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def start_search(self, task: str, config: dict[str, Any], search_id: Optional[str]) -> str:
        """Open (or reopen) the search ``search_id``; returns its id (a fresh one for ``None``)."""
        if search_id is None:
            search_id = new_search_id()
        self._append([{"search_id": search_id, "event": "start", "task": task, "config": config}])
        return search_id

    def finished_restarts(self, search_id: str) -> dict[int, dict[str, Any]]:
        """Restart index -> record for every restart of ``search_id`` already logged."""
        done: dict[int, dict[str, Any]] = {}
        for entry in self._read():
            if entry.get("search_id") == search_id and entry.get("event") == "restart":
                record = from_jsonable(entry["record"])
                done[int(record["index"])] = record
        return done

    def log_restarts(self, search_id: str, records: list[dict[str, Any]]) -> None:
        """Append finished restarts and fsync, so a crash right after loses none."""
        self._append([{"search_id": search_id, "event": "restart", "record": r} for r in records])

    def end_search(self, search_id: str, summary: dict[str, Any], winner: Optional[dict[str, Any]]) -> None:
        """Mark the search ended (a later resume still works; it appends more)."""
        index = None if winner is None else winner["index"]
        self._append([{"search_id": search_id, "event": "end", "summary": summary, "winner": index}])

    def _append(self, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(to_jsonable(e), separators=(",", ":")) + "\n" for e in entries)
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise NtptError(f"cannot append to search journal {str(self.path)!r}: {e.strerror}; pass a writable path") from None

    def _read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        entries = []
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a torn write from a crash: that restart simply is not finished
        return entries

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"
