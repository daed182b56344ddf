"""The store's records: frozen dataclasses every backend returns and every caller reads the same way.

See ``base.py`` for the data model they belong to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from ..interpreter.errors import NtptError
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


def program_record(task: str, version: int, record: Any, what: str) -> ProgramRecord:
    """The :class:`ProgramRecord` in a decoded program blob, each field checked for its type.

    A store may hand back anything (a planted or damaged blob); a field that is missing or
    of the wrong type is an NtptError naming the artifact, never a KeyError/TypeError later.

    Raises:
        NtptError: naming ``what``, the field and the value found.

    Example:
        >>> r = program_record("A", 1, {"program": {"source": "p = Param(2)\\n"}, "val_acc": 0.5}, "blob")
        >>> r.val_acc, r.library_version
        (0.5, {})
    """
    def bad(field_: str, rule: str, found: Any) -> NtptError:
        return NtptError(
            f"{what} is corrupted: its {field_!r} must be {rule}, but it is {found!r:.200}; "
            "fix: re-run the search that wrote it and merge again, or point the task's champion alias at another version"
        )

    if not isinstance(record, dict):
        raise bad("record", "a dict", type(record).__name__)
    program, val_acc = record.get("program"), record.get("val_acc")
    if not isinstance(program, dict):
        raise bad("program", "a dict (Program.to_dict())", "missing" if program is None else type(program).__name__)
    if isinstance(val_acc, bool) or not isinstance(val_acc, (int, float)) or not 0.0 <= val_acc <= 1.0:
        raise bad("val_acc", "an accuracy in [0, 1]", "missing" if "val_acc" not in record else val_acc)
    test_acc = record.get("test_acc")
    if test_acc is not None and (isinstance(test_acc, bool) or not isinstance(test_acc, (int, float))):
        raise bad("test_acc", "a number or None", test_acc)
    for key in ("library_version", "hypers"):
        if not isinstance(record.get(key) or {}, dict):
            raise bad(key, "a dict", record[key])
    merge = record.get("merge")
    if merge is not None and not isinstance(merge, dict):
        raise bad("merge", "a dict or None", merge)
    return ProgramRecord(
        task, version, program, float(val_acc), None if test_acc is None else float(test_acc),
        dict(record.get("library_version") or {}), record.get("search_id"), record.get("seed"),
        dict(record.get("hypers") or {}), merge,
    )


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
