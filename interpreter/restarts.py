"""The one training loop: a block of restart slots on one device, kept busy.

:class:`BlockWorker` owns a ``RestartBlock`` (``engine.py``), takes restart
assignments ``(index, seed)``, trains every slot in lock step, evaluates
validation accuracy every ``eval_every`` steps, asks the
:class:`~.policy.JumpPolicy` what to do with each restart, and when one
finishes turns it into a :class:`~.records.RestartRecord` and refills its slot
from the queue. It is plain Python (no Ray).

Both ways of training run this loop: :func:`train_restarts` (behind
``Model.train``) runs one worker in this process until every restart is done;
the search (``search.driver``) hands restarts to workers on its backends
(``search.backends.LocalBackend`` in process, ``search.ray_backend`` as Ray
actors). It lives in the interpreter, with the policy and the records, so the
search depends on the interpreter and never the other way round;
``search.worker`` re-exports it.

Evaluations happen when a restart's own step count is a multiple of
``eval_every`` (slots are only refilled on those boundaries), so a restart's
trajectory is the same whether it ran alone, in a block or on another actor.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from .compiled import compile_model
from .engine import RestartBlock, restart_seed
from .errors import NtptError
from .policy import Decision, JumpPolicy, StopReason
from .polish import polished
from .records import CrashReport, RestartRecord, RestartStatus, SearchResult, WorkerReport, config_dict, new_search_id
from .train_config import TrainConfig, config_with

__all__ = ["Assignment", "BlockWorker", "ModelSpec", "real_block", "train_config", "train_restarts"]


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
        raise NtptError(
            f"a search needs a compiled Model, a (source, hypers) pair or source text, but got {type(model).__name__}; "
            "compile it with ntpt_dist.compile_source(text, hypers)"
        )

    def compile(self):
        """The compiled model (done in the worker's process)."""
        return compile_model(self.source, self.hypers, filename=self.filename, listing=self.listing)


@dataclass(frozen=True)
class Assignment:
    """One restart to run: its index, seed, how often it crashed, and whether to run it alone."""

    index: int
    seed: int
    attempt: int = 0
    solo: bool = False


BlockFactory = Callable[..., Any]


def train_config(config: Any) -> TrainConfig:
    """``config`` (``None``, a ``TrainConfig`` or a dict of its fields) as a ``TrainConfig``.

    Raises:
        NtptError: an unknown field (named), a bad value, or a config of another type.
    """
    if config is None or isinstance(config, TrainConfig):
        return config or TrainConfig()
    if isinstance(config, Mapping):
        return config_with(None, **dict(config))
    raise NtptError(f"config must be a TrainConfig or a dict of its fields, but got {type(config).__name__}; "
                    "fix: pass e.g. config={'lr': 0.1}")


def real_block(model_spec: ModelSpec, data: Mapping[str, Any], slots: int, config: Any, device: str, library: Any):
    """Build an ``engine.RestartBlock`` (the default block factory)."""
    return RestartBlock(model_spec.compile(), data, slots=slots, config=train_config(config), device=device, library=library)


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
        raise_errors: re-raise what a restart's code raises instead of reporting it as
            a :class:`CrashReport` (in process, the caller sees the exception itself).
        keep_programs: also record the program of a restart the policy stopped (budget,
            stalled), without its accuracy; it never wins (only converged restarts do).

    Example:
        >>> w = BlockWorker(model, data, slots=4)                        # doctest: +SKIP
        >>> w.assign([Assignment(0, 11), Assignment(1, 12)])             # doctest: +SKIP
        >>> report = w.run(seconds=5.0)                                  # doctest: +SKIP
        >>> [r.status for r in report.records]                           # doctest: +SKIP
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
        raise_errors: bool = False,
        keep_programs: bool = False,
    ):
        assert slots >= 1 and eval_every >= 1
        self.raise_errors = raise_errors
        self.keep_programs = keep_programs
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
        self._lock = threading.Lock()  # the queue: ``revoke`` may run on another thread beside ``run``
        self._main: Optional[_Lane] = None
        self._solo: list[_Lane] = []
        self.slot_steps = 0  # slots x steps stepped, and how many of them trained a restart:
        self.busy_slot_steps = 0  # their ratio is how busy the blocks were kept
        self.train_s = 0.0  # seconds spent in training steps and evaluations

    # ----------------------------------------------------------- public API

    def assign(self, assignments: list[Assignment]) -> None:
        """Queue restarts; they start as slots free up (solo ones in their own 1-slot block)."""
        with self._lock:
            self._queue.extend(assignments)

    def revoke(self, indices: list[int]) -> list[int]:
        """Take back queued restarts that have not started (for another worker to run); returns those taken.

        Safe to call from another thread while :meth:`run` trains: a restart is
        either taken back here or started there, never both.
        """
        wanted = set(indices)
        with self._lock:
            taken = [a.index for a in self._queue if a.index in wanted]
            self._queue = [a for a in self._queue if a.index not in wanted]
        return taken

    def running(self) -> list[int]:
        """Indices of restarts training in a slot here now."""
        lanes = ([self._main] if self._main else []) + self._solo
        return [x.assignment.index for lane in lanes for x in lane.live if x is not None]

    def in_flight(self) -> list[int]:
        """Indices of restarts queued or running here."""
        with self._lock:
            queued = [a.index for a in self._queue]
        return self.running() + queued

    def run(self, seconds: float = 2.0) -> WorkerReport:
        """Train for about ``seconds`` (at least one evaluation round) and report what finished.

        Returns:
            a :class:`WorkerReport`: finished restart records; crash reports for restarts
            whose code raised (the driver retries them); indices still queued or running
            here; and, since this worker started, the slot-steps it stepped and how many
            of them trained a restart, and the seconds it spent in training steps and
            evaluations (the rest of its time is records, set-up and waiting).
        """
        records: list[RestartRecord] = []
        crashes: list[CrashReport] = []
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
        return WorkerReport(tuple(records), tuple(crashes), tuple(self.in_flight()), tuple(self.running()),
                            (self.busy_slot_steps, self.slot_steps), self.train_s)

    # ------------------------------------------------------------ internals

    def _lane(self, slots: int) -> _Lane:
        block = self._factory(self.spec, self.data, slots, self.config, self.device, self.library)
        return _Lane(block, slots)

    def _fill(self, crashes: list[CrashReport]) -> None:
        """Start queued restarts in free slots, then evaluate them once at step 0."""
        started: dict[int, list[int]] = {}
        lanes: dict[int, _Lane] = {}
        while (a := self._take()) is not None:
            if a.solo:
                lane = self._lane(1)
                self._solo.append(lane)
                slot = 0
            else:
                if self._main is None:
                    self._main = self._lane(self.slots)
                lane, slot = self._main, self._main.free()[0]
            try:
                lane.block.reset(slot, a.seed)
            except Exception as e:  # a seed-specific failure is this restart's alone
                crashes.append(self._crash(a, e, "restart"))
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

    def _take(self) -> Optional[Assignment]:
        """The next queued restart if it can start now (a solo one always can; others need a main slot)."""
        with self._lock:
            if not self._queue:
                return None
            a = self._queue[0]
            if not a.solo and self._main is not None and not self._main.free():
                return None
            return self._queue.pop(0)

    def _round(self, lane: _Lane, records: list[RestartRecord], crashes: list[CrashReport]) -> None:
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
                records.append(self._record(live, RestartStatus.DIVERGED, "nan", n))
                lane.live[s] = None
                self._release(lane, s)
                continue
            live.history.append(float(acc[s]))
            live.trajectory.append([n, float(acc[s])])
            decision = self.policy.decide(live.history, n)
            if decision is Decision.CONTINUE:
                continue
            lane.live[s] = None
            if decision is not Decision.CONVERGED and self._polish_edits(lane):
                try:  # a restart without a jump may still end a few Param values from a program
                    program = self._polished(lane, lane.block.program(s))
                except Exception as e:
                    self._release(lane, s)
                    crashes.append(self._crash(live.assignment, e, "restart"))
                    continue
                prog_acc = float(program.accuracy(self.val_data))
                if prog_acc >= self.policy.floor:
                    self._release(lane, s)
                    records.append(self._record(live, RestartStatus.CONVERGED, "polish", n, program=program.to_dict(),
                                                program_val_acc=prog_acc))
                    continue
            self._release(lane, s, keep_for_program=decision is Decision.CONVERGED)
            if decision is Decision.CONVERGED:
                try:
                    records.append(self._converged(lane, s, live, n))
                except Exception as e:  # program extraction/validation failed for this restart only
                    crashes.append(self._crash(live.assignment, e, "restart"))
            else:
                program = lane.block.program(s).to_dict() if self.keep_programs else None
                records.append(self._record(live, RestartStatus.STOPPED, decision.reason, n, program=program))

    @staticmethod
    def _release(lane: _Lane, slot: int, keep_for_program: bool = False) -> None:
        """Stop training a finished slot (until it is refilled); blocks without ``clear`` keep it running."""
        if not keep_for_program and hasattr(lane.block, "clear"):
            lane.block.clear(slot)

    def _converged(self, lane: _Lane, slot: int, live: _Live, steps: int) -> RestartRecord:
        jump = self.policy.found(live.history)
        program = lane.block.program(slot)
        if self._polish_edits(lane):
            program = self._polished(lane, program)
        self._release(lane, slot)
        prog_acc = float(program.accuracy(self.val_data))
        if prog_acc < self.policy.floor:
            # the relaxed model jumped but its argmax program does not hold up (e.g. it adds a cell to
            # itself where the marginals mixed two cells): not a program, so it cannot win or count
            return self._record(live, RestartStatus.STOPPED, "program", steps, program_val_acc=prog_acc)
        return self._record(
            live, RestartStatus.CONVERGED, "jump", steps, jump_step=int(live.trajectory[jump][0]),
            program=program.to_dict(), program_val_acc=prog_acc,
        )  # fmt: skip

    @staticmethod
    def _polish_edits(lane: _Lane) -> int:
        return int(getattr(getattr(lane.block, "config", None), "polish_edits", 0) or 0)

    def _polished(self, lane: _Lane, program: Any) -> Any:
        """``TrainConfig.polish_edits``: the program after a discrete local search on training data."""
        return polished(program, self.data, lane.block.config)

    def _record(self, live: _Live, status: RestartStatus, reason: str, steps: int, **fields: Any) -> RestartRecord:
        a = live.assignment
        return RestartRecord(
            a.index, a.seed, status, reason=reason, steps=steps, trajectory=live.trajectory,
            wall_s=time.perf_counter() - live.t0, actor=self.name, finished_at=time.time(), **fields,
        )  # fmt: skip

    def _crash_lane(self, lane: _Lane, error: BaseException, crashes: list[CrashReport]) -> None:
        """A whole block raised: report every restart in it and start that block afresh."""
        busy = lane.busy()
        scope = "restart" if len(lane.live) == 1 else "block"
        for s in busy:
            crashes.append(self._crash(lane.live[s].assignment, error, scope))
            lane.live[s] = None
        if lane is self._main:
            self._main = None  # its state may be half-updated; build a new one on the next fill

    def _crash(self, a: Assignment, error: BaseException, scope: str) -> CrashReport:
        if self.raise_errors:
            raise error
        text = "".join(traceback.format_exception_only(type(error), error)).strip()
        return CrashReport(a.index, a.seed, a.attempt, text, scope)


def train_restarts(model: Any, data: Mapping[str, Any], restarts: int, seed: int = 0, *, config: Any = None,
                   policy: Optional[JumpPolicy] = None, eval_every: Optional[int] = None,
                   val_data: Optional[Mapping[str, Any]] = None, library: Any = None, device: Any = "cpu",
                   progress: bool = False, keep_programs: bool = False, search_id: Optional[str] = None) -> SearchResult:
    """Run restarts ``0..restarts-1`` of ``model`` in one block in this process, each until the policy ends it.

    The in-process backend behind ``Model.train``: the same :class:`BlockWorker`
    loop, policy, records and winner rule as ``search(..., backend="local")``
    with ``restarts_per_actor=restarts`` and one worker, and the same result;
    what a restart's code raises is raised here (the search retries it instead).

    Args:
        eval_every: steps between validation evaluations (default ``config.eval_every``).
        progress: print one line per evaluation round to stderr.
        keep_programs: record stopped restarts' programs too (see :class:`BlockWorker`).

    Returns:
        a :class:`SearchResult` (``stop_reason=StopReason.DONE``).
    """
    config = train_config(config)
    policy = policy or JumpPolicy()
    eval_every = config.eval_every if eval_every is None else eval_every
    search_id = search_id or new_search_id()
    t0 = time.monotonic()
    worker = BlockWorker(model, data, slots=restarts, config=config, device=device, val_data=val_data,
                         policy=policy, eval_every=eval_every, library=library, raise_errors=True,
                         keep_programs=keep_programs)
    worker.assign([Assignment(k, restart_seed(seed, k)) for k in range(restarts)])
    records: dict[int, RestartRecord] = {}
    while True:
        report = worker.run(seconds=0.0)  # one evaluation round per call
        records.update((r.index, r) for r in report.records)
        if progress:
            converged = sum(r.status is RestartStatus.CONVERGED for r in records.values())
            print(f"restarts finished {len(records)}/{restarts}, converged {converged}, "
                  f"running {len(report.running)}", file=sys.stderr, flush=True)
        if not report.in_flight:
            break
    run_config = {"restarts": restarts, "seed": seed, "restarts_per_actor": restarts, "eval_every": eval_every,
                  "policy": policy.to_dict(), "train": config_dict(config),
                  "hypers": dict(getattr(model, "hypers", {}))}
    return SearchResult.build(search_id, records, restarts, wall_s=time.monotonic() - t0, stop_reason=StopReason.DONE,
                              config=run_config)
