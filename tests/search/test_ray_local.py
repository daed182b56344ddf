"""The local Ray a search starts by itself (no address): where it listens, what it joins."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import ray
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.search.driver import search
from ntpt_dist.search.policy import JumpPolicy
from ntpt_dist.search.ray_backend import RayBackend, init_ray
from ntpt_dist.search.records import WorkerReport

from . import fakes, netprobe

pytestmark = [
    pytest.mark.ray,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads sockets and processes from Linux's /proc"),
]

REPO = Path(__file__).resolve().parents[2]
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
    """Reads every listening socket of this process and its descendants each time it waits while actors train."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.listeners: set = set()
        self.processes: set = set()

    def wait(self, tickets, timeout):
        out = super().wait(tickets, timeout)
        if any(isinstance(o, WorkerReport) and o.running for _, o in out):
            pids = [os.getpid(), *netprobe.descendants(os.getpid())]
            self.processes.update(netprobe.process_name(pid) for pid in pids)
            self.listeners.update(netprobe.listeners(pids))
        return out


def test_the_local_ray_listens_on_loopback_only(no_ray_session):
    backend = ListenerSnapshot(WORKER_KWARGS, cpus_per_actor=0.5, num_cpus=2)
    try:
        assert backend.started_ray
        result = search(("src", {}), {"x": [0]}, restarts=16, seed=3, restarts_per_actor=4, actors=2, policy=POLICY,
                        progress=False, slice_s=0.2, backend=backend, block_factory=WORKER_KWARGS["block_factory"])
    finally:
        backend.shutdown()  # the search does this too; here also when it fails before starting
    assert sorted(result.records) == list(range(16))
    names = " ".join(sorted(backend.processes))
    for part in ("gcs_server", "raylet", "ray::RayWorker", "ray::DashboardAgent"):
        assert part in names, f"{part} was never seen while the sockets were read: {sorted(backend.processes)}"
    # the actors listen too (named ray::RayWorker, or ray::RayWorker.run while in a call)
    assert any(p.process.startswith("ray::RayWorker") for p in backend.listeners), backend.listeners
    exposed = [p for p in backend.listeners if not netprobe.is_loopback(p.address)]
    assert not exposed, f"Ray processes listen beyond loopback: {exposed}"


# MLflow turns its telemetry off by itself under pytest and CI: the traced run must see none of these,
# so that the defaults under test are ntpt-dist's own.
TEST_ENVIRONMENT = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE",
                    "MLFLOW_DISABLE_TELEMETRY", "RAY_USAGE_STATS_ENABLED", "DO_NOT_TRACK", "RAY_ADDRESS")
SOCKADDR = re.compile(r"\{sa_family=(AF_\w+)(.*?)\}")
ADDRESS = re.compile(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')


def off_host_connects(trace: str) -> tuple[list[str], int]:
    """(connect calls to anything but loopback or a local socket, number of connect calls to loopback)."""
    off_host, loopback = [], 0
    for line in trace.splitlines():
        if " connect(" not in line or "resumed>" in line:
            continue
        found = SOCKADDR.search(line)
        if found is None or found.group(1) in ("AF_UNIX", "AF_NETLINK", "AF_UNSPEC"):
            continue  # AF_UNSPEC: dissolving a UDP socket's association
        address = ADDRESS.search(found.group(2))
        if address and netprobe.is_loopback(address.group(1) or address.group(2)):
            loopback += 1
        else:
            off_host.append(line.strip())
    return off_host, loopback


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_local_search_connects_to_nothing_off_the_host(tmp_path):
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (apt-get install strace): it traces the search's connect calls")
    if subprocess.run([strace, "-f", "-o", os.devnull, "true"], capture_output=True).returncode != 0:
        pytest.skip("strace cannot trace here (ptrace not permitted): it traces the search's connect calls")
    ray_tmp = tempfile.mkdtemp(prefix="ntpt-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    env = {k: v for k, v in os.environ.items() if k not in TEST_ENVIRONMENT}
    env["RAY_TMPDIR"] = ray_tmp
    trace_file = tmp_path / "connects.txt"
    try:
        run = subprocess.run(
            [strace, "-f", "-qq", "-e", "trace=connect", "-o", str(trace_file),
             sys.executable, "-m", "tests.search.traced_search", str(tmp_path / "store")],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=360,
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert run.returncode == 0, run.stderr[-3000:]
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    assert outcome["stop"] == "usage_module_ran" and outcome["finished"] >= 8, outcome
    off_host, loopback = off_host_connects(trace_file.read_text())
    assert loopback > 0, "the trace saw no connect at all: it did not follow the search's processes"
    assert not off_host, "a default local search tried to reach other hosts:\n" + "\n".join(off_host[:20])


@pytest.fixture
def dead_address(monkeypatch):
    """host:port where nothing listens (a bound socket that never listens refuses every connection),
    written where `ray start` records its cluster, in a Ray temp folder of this test's own."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        ray_tmp = tempfile.mkdtemp(prefix="ntpt-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
        os.makedirs(os.path.join(ray_tmp, "ray"))
        with open(os.path.join(ray_tmp, "ray", "ray_current_cluster"), "w") as handle:
            handle.write(address)  # what a `ray start` cluster ended without `ray stop` leaves behind
        monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
        yield address
    shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.timeout(120)  # joining the dead cluster hung for about 13 minutes
def test_without_an_address_a_fresh_local_ray_starts_whatever_was_left_behind(no_ray_session, dead_address,
                                                                              monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", dead_address)
    with pytest.warns(UserWarning, match="RAY_ADDRESS=.* is set, but without an address"):
        started = init_ray(num_cpus=1)
    try:
        assert started
        gcs = ray.get_runtime_context().gcs_address
        assert gcs != dead_address and gcs.startswith("127.0.0.1:"), gcs
    finally:
        ray.shutdown()


@pytest.mark.parametrize("address, env, source", [
    ("{dead}", None, "address '{dead}'"),
    ("ray://{dead}", None, "address 'ray://{dead}'"),
    ("auto", "{dead}", "address 'auto' reads RAY_ADDRESS"),
    ("auto", None, "address 'auto' reads the cluster `ray start` recorded"),
])
def test_an_unreachable_cluster_is_one_clear_line_within_seconds(dead_address, monkeypatch, address, env, source):
    if env:
        monkeypatch.setenv("RAY_ADDRESS", env.format(dead=dead_address))
    assert not ray.is_initialized()
    start = time.monotonic()
    with pytest.raises(NtptError) as error:
        init_ray(address.format(dead=dead_address))
    assert time.monotonic() - start < 10
    message = str(error.value)
    assert "\n" not in message and f"no Ray cluster answers at {dead_address}" in message, message
    assert source.format(dead=dead_address) in message and "fix:" in message
    assert not ray.is_initialized()
