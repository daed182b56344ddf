"""The search driver: hands out restarts, collects results, is the only writer to the store.

``search()`` runs ``restarts`` random restarts of one model on a pool of
workers (Ray actors by default, each training a block of
``restarts_per_actor`` restarts at once), records every finished restart in the
store and/or a local journal, and returns a :class:`SearchResult`.

Faults: a worker that dies has its running restarts re-queued (run alone next
time, so one poisonous restart cannot take its block-mates down with it) and
is replaced; a restart whose code raises three times is recorded as
``failed`` with its error; Ctrl-C kills the workers, flushes the records and
returns what finished; calling again with the same ``search_id`` (and store or
journal) skips every finished restart.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Optional

from ..interpreter.discrete import check_data
from ..interpreter.engine import restart_seed
from ..interpreter.errors import NtptError
from ..interpreter.lower import as_device
from ..interpreter.policy import JumpPolicy, StopReason, StopRule
from ..interpreter.policy import winner as pick_winner
from ..interpreter.records import (
    STATUSES,
    CrashReport,
    RestartRecord,
    RestartStatus,
    SearchResult,
    WorkerReport,
    config_dict,
    new_search_id,
)
from ..interpreter.restarts import Assignment, ModelSpec, train_config
from ..interpreter.train_config import TrainConfig
from .backends import ActorLost, Backend, LocalBackend
from .journal import Journal
from .progress import Progress
from .sinks import RestartSink

__all__ = ["search", "SearchResult"]

MAX_ATTEMPTS = 3  # a restart whose code raises this often is recorded as failed
CALLS_IN_FLIGHT = 2  # per worker: the next slice is queued while one trains, so a worker never waits on the driver


def search(
    model_or_task: Any,
    data: dict[str, Any],
    restarts: int = 100,
    seed: int = 0,
    actors: Optional[int] = None,
    restarts_per_actor: int = 8,
    gpus_per_actor: float = 0,
    cpus_per_actor: float = 1,
    address: Optional[str] = None,
    policy: Optional[JumpPolicy] = None,
    stop: Optional[StopRule] = None,
    store: Any = None,
    search_id: Optional[str] = None,
    journal: Any = None,
    progress: bool = True,
    val_data: Optional[dict[str, Any]] = None,
    config: Any = None,
    library: Any = None,
    *,
    task: Optional[str] = None,
    device: Optional[str] = None,
    eval_every: Optional[int] = None,
    backend: Any = "ray",
    block_factory: Any = None,
    slice_s: float = 2.0,
    flush_s: float = 2.0,
    work_stealing: bool = True,
) -> SearchResult:
    """Run many random restarts of a model in parallel and return the best program found.

    Args:
        model_or_task: a compiled ``Model``, a ``ModelSpec`` or ``(source, hypers)``;
            workers compile it from source themselves.
        data: training batch (``name -> array``).
        restarts: how many restarts (indices ``0..restarts-1``).
        seed: search seed; restart ``k`` uses ``restart_seed(seed, k)``.
        actors: workers to run (default: as many as the cluster's CPUs/GPUs allow,
            no more than the restarts need).
        restarts_per_actor: restart slots trained at once in each worker's block.
        gpus_per_actor, cpus_per_actor: Ray resources per worker; a worker with
            a GPU trains on ``cuda``; ``torch.set_num_threads(cpus_per_actor)``.
        address: Ray cluster (``"auto"``, ``"ray://host:10001"``); default: a local
            Ray on loopback, or the Ray session already initialised.
        policy: per-restart :class:`JumpPolicy`.
        stop: whole-search :class:`StopRule` (first k converged, wall clock, cap).
        store: library store (a :class:`~.sinks.RestartSink`); the driver is its only writer.
        search_id: resume this search: restarts it already finished are skipped.
        journal: path (or :class:`Journal`) of a local JSONL resume journal.
        progress: print a status line on stderr.
        val_data: validation batch for jump detection and the winner's accuracy
            (default: ``data``).
        config: ``TrainConfig`` or dict of its fields (an unknown one is an ``NtptError`` naming it).
        library: neural library the workers initialise shared networks from.
        task: label for the store (default: the model's file name).
        device: torch device of every block (default: ``cuda`` with ``gpus_per_actor > 0``, else ``cpu``).
        eval_every: training steps between validation evaluations (default: the config's
            ``eval_every``, 25; one that contradicts the config's is refused).
        backend: ``"ray"``, ``"local"`` (in this process, no Ray) or a backend object.
        block_factory: build blocks with this instead of ``RestartBlock`` (tests).
        slice_s: seconds a worker trains before reporting back.
        flush_s: seconds between batched writes to the store/journal.
        work_stealing: at the search's tail, a worker with free slots takes restarts still
            queued behind full slots on another (off: each worker runs what it was given;
            ``benchmarks/search_tail.py`` measures both).

    Returns:
        a :class:`SearchResult`; ``result.best_program()`` is the winner's ``Program``.

    Raises:
        NtptError: bad arguments, or workers that keep dying before doing any work.
        DataError: ``data`` or ``val_data`` that training would refuse (checked before any worker starts).

    Example:
        >>> model = ntpt_dist.compile_file("experiments/models/maze.py", {"W": 3})   # doctest: +SKIP
        >>> result = search(model, data, restarts=64, stop=StopRule(first_k=1))       # doctest: +SKIP
        >>> print(result.best_program().source)                                      # doctest: +SKIP
    """
    spec = ModelSpec.of(model_or_task)
    eval_every = _eval_every(eval_every, config)
    config = train_config(config)
    _check_args(restarts, restarts_per_actor, actors, eval_every, seed)
    if policy is not None and not isinstance(policy, JumpPolicy):
        raise NtptError(f"policy must be a JumpPolicy, but got {type(policy).__name__}")
    if stop is not None and not isinstance(stop, StopRule):
        raise NtptError(f"stop must be a StopRule, but got {type(stop).__name__}")
    policy = policy or JumpPolicy()
    stop = stop or StopRule()
    total = restarts if stop.max_restarts is None else min(restarts, stop.max_restarts)
    if block_factory is None:
        # A SourceError or DataError here, before any worker starts, beats one in every worker
        # (on Ray a worker's error surfaced only as actors dying one by one).
        flat = model_or_task.flat if hasattr(model_or_task, "flat") else spec.compile().flat
        check_data(flat, data, "data")
        if val_data is not None:
            check_data(flat, val_data, "val_data")
    if device is not None:
        as_device(device, here=False)  # a misspelt name fails here; a GPU is the workers' to have
    if isinstance(journal, (str,)) or hasattr(journal, "__fspath__"):
        journal = Journal(journal)
    sinks: list[RestartSink] = [s for s in (store, journal) if s is not None]
    for sink in sinks:
        if not isinstance(sink, RestartSink):
            raise NtptError(f"store and journal must implement RestartSink (start_search, finished_restarts, "
                            f"log_restarts, end_search), but got {type(sink).__name__}")
    task = task or spec.filename.rsplit("/", 1)[-1].removesuffix(".py")
    run_config = {
        "restarts": total, "seed": seed, "restarts_per_actor": restarts_per_actor, "eval_every": eval_every,
        "policy": policy.to_dict(), "stop": stop.to_dict(), "train": config_dict(config),
        "hypers": dict(spec.hypers),
    }  # fmt: skip
    search_id = search_id or new_search_id()  # minted here only; every sink records it under this id
    for sink in sinks:
        search_id = sink.start_search(task, run_config, search_id)
    done: dict[int, RestartRecord] = {}
    for sink in sinks:
        done.update((int(k), RestartRecord.from_dict(r)) for k, r in sink.finished_restarts(search_id).items())
    done = {k: r for k, r in done.items() if k < total}
    worker_kwargs = {
        "model_spec": spec, "data": data, "slots": restarts_per_actor, "config": config,
        "val_data": val_data, "policy": policy, "eval_every": eval_every, "library": library,
        "block_factory": block_factory, "device": device or ("cuda" if gpus_per_actor > 0 else "cpu"),
    }  # fmt: skip
    pool = _make_backend(backend, worker_kwargs, address, cpus_per_actor, gpus_per_actor)
    todo = [Assignment(k, restart_seed(seed, k)) for k in range(total) if k not in done]
    if actors is None:
        actors = _default_actors(pool, len(todo), restarts_per_actor)
    state = _Search(pool, todo, done, sinks, search_id, stop, restarts_per_actor, slice_s, flush_s,
                    Progress(total, enabled=progress), steal=work_stealing)
    reason = StopReason.INTERRUPTED
    try:
        reason = state.loop(actors)
    except KeyboardInterrupt:
        pass  # fall through: workers are killed and records flushed below
    finally:
        pool.shutdown()
        state.flush(force=True)
        state.progress.close()
    result = SearchResult.build(search_id, state.records, state.started + len(done),
                                wall_s=time.monotonic() - state.t0, stop_reason=reason,
                                resumed=len(done), config=run_config)  # fmt: skip
    for sink in sinks:
        sink.end_search(search_id, result.summary(), None if result.winner is None else result.winner.to_dict())
    if reason is StopReason.INTERRUPTED and progress:
        print(f"search {search_id} interrupted; resume with search_id={search_id!r}", file=sys.stderr)
    return result


class _Search:
    """The driver's loop state: what is queued, where each restart runs, what finished."""

    def __init__(self, pool: Backend, todo: list[Assignment], done: dict[int, RestartRecord], sinks: list, search_id: str,
                 stop: StopRule, slots: int, slice_s: float, flush_s: float, progress: Progress, steal: bool = True):
        self.pool = pool
        self.pending: deque[Assignment] = deque(todo)
        self.records: dict[int, RestartRecord] = dict(done)
        self.fresh = 0  # records finished in this session (for the rate)
        self.sinks = sinks
        self.search_id = search_id
        self.stop = stop
        self.slots = slots
        # A full block queued on each worker, so a wave of restarts finishing together refills at
        # once (with half a block queued, half the slots idled a slice per wave: 6% of MATH's steps).
        self.prefetch = slots
        self.slice_s = slice_s
        self.flush_s = flush_s
        self.progress = progress
        self.assigned: dict[Any, dict[int, Assignment]] = {}  # worker -> restarts it holds
        self.running: dict[Any, set[int]] = {}  # worker -> restarts last seen training
        self.tickets: dict[Any, Any] = {}  # call -> worker
        self.steal = steal and hasattr(pool, "revoke")  # a custom backend without revoke keeps what it is given
        self.revokes: dict[Any, Any] = {}  # revoke call -> the worker asked to give restarts back
        self.ready: set[Any] = set()  # workers that have answered a call (started up)
        self.unflushed: list[RestartRecord] = []
        self.handed_out: set[int] = set()  # restarts given to a worker at least once in this session
        self.losses_without_progress = 0
        self.t0 = time.monotonic()
        self._last_flush = self.t0

    def loop(self, actors: int) -> StopReason:
        for _ in range(actors if self.pending else 0):
            self._spawn()
        while True:
            converged = sum(r.status is RestartStatus.CONVERGED for r in self.records.values())
            reason = self.stop.reason(len(self.records), converged, time.monotonic() - self.t0)
            if reason:
                return reason
            if not self.pending and not any(self.assigned.values()):
                return StopReason.DONE
            for ticket, outcome in self.pool.wait(list(self.tickets) + list(self.revokes), timeout=0.5):
                if ticket in self.revokes:
                    self._taken_back(self.revokes.pop(ticket), outcome)
                    continue
                worker = self.tickets.pop(ticket, None)
                if worker is None or worker not in self.assigned:
                    continue  # a call queued on a worker already declared lost
                if isinstance(outcome, ActorLost):
                    self._lost(worker, outcome.error)
                else:
                    self._collect(worker, outcome)
                    self._feed(worker)
            self._feed_idle()
            self._steal()
            self.flush()
            self._show()

    def _spawn(self) -> None:
        worker = self.pool.spawn()
        self.assigned[worker] = {}
        self.running[worker] = set()
        self.tickets[self.pool.submit(worker, [], 0.0)] = worker  # work only once it answers

    def _feed(self, worker: Any) -> None:
        """Top the worker up to ``CALLS_IN_FLIGHT`` queued slices, handing it pending restarts.

        A worker holds its slots' restarts plus ``prefetch`` queued ones while
        the pending restarts could fill every worker's block; below that (the
        search's tail) it gets only what its free slots take, so the last
        restarts go to whichever worker frees slots first.
        """
        held = self.assigned[worker]
        calls = self._calls(worker)
        while calls < CALLS_IN_FLIGHT:
            plenty = len(self.pending) >= self.slots * len(self.assigned)
            limit = self.slots + (self.prefetch if plenty else 0)
            new = []
            while self.pending and len(held) < limit:
                a = self.pending.popleft()
                held[a.index] = a
                new.append(a)
                self.handed_out.add(a.index)  # a set: a re-queued restart (its worker died) is not started twice
            if not held:
                return
            self.tickets[self.pool.submit(worker, new, self.slice_s)] = worker
            calls += 1

    @property
    def started(self) -> int:
        return len(self.handed_out)

    def _feed_idle(self) -> None:
        for worker in list(self.assigned):
            if worker in self.ready and self.pending and self._calls(worker) < CALLS_IN_FLIGHT:
                self._feed(worker)

    def _steal(self) -> None:
        """At the tail, ask busy workers for restarts queued behind their full slots, for workers with free ones.

        Without it the last restarts wait for a busy worker's slots while another
        worker sits idle. A worker gives back only restarts it has not started
        (``BlockWorker.revoke``), so none runs twice; the answer comes back
        through ``wait`` and :meth:`_taken_back` re-queues what it names.
        """
        if not self.steal or self.pending:
            return
        free = sum(max(0, self.slots - len(held)) for w, held in self.assigned.items() if w in self.ready)
        asked = set(self.revokes.values())
        for victim, held in self.assigned.items():
            if free <= 0:
                return
            if victim in asked or victim not in self.ready:
                continue
            running = self.running[victim]
            queued = [k for k in held if k not in running]  # in the order the worker will start them
            own = max(0, self.slots - len(running))  # the first ``own`` start in the victim's free slots
            take = queued[own:][-free:]
            if take:
                self.revokes[self.pool.revoke(victim, take)] = victim
                free -= len(take)

    def _taken_back(self, victim: Any, outcome: Any) -> None:
        """A revoke answered: what ``victim`` gave back is pending again (a lost worker's are re-queued by ``_lost``)."""
        if isinstance(outcome, ActorLost) or victim not in self.assigned:
            return
        held = self.assigned[victim]
        for index in sorted(outcome):
            a = held.pop(index, None)
            if a is not None:
                self.pending.append(a)
        self._feed_idle()

    def _calls(self, worker: Any) -> int:
        """Calls queued on or running in ``worker``."""
        return sum(w == worker for w in self.tickets.values())

    def _collect(self, worker: Any, out: WorkerReport) -> None:
        self.ready.add(worker)
        held = self.assigned[worker]
        for record in out.records:
            a = held.pop(record.index, None)
            assert a is not None, f"restart {record.index} came back from a worker that does not hold it"
            self._finish(record)
        crash: CrashReport
        for crash in out.crashes:
            held.pop(crash.index, None)
            self._retry(Assignment(crash.index, crash.seed, crash.attempt), crash.error, solo=crash.scope == "block")
        self.running[worker] = set(out.running)
        if out.records:
            self.losses_without_progress = 0

    def _lost(self, worker: Any, error: str) -> None:
        """A worker died: re-queue what it held (running ones count a crash) and replace it."""
        held = self.assigned.pop(worker, {})
        running = self.running.pop(worker, set())
        self.tickets = {t: w for t, w in self.tickets.items() if w != worker}  # its other queued call fails too
        self.revokes = {t: w for t, w in self.revokes.items() if w != worker}
        for index, a in sorted(held.items()):
            if index in running:
                self._retry(a, f"worker died: {error}", solo=True)
            else:
                self.pending.appendleft(a)
        self.pool.kill(worker)
        self.losses_without_progress += 1
        if self.losses_without_progress > 3 * max(1, len(self.assigned) + 1):
            raise NtptError(
                f"search workers keep dying before finishing any restart ({self.losses_without_progress} in a row); "
                f"last error: {error}; check the cluster's memory/GPU and the model with a local run (backend='local')"
            )
        self._spawn()

    def _retry(self, a: Assignment, error: str, solo: bool) -> None:
        attempt = a.attempt + 1
        if attempt >= MAX_ATTEMPTS:
            self._finish(RestartRecord(a.index, a.seed, RestartStatus.FAILED, reason="crashed", error=error))
        else:
            self.pending.appendleft(Assignment(a.index, a.seed, attempt, solo=solo or a.solo))

    def _finish(self, record: RestartRecord) -> None:
        self.records[record.index] = record
        self.unflushed.append(record)
        self.fresh += 1

    def flush(self, force: bool = False) -> None:
        """Write finished records to every sink, batched every ``flush_s`` seconds."""
        now = time.monotonic()
        if not self.unflushed or (not force and now - self._last_flush < self.flush_s):
            return
        batch = [r.to_dict() for r in self.unflushed]  # the sinks' dict form: the journal encodes its own, stores keep numpy
        for sink in self.sinks:
            sink.log_restarts(self.search_id, batch)
        self.unflushed = []
        self._last_flush = now

    def _show(self) -> None:
        counts = {s: 0 for s in STATUSES}
        for r in self.records.values():
            counts[r.status.value] += 1
        best = pick_winner(self.records.values())
        self.progress.update(
            started=self.started, alive=sum(len(h) for h in self.assigned.values()), counts=counts,
            best=None if best is None else best.program_val_acc, elapsed=time.monotonic() - self.t0,
            finished=self.fresh,  # this session's restarts only, so a resume does not inflate the rate
        )  # fmt: skip


def _make_backend(backend: Any, worker_kwargs: dict, address: Optional[str], cpus: float, gpus: float) -> Backend:
    if backend == "local":
        return LocalBackend(worker_kwargs)
    if backend == "ray":
        from .ray_backend import RayBackend

        return RayBackend(worker_kwargs, address=address, cpus_per_actor=cpus, gpus_per_actor=gpus)
    if isinstance(backend, str):
        raise NtptError(f"backend must be 'ray', 'local' or a backend object, but got {backend!r}")
    return backend


def _default_actors(pool: Any, todo: int, slots: int) -> int:
    need = max(1, math.ceil(todo / slots))
    capacity = getattr(pool, "capacity", lambda: 1)()
    return max(1, min(need, capacity))


def _eval_every(eval_every: Optional[int], config: Any) -> int:
    """The search's evaluation interval: the argument or the config's, never two that disagree."""
    checked = train_config(config)
    if eval_every is None:
        return checked.eval_every
    explicit = isinstance(config, Mapping) and "eval_every" in config
    found = checked.eval_every
    if found != eval_every and (explicit or found != TrainConfig.__dataclass_fields__["eval_every"].default):
        raise NtptError(f"eval_every={eval_every!r} contradicts the config's eval_every={found!r}; "
                        "fix: pass it once (the search argument or the config field)")
    return eval_every


def _check_args(restarts: int, slots: int, actors: Optional[int], eval_every: int, seed: int) -> None:
    checks = (("restarts", restarts, 0), ("restarts_per_actor", slots, 1), ("eval_every", eval_every, 1), ("seed", seed, 0))
    for name, value, low in checks:
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
            raise NtptError(f"{name} must be an integer >= {low}, but got {name}={value!r}")
    if actors is not None and (not isinstance(actors, int) or actors < 1):
        raise NtptError(f"actors must be None (as many as fit) or an integer >= 1, but got actors={actors!r}")
