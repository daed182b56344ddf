"""The worker and driver on the real RestartBlock (no Ray): reproducibility and a found program."""

import torch
from ntpt_dist.search.driver import search
from ntpt_dist.search.policy import JumpPolicy
from ntpt_dist.search.records import restart_seed
from ntpt_dist.search.worker import Assignment, BlockWorker

from .realmodels import CORRECT, gates_data, gates_factory

torch.set_num_threads(1)
POLICY = JumpPolicy(delta=0.25, window=5, floor=0.5, refine_evals=2, budget_steps=200)
CONFIG = {"lr": 0.01, "batch_size": 8}


def finish(worker):
    out = []
    for _ in range(100):
        got = worker.run(seconds=0.0)
        out += got.records
        assert not got.crashes, got.crashes
        if not got.in_flight:
            return {r.index: r for r in out}
    raise AssertionError("worker did not finish")


def test_a_restart_is_the_same_alone_in_a_block_and_in_another_slot():
    data = gates_data()
    seeds = [restart_seed(1, k) for k in range(6)]
    alone = BlockWorker(("", {}), data, slots=1, config=CONFIG, policy=POLICY, eval_every=10,
                        block_factory=gates_factory())
    alone.assign([Assignment(4, seeds[4])])
    crowd = BlockWorker(("", {}), data, slots=3, config=CONFIG, policy=POLICY, eval_every=10,
                        block_factory=gates_factory())
    crowd.assign([Assignment(k, s) for k, s in enumerate(seeds)])  # restart 4 lands in a refilled slot
    a, c = finish(alone), finish(crowd)
    assert a[4].trajectory == c[4].trajectory and len(a[4].trajectory) > 2
    assert a[4].program is None or a[4].program["params"] == c[4].program["params"]
    trajectories = {tuple(map(tuple, r.trajectory)) for r in c.values()}
    assert len(trajectories) > 1  # different seeds really differ


def test_local_search_finds_the_correct_program():
    result = search(("", {}), gates_data(), restarts=8, seed=0, backend="local", actors=1, restarts_per_actor=4,
                    policy=POLICY, config=CONFIG, eval_every=10, progress=False, block_factory=gates_factory())
    assert result.counts["converged"] >= 1
    assert result.winner.program_val_acc == 1.0
    assert result.winner.program["params"] == CORRECT


def test_a_restart_without_a_jump_is_polished_into_a_program():
    # lr 0: gradient descent goes nowhere, every restart hits its step budget; the discrete local
    # search from its (random) program then finds the gates program within a few Param changes.
    policy = JumpPolicy(delta=0.25, window=5, floor=0.9, refine_evals=2, budget_steps=20)
    worker = BlockWorker(("", {}), gates_data(), slots=4, config={"lr": 0.0, "batch_size": 8, "polish_edits": 2},
                         policy=policy, eval_every=10, block_factory=gates_factory())
    worker.assign([Assignment(k, restart_seed(0, k)) for k in range(4)])
    records = finish(worker)
    polished = [r for r in records.values() if r.reason == "polish"]
    assert polished and all(r.status == "converged" and r.program_val_acc >= 0.9 for r in polished)
    assert all(r.program["params"] == CORRECT for r in polished)
    # the others happen to start with the right argmax (the policy's "solved" rule takes them at once)
    assert all(r.reason in ("polish", "jump") and r.program["params"] == CORRECT for r in records.values())
