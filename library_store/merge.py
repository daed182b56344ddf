"""The merge gate: may a task's fine-tuned networks replace the library's champions?

Pure: it reads nothing and writes nothing. The caller supplies ``evaluate(task,
library) -> accuracy``, which re-runs a task's stored champion program (for the
new task: its freshly learned program) with the given library swapped in, on
that task's validation data. The store applies the decision (see
``LibraryStore.merge``).

The rule (the paper's lifelong setting, with the regression check made explicit):

- networks whose name is not in the library yet are *added*: no earlier task
  calls them, so they cannot regress anything;
- the *updated* networks (names already in the library) become champion only if
  the new task's accuracy with them is strictly higher than with the current
  champions and no earlier task loses more than ``epsilon`` accuracy;
- earlier tasks that gain accuracy are recorded as reverse transfer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..interpreter.errors import NtptError

Library = Mapping[str, Mapping[str, Any]]
Evaluate = Callable[[str, dict], float]


@dataclass(frozen=True)
class MergeDecision:
    """The gate's verdict with every number it used.

    Attributes:
        task: the task whose networks were offered.
        accepted: whether the updated networks became champion (added ones always do).
        reason: one sentence saying why, with the numbers.
        epsilon: the largest tolerated accuracy drop on an earlier task.
        added: names new to the library.
        updated: names already in the library that were offered.
        new_task: ``{"before": acc with current champions, "after": acc with candidates}``.
        earlier: per earlier task ``{"before", "after", "delta"}``.
        regressions: earlier tasks whose drop exceeds ``epsilon``.
        reverse_transfer: earlier tasks that improved, with the gain.
    """

    task: str
    accepted: bool
    reason: str
    epsilon: float
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    new_task: dict[str, float] = field(default_factory=dict)
    earlier: dict[str, dict[str, float]] = field(default_factory=dict)
    regressions: list[str] = field(default_factory=list)
    reverse_transfer: dict[str, float] = field(default_factory=dict)

    @property
    def val_acc(self) -> float:
        """The new task's validation accuracy with the library it ends up stored against."""
        return self.new_task["after"] if self.accepted else self.new_task["before"]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (what the store records)."""
        return asdict(self)


def merge(
    task: str,
    candidate_nets: Library,
    evaluate: Evaluate,
    epsilon: float = 0.01,
    *,
    champion: Library | None = None,
    earlier_tasks: Sequence[str] = (),
) -> MergeDecision:
    """Decide whether ``candidate_nets`` may become the library's champions.

    Args:
        task: the task the candidates were trained on.
        candidate_nets: name -> NetState offered by the task's winning program.
        evaluate: ``evaluate(task, library) -> accuracy`` in [0, 1] (see module doc).
        epsilon: largest accuracy drop tolerated on any earlier task.
        champion: the current library (name -> NetState); empty for a fresh store.
        earlier_tasks: tasks with a stored champion program (``task`` itself is skipped).

    Returns:
        A :class:`MergeDecision`.

    Raises:
        NtptError: ``epsilon`` is negative or ``evaluate`` returned a non-accuracy.

    Example:
        >>> acc = {("A", "old"): 0.9, ("A", "new"): 0.91, ("B", "old"): 0.5, ("B", "new"): 0.8}
        >>> ev = lambda t, lib: acc[(t, lib["net"]["state"])]
        >>> d = merge("B", {"net": {"signature": "s", "state": "new"}}, ev,
        ...           champion={"net": {"signature": "s", "state": "old"}}, earlier_tasks=["A"])
        >>> d.accepted, d.reverse_transfer
        (True, {'A': 0.010000000000000009})
    """
    if not epsilon >= 0:
        raise NtptError(f"merge epsilon must be >= 0, but got epsilon={epsilon!r}; fix: pass e.g. epsilon=0.01")
    champion = dict(champion or {})
    added = sorted(n for n in candidate_nets if n not in champion)
    updated = sorted(n for n in candidate_nets if n in champion)
    # The baseline already contains the added networks: they are accepted regardless,
    # so the gate measures only what the updates change.
    baseline = {**champion, **{n: candidate_nets[n] for n in added}}
    candidate = {**baseline, **{n: candidate_nets[n] for n in updated}}

    def score(name: str, library: dict) -> float:
        value = float(evaluate(name, library))
        if not 0.0 <= value <= 1.0:
            raise NtptError(
                f"evaluate({name!r}, library) must return an accuracy in [0, 1], but got {value!r}; "
                "fix: return the fraction of validation instances predicted exactly"
            )
        return value

    before = score(task, baseline)
    if not updated:
        return MergeDecision(
            task, True, f"no library network updated; added {added}", epsilon, added, updated,
            {"before": before, "after": before},
        )
    after = score(task, candidate)
    earlier: dict[str, dict[str, float]] = {}
    for other in earlier_tasks:
        if other == task:
            continue
        old, new = score(other, baseline), score(other, candidate)
        earlier[other] = {"before": old, "after": new, "delta": new - old}
    regressions = sorted(t for t, e in earlier.items() if e["delta"] < -epsilon)
    transfer = {t: e["delta"] for t, e in earlier.items() if e["delta"] > 0}
    if regressions:
        worst = min(regressions, key=lambda t: earlier[t]["delta"])
        reason = (
            f"rejected: {len(regressions)} earlier task(s) drop by more than epsilon={epsilon}, worst "
            f"{worst!r} {earlier[worst]['before']:.4f} -> {earlier[worst]['after']:.4f}"
        )
    elif after <= before:
        reason = f"rejected: {task!r} does not improve with the updated networks ({before:.4f} -> {after:.4f})"
    else:
        reason = f"accepted: {task!r} improves {before:.4f} -> {after:.4f}; no earlier task drops by more than {epsilon}"
    accepted = reason.startswith("accepted")
    return MergeDecision(
        task, accepted, reason, epsilon, added, updated,
        {"before": before, "after": after}, earlier, regressions, transfer,
    )
