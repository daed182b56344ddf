"""The cluster recipe of README.md / docs/scaling.md, exercised: a Ray head on loopback, a search submitted as a
Ray job, the program fetched from the store the job wrote.

The head runs with token authentication (``RAY_AUTH_MODE=token``, as Ray >= 2.59
starts local clusters) and a token file of its own, in a temp folder of its own
and on free ports, so it shares nothing with any other Ray on the machine. It is
stopped by the processes it started (those naming its temp folder, and their
descendants), never with ``ray stop``, which stops every Ray on the machine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from .search import netprobe

pytestmark = [
    pytest.mark.slow,
    pytest.mark.ray,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds its processes through Linux's /proc"),
]

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: ray, ntpt-dist
FIXTURES = "tests/fixtures"


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def stop_processes_naming(text: str, timeout_s: float = 20.0) -> list[int]:
    """SIGTERM every process whose command line names ``text`` and every process below them; SIGKILL what is left."""
    roots = netprobe.processes_using(text)
    pids = sorted({*roots, *(child for root in roots for child in netprobe.descendants(root))})
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    while any(netprobe.running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        if netprobe.running(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10  # a killed process takes a moment to go
    while any(netprobe.running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [pid for pid in pids if netprobe.running(pid)]


@pytest.fixture
def head(tmp_path):
    """(dashboard URL, the environment a client needs) of a fresh head node on 127.0.0.1."""
    temp_dir = tempfile.mkdtemp(prefix="ntpt-ray-", dir="/tmp")  # short: Ray's socket paths live below it
    token = tmp_path / "ray-token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_USAGE_STATS_ENABLED="0",
               MLFLOW_DISABLE_TELEMETRY="true")
    gcs, dashboard, client, agent, agent_grpc, runtime_env, metrics, node_manager, object_manager = free_ports(9)
    low = 20000 + secrets.randbelow(20000)
    start = [
        str(BIN / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(gcs),
        "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard), "--ray-client-server-port", str(client),
        "--dashboard-agent-listen-port", str(agent), "--dashboard-agent-grpc-port", str(agent_grpc),
        "--runtime-env-agent-port", str(runtime_env), "--metrics-export-port", str(metrics),
        "--node-manager-port", str(node_manager), "--object-manager-port", str(object_manager),
        "--min-worker-port", str(low), "--max-worker-port", str(low + 200),
        "--temp-dir", temp_dir, "--num-cpus", "2", "--disable-usage-stats",
    ]
    try:
        started = subprocess.run(start, env=env, capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        yield f"http://127.0.0.1:{dashboard}", env
    finally:
        left = stop_processes_naming(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
        assert not left, f"processes of the test's Ray head still running: {left}"


def submit(url: str, env: dict, entrypoint: list[str], timeout_s: float = 600) -> subprocess.CompletedProcess:
    command = [str(BIN / "ray"), "job", "submit", "--address", url, "--working-dir", str(REPO), "--", *entrypoint]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s, cwd=REPO)


def test_a_search_submitted_as_a_ray_job_lands_in_the_store(head, tmp_path):
    import ntpt_dist

    url, env = head
    no_token = {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}
    refused = submit(url, no_token, ["true"], timeout_s=120)
    assert refused.returncode != 0 and "Authentication required" in refused.stdout + refused.stderr

    store = tmp_path / "store"
    job = submit(url, env, [
        str(BIN / "ntpt-dist"), "search", f"{FIXTURES}/mod_op.py", "--data", f"{FIXTURES}/mod_op_data.json",
        "--hypers", f"{FIXTURES}/mod_op_hypers.json", "--address", "auto", "--restarts", "4",
        "--restarts-per-actor", "2", "--store", str(store),
    ])
    assert job.returncode == 0, job.stdout[-4000:] + job.stderr[-2000:]
    assert "succeeded" in job.stdout + job.stderr

    best = ntpt_dist.best_program("mod_op", str(store))
    assert best.accuracy == 1.0 and best.search_id
    out = best.run({"x1": np.array([2, 4, 1]), "x2": np.array([3, 4, 0])})["y"]
    np.testing.assert_array_equal(out, [0, 3, 1])  # the fixture's data are (x1 + x2) mod 5
