"""Stops what is left of a local Ray whose driver died without stopping it.

On Linux every process of a local Ray dies with the driver that started it
(``PR_SET_PDEATHSIG``), except Ray's dashboard and runtime-env agents: they
notice at once, then try for 60 s to tell the cluster's GCS, which died with
the driver, before they exit, listening on their ports all the while.

:func:`watch` marks the cluster's processes with a token in their environment
(they inherit it from the driver while ``ray.init`` starts them) and starts
this file as a small process of its own. It holds the read end of a pipe whose
write end only the driver holds: when that ends (the driver exited, however),
it stops every process that carries the token, SIGTERM first, then SIGKILL.
It also ends by itself once no marked process is left (``ray.shutdown``).
Only processes carrying this cluster's token are touched, never another Ray.

Runs as a script (``python ray_reaper.py TOKEN``) with the standard library only.
"""

from __future__ import annotations

import os
import secrets
import select
import signal
import sys
import time
from typing import Optional

MARK = "NTPT_LOCAL_RAY"
POLL_S = 1.0
GRACE_S = 2.0

_watchers: list[tuple[int, int]] = []  # (pid, write end of its pipe): open while the driver lives


def new_token() -> dict[str, str]:
    """The environment entry that marks the processes of one new local cluster."""
    return {MARK: secrets.token_hex(8)}


def watch(marker: dict[str, str]) -> Optional[int]:
    """Start the reaper of the cluster whose processes carry ``marker``; its pid (Linux only; else ``None``).

    A plain pipe and ``posix_spawn``, not ``subprocess.Popen``: the reaper is meant to outlive every
    object of this process, and a Popen object would warn about that at exit.
    """
    if not sys.platform.startswith("linux"):
        return None
    for watcher in list(_watchers):  # collect reapers whose cluster was shut down, and close their pipes
        pid, write = watcher
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            os.close(write)
            _watchers.remove(watcher)
    env = {k: v for k, v in os.environ.items() if k != MARK}
    read, write = os.pipe()  # both ends close on exec: only the reaper's stdin (a dup) stays open in it
    try:
        pid = os.posix_spawn(
            sys.executable, [sys.executable, "-S", "-u", os.path.abspath(__file__), marker[MARK]], env,
            file_actions=[(os.POSIX_SPAWN_DUP2, read, 0),
                          (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                          (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)],
            setsid=True,  # Ctrl-C in the driver's terminal must not stop it first
        )
    finally:
        os.close(read)
    _watchers.append((pid, write))
    return pid


def _stat(pid: int) -> Optional[tuple[int, str, str]]:
    """(parent pid, state, start time) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], fields[19]


def marked(token: str) -> list[int]:
    """Running processes (not zombies) whose environment carries ``MARK=token``."""
    needle = f"{MARK}={token}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if needle not in handle.read().split(b"\0"):
                    continue
        except OSError:
            continue  # ended meanwhile, or not ours to read
        stat = _stat(int(entry))
        if stat is not None and stat[1] != "Z":
            found.append(int(entry))
    return found


def cluster(token: str) -> dict[int, str]:
    """The marked processes and everything below them: pid -> start time.

    Ray renames some of its processes (``ray::DashboardAgent``), and renaming may overwrite the
    memory ``/proc/<pid>/environ`` reads, so the mark alone can miss them; they are found as the
    marked raylet's children.
    """
    roots = marked(token)
    children: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] != "Z":
                children.setdefault(stat[0], []).append(int(entry))
                starts[int(entry)] = stat[2]
    found, todo = {}, list(roots)
    while todo:
        pid = todo.pop()
        if pid in starts and pid not in found and pid != os.getpid():
            found[pid] = starts[pid]
            todo.extend(children.get(pid, []))
    return found


def _running(known: dict[int, str]) -> list[int]:
    """Those of ``known`` still running as the same process (a reused pid has another start time)."""
    out = []
    for pid, start in known.items():
        stat = _stat(pid)
        if stat is not None and stat[1] != "Z" and stat[2] == start:
            out.append(pid)
    return out


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except OSError:
            pass


def reap(token: str, known: Optional[dict[int, str]] = None, grace_s: float = GRACE_S) -> int:
    """SIGTERM the cluster's processes (marked, or ``known`` below a marked one), SIGKILL those still
    running ``grace_s`` later; returns how many there were."""
    known = {**(known or {}), **cluster(token)}
    pids = _running(known)
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _running(known):
        time.sleep(0.1)
    _signal(_running(known), signal.SIGKILL)
    return len(pids)


def main(token: str) -> None:
    stdin = sys.stdin.buffer
    empty = 0
    known: dict[int, str] = {}  # the cluster as last seen while the driver lived (its raylet dies with it)
    while True:
        ready, _, _ = select.select([stdin], [], [], POLL_S)
        if ready and not os.read(stdin.fileno(), 4096):
            break  # the driver is gone
        now = cluster(token)
        known = {pid: start for pid, start in known.items() if _running({pid: start})}  # drop the ended
        known.update(now)
        empty = 0 if now else empty + 1
        if empty >= 2:
            return  # the cluster was shut down (seen twice, not a process between fork and exec)
    reap(token, known)


if __name__ == "__main__":
    main(sys.argv[1])
