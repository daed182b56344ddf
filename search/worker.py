"""The search engine on one device: a block of restart slots kept busy.

:class:`BlockWorker` owns a ``RestartBlock`` (``interpreter.engine``), takes
restart assignments ``(index, seed)``, trains every slot in lock step,
evaluates validation accuracy every ``eval_every`` steps, asks the
:class:`~.policy.JumpPolicy` what to do with each restart, and when one
finishes turns it into a record and refills its slot from the queue. It is
plain Python (no Ray): ``ray_backend`` wraps it in an actor, tests drive it
directly.

Evaluations happen when a restart's own step count is a multiple of
``eval_every`` (slots are only refilled on those boundaries), so a restart's
trajectory is the same whether it ran alone, in a block or on another actor.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from .policy import CONTINUE, CONVERGED, JumpPolicy
from .records import make_record


@dataclass(frozen=True)
class ModelSpec:
    """What travels to a worker instead of a compiled model: source and hypers.

    Example:
        >>> spec = ModelSpec.of(("x = Input(2)\\ny = Output(2)\\ny.set_to(x)\\n", {}))
        >>> spec.hypers
        {}
    """

    source: str
    hypers: Mapping[str, int] = field(default_factory=dict)
    filename: str = "<string>"
    listing: Optional[Callable] = None

    @classmethod
    def of(cls, model: Any) -> ModelSpec:
        """A spec from a ``Model``, a spec, a ``(source, hypers)`` pair or a source string."""
        if isinstance(model, ModelSpec):
            return model
        if isinstance(model, str):
            return cls(model, {})
        if isinstance(model, tuple) and len(model) == 2:
            return cls(model[0], dict(model[1] or {}))
        if hasattr(model, "source") and hasattr(model, "hypers"):
            return cls(model.source, dict(model.hypers), getattr(model, "filename", "<string>"), getattr(model, "listing", None))
        from ..interpreter.errors import NtptError

        raise NtptError(
            f"a search needs a compiled Model, a (source, hypers) pair or source text, but got {type(model).__name__}; "
            "compile it with ntpt_dist.compile_source(text, hypers)"
        )

    def compile(self):
        """The compiled ``Model`` (done in the worker's process)."""
        from ..interpreter.model import compile_source

        return compile_source(self.source, self.hypers, filename=self.filename, listing=self.listing)


@dataclass(frozen=True)
class Assignment:
    """One restart to run: its index, seed, how often it crashed, and whether to run it alone."""

    index: int
    seed: int
    attempt: int = 0
    solo: bool = False


BlockFactory = Callable[..., Any]


def real_block(model_spec: ModelSpec, data: Mapping[str, Any], slots: int, config: Any, device: str, library: Any):
    """Build an ``interpreter.engine.RestartBlock`` (the default block factory)."""
    from ..interpreter.engine import RestartBlock, TrainConfig

    if config is None:
        config = TrainConfig()
    elif isinstance(config, Mapping):
        config = TrainConfig(**config)
    return RestartBlock(model_spec.compile(), data, slots=slots, config=config, device=device, library=library)


@dataclass
class _Live:
    assignment: Assignment
    history: list[float] = field(default_factory=list)
    trajectory: list[list[float]] = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)


class _Lane:
    """One block and which restart sits in each of its slots."""

    def __init__(self, block: Any, slots: int):
        self.block = block
        self.live: list[Optional[_Live]] = [None] * slots
        self._val: Any = None

    def accuracy(self, val_data: Any) -> Any:
        """Validation accuracy per slot; the data is converted for the block once
        (with frozen networks' outputs computed once: see ``RestartBlock.batch``)."""
        if self._val is None:
            prepare = getattr(self.block, "batch", None)
            self._val = val_data if prepare is None else prepare(val_data)
        return self.block.accuracy(self._val)

    def free(self) -> list[int]:
        return [s for s, x in enumerate(self.live) if x is None]

    def busy(self) -> list[int]:
        return [s for s, x in enumerate(self.live) if x is not None]


class BlockWorker:
    """Runs restarts in a block of slots on one device, refilling slots as restarts finish.

    Args:
        model_spec: a ``Model``, :class:`ModelSpec` or ``(source, hypers)``;
            compiled here, so a Ray actor compiles its own copy.
        data: training batch dict (``name -> array``).
        slots: restarts trained at once in the block.
        config: ``TrainConfig`` or a dict of its keyword arguments.
        device: torch device for the block.
        val_data: validation batch; defaults to ``data``.
        policy: the :class:`JumpPolicy` (defaults to ``JumpPolicy()``).
        eval_every: training steps between validation evaluations.
        library: neural library to initialise shared networks from.
        name: label written into records' ``actor`` field.
        block_factory: ``f(model_spec, data, slots, config, device, library) -> block``;
            defaults to :func:`real_block` (tests pass a fake).

    Example:
        >>> w = BlockWorker(model, data, slots=4)                        # doctest: +SKIP
        >>> w.assign([Assignment(0, 11), Assignment(1, 12)])             # doctest: +SKIP
        >>> out = w.run(seconds=5.0)                                     # doctest: +SKIP
        >>> [r["status"] for r in out["records"]]                        # doctest: +SKIP
    """

    def __init__(
        self,
        model_spec: Any,
        data: Mapping[str, Any],
        slots: int = 8,
        config: Any = None,
        device: str = "cpu",
        *,
        val_data: Optional[Mapping[str, Any]] = None,
        policy: Optional[JumpPolicy] = None,
        eval_every: int = 25,
        library: Any = None,
        name: str = "local",
        block_factory: Optional[BlockFactory] = None,
    ):
        assert slots >= 1 and eval_every >= 1
        self.spec = ModelSpec.of(model_spec)
        self.data = data
        self.val_data = data if val_data is None else val_data
        self.slots = slots
        self.config = config
        self.device = device
        self.policy = policy or JumpPolicy()
        self.eval_every = eval_every
        self.library = library
        self.name = name
        self._factory = block_factory or real_block
        self._queue: list[Assignment] = []
        self._main: Optional[_Lane] = None
        self._solo: list[_Lane] = []
        self.slot_steps = 0  # slots x steps stepped, and how many of them trained a restart:
        self.busy_slot_steps = 0  # their ratio is how busy the blocks were kept
        self.train_s = 0.0  # seconds spent in training steps and evaluations

    # ----------------------------------------------------------- public API

    def assign(self, assignments: list[Assignment]) -> None:
        """Queue restarts; they start as slots free up (solo ones in their own 1-slot block)."""
        self._queue.extend(assignments)

    def running(self) -> list[int]:
        """Indices of restarts training in a slot here now."""
        lanes = ([self._main] if self._main else []) + self._solo
        return [x.assignment.index for lane in lanes for x in lane.live if x is not None]

    def in_flight(self) -> list[int]:
        """Indices of restarts queued or running here."""
        return self.running() + [a.index for a in self._queue]

    def run(self, seconds: float = 2.0) -> dict[str, list]:
        """Train for about ``seconds`` (at least one evaluation round) and report what finished.

        Returns:
            ``{"records": [...], "crashes": [...], "in_flight": [...], "slot_steps": [busy, all],
            "train_s": seconds}``: finished restart records; crash reports ``{"index",
            "seed", "attempt", "error", "scope"}`` for restarts whose code raised
            (the driver retries them); indices still queued or running here; and,
            since this worker started, the slot-steps it stepped and how many of
            them trained a restart, and the seconds it spent in training steps and
            evaluations (the rest of its time is records, set-up and waiting).
        """
        records: list[dict] = []
        crashes: list[dict] = []
        deadline = time.perf_counter() + seconds
        if self._main is None:
            # built on the first call (the driver's start-up ping): compiling the model, converting the
            # data and running a frozen library over it are start-up, not time taken from restarts
            self._main = self._lane(self.slots)
        while True:
            self._fill(crashes)
            lanes = [lane for lane in ([self._main] if self._main else []) + self._solo if lane.busy()]
            if not lanes:
                break
            for lane in lanes:
                self._round(lane, records, crashes)
            self._solo = [lane for lane in self._solo if lane.busy()]
            if time.perf_counter() >= deadline:
                break
        return {"records": records, "crashes": crashes, "in_flight": self.in_flight(),
                "slot_steps": [self.busy_slot_steps, self.slot_steps], "train_s": self.train_s}

    # ------------------------------------------------------------ internals

    def _lane(self, slots: int) -> _Lane:
        block = self._factory(self.spec, self.data, slots, self.config, self.device, self.library)
        return _Lane(block, slots)

    def _fill(self, crashes: list[dict]) -> None:
        """Start queued restarts in free slots, then evaluate them once at step 0."""
        started: dict[int, list[int]] = {}
        lanes: dict[int, _Lane] = {}
        while self._queue:
            a = self._queue[0]
            if a.solo:
                lane = self._lane(1)
                self._solo.append(lane)
                slot = 0
            else:
                if self._main is None:
                    self._main = self._lane(self.slots)
                free = self._main.free()
                if not free:
                    break
                lane, slot = self._main, free[0]
            self._queue.pop(0)
            try:
                lane.block.reset(slot, a.seed)
            except Exception as e:  # a seed-specific failure is this restart's alone
                crashes.append(_crash(a, e, "restart"))
                continue
            lane.live[slot] = _Live(a)
            started.setdefault(id(lane), []).append(slot)
            lanes[id(lane)] = lane
        for key, slots in started.items():
            lane = lanes[key]
            t0 = time.perf_counter()
            try:
                acc = lane.accuracy(self.val_data)
            except Exception as e:
                self._crash_lane(lane, e, crashes)
                continue
            self.train_s += time.perf_counter() - t0
            for s in slots:
                lane.live[s].history.append(float(acc[s]))
                lane.live[s].trajectory.append([0, float(acc[s])])

    def _round(self, lane: _Lane, records: list[dict], crashes: list[dict]) -> None:
        """Train one lane ``eval_every`` steps, evaluate, and finish restarts the policy is done with."""
        t0 = time.perf_counter()
        try:
            lane.block.step(self.eval_every)
            acc = lane.accuracy(self.val_data)
        except Exception as e:
            self._crash_lane(lane, e, crashes)
            return
        self.train_s += time.perf_counter() - t0
        self.slot_steps += len(lane.live) * self.eval_every
        self.busy_slot_steps += len(lane.busy()) * self.eval_every
        diverged = lane.block.diverged
        steps = lane.block.steps
        for s in lane.busy():
            live = lane.live[s]
            n = int(steps[s])
            if bool(diverged[s]):
                records.append(self._record(live, "diverged", "nan", n))
                lane.live[s] = None
                self._release(lane, s)
                continue
            live.history.append(float(acc[s]))
            live.trajectory.append([n, float(acc[s])])
            decision = self.policy.decide(live.history, n)
            if decision == CONTINUE:
                continue
            lane.live[s] = None
            if decision != CONVERGED and self._polish_edits(lane):
                try:  # a restart without a jump may still end a few Param values from a program
                    program = self._polished(lane, lane.block.program(s))
                except Exception as e:
                    self._release(lane, s)
                    crashes.append(_crash(live.assignment, e, "restart"))
                    continue
                prog_acc = float(program.accuracy(self.val_data))
                if prog_acc >= self.policy.floor:
                    self._release(lane, s)
                    records.append(self._record(live, "converged", "polish", n, program=program.to_dict(),
                                                program_val_acc=prog_acc))
                    continue
            self._release(lane, s, keep_for_program=decision == CONVERGED)
            if decision == CONVERGED:
                try:
                    records.append(self._converged(lane, s, live, n))
                except Exception as e:  # program extraction/validation failed for this restart only
                    crashes.append(_crash(live.assignment, e, "restart"))
            else:
                records.append(self._record(live, "stopped", decision.split(":", 1)[1], n))

    @staticmethod
    def _release(lane: _Lane, slot: int, keep_for_program: bool = False) -> None:
        """Stop training a finished slot (until it is refilled); blocks without ``clear`` keep it running."""
        if not keep_for_program and hasattr(lane.block, "clear"):
            lane.block.clear(slot)

    def _converged(self, lane: _Lane, slot: int, live: _Live, steps: int) -> dict:
        jump = self.policy.found(live.history)
        program = lane.block.program(slot)
        if self._polish_edits(lane):
            program = self._polished(lane, program)
        self._release(lane, slot)
        prog_acc = float(program.accuracy(self.val_data))
        if prog_acc < self.policy.floor:
            # the relaxed model jumped but its argmax program does not hold up (e.g. it adds a cell to
            # itself where the marginals mixed two cells): not a program, so it cannot win or count
            return self._record(live, "stopped", "program", steps, program_val_acc=prog_acc)
        return self._record(
            live, "converged", "jump", steps, jump_step=int(live.trajectory[jump][0]),
            program=program.to_dict(), program_val_acc=prog_acc,
        )  # fmt: skip

    @staticmethod
    def _polish_edits(lane: _Lane) -> int:
        return int(getattr(getattr(lane.block, "config", None), "polish_edits", 0) or 0)

    def _polished(self, lane: _Lane, program: Any) -> Any:
        """``TrainConfig.polish_edits``: the program after a discrete local search on training data."""
        from ..interpreter.engine import polished

        return polished(program, self.data, lane.block.config)

    def _record(self, live: _Live, status: str, reason: str, steps: int, **fields: Any) -> dict:
        a = live.assignment
        return make_record(
            a.index, a.seed, status, reason=reason, steps=steps, trajectory=live.trajectory,
            wall_s=time.perf_counter() - live.t0, actor=self.name, finished_at=time.time(), **fields,
        )  # fmt: skip

    def _crash_lane(self, lane: _Lane, error: BaseException, crashes: list[dict]) -> None:
        """A whole block raised: report every restart in it and start that block afresh."""
        busy = lane.busy()
        scope = "restart" if len(lane.live) == 1 else "block"
        for s in busy:
            crashes.append(_crash(lane.live[s].assignment, error, scope))
            lane.live[s] = None
        if lane is self._main:
            self._main = None  # its state may be half-updated; build a new one on the next fill


def _crash(a: Assignment, error: BaseException, scope: str) -> dict:
    text = "".join(traceback.format_exception_only(type(error), error)).strip()
    return {"index": a.index, "seed": a.seed, "attempt": a.attempt, "error": text, "scope": scope}
