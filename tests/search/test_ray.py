"""search() on a real local Ray: accounting, a killed actor, and the same result as in-process."""

import pytest
import ray
from ntpt_dist.search.driver import search
from ntpt_dist.search.policy import JumpPolicy
from ntpt_dist.search.ray_backend import RayBackend, init_ray
from ntpt_dist.search.records import WorkerReport, restart_seed
from ntpt_dist.search.worker import ModelSpec

from ..interpreter import flatmodels
from . import fakes, realmodels

pytestmark = [pytest.mark.ray, pytest.mark.timeout(120)]

POLICY = JumpPolicy(delta=0.5, window=3, floor=0.8, refine_evals=2, budget_steps=300)


@pytest.fixture(scope="module")
def local_ray():
    # actors import the test helpers by value: Ray workers need not find tests/ on their path
    for module in (fakes, realmodels, flatmodels):
        ray.cloudpickle.register_pickle_by_value(module)
    started = init_ray(num_cpus=2)
    yield
    if started:
        ray.shutdown()


def kwargs(**kw):
    base = dict(seed=3, restarts_per_actor=4, actors=2, cpus_per_actor=0.5, policy=POLICY, progress=False,
                slice_s=0.2, block_factory=fakes.fake_factory(step_cost_s=0.001))
    base.update(kw)
    return base


def check_all(result, n, seed=3):
    assert sorted(result.records) == list(range(n))
    for k, r in result.records.items():
        want = "converged" if restart_seed(seed, k) % 3 == 0 else "stopped"
        assert r.status == want, (k, r.status, r.error)


def test_ray_search_accounts_for_every_restart_like_the_local_one(local_ray):
    # restarts slow enough (1.5 s a wave) that the second actor is up before the first has done them all
    slow = kwargs(block_factory=fakes.fake_factory(step_cost_s=0.005))
    result = search(("src", {}), {"x": [0]}, restarts=16, **slow)
    check_all(result, 16)
    assert len({r.actor for r in result.records.values()}) == 2
    local = search(("src", {}), {"x": [0]}, restarts=16, backend="local", **slow)
    for k in range(16):
        assert result.records[k].trajectory == local.records[k].trajectory
    assert result.winner.index == local.winner.index


class KillingBackend(RayBackend):
    """ray.kill()s actor 0 once it has restarts running."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.killed = None
        self.victims = []

    def wait(self, tickets, timeout):
        out = super().wait(tickets, timeout)
        started = any(isinstance(outcome, WorkerReport) and outcome.running for _, outcome in out)
        if self.killed is None and started and 0 in self._actors:
            # the report may come from the other actor: ask actor 0 itself what it holds, kill it only then
            held = ray.get(self.actor(0).run.remote([], 0.0)).in_flight
            if held:
                self.killed = ray.get(self.actor(0).info.remote())
                self.victims = held
                ray.kill(self.actor(0), no_restart=True)
        return out


def test_killing_an_actor_mid_search_loses_no_restart(local_ray):
    worker_kwargs = {"model_spec": ModelSpec("src"), "data": {"x": [0]}, "slots": 4, "policy": POLICY,
                     "eval_every": 25, "block_factory": fakes.fake_factory(step_cost_s=0.001)}
    backend = KillingBackend(worker_kwargs, cpus_per_actor=0.5)
    result = search(("src", {}), {"x": [0]}, restarts=16, backend=backend, **kwargs())
    assert backend.killed is not None
    check_all(result, 16)
    assert backend.victims  # it held restarts when it died; another actor finished them
    assert all(result.records[k].actor != backend.killed["name"] for k in backend.victims)
    assert result.counts["failed"] == 0
    assert result.counts["started"] == 16  # the dead actor's restarts, handed out again, are not started twice


def test_ray_search_with_real_blocks_finds_the_correct_program(local_ray):
    policy = JumpPolicy(delta=0.25, window=5, floor=0.5, refine_evals=2, budget_steps=200)
    result = search(("", {}), realmodels.gates_data(), **kwargs(
        block_factory=realmodels.gates_factory(), policy=policy, config={"lr": 0.01, "batch_size": 8},
        eval_every=10, restarts_per_actor=4), restarts=8)
    assert sorted(result.records) == list(range(8))
    assert result.winner.program["params"] == realmodels.CORRECT
    assert result.winner.program_val_acc == 1.0
    local = search(("", {}), realmodels.gates_data(), **kwargs(
        block_factory=realmodels.gates_factory(), policy=policy, config={"lr": 0.01, "batch_size": 8},
        eval_every=10, restarts_per_actor=2, backend="local", actors=1), restarts=8)
    for k in range(8):  # same restart, other actor and block size: same trajectory
        assert result.records[k].trajectory == local.records[k].trajectory


def test_ray_search_of_a_compiled_source_finds_a_half_adder(local_ray):
    # the model travels as source + hypers and is compiled inside each actor (no block_factory)
    from ntpt_dist.interpreter.model import compile_file

    from ..interpreter.fixture_data import MODELS, circuit_data

    full = circuit_data()
    a, b = full["a"], full["b"]
    data = {"a": a, "b": b, "carry_in": full["carry_in"], "total": a ^ b, "carry_out": a & b}
    result = search(compile_file(MODELS / "circuit.py"), data, restarts=8, **kwargs(
        block_factory=None, policy=JumpPolicy(budget_steps=200, refine_evals=1), eval_every=20,
        config={"lr": 0.1, "batch_size": None, "optimizer": "rmsprop"}))
    assert sorted(result.records) == list(range(8))
    best = result.best_program()
    assert best is not None and best.accuracy(data) == 1.0
    assert best.run(data)["total"].tolist() == (a ^ b).tolist()


def test_actors_run_with_the_drivers_telemetry_settings(local_ray, monkeypatch):
    # set after the cluster started, so only the actor's runtime env can carry them there
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "TRUE")
    monkeypatch.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
    backend = RayBackend({"model_spec": ModelSpec("src"), "data": {"x": [0]}, "slots": 1,
                          "block_factory": fakes.fake_factory()}, cpus_per_actor=0.5)
    try:
        env = ray.get(backend.actor(backend.spawn()).info.remote())["env"]
    finally:
        backend.shutdown()
    assert env == {"MLFLOW_DISABLE_TELEMETRY": "TRUE", "RAY_USAGE_STATS_ENABLED": "0"}
