"""The ``LibraryStore`` interface: programs, library versions and searches.

Every backend (``memory.py``, ``mlflow_store.py``) implements the abstract
methods below and passes the one conformance suite
(``tests/library_store/test_conformance.py``). The contracts are stated in the
docstrings; the suite checks them.

Data model:

- a *library version* is one immutable version of one ``@Learn`` network:
  ``NetState = {"signature": str, "state": {"w0": ndarray, "b0": ..., ...}}``
  plus lineage (task, search id, parent version) and string tags. Versions are
  numbered 1, 2, ... per network name and never change. The alias
  ``champion`` per name marks the current library;
- a *program record* is ``Program.to_dict()`` of a task's learned program plus
  its validation/test accuracy, the library version it was validated with
  (name -> version), search id, restart seed, hypers and the merge decision.
  Numbered per task; the alias ``champion`` per task marks the best one;
- a *search* is the record of one restart search: config, per-restart records
  (trajectories, status, programs), summary and winner. Only the search driver
  writes these;
- a task's *validation data* is the batch its merges were gated on, kept from
  its first merge so that later merges re-evaluate it from the store alone;
- an *evaluation* is every stored task's accuracy with the library champion at
  one point of a series (a lifetime: one evaluation after each merge), with
  the library and program versions it measured.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager as ContextManager
from typing import Any, Optional, Union

from ..interpreter.errors import NtptError
from ..interpreter.records import STATUSES, new_search_id
from .evaluate import Batch
from .merge import Evaluate
from .merging import merge_into
from .records import Evaluation, MergeOutcome, NetState, NetVersion, ProgramRecord

__all__ = [
    "CHAMPION", "Evaluation", "LibraryStore", "MergeOutcome", "NetState", "NetVersion", "ProgramRecord",
    "check_record", "new_search_id",
]
Version = Union[int, str, Mapping[str, int]]
CHAMPION = "champion"


def check_record(record: Mapping[str, Any]) -> None:
    """Raise :class:`NtptError` unless ``record`` is a restart record the store can log."""
    missing = [key for key in ("index", "seed", "status") if key not in record]
    if missing:
        raise NtptError(
            f"a restart record needs keys 'index', 'seed' and 'status', but {missing} are missing "
            f"(keys found: {sorted(record)}); fix: log the dicts the search driver builds"
        )
    if record["status"] not in STATUSES:
        raise NtptError(
            f"restart status must be one of {STATUSES}, but got {record['status']!r} "
            f"for restart {record['index']}; fix: map the worker's outcome onto these"
        )


class LibraryStore(abc.ABC):
    """Abstract store. Subclasses implement the abstract methods; the rest is shared.

    Example:
        >>> from ntpt_dist.library_store.memory import MemoryStore
        >>> store = MemoryStore()
        >>> v = store.add_net_version("net_0", {"signature": "f(img) -> digit", "state": {}})
        >>> store.set_champion("net_0", v)
        >>> store.load_library()["net_0"]["signature"]
        'f(img) -> digit'
    """

    uri: str = ""

    # ---- library versions -------------------------------------------------------------

    @abc.abstractmethod
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
        """Add a new immutable version of network ``name``; returns its number (1, 2, ... per name).

        Does not move the ``champion`` alias. The stored state is a copy: later
        changes to ``net`` do not reach the store.
        """

    @abc.abstractmethod
    def _get_net_version(self, name: str, version: int) -> NetVersion:
        """The stored version; :class:`NtptError` naming name and version if absent or unreadable."""

    @abc.abstractmethod
    def net_versions(self, name: str) -> list[int]:
        """All version numbers of ``name``, ascending; ``[]`` for an unknown name."""

    @abc.abstractmethod
    def champion_versions(self) -> dict[str, int]:
        """name -> version the ``champion`` alias points at, for every network that has one."""

    @abc.abstractmethod
    def _swap_champions(self, expected: Mapping[str, Optional[int]], new: Mapping[str, int]) -> bool:
        """Compare-and-set the champion aliases.

        If every ``name`` in ``new`` currently has alias ``expected[name]`` (None =
        no alias), point them at ``new[name]`` and return True; otherwise change
        nothing and return False.
        """

    # ---- programs ---------------------------------------------------------------------

    @abc.abstractmethod
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
        """Store ``program`` (a ``Program.to_dict()``) for ``task``; returns its version (1, 2, ... per task).

        Does not move the task's ``champion`` alias.
        """

    @abc.abstractmethod
    def _get_program(self, task: str, version: int) -> ProgramRecord:
        """The stored record; :class:`NtptError` naming task, version and location if absent or unreadable."""

    @abc.abstractmethod
    def program_versions(self, task: str) -> list[int]:
        """All program versions of ``task``, ascending; ``[]`` for an unknown task."""

    @abc.abstractmethod
    def program_champion(self, task: str) -> Optional[int]:
        """The version the task's ``champion`` alias points at, or None."""

    @abc.abstractmethod
    def set_program_champion(self, task: str, version: int) -> None:
        """Point the task's ``champion`` alias at ``version`` (which must exist)."""

    @abc.abstractmethod
    def tasks(self) -> list[str]:
        """Tasks that have a champion program, sorted."""

    # ---- merge bookkeeping ------------------------------------------------------------

    @abc.abstractmethod
    def _merge_lock(self) -> ContextManager[None]:
        """Serialises merges on this store where the backend can (see docs/store.md)."""

    @abc.abstractmethod
    def _record_merge(self, decision: Mapping[str, Any], search_id: Optional[str]) -> None:
        """Keep a merge decision (with its numbers) so :meth:`merges` can return it."""

    @abc.abstractmethod
    def merges(self, task: Optional[str] = None) -> list[dict[str, Any]]:
        """Recorded merge decisions (``MergeDecision.to_dict()`` plus ``search_id``), oldest first."""

    @abc.abstractmethod
    def _put_validation_data(self, task: str, batch: Batch) -> None:
        """Keep ``batch`` (name -> array) as the task's validation data; called once per task."""

    @abc.abstractmethod
    def validation_data(self, task: str) -> Optional[dict[str, Any]]:
        """The task's validation batch (name -> numpy array, a copy), or None if none is stored."""

    # ---- evaluations ------------------------------------------------------------------

    @abc.abstractmethod
    def _add_evaluation(self, evaluation: Evaluation) -> None:
        """Keep one evaluation (its series and step are new)."""

    @abc.abstractmethod
    def evaluations(self, series: Optional[str] = None) -> list[Evaluation]:
        """Recorded evaluations of ``series`` (None: of every series), ordered by series, then step."""

    # ---- searches (written by the search driver only) ---------------------------------

    @abc.abstractmethod
    def start_search(self, task: str, config: Mapping[str, Any], search_id: Optional[str] = None) -> str:
        """Open a search of ``task``; returns its id.

        With the id of an existing search of the same task this resumes it (its
        finished restarts stay); an existing id of another task is an
        :class:`NtptError`. A new explicit id is used as given.
        """

    @abc.abstractmethod
    def finished_restarts(self, search_id: str) -> dict[int, dict[str, Any]]:
        """index -> the last record logged for that restart (as logged, programs included)."""

    @abc.abstractmethod
    def log_restarts(self, search_id: str, records: list[Mapping[str, Any]]) -> None:
        """Log a batch of restart records (see :func:`check_record`); one write per batch where possible."""

    @abc.abstractmethod
    def end_search(self, search_id: str, summary: Mapping[str, Any], winner: Optional[Mapping[str, Any]]) -> None:
        """Close a search with its summary and winning restart record (or None)."""

    @abc.abstractmethod
    def get_search(self, search_id: str) -> dict[str, Any]:
        """``{"search_id", "task", "config", "status": "running"|"finished", "summary", "winner"}``."""

    # ---- shared behaviour ---------------------------------------------------------------

    def get_net_version(self, name: str, version: Union[int, str] = CHAMPION) -> NetVersion:
        """One version of a network; ``version="champion"`` follows the alias.

        Raises:
            NtptError: unknown name, version or alias, or an unreadable artifact.
        """
        if version == CHAMPION:
            champions = self.champion_versions()
            if name not in champions:
                raise NtptError(
                    f"network {name!r} has no champion version in store {self.uri}; champions exist for "
                    f"{sorted(champions)}; fix: merge a search that learns {name!r} or pass a version number"
                )
            version = champions[name]
        return self._get_net_version(name, int(version))

    def set_champion(self, name: str, version: int) -> None:
        """Point network ``name``'s champion alias at an existing ``version`` (e.g. to roll back).

        Raises:
            NtptError: the version does not exist.
        """
        if version not in self.net_versions(name):
            raise NtptError(
                f"network {name!r} has no version {version} in store {self.uri} "
                f"(versions: {self.net_versions(name)}); fix: pass one of those"
            )
        with self._merge_lock():
            for _ in range(10):
                current = self.champion_versions().get(name)
                if self._swap_champions({name: current}, {name: version}):
                    return
        raise NtptError(f"could not move the champion alias of {name!r}: it kept changing; fix: retry")

    def load_library(self, version: Version = CHAMPION) -> dict[str, NetState]:
        """The library as ``dict[name, NetState]``.

        Args:
            version: ``"champion"`` (the current library) or ``{name: version}``.

        Returns:
            name -> NetState (copies; changing them does not change the store).

        Example:
            >>> lib = store.load_library()                  # doctest: +SKIP
            >>> lib = store.load_library({"net_0": 3})      # doctest: +SKIP
        """
        if version == CHAMPION:
            version = self.champion_versions()
        if not isinstance(version, Mapping):
            raise NtptError(
                f"a library version is 'champion' or a dict name -> version number, but got {version!r}; "
                "fix: pass e.g. {'net_0': 2}"
            )
        return {name: self._get_net_version(name, int(v)).net for name, v in version.items()}

    def get_program(self, task: str, version: Union[int, str] = CHAMPION) -> ProgramRecord:
        """A stored program record; ``version="champion"`` follows the task's alias.

        Raises:
            NtptError: no such task/version, or its artifact is missing or corrupted.
        """
        if version == CHAMPION:
            champion = self.program_champion(task)
            if champion is None:
                raise NtptError(
                    f"task {task!r} has no champion program in store {self.uri}; tasks with one: "
                    f"{self.tasks()}; fix: run a search of {task!r} and merge its winner"
                )
            version = champion
        return self._get_program(task, int(version))

    def log_evaluation(
        self, series: str, accuracies: Mapping[str, float], *, split: str = "test", after: Optional[str] = None
    ) -> Evaluation:
        """Record every task's accuracy at the next step of ``series``, with the current versions.

        The store numbers the steps (1, 2, ... per series) and records the champion
        library and program versions at the time of the call, so each accuracy is
        tied to the library version that produced it.

        Args:
            series: the series' name (e.g. ``"lifetime-1a2b3c4d"``).
            accuracies: task -> accuracy in [0, 1].
            split: the data they were measured on.
            after: the task whose merge preceded this step.

        Returns:
            The recorded :class:`Evaluation`.

        Raises:
            NtptError: an accuracy outside [0, 1], or a series name other than ``[A-Za-z0-9_.:-]{1,100}``.

        Example:
            >>> from ntpt_dist.library_store.memory import MemoryStore
            >>> MemoryStore().log_evaluation("life", {"A": 0.5}).step
            1
        """
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,100}", series):
            raise NtptError(
                f"a series name is 1-100 letters, digits or '_.:-', but got {series!r}; fix: e.g. 'lifetime-1a2b3c4d'"
            )
        bad = {t: a for t, a in accuracies.items() if not 0.0 <= float(a) <= 1.0}
        if bad:
            raise NtptError(f"accuracies must lie in [0, 1], but got {bad}; fix: log fractions, not percentages")
        with self._merge_lock():  # one step number per call, also with concurrent writers
            step = 1 + max((e.step for e in self.evaluations(series)), default=0)
            programs = {t: v for t in sorted(accuracies) if (v := self.program_champion(t)) is not None}
            evaluation = Evaluation(
                series, step, {t: float(a) for t, a in sorted(accuracies.items())}, self.champion_versions(),
                programs, split, after,
            )
            self._add_evaluation(evaluation)
        return evaluation

    def merge(
        self,
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
        """Run the merge gate for a task's new program and apply the decision.

        Added networks always become champion; updated ones only if the gate
        accepts (see :mod:`.merge`). The earlier tasks re-evaluated are those
        whose champion program calls an updated network.

        Without ``evaluate`` the gate runs from the store alone
        (:class:`~.evaluate.StoreEvaluator`): the program is a real ``Program``
        (or its dict), only the networks it calls are offered and versioned, and
        every task is measured on the validation data the store keeps for it;
        ``val_data`` is kept at a task's first merge and must equal the kept batch
        afterwards (or be omitted). With ``evaluate`` the caller measures, and the
        offered networks are ``candidate_nets`` or all of the program's.

        The program is stored against the library
        it ends up with (its ``networks`` replaced accordingly, its ``val_acc``
        the gate's number for that library) and becomes the task's champion if
        the task has none or its ``val_acc`` is strictly higher (ties keep the incumbent).

        Concurrency: the decision and the alias moves happen under the
        backend's merge lock; where there is none (a remote server), the alias
        move is a compare-and-set and a lost race re-runs the gate against the
        new champions (up to ``retries`` times). Versions written by a lost
        attempt stay in the history without an alias.

        Args:
            task: task name.
            program: ``Program.to_dict()`` (or a Program).
            evaluate: ``evaluate(task, library) -> accuracy``, see :func:`.merge.merge`;
                None: the store's own gate (above).
            val_data: the task's validation batch (name -> array), for the store's own gate.
            candidate_nets: offered networks; default: all of ``program["networks"]`` (with
                the store's gate: those the program calls; others offered are ignored).
            test_data: with the store's gate, a test batch: the stored ``test_acc`` is then the
                program's accuracy on it with the networks it is stored with (not kept).
            test_acc, search_id, seed, hypers: stored with the program.
            epsilon: tolerated accuracy drop on earlier tasks.
            retries: compare-and-set attempts before giving up.

        Returns:
            A :class:`MergeOutcome`.

        Raises:
            NtptError: the aliases kept moving for ``retries`` attempts; the store's gate
                without validation data for a task it must measure, or ``val_data`` that
                differs from the kept batch.

        Example:
            >>> out = store.merge("ADD2x2", prog, val_data=val, search_id=sid)   # doctest: +SKIP
            >>> out.decision.accepted, out.library_version                      # doctest: +SKIP
        """
        return merge_into(
            self, task, program, evaluate, val_data=val_data, test_data=test_data, candidate_nets=candidate_nets,
            test_acc=test_acc, search_id=search_id, seed=seed, hypers=hypers, epsilon=epsilon, retries=retries,
        )

    def close(self) -> None:  # noqa: B027 - optional hook, not every backend holds resources
        """Release resources (connections, files). The default does nothing."""
