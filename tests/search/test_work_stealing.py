"""Work stealing at the search's tail: an idle worker takes restarts queued behind a busy worker's full slots."""

import threading
import time

import pytest
import ray
from ntpt_dist.search.backends import LocalBackend
from ntpt_dist.search.driver import search
from ntpt_dist.search.policy import JumpPolicy
from ntpt_dist.search.ray_backend import init_ray
from ntpt_dist.search.records import restart_seed
from ntpt_dist.search.worker import Assignment, BlockWorker, ModelSpec

from . import fakes

POLICY = JumpPolicy(delta=0.5, window=3, floor=0.8, refine_evals=2, budget_steps=300)
SEED = 7
SLOW = 8  # restarts 0..7 run to the budget (300 steps); the rest converge after 25


def slow_first(seed: int, steps: int) -> float:
    """Restarts below ``SLOW`` sit at 0.15 until the budget; the others jump to 0.95 at step 25."""
    return 0.95 if seed not in SLOW_SEEDS and steps >= 25 else 0.15


SLOW_SEEDS = {restart_seed(SEED, k) for k in range(SLOW)}


def run(steal, backend="local", **kw):
    base = dict(restarts=16, seed=SEED, restarts_per_actor=4, actors=2, policy=POLICY, progress=False, slice_s=0.0,
                block_factory=fakes.fake_factory(acc_fn=slow_first), work_stealing=steal, backend=backend)
    base.update(kw)
    return search(("src", {}), {"x": [0]}, **base)


def test_the_idle_worker_takes_the_busy_ones_queued_restarts():
    # Worker 0 is handed restarts 0-7 (4 slots + 4 queued), worker 1 restarts 8-15, which converge at once:
    # without stealing restarts 4-7 wait for worker 0's slots while worker 1 has nothing to do.
    kept = run(steal=False)
    stolen = run(steal=True)
    assert {k for k, r in kept.records.items() if r.actor == "local-1"} == set(range(8, 16))
    moved = {k for k, r in stolen.records.items() if r.actor == "local-1" and k < SLOW}
    assert moved == {4, 5, 6, 7}
    for k in range(16):  # the same restarts with the same outcomes, wherever they ran
        assert stolen.records[k].status == kept.records[k].status
        assert stolen.records[k].trajectory == kept.records[k].trajectory


def test_a_worker_gives_back_only_restarts_it_has_not_started():
    worker = BlockWorker(ModelSpec("src"), {"x": [0]}, slots=2, policy=POLICY,
                         block_factory=fakes.fake_factory(acc_fn=slow_first))
    worker.assign([Assignment(k, restart_seed(SEED, k)) for k in range(4)])
    worker.run(seconds=0.0)  # 0 and 1 start in the two slots; 2 and 3 wait
    assert sorted(worker.running()) == [0, 1]
    assert worker.revoke([1, 3, 9]) == [3]  # 1 is training, 9 was never here
    assert sorted(worker.in_flight()) == [0, 1, 2]


def test_revoke_beside_a_training_run_never_loses_or_doubles_a_restart():
    # the Ray actor answers revokes on a second thread while run() trains: each restart is started or given back
    worker = BlockWorker(ModelSpec("src"), {"x": [0]}, slots=1, policy=POLICY,
                         block_factory=fakes.fake_factory(acc_fn=slow_first, step_cost_s=0.0002))
    worker.assign([Assignment(k, restart_seed(SEED, k)) for k in range(6)])
    given_back: list[int] = []

    def revoke_repeatedly():
        for _ in range(200):
            given_back.extend(worker.revoke([3, 4, 5]))
            time.sleep(0.0005)

    thread = threading.Thread(target=revoke_repeatedly)
    thread.start()
    finished = []
    while worker.in_flight():
        finished.extend(r.index for r in worker.run(seconds=0.01).records)
    thread.join()
    assert sorted(finished + given_back) == list(range(6))


def test_a_backend_without_revoke_still_runs_every_restart():
    class NoRevoke(LocalBackend):
        revoke = property()  # unreadable, so hasattr() is False: a backend written before revoke existed

    backend = NoRevoke({"model_spec": ModelSpec("src"), "data": {"x": [0]}, "slots": 4, "policy": POLICY,
                        "block_factory": fakes.fake_factory(acc_fn=slow_first)})
    result = run(steal=True, backend=backend)
    assert sorted(result.records) == list(range(16))
    assert {k for k, r in result.records.items() if r.actor == "local-1"} == set(range(8, 16))


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_ray_actors_give_back_queued_restarts_while_they_train():
    ray.cloudpickle.register_pickle_by_value(fakes)
    ray.cloudpickle.register_pickle_by_value(__import__(__name__, fromlist=["slow_first"]))
    started = init_ray(num_cpus=2)
    try:
        # a wave of slow restarts takes 300 steps x 20 ms = 6 s, so the second actor is up (seconds, on a
        # loaded machine) and idle long before the first actor's second wave could start
        result = run(steal=True, backend="ray", cpus_per_actor=0.5, slice_s=0.2,
                     block_factory=fakes.fake_factory(acc_fn=slow_first, step_cost_s=0.02))
    finally:
        if started:
            ray.shutdown()
    assert sorted(result.records) == list(range(16))
    by_actor = {}
    for k, r in result.records.items():
        by_actor.setdefault(r.actor.split("@")[0], set()).add(k)
    assert len(by_actor) == 2
    slow_homes = {actor for actor, ks in by_actor.items() if ks & set(range(SLOW))}
    assert len(slow_homes) == 2, by_actor  # the slow restarts were shared out, not left queued on one actor


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_a_ray_actor_answers_a_revoke_while_a_run_call_trains():
    from ntpt_dist.search.ray_backend import RayBackend

    ray.cloudpickle.register_pickle_by_value(fakes)
    started = init_ray(num_cpus=2)
    try:
        backend = RayBackend({"model_spec": ModelSpec("src"), "data": {"x": [0]}, "slots": 1, "policy": POLICY,
                              "block_factory": fakes.fake_factory(step_cost_s=0.01)}, cpus_per_actor=0.5)
        handle = backend.spawn()
        backend.wait([backend.submit(handle, [], 0.0)], timeout=60)  # started up
        training = backend.submit(handle, [Assignment(k, restart_seed(SEED, k)) for k in range(3)], 4.0)
        time.sleep(0.5)  # the run call has started 0 and queued 1 and 2
        t0 = time.monotonic()
        answer = backend.wait([backend.revoke(handle, [2])], timeout=10)
        waited = time.monotonic() - t0
        assert answer and answer[0][1] == [2]
        assert waited < 2.0, f"the revoke waited {waited:.1f} s, behind the run call"
        report = backend.wait([training], timeout=30)[0][1]
        assert 2 not in report.in_flight and {r.index for r in report.records} | set(report.in_flight) == {0, 1}
        backend.shutdown()
    finally:
        if started:
            ray.shutdown()
