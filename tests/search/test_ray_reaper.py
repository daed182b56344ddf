"""The reaper of a local Ray: stops the marked processes of a driver that died, and nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ntpt_dist.search import ray_reaper

from . import netprobe

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads processes from Linux's /proc")

# A stand-in driver: starts a process carrying the cluster's mark (a raylet to be) whose own child
# has lost the mark (as a Ray agent's environment can, once Ray renames the process), and a
# bystander without it; starts the reaper, prints the pids and waits to be killed.
DRIVER = """
import os, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
import ray_reaper
marker = ray_reaper.new_token()
sleep = [sys.executable, "-c", "import time; time.sleep(120)"]
parent = [sys.executable, "-c", "import os, subprocess, sys, time; env = dict(os.environ); env.pop(sys.argv[1]); "
          "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], env=env); "
          "print(child.pid, flush=True); time.sleep(120)", ray_reaper.MARK]
agent = subprocess.Popen(parent, env={**os.environ, **marker}, start_new_session=True, stdout=subprocess.PIPE, text=True)
unmarked = int(agent.stdout.readline())
bystander = subprocess.Popen(sleep, start_new_session=True)
while not ray_reaper.marked(marker[ray_reaper.MARK]):  # until the agent runs with its environment
    time.sleep(0.01)
watcher = ray_reaper.watch(marker)
print(agent.pid, bystander.pid, watcher, marker[ray_reaper.MARK], unmarked, flush=True)
time.sleep(120)
"""


def _wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def driver():
    folder = str(Path(ray_reaper.__file__).parent)
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, folder], stdout=subprocess.PIPE, text=True)
    agent, bystander, watcher, token, unmarked = proc.stdout.readline().split()
    pids = [int(agent), int(bystander), int(watcher), int(unmarked)]
    yield proc, pids, token
    proc.kill()
    proc.wait()
    proc.stdout.close()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def test_a_killed_driver_s_marked_processes_are_stopped_and_no_other(driver):
    proc, (agent, bystander, watcher, unmarked), token = driver
    assert ray_reaper.marked(token) == [agent] and sorted(ray_reaper.cluster(token)) == sorted([agent, unmarked])
    time.sleep(2 * ray_reaper.POLL_S)
    assert netprobe.running(agent) and netprobe.running(watcher), "the reaper acted while its driver was alive"

    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _wait_until(lambda: not netprobe.running(agent), ray_reaper.POLL_S + ray_reaper.GRACE_S + 10)
    assert _wait_until(lambda: not netprobe.running(unmarked), 10), "a child of the cluster was left running"
    assert _wait_until(lambda: not netprobe.running(watcher), 10), "the reaper outlived its work"
    assert netprobe.running(bystander), "a process without the cluster's mark was stopped"


def test_the_reaper_ends_once_its_cluster_is_gone(driver):
    proc, (agent, bystander, watcher, unmarked), token = driver
    os.kill(agent, signal.SIGKILL)  # as ray.shutdown stops the cluster
    assert _wait_until(lambda: not netprobe.running(watcher), 2 * ray_reaper.POLL_S + 10)
    assert proc.poll() is None and netprobe.running(bystander)


# Two clusters one after the other in a fresh process (no other test's reapers there): the second
# watch() collects the first reaper, which ended with its cluster, and closes its pipe.
SUCCESSION = """
import os, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
import ray_reaper
def running(pid):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"
def until(condition, timeout_s=15):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()
sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
first, second = ray_reaper.new_token(), ray_reaper.new_token()
agents = [subprocess.Popen(sleep, env={**os.environ, **m}) for m in (first, second)]
assert until(lambda: ray_reaper.marked(first[ray_reaper.MARK]) and ray_reaper.marked(second[ray_reaper.MARK]))
old = ray_reaper.watch(first)
old_write = ray_reaper._watchers[0][1]
agents[0].kill(); agents[0].wait()  # the first cluster is shut down: its reaper ends by itself
assert until(lambda: not running(old)), "the first reaper did not end with its cluster"
new = ray_reaper.watch(second)
new_write = ray_reaper._watchers[-1][1]
try:
    os.fstat(old_write)
    still_open = old_write != new_write  # the number may be the new pipe's, reused
except OSError:
    still_open = False
print([pid for pid, _ in ray_reaper._watchers] == [new], still_open, flush=True)
agents[1].kill(); agents[1].wait()
assert until(lambda: not running(new)), "the second reaper did not end with its cluster"
"""


def test_a_new_cluster_s_reaper_collects_the_last_one_and_closes_its_pipe():
    folder = str(Path(ray_reaper.__file__).parent)
    done = subprocess.run([sys.executable, "-c", SUCCESSION, folder], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "False"], done.stdout  # one reaper listed; the old pipe closed
