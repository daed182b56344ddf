"""The local Ray a search starts by itself (no address): where it listens, what it joins."""

from __future__ import annotations

import os
import sys

import pytest
import ray
from ntpt_dist.search.driver import search
from ntpt_dist.search.policy import JumpPolicy
from ntpt_dist.search.ray_backend import RayBackend

from . import fakes, netprobe

pytestmark = [
    pytest.mark.ray,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads sockets and processes from Linux's /proc"),
]

POLICY = JumpPolicy(delta=0.5, window=3, floor=0.8, refine_evals=2, budget_steps=300)
WORKER_KWARGS = {"model_spec": ("src", {}), "data": {"x": [0]}, "slots": 4, "policy": POLICY, "eval_every": 25,
                 "block_factory": fakes.fake_factory(step_cost_s=0.001)}


@pytest.fixture
def no_ray_session():
    """The search must start Ray itself (and stop it): no session may be left by another test."""
    assert not ray.is_initialized(), "a Ray session is already up in this process; its owner did not stop it"
    ray.cloudpickle.register_pickle_by_value(fakes)
    yield
    assert not ray.is_initialized(), "the search left the Ray it started running"


class ListenerSnapshot(RayBackend):
    """Records every listening socket of this process and its descendants once an actor trains."""

    listeners: list = []
    processes: list = []

    def wait(self, tickets, timeout):
        out = super().wait(tickets, timeout)
        if not self.listeners and any(isinstance(o, dict) and o.get("running") for _, o in out):
            pids = [os.getpid(), *netprobe.descendants(os.getpid())]
            self.processes = [netprobe.process_name(pid) for pid in pids]
            self.listeners = netprobe.listeners(pids)
        return out


def test_the_local_ray_listens_on_loopback_only(no_ray_session):
    backend = ListenerSnapshot(WORKER_KWARGS, cpus_per_actor=0.5, num_cpus=2)
    try:
        assert backend.started_ray
        result = search(("src", {}), {"x": [0]}, restarts=8, seed=3, restarts_per_actor=4, actors=2, policy=POLICY,
                        progress=False, slice_s=0.2, backend=backend, block_factory=WORKER_KWARGS["block_factory"])
    finally:
        backend.shutdown()  # the search does this too; here also when it fails before starting
    assert sorted(result.records) == list(range(8))
    names = " ".join(backend.processes)
    for part in ("gcs_server", "raylet", "ray::RayWorker", "ray::DashboardAgent"):
        assert part in names, f"{part} was not running when the sockets were read: {backend.processes}"
    assert {p.process for p in backend.listeners} >= {"ray::RayWorker"}, backend.listeners  # workers listen too
    exposed = [p for p in backend.listeners if not netprobe.is_loopback(p.address)]
    assert not exposed, f"Ray processes listen beyond loopback: {exposed}"
