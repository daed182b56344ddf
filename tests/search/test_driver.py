"""search() with the in-process backend and the fake block: accounting, faults, resume, store calls."""

import json
import time

import pytest
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.search.backends import LocalBackend
from ntpt_dist.search.driver import search
from ntpt_dist.search.journal import Journal
from ntpt_dist.search.policy import JumpPolicy, StopRule
from ntpt_dist.search.records import restart_seed

from .fakes import fake_factory

POLICY = JumpPolicy(delta=0.5, window=3, floor=0.8, refine_evals=2, budget_steps=300)


def run(restarts=12, **kw):
    kw.setdefault("block_factory", fake_factory())
    kw.setdefault("policy", POLICY)
    return search(("src", {}), {"x": [0]}, restarts=restarts, seed=7, backend=kw.pop("backend", "local"),
                  restarts_per_actor=kw.pop("restarts_per_actor", 4), actors=kw.pop("actors", 2), progress=False,
                  slice_s=0.0, **kw)


def expected_status(k, seed=7):
    return "converged" if restart_seed(seed, k) % 3 == 0 else "stopped"


class StoreDouble:
    """Records the driver's calls; the duck-typed store interface."""

    def __init__(self):
        self.logged, self.started, self.ended = {}, [], []

    def start_search(self, task, config, search_id):
        json.dumps(config)  # the config must be JSON-safe
        self.started.append((task, search_id))
        return search_id or "sid-1"

    def finished_restarts(self, search_id):
        return dict(self.logged.get(search_id, {}))

    def log_restarts(self, search_id, records):
        for r in records:
            assert isinstance(r, dict), "sinks receive the records' dict form"
            assert r["index"] not in self.logged.get(search_id, {}), f"restart {r['index']} logged twice"
            self.logged.setdefault(search_id, {})[r["index"]] = r

    def end_search(self, search_id, summary, winner):
        self.ended.append((search_id, summary, winner))


def test_every_restart_is_accounted_for_with_its_scripted_outcome():
    before = time.time()
    result = run(restarts=12)
    assert sorted(result.records) == list(range(12))
    for k, r in result.records.items():
        assert r.status == expected_status(k) and r.seed == restart_seed(7, k)
        assert before <= r.finished_at <= time.time()
    assert result.counts["started"] == 12 and result.stop_reason == "done"
    conv = [r for r in result.records.values() if r.status == "converged"]
    assert conv and result.winner in conv
    assert result.winner.program_val_acc == max(r.program_val_acc for r in conv)


def test_first_k_stops_early_and_the_store_sees_each_restart_once():
    store = StoreDouble()
    result = run(restarts=40, stop=StopRule(first_k=1), store=store)
    assert result.stop_reason == "first_k" and result.counts["converged"] >= 1
    assert len(result.records) < 40
    (task, sid), = store.started  # the driver mints the id and the store records the search under it
    assert sid == result.search_id and len(sid) == 12
    assert set(store.logged[sid]) == set(result.records)
    (ended, summary, winner), = store.ended
    assert isinstance(winner, dict), "sinks receive the winner's dict form"
    assert ended == sid and summary["winner_index"] == winner["index"] == result.winner.index


def test_resume_redoes_nothing(tmp_path):
    path = tmp_path / "j.jsonl"
    first = run(restarts=30, stop=StopRule(first_k=1), journal=str(path))
    done_first = set(first.records)
    calls = []

    class Counting(LocalBackend):
        def submit(self, handle, assignments, seconds):
            calls.extend(a.index for a in assignments)
            return super().submit(handle, assignments, seconds)

    from ntpt_dist.search.worker import ModelSpec

    backend = Counting({"model_spec": ModelSpec("src"), "data": {}, "slots": 4, "policy": POLICY,
                        "block_factory": fake_factory()})
    second = run(restarts=30, journal=str(path), search_id=first.search_id, backend=backend)
    assert not done_first & set(calls)
    assert sorted(second.records) == list(range(30)) and second.resumed == len(done_first)
    for k in done_first:
        assert second.records[k].trajectory == first.records[k].trajectory
    assert sorted(Journal(path).finished_restarts(first.search_id)) == list(range(30))


def test_a_restart_that_keeps_crashing_is_failed_and_the_rest_finish():
    bad = restart_seed(7, 5)
    result = run(restarts=10, block_factory=fake_factory(crash_fn=lambda s, t: s == bad and t >= 50))
    assert sorted(result.records) == list(range(10))
    assert result.records[5].status == "failed"
    assert "scripted block failure" in result.records[5].error
    for k in set(range(10)) - {5}:
        assert result.records[k].status == expected_status(k)


class DyingBackend(LocalBackend):
    """Kills its first worker after it has trained a little (like ray.kill)."""

    def __init__(self, kwargs, kill_at=3):
        super().__init__(kwargs)
        self.waits, self.kill_at, self.killed = 0, kill_at, []

    def wait(self, tickets, timeout):
        self.waits += 1
        if self.waits == self.kill_at:
            self.killed.append(0)
            self.kill(0)
        return super().wait(tickets, timeout)


def test_a_dead_worker_is_replaced_and_its_restarts_rerun():
    from ntpt_dist.search.worker import ModelSpec

    backend = DyingBackend({"model_spec": ModelSpec("src"), "data": {}, "slots": 4, "policy": POLICY,
                            "block_factory": fake_factory()}, kill_at=6)
    result = run(restarts=16, backend=backend)
    assert backend.killed == [0]
    assert sorted(result.records) == list(range(16))
    assert all(r.status == expected_status(k) for k, r in result.records.items())
    assert "local-2" in {r.actor for r in result.records.values()}  # the replacement worked
    # each restart counts as started once, however often it was handed out (the dead worker's queued ones again)
    assert result.counts["started"] == 16


def test_a_worker_has_its_next_slice_queued_while_one_runs():
    from ntpt_dist.search.driver import CALLS_IN_FLIGHT
    from ntpt_dist.search.worker import ModelSpec

    class Counting(LocalBackend):
        """Notes, at every wait, how many calls each worker has queued."""

        def __init__(self, kwargs):
            super().__init__(kwargs)
            self.queued = []

        def wait(self, tickets, timeout):
            per_worker = {}
            for t in tickets:
                handle = self._calls[t][0]
                per_worker[handle] = per_worker.get(handle, 0) + 1
            self.queued.extend(per_worker.values())
            return super().wait(tickets, timeout)

    backend = Counting({"model_spec": ModelSpec("src"), "data": {}, "slots": 4, "policy": POLICY,
                        "block_factory": fake_factory()})
    result = run(restarts=24, backend=backend)
    assert sorted(result.records) == list(range(24))
    assert max(backend.queued) == CALLS_IN_FLIGHT == 2  # pipelined, and never more
    assert backend.queued.count(2) > len(backend.queued) // 2


def test_workers_queue_a_block_ahead_but_not_at_the_tail():
    from ntpt_dist.search.driver import _Search
    from ntpt_dist.search.progress import Progress
    from ntpt_dist.search.worker import Assignment

    class Recording:
        def __init__(self):
            self.n = 0

        def submit(self, worker, assignments, seconds):
            self.n += 1
            return self.n

    todo = [Assignment(k, k) for k in range(14)]
    state = _Search(Recording(), todo, {}, [], "s", StopRule(), slots=4, slice_s=1.0, flush_s=1.0,
                    progress=Progress(14, enabled=False))
    for w in (0, 1):
        state.assigned[w], state.running[w] = {}, set()
    state._feed(0)  # 14 pending fill both blocks: worker 0 takes its 4 slots and 4 queued
    state._feed(1)  # 6 pending cannot: worker 1 takes only its 4 free slots
    assert {w: len(held) for w, held in state.assigned.items()} == {0: 8, 1: 4}
    assert len(state.pending) == 2  # for whichever worker frees slots first


def test_ctrl_c_returns_what_finished_and_flushes_it(tmp_path):
    from ntpt_dist.search.worker import ModelSpec

    class Interrupting(LocalBackend):
        waits = 0
        shut = False

        def wait(self, tickets, timeout):
            Interrupting.waits += 1
            if Interrupting.waits == 40:
                raise KeyboardInterrupt
            return super().wait(tickets, timeout)

        def shutdown(self):
            Interrupting.shut = True
            super().shutdown()

    backend = Interrupting({"model_spec": ModelSpec("src"), "data": {}, "slots": 4, "policy": POLICY,
                            "block_factory": fake_factory()})
    path = tmp_path / "j.jsonl"
    result = run(restarts=50, backend=backend, journal=path)
    assert result.stop_reason == "interrupted" and Interrupting.shut
    assert 0 < len(result.records) < 50
    assert set(Journal(path).finished_restarts(result.search_id)) == set(result.records)


def test_nan_restarts_are_diverged_and_counted():
    from .fakes import nan_for_seven

    result = run(restarts=20, block_factory=fake_factory(acc_fn=nan_for_seven))
    for k, r in result.records.items():
        s = restart_seed(7, k)
        assert r.status == ("diverged" if s % 7 == 0 else expected_status(k))
    assert result.counts["diverged"] == sum(restart_seed(7, k) % 7 == 0 for k in range(20))


def test_bad_arguments_raise_with_the_value():
    with pytest.raises(NtptError, match="restarts_per_actor=0"):
        search(("src", {}), {}, restarts_per_actor=0, backend="local")
    with pytest.raises(NtptError, match="'spark'"):
        search(("src", {}), {}, restarts=1, backend="spark", block_factory=fake_factory())


def outcomes(result):
    """What a restart's seed decides (not where or when it ran)."""
    return {k: (r.seed, r.status, r.reason, r.steps, r.jump_step, r.trajectory, r.program_val_acc)
            for k, r in result.records.items()}


def test_a_search_is_reproducible_whatever_its_scheduling():
    first = run(restarts=14)
    again = run(restarts=14)
    regrouped = run(restarts=14, actors=3, restarts_per_actor=2)  # other blocks, slots and arrival order
    assert first.search_id != again.search_id
    assert outcomes(first) == outcomes(again) == outcomes(regrouped)
    assert first.winner.index == again.winner.index == regrouped.winner.index
    assert {r.actor for r in regrouped.records.values()} == {"local-0", "local-1", "local-2"}
    # the scripted outcome is the seed's, so another search seed gives other restarts
    other = search(("src", {}), {"x": [0]}, restarts=14, seed=8, backend="local", restarts_per_actor=4, actors=2,
                   progress=False, slice_s=0.0, policy=POLICY, block_factory=fake_factory())
    assert outcomes(other) != outcomes(first)
    assert [r.status for r in other.records.values()] == [expected_status(k, seed=8) for k in range(14)]


def test_resume_through_the_memory_library_store():
    from ntpt_dist.library_store.memory import MemoryStore

    store = MemoryStore()
    first = run(restarts=24, stop=StopRule(first_k=1), store=store, task="fake")
    assert store.get_search(first.search_id)["task"] == "fake"
    second = run(restarts=24, store=store, search_id=first.search_id, task="fake")
    assert second.resumed == len(first.records) and sorted(second.records) == list(range(24))
    for k in first.records:
        assert second.records[k].trajectory == first.records[k].trajectory
    assert store.get_search(first.search_id)["status"] == "finished"
    assert second.winner.program["weights"].dtype.name == "float32"  # programs come back as logged


class NoWorkers:
    """A backend that fails the test if the driver uses it at all."""

    def __getattr__(self, name):
        raise AssertionError(f"the driver used its backend ({name}) for data it should have refused")


@pytest.mark.parametrize("data, val_data, message", [
    (None, None, "data must be a dict name -> array, got NoneType"),
    ({"x": [], "y": []}, None, "data is empty"),
    ({"x": [0, 1], "y": [-1, -1]}, None, "data observes no output"),
    ({"x": [0, 1], "y": [0, 7]}, None, "output 'y' has value 7"),
    ({"x": [0, 1], "y": [0, 1]}, {"x": [0, 1], "y": [0.5, 1.0]}, "dtype float64, expected ints"),
])
def test_bad_data_is_a_data_error_before_any_worker_or_store_record(data, val_data, message):
    from ntpt_dist.interpreter.errors import DataError

    store = StoreDouble()
    source = "x = Input(2)\ny = Output(2)\ny.set_to(x)\n"
    with pytest.raises(DataError, match=message):
        search((source, {}), data, restarts=4, val_data=val_data, backend=NoWorkers(), store=store,
               progress=False, task="t")
    assert store.started == []
