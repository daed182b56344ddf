"""Pure restart policy: when has a restart converged, when to give up on it, who wins.

It lives in the interpreter because the one training loop (``restarts.py``) that
both ``Model.train`` and the distributed search run asks it; ``search.policy``
re-exports it, so the dependency points one way (search -> interpreter).

Nothing here imports torch or ray; every function works on plain lists of
validation accuracies (one per evaluation, oldest first) so it can be tested on
synthetic trajectories and reused by any engine.

The paper (section 6.2) detects convergence "by a rapid increase in the accuracy
on a validation set (typically occurring after around 30k training examples)",
and only 2 of 100 MATH restarts converge. So the policy looks for a *jump*, not
for a threshold: a restart that creeps up slowly is a network improving under a
wrong program; a restart whose accuracy leaps has found the program.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Optional

from .errors import NtptError

__all__ = ["CONTINUE", "CONVERGED", "Decision", "JumpPolicy", "StopReason", "StopRule", "winner"]


class Decision(str, Enum):
    """What the policy says about one restart now (a ``str``: ``Decision.CONVERGED == "converged"``).

    Example:
        >>> Decision.STOP_BUDGET.reason, Decision.CONVERGED.reason
        ('budget', None)
    """

    CONTINUE = "continue"
    CONVERGED = "converged"
    STOP_BUDGET = "stop:budget"
    STOP_STALLED = "stop:stalled"

    @property
    def reason(self) -> Optional[str]:
        """Why a stopped restart stopped (``"budget"``, ``"stalled"``); ``None`` for the others."""
        return self.value.split(":", 1)[1] if self.value.startswith("stop:") else None

    def __str__(self) -> str:
        return self.value


CONTINUE = Decision.CONTINUE
CONVERGED = Decision.CONVERGED


class StopReason(str, Enum):
    """Why a whole search ended (a ``str``: ``StopReason.DONE == "done"``)."""

    DONE = "done"  # every restart finished
    FIRST_K = "first_k"  # StopRule.first_k restarts converged
    WALL_CLOCK = "wall_clock"  # StopRule.wall_clock_s passed
    INTERRUPTED = "interrupted"  # Ctrl-C: what finished is kept, the search can be resumed

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class JumpPolicy:
    """Decides, from one restart's validation-accuracy history, whether it goes on.

    A *jump* is a rise of at least ``delta`` within a window of ``window``
    evaluations that ends at an accuracy of at least ``floor``. After a jump the
    restart trains ``refine_evals`` more evaluations (the networks keep
    improving once the program is right, paper 6.2) and is then ``converged``.
    A restart whose accuracy reaches ``solved`` (default 1.0) counts as found
    too, jump or not: on small models a random initialisation can already be
    the right program, and a perfect relaxed model needs no jump to be believed.
    Without either it is stopped when it has trained ``budget_steps`` steps, or
    when its best accuracy has not improved by ``stall_tol`` for ``stall_evals``
    evaluations (``None`` turns stall detection off).

    Defaults and why (to be re-tuned on recorded MATH/maze traces):
        * ``delta=0.25``: a correct program lifts accuracy from the chance level
          of a wrong one (well under 0.5 on MATH-like tasks) to near the networks'
          accuracy; 0.25 is well above evaluation noise on a few hundred
          validation instances (std <= 0.035 at n=200).
        * ``window=10``: the jump is "rapid" but happens over a few hundred
          steps while the networks adapt; 10 evaluations span it at the
          worker's usual ``eval_every`` of 20-50 steps.
        * ``floor=0.5``: rules out rises between two wrong programs.
        * ``refine_evals=5``: a few evaluations after the jump let the chosen
          program settle before it is frozen and validated discretely.
        * ``budget_steps=3000``: MATH jumps after ~30k examples (paper), i.e.
          ~600 steps at batch 50; 5x that leaves room for late jumps.
        * ``solved=1.0``: only a perfect score skips the jump test; ``None`` turns it off.
        * ``stall_evals=None``: the paper's restarts sit on a plateau for a long
          time before jumping, so a plateau alone is not evidence of failure;
          turn it on (e.g. 40) where traces show dead restarts plateau early.

    Example:
        >>> p = JumpPolicy(delta=0.3, window=3, floor=0.8, refine_evals=1)
        >>> p.jumped([0.1, 0.1, 0.2, 0.9, 0.95])
        3
        >>> p.decide([0.1, 0.1, 0.2, 0.9, 0.95], steps=250).value
        'converged'
    """

    delta: float = 0.25
    window: int = 10
    floor: float = 0.5
    refine_evals: int = 5
    budget_steps: int = 3000
    stall_evals: Optional[int] = None
    stall_tol: float = 0.01
    solved: Optional[float] = 1.0

    def __post_init__(self) -> None:
        _require(0 < self.delta <= 1, "delta", self.delta, "a rise in (0, 1]")
        _require(self.window >= 1, "window", self.window, "an integer >= 1")
        _require(0 <= self.floor <= 1, "floor", self.floor, "an accuracy in [0, 1]")
        _require(self.refine_evals >= 0, "refine_evals", self.refine_evals, "an integer >= 0")
        _require(self.budget_steps >= 1, "budget_steps", self.budget_steps, "an integer >= 1")
        if self.solved is not None:
            _require(0 < self.solved <= 1, "solved", self.solved, "None or an accuracy in (0, 1]")
        if self.stall_evals is not None:
            _require(self.stall_evals >= 1, "stall_evals", self.stall_evals, "None or an integer >= 1")

    def jumped(self, history: Sequence[float]) -> Optional[int]:
        """The index of the first evaluation that completes a jump, or ``None``.

        Args:
            history: validation accuracy at each evaluation, oldest first.

        Returns:
            ``i`` such that ``history[i] >= floor`` and
            ``history[i] - min(history[i - window .. i]) >= delta``, the smallest
            such ``i``; ``None`` if there is none.

        Example:
            >>> JumpPolicy(delta=0.3, window=2, floor=0.5).jumped([0.1, 0.2, 0.6])
            2
        """
        for i, acc in enumerate(history):
            if acc < self.floor:
                continue
            low = min(history[max(0, i - self.window) : i + 1])
            if acc - low >= self.delta - 1e-12:
                return i
        return None

    def found(self, history: Sequence[float]) -> Optional[int]:
        """The index of the first evaluation where the program counts as found (jump or ``solved``).

        Example:
            >>> JumpPolicy().found([1.0, 1.0]), JumpPolicy().jumped([1.0, 1.0])
            (0, None)
        """
        jump = self.jumped(history)
        if self.solved is not None:
            for i, acc in enumerate(history[: len(history) if jump is None else jump]):
                if acc >= self.solved - 1e-12:
                    return i
        return jump

    def stalled(self, history: Sequence[float]) -> bool:
        """Whether the best accuracy has not improved for ``stall_evals`` evaluations.

        Example:
            >>> JumpPolicy(stall_evals=3).stalled([0.2, 0.3, 0.3, 0.3, 0.3])
            True
        """
        if self.stall_evals is None or len(history) <= self.stall_evals:
            return False
        before = max(history[: -self.stall_evals])
        return max(history[-self.stall_evals :]) < before + self.stall_tol

    def decide(self, history: Sequence[float], steps: int) -> Decision:
        """What to do with a restart now: continue, converged, or ``stop:<reason>``.

        Args:
            history: validation accuracy at each evaluation so far, oldest first.
            steps: training steps the restart has done.

        Returns:
            a :class:`Decision`: ``CONTINUE``, ``CONVERGED`` (jumped or solved, then
            refined for ``refine_evals`` evaluations), ``STOP_BUDGET`` (no jump within
            ``budget_steps``) or ``STOP_STALLED``.

        Example:
            >>> JumpPolicy(budget_steps=100).decide([0.1, 0.1], steps=100).value
            'stop:budget'
        """
        jump = self.found(history)
        if jump is not None:
            # a converged restart is never cut short by the budget: refine it
            return Decision.CONVERGED if len(history) - 1 - jump >= self.refine_evals else Decision.CONTINUE
        if steps >= self.budget_steps:
            return Decision.STOP_BUDGET
        if self.stalled(history):
            return Decision.STOP_STALLED
        return Decision.CONTINUE

    def should_stop(self, history: Sequence[float], steps: int) -> Optional[str]:
        """The reason to stop a restart that has not converged (``"budget"``, ``"stalled"``), else ``None``.

        The form docs/design.md names; :meth:`decide` is the full decision.

        Example:
            >>> JumpPolicy(budget_steps=100).should_stop([0.1], steps=100)
            'budget'
        """
        return self.decide(history, steps).reason

    def to_dict(self) -> dict[str, Any]:
        """The policy's settings, for logging with a search."""
        return dict(self.__dict__)


def winner(records: Iterable[Any]) -> Optional[Any]:
    """The best converged restart: highest discrete-program validation accuracy.

    The one winner rule: ``Model.train``, the search and its progress line all use it.
    Ties go to the earlier jump (fewer steps to find the program), then to the
    lower restart index, so the choice never depends on arrival order.

    Args:
        records: ``RestartRecord``s (``records.py``), or anything with their
            ``status``, ``program_val_acc``, ``jump_step`` and ``index`` attributes.

    Returns:
        the winning record, or ``None`` if no restart converged with a program.

    Example:
        >>> from ntpt_dist.interpreter.records import RestartRecord
        >>> winner([RestartRecord(0, 5, "converged", program_val_acc=0.9, jump_step=400),
        ...         RestartRecord(1, 6, "converged", program_val_acc=0.9, jump_step=200)]).index
        1
    """
    candidates = [r for r in records if r.status == CONVERGED and r.program_val_acc is not None]
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda r: (-r.program_val_acc, r.jump_step if r.jump_step is not None else 1 << 62, r.index),
    )


@dataclass(frozen=True)
class StopRule:
    """When a whole search ends (besides running out of restarts).

    Args:
        first_k: stop once this many restarts have converged (``None``: run all).
        max_restarts: never start more than this many restarts (``None``: the
            search's ``restarts`` argument decides).
        wall_clock_s: stop after this many seconds (``None``: no limit).

    Example:
        >>> StopRule(first_k=1).reason(finished=10, converged=1, elapsed_s=5.0)
        'first_k'
    """

    first_k: Optional[int] = None
    max_restarts: Optional[int] = None
    wall_clock_s: Optional[float] = None

    def __post_init__(self) -> None:
        if self.first_k is not None:
            _require(self.first_k >= 1, "first_k", self.first_k, "None or an integer >= 1")
        if self.max_restarts is not None:
            _require(self.max_restarts >= 0, "max_restarts", self.max_restarts, "None or an integer >= 0")
        if self.wall_clock_s is not None:
            _require(self.wall_clock_s > 0, "wall_clock_s", self.wall_clock_s, "None or seconds > 0")

    def reason(self, finished: int, converged: int, elapsed_s: float) -> Optional[StopReason]:
        """Why the search should end now (``StopReason.FIRST_K``, ``StopReason.WALL_CLOCK``), or ``None``.

        Running out of restarts is the driver's business (it knows how many it
        has handed out), so ``max_restarts`` only caps ``restarts`` there.
        """
        if self.first_k is not None and converged >= self.first_k:
            return StopReason.FIRST_K
        if self.wall_clock_s is not None and elapsed_s >= self.wall_clock_s:
            return StopReason.WALL_CLOCK
        return None

    def to_dict(self) -> dict[str, Any]:
        """The rule's settings, for logging with a search."""
        return dict(self.__dict__)


def _require(ok: bool, name: str, value: Any, expected: str) -> None:
    if not ok:
        raise NtptError(f"{name} must be {expected}, but got {name}={value!r}; pass a value in that range")
