"""A driver SIGKILLed mid-search leaves no process of its local Ray and no listening socket behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from . import netprobe

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads processes and sockets from Linux's /proc"),
]

REPO = Path(__file__).resolve().parents[2]
GRACE_S = 10.0  # how long Ray's processes may take to notice that their driver is gone

DRIVER = """
import sys
import ray
from ntpt_dist.search.driver import search
from ntpt_dist.search.policy import JumpPolicy
from ntpt_dist.search.ray_backend import init_ray
from tests.search import fakes

ray.cloudpickle.register_pickle_by_value(fakes)
init_ray(num_cpus=2, _temp_dir=sys.argv[2])
search(("src", {}), {"x": [0]}, restarts=400, seed=0, restarts_per_actor=4, actors=2, cpus_per_actor=0.5,
       policy=JumpPolicy(delta=0.5, window=3, floor=0.8, refine_evals=2, budget_steps=300), progress=False,
       slice_s=0.2, flush_s=0.2, journal=sys.argv[1], block_factory=fakes.fake_factory(step_cost_s=0.02))
"""


def test_a_killed_driver_leaves_no_ray_process_or_listener(tmp_path):
    temp_dir = Path("/tmp") / f"ntpt-kill-{os.getpid()}"  # short: Ray's socket paths must fit in 107 bytes
    journal = tmp_path / "journal.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(journal), str(temp_dir)], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    below: list[int] = []
    try:
        deadline = time.monotonic() + 150
        while not (journal.exists() and '"restart"' in journal.read_text()):  # actors are training
            assert driver.poll() is None, f"the driver ended before any restart finished: {driver.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "no restart finished within 150 s"
            time.sleep(0.1)
        below = netprobe.descendants(driver.pid)
        names = {netprobe.process_name(pid) for pid in below}
        assert any("raylet" in n for n in names) and any("gcs_server" in n for n in names), names
        listening_before = netprobe.listeners(below)
        assert listening_before, "the cluster listens nowhere: nothing to check"

        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline:
            left = [pid for pid in {*below, *netprobe.processes_using(str(temp_dir))} if netprobe.running(pid)]
            if not left:
                break
            time.sleep(0.25)
        still = sorted({netprobe.process_name(pid) for pid in left})
        assert not left, f"still running {GRACE_S:.0f} s after the driver's SIGKILL: {still}"
        assert netprobe.listeners(below) == []
        events = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
        assert any(e.get("event") == "restart" for e in events)
    finally:
        for pid in {*below, *netprobe.processes_using(str(temp_dir))}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if driver.poll() is None:
            driver.kill()
