"""A two-node ray.cluster_utils.Cluster loses a node mid-search; every restart is still accounted for."""

import pytest
import ray
from ntpt_dist.search.driver import search
from ntpt_dist.search.policy import JumpPolicy
from ntpt_dist.search.ray_backend import RayBackend
from ntpt_dist.search.records import WorkerReport, restart_seed
from ntpt_dist.search.worker import ModelSpec
from ray.cluster_utils import Cluster

from . import fakes

pytestmark = [pytest.mark.ray, pytest.mark.timeout(150)]

POLICY = JumpPolicy(delta=0.5, window=3, floor=0.8, refine_evals=2, budget_steps=300)


@pytest.fixture(scope="module")
def cluster():
    if ray.is_initialized():
        ray.shutdown()
    ray.cloudpickle.register_pickle_by_value(fakes)
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    node = c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address)
    yield c, node
    ray.shutdown()
    c.shutdown()


class NodeLosingBackend(RayBackend):
    """Removes the second node once every actor has started training."""

    def __init__(self, cluster, node, *a, **kw):
        super().__init__(*a, **kw)
        self.cluster, self.node, self.removed, self.lost_actors = cluster, node, False, []

    def wait(self, tickets, timeout):
        out = super().wait(tickets, timeout)
        if not self.removed and any(isinstance(o, WorkerReport) and o.running for _, o in out):
            infos = ray.get([self.actor(h).info.remote() for h in list(self._actors)])
            self.lost_actors = [i["name"] for i in infos if i["node_id"] == self.node.node_id]
            self.cluster.remove_node(self.node)
            self.removed = True
        return out


def test_removing_a_node_mid_search_loses_no_restart(cluster):
    c, node = cluster
    worker_kwargs = {"model_spec": ModelSpec("src"), "data": {"x": [0]}, "slots": 4, "policy": POLICY,
                     "eval_every": 25, "block_factory": fakes.fake_factory(step_cost_s=0.001)}
    backend = NodeLosingBackend(c, node, worker_kwargs, cpus_per_actor=1)
    result = search(("src", {}), {"x": [0]}, restarts=16, seed=5, actors=2, restarts_per_actor=4, policy=POLICY,
                    progress=False, slice_s=0.2, backend=backend, block_factory=worker_kwargs["block_factory"])
    assert backend.removed and len(backend.lost_actors) == 1  # one actor per 1-CPU node
    assert sorted(result.records) == list(range(16))
    for k, r in result.records.items():
        assert r["status"] == ("converged" if restart_seed(5, k) % 3 == 0 else "stopped"), (k, r)
    assert result.counts["failed"] == 0  # a lost node is a retry, not a failure
