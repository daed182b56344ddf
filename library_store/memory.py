"""In-memory ``LibraryStore``: the default for tests and notebooks; nothing persists.

Every value is deep-copied on the way in and out, so a caller can never change
a stored version by mutating what it passed or got back. One re-entrant lock
guards all state, so merges from several threads are serialised.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager as ContextManager
from typing import Any, Optional

from ..interpreter.errors import NtptError
from .base import Evaluation, LibraryStore, NetState, NetVersion, ProgramRecord, check_record, new_search_id
from .naming import check_net_name, check_task


class MemoryStore(LibraryStore):
    """A store in a Python dict (``uri="memory://"``).

    Example:
        >>> store = MemoryStore()
        >>> sid = store.start_search("MATH", {"restarts": 4})
        >>> store.log_restarts(sid, [{"index": 0, "seed": 7, "status": "stopped"}])
        >>> sorted(store.finished_restarts(sid))
        [0]
    """

    def __init__(self) -> None:
        self.uri = "memory://"
        self._lock = threading.RLock()
        self._nets: dict[str, list[NetVersion]] = {}
        self._net_alias: dict[str, int] = {}
        self._programs: dict[str, list[ProgramRecord]] = {}
        self._program_alias: dict[str, int] = {}
        self._merges: list[dict[str, Any]] = []
        self._validation: dict[str, dict[str, Any]] = {}
        self._evaluations: list[Evaluation] = []
        self._searches: dict[str, dict[str, Any]] = {}

    # ---- library versions

    def add_net_version(
        self,
        name: str,
        net: NetState,
        *,
        task: Optional[str] = None,
        search_id: Optional[str] = None,
        parent: Optional[int] = None,
        tags: Optional[Mapping[str, str]] = None,
    ) -> int:
        check_net_name(name)  # the MLflow store's rule, so a name is refused by every backend or by none
        with self._lock:
            versions = self._nets.setdefault(name, [])
            version = len(versions) + 1
            versions.append(
                NetVersion(name, version, copy.deepcopy(dict(net)), task, search_id, parent, dict(tags or {}))
            )
            return version

    def _get_net_version(self, name: str, version: int) -> NetVersion:
        with self._lock:
            versions = self._nets.get(name, [])
            if not 1 <= version <= len(versions):
                raise NtptError(
                    f"network {name!r} version {version} is not in store {self.uri} "
                    f"(versions: {self.net_versions(name)}); fix: pass one of those or 'champion'"
                )
            return copy.deepcopy(versions[version - 1])

    def net_versions(self, name: str) -> list[int]:
        with self._lock:
            return [v.version for v in self._nets.get(name, [])]

    def champion_versions(self) -> dict[str, int]:
        with self._lock:
            return dict(self._net_alias)

    def _swap_champions(self, expected: Mapping[str, Optional[int]], new: Mapping[str, int]) -> bool:
        with self._lock:
            if any(self._net_alias.get(name) != expected.get(name) for name in new):
                return False
            self._net_alias.update(new)
            return True

    # ---- programs

    def add_program(
        self,
        task: str,
        program: Mapping[str, Any],
        *,
        val_acc: float,
        test_acc: Optional[float] = None,
        library_version: Optional[Mapping[str, int]] = None,
        search_id: Optional[str] = None,
        seed: Optional[int] = None,
        hypers: Optional[Mapping[str, Any]] = None,
        merge: Optional[Mapping[str, Any]] = None,
    ) -> int:
        check_task(task)  # the MLflow store's name rule, so no name is kept by one backend only
        with self._lock:
            records = self._programs.setdefault(task, [])
            version = len(records) + 1
            records.append(
                ProgramRecord(
                    task, version, copy.deepcopy(dict(program)), float(val_acc),
                    None if test_acc is None else float(test_acc), dict(library_version or {}), search_id,
                    seed, copy.deepcopy(dict(hypers or {})), copy.deepcopy(dict(merge)) if merge else None,
                )
            )
            return version

    def _get_program(self, task: str, version: int) -> ProgramRecord:
        check_task(task)
        with self._lock:
            records = self._programs.get(task, [])
            if not 1 <= version <= len(records):
                raise NtptError(
                    f"task {task!r} has no program version {version} in store {self.uri} "
                    f"(versions: {self.program_versions(task)}); fix: pass one of those or 'champion'"
                )
            return copy.deepcopy(records[version - 1])

    def program_versions(self, task: str) -> list[int]:
        check_task(task)
        with self._lock:
            return [r.version for r in self._programs.get(task, [])]

    def program_champion(self, task: str) -> Optional[int]:
        check_task(task)
        with self._lock:
            return self._program_alias.get(task)

    def set_program_champion(self, task: str, version: int) -> None:
        check_task(task)
        with self._lock:
            self._get_program(task, version)
            self._program_alias[task] = version

    def tasks(self) -> list[str]:
        with self._lock:
            return sorted(self._program_alias)

    # ---- merges

    def _merge_lock(self) -> ContextManager[None]:
        return self._lock

    def _record_merge(self, decision: Mapping[str, Any], search_id: Optional[str]) -> None:
        with self._lock:
            self._merges.append({**copy.deepcopy(dict(decision)), "search_id": search_id})

    def merges(self, task: Optional[str] = None) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(m) for m in self._merges if task is None or m["task"] == task]

    def _put_validation_data(self, task: str, batch: Mapping[str, Any]) -> None:
        check_task(task)
        with self._lock:
            self._validation[task] = copy.deepcopy(dict(batch))

    def validation_data(self, task: str) -> Optional[dict[str, Any]]:
        check_task(task)
        with self._lock:
            found = self._validation.get(task)
            return None if found is None else copy.deepcopy(found)

    # ---- evaluations

    def _add_evaluation(self, evaluation: Evaluation) -> None:
        with self._lock:
            self._evaluations.append(copy.deepcopy(evaluation))

    def evaluations(self, series: Optional[str] = None) -> list[Evaluation]:
        with self._lock:
            found = [e for e in self._evaluations if series is None or e.series == series]
            return copy.deepcopy(sorted(found, key=lambda e: (e.series, e.step)))

    # ---- searches

    def start_search(self, task: str, config: Mapping[str, Any], search_id: Optional[str] = None) -> str:
        check_task(task)
        with self._lock:
            if search_id in self._searches:
                found = self._searches[search_id]["task"]
                if found != task:
                    raise NtptError(
                        f"search {search_id!r} belongs to task {found!r}, not {task!r}; "
                        "fix: resume it with its own task or pass search_id=None for a new search"
                    )
                self._searches[search_id]["status"] = "running"
                return search_id
            search_id = search_id or new_search_id()
            self._searches[search_id] = {
                "search_id": search_id, "task": task, "config": copy.deepcopy(dict(config)),
                "status": "running", "summary": None, "winner": None, "records": {},
            }
            return search_id

    def _search(self, search_id: str) -> dict[str, Any]:
        if search_id not in self._searches:
            raise NtptError(
                f"search {search_id!r} is not in store {self.uri}; fix: start it with start_search(task, config)"
            )
        return self._searches[search_id]

    def finished_restarts(self, search_id: str) -> dict[int, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._search(search_id)["records"])

    def log_restarts(self, search_id: str, records: list[Mapping[str, Any]]) -> None:
        for record in records:
            check_record(record)
        with self._lock:
            stored = self._search(search_id)["records"]
            for record in records:
                stored[int(record["index"])] = copy.deepcopy(dict(record))

    def end_search(self, search_id: str, summary: Mapping[str, Any], winner: Optional[Mapping[str, Any]]) -> None:
        with self._lock:
            search = self._search(search_id)
            search.update(status="finished", summary=copy.deepcopy(dict(summary)),
                          winner=copy.deepcopy(dict(winner)) if winner else None)

    def get_search(self, search_id: str) -> dict[str, Any]:
        with self._lock:
            search = self._search(search_id)
            return copy.deepcopy({k: v for k, v in search.items() if k != "records"})
