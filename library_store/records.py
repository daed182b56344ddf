"""The store's records: frozen dataclasses every backend returns and every caller reads the same way.

See ``base.py`` for the data model they belong to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from .merge import MergeDecision

NetState = dict[str, Any]


@dataclass(frozen=True)
class NetVersion:
    """One immutable version of one library network."""

    name: str
    version: int
    net: NetState
    task: Optional[str] = None
    search_id: Optional[str] = None
    parent: Optional[int] = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProgramRecord:
    """One stored program of a task with the numbers it was stored with."""

    task: str
    version: int
    program: dict[str, Any]
    val_acc: float
    test_acc: Optional[float] = None
    library_version: dict[str, int] = field(default_factory=dict)
    search_id: Optional[str] = None
    seed: Optional[int] = None
    hypers: dict[str, Any] = field(default_factory=dict)
    merge: Optional[dict[str, Any]] = None


@dataclass(frozen=True)
class Evaluation:
    """Every stored task's accuracy at one step of a series, with what was measured.

    Attributes:
        series: the series' name (e.g. one lifetime).
        step: 1, 2, ... within the series (a lifetime: the merge index).
        accuracies: task -> accuracy of its champion program with the library champion.
        library_version: network name -> champion version at that step.
        programs: task -> champion program version at that step.
        split: the data the accuracies were measured on (``"test"``).
        after: the task whose merge preceded this step, if any.
    """

    series: str
    step: int
    accuracies: dict[str, float]
    library_version: dict[str, int]
    programs: dict[str, int]
    split: str = "test"
    after: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return asdict(self)


@dataclass(frozen=True)
class MergeOutcome:
    """What :meth:`LibraryStore.merge` did: the gate's decision and what it wrote."""

    decision: MergeDecision
    program: ProgramRecord
    library_version: dict[str, int]
    new_versions: dict[str, int]
    attempts: int
