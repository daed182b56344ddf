"""`ntpt-dist ui` stops the MLflow server and everything it started, on Ctrl-C and on SIGTERM alike."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..search import netprobe

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="follows processes through Linux's /proc"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pids):
    return [pid for pid in pids if netprobe.running(pid)]


def wait_for_line(proc: subprocess.Popen, text: str, timeout_s: float) -> str:
    """The first line of ``proc``'s stdout that holds ``text``; fails after ``timeout_s`` or at its end."""
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            if text in line:
                return line
            seen.append(line)
    pytest.fail(f"no line with {text!r} from `ntpt-dist ui`; it printed: {''.join(seen)[-2000:]}")


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_the_ui_command_leaves_no_server_behind(tmp_path, stop_with):
    from ntpt_dist.library_store.api import LibraryStore

    LibraryStore(str(tmp_path / "store"))  # `ui` opens a store that exists, never creates one
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    cli = Path(sys.executable).with_name("ntpt-dist")
    with open(tmp_path / "ui.err", "w") as err:
        ui = subprocess.Popen([str(cli), "ui", "--store", str(tmp_path / "store"), "--port", str(free_port())],
                              stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    server: list[int] = []
    try:
        wait_for_line(ui, "MLflow UI for", timeout_s=180)  # printed once the server answers
        server = netprobe.descendants(ui.pid)
        assert any("mlflow" in open(f"/proc/{pid}/cmdline").read() for pid in alive(server)), server
        ui.send_signal(stop_with)
        assert ui.wait(timeout=60) == 0, (tmp_path / "ui.err").read_text()[-2000:]
        deadline = time.monotonic() + 30
        while alive(server) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = {pid: netprobe.process_name(pid) for pid in alive(server)}
        assert not left, f"still running after `ntpt-dist ui` got signal {stop_with.name}: {left}"
    finally:
        if ui.poll() is None:
            server += netprobe.descendants(ui.pid)
        for pid in alive([ui.pid, *server]):  # only what this test started
            os.kill(pid, signal.SIGKILL)
        ui.wait(timeout=30)
