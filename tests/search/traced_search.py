"""A small local search with an sqlite store, as a user runs it: ``python -m tests.search.traced_search STORE``.

``test_ray_local.test_a_local_search_connects_to_nothing_off_the_host`` runs
this under strace. It keeps training until Ray's dashboard process has run its
usage-statistics module (the one that probes the cloud metadata addresses), so
the trace covers it, and prints one JSON line.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from dataclasses import dataclass


def usage_module_ran() -> bool:
    """Ray's dashboard logged that its usage module started (in this run's own RAY_TMPDIR)."""
    for log in glob.glob(os.path.join(os.environ["RAY_TMPDIR"], "ray", "session_*", "logs", "dashboard.log")):
        with open(log, errors="replace") as handle:
            if "Usage reporting is" in handle.read():
                return True
    return False


def main(store_dir: str) -> None:
    import ray
    from ntpt_dist.search.policy import JumpPolicy, StopRule

    import ntpt_dist

    from . import fakes

    @dataclass(frozen=True)
    class UntilUsageModuleRan(StopRule):
        def reason(self, finished: int, converged: int, elapsed_s: float):
            if finished >= 8 and usage_module_ran():
                return "usage_module_ran"
            return super().reason(finished, converged, elapsed_s)

    ray.cloudpickle.register_pickle_by_value(fakes)
    result = ntpt_dist.search(
        ("src", {}), {"x": [0]}, restarts=100_000, seed=3, restarts_per_actor=4, actors=1, cpus_per_actor=0.5,
        policy=JumpPolicy(delta=0.5, window=3, floor=0.8, refine_evals=2, budget_steps=300), progress=False,
        slice_s=0.2, stop=UntilUsageModuleRan(wall_clock_s=150), store=ntpt_dist.LibraryStore(store_dir),
        task="traced", block_factory=fakes.fake_factory(step_cost_s=0.001),
        publish=False,  # the fake blocks' programs are not Programs: record the restarts, merge nothing
    )
    print(json.dumps({"finished": len(result.records), "stop": result.stop_reason}))


if __name__ == "__main__":
    main(sys.argv[1])
