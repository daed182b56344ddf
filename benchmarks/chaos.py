"""Chaos benchmark: faults during a search on a local Ray, and concurrent writers on one store.

Three parts, one JSON document on stdout:

* ``actor_kills``: a search of fake restarts (``tests/search/fakes.py``) on a local Ray while
  ``--kills`` worker actors die at random moments (alternately ``ray.kill`` and SIGKILL of the
  actor's process). Each kill takes an actor that holds restarts; those are ``redone`` elsewhere.
* ``driver_kill``: the same search run by a driver in a subprocess with a JSONL journal; it is
  SIGKILLed (with every process under it) once part of the journal is written, then started again
  with the same search id and resumes from the journal.
* ``store_writers``: ``--writers`` processes open one new sqlite store at the same moment and each
  adds ``--versions`` versions of one shared network.
* ``store_mergers``: ``--mergers`` processes each merge a task whose program calls one shared
  network into one new store at the same moment, through the store's own gate.

Every restart should finish exactly once (0 lost, 0 duplicated in the journal) and every version
should be stored exactly once. Every process and Ray cluster started here is stopped before exit.

    .venv/bin/python benchmarks/chaos.py --kills 3 --writers 4 --mergers 4
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from tests.search import netprobe  # noqa: E402 - after the repository is on the path

SEED = 3
DRIVER_KILL_GRACE_S = 10.0  # the killed driver's Ray must be gone by then (search/ray_reaper.py)


def _search_kwargs(step_cost_s: float) -> dict:
    from ntpt_dist.search.policy import JumpPolicy

    from tests.search import fakes

    policy = JumpPolicy(delta=0.5, window=3, floor=0.8, refine_evals=2, budget_steps=300)
    return dict(seed=SEED, restarts_per_actor=4, actors=2, cpus_per_actor=0.5, policy=policy, progress=False,
                slice_s=0.2, flush_s=0.2, eval_every=25, block_factory=fakes.fake_factory(step_cost_s=step_cost_s))


def _worker_kwargs(kw: dict) -> dict:
    from ntpt_dist.search.worker import ModelSpec

    return {"model_spec": ModelSpec("src"), "data": {"x": [0]}, "slots": kw["restarts_per_actor"],
            "policy": kw["policy"], "eval_every": kw["eval_every"], "block_factory": kw["block_factory"]}


def _init_local_ray(temp_dir: str) -> None:
    import ray
    from ntpt_dist.search.ray_backend import init_ray

    from tests.search import fakes

    ray.cloudpickle.register_pickle_by_value(fakes)  # actors need not find tests/ on their path
    init_ray(num_cpus=2, _temp_dir=temp_dir)


def _journal_counts(path: Path, search_id: str) -> collections.Counter:
    """How many complete 'restart' lines the journal holds per restart index."""
    counts: collections.Counter = collections.Counter()
    if not path.exists():
        return counts
    for line in path.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a torn last line
        if event.get("search_id") == search_id and event.get("event") == "restart":
            counts[int(event["record"]["index"])] += 1
    return counts


# ------------------------------------------------------------------ (a) actor kills


def actor_kills(kills: int, restarts: int, temp_dir: str, rng: random.Random) -> dict:
    import ray
    from ntpt_dist.search.driver import search
    from ntpt_dist.search.ray_backend import RayBackend

    class KillingBackend(RayBackend):
        """Kills a random actor that holds restarts at each of ``kills`` random moments."""

        def __init__(self, worker_kwargs, horizon_s, **kw):
            super().__init__(worker_kwargs, **kw)
            self.t0 = time.monotonic()
            self.kill_at = sorted(rng.uniform(1.0, horizon_s) for _ in range(kills))
            self.kills: list[dict] = []

        def wait(self, tickets, timeout):
            out = super().wait(tickets, timeout)
            if self.kill_at and time.monotonic() - self.t0 >= self.kill_at[0] and self._actors:
                handle = rng.choice(sorted(self._actors))
                actor = self._actors[handle]
                try:
                    info = ray.get(actor.info.remote(), timeout=30)
                    in_flight = list(ray.get(actor.run.remote([], 0.0), timeout=30).in_flight)
                except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                    return out  # already dead (an earlier kill) or busy: try another moment
                if in_flight:
                    how = "ray.kill" if len(self.kills) % 2 == 0 else "SIGKILL"
                    if how == "ray.kill":
                        ray.kill(actor, no_restart=True)
                    else:
                        os.kill(info["pid"], signal.SIGKILL)
                    self.kill_at.pop(0)
                    self.kills.append({"at_s": round(time.monotonic() - self.t0, 2), "actor": info["name"],
                                       "how": how, "in_flight": sorted(in_flight)})
            return out

    _init_local_ray(temp_dir)
    try:
        kw = _search_kwargs(step_cost_s=0.01)
        journal = Path(temp_dir).parent / "kills.jsonl"
        backend = KillingBackend(_worker_kwargs(kw), horizon_s=8.0, cpus_per_actor=0.5)
        t0 = time.monotonic()
        result = search(("src", {}), {"x": [0]}, restarts=restarts, backend=backend, journal=str(journal),
                        **{k: v for k, v in kw.items() if k != "cpus_per_actor"})
        wall = time.monotonic() - t0
        backend.shutdown()
    finally:
        ray.shutdown()
    logged = _journal_counts(journal, result.search_id)
    victims = [k for kill in backend.kills for k in kill["in_flight"]]
    killed = {kill["actor"] for kill in backend.kills}
    return {
        "kills_asked": kills, "kills_done": len(backend.kills), "kills": backend.kills,
        "restarts_expected": restarts, "finished": len(result.records),
        "lost": len(set(range(restarts)) - set(result.records)),
        "duplicated": sum(n - 1 for n in logged.values() if n > 1),
        "redone": len(victims), "redone_distinct": len(set(victims)),
        "redone_on_a_killed_actor": sum(result.records[k].actor in killed for k in victims if k in result.records),
        "started_count": result.counts["started"], "failed": result.counts["failed"],
        "statuses": dict(collections.Counter(r.status.value for r in result.records.values())),
        "wall_s": round(wall, 1),
    }


# ------------------------------------------------------------------ (b) driver kill + resume


def _driver_child(journal: str, search_id: str, restarts: int, temp_dir: str, started_file: str) -> None:
    """The driver run in a subprocess: prints its result as one JSON line."""
    from ntpt_dist.search.driver import search
    from ntpt_dist.search.ray_backend import RayBackend

    class Recording(RayBackend):
        def submit(self, handle, assignments, seconds):
            with open(started_file, "a") as f:
                f.write("".join(f"{a.index}\n" for a in assignments))
                f.flush()
                os.fsync(f.fileno())
            return super().submit(handle, assignments, seconds)

    _init_local_ray(temp_dir)
    kw = _search_kwargs(step_cost_s=0.01)
    backend = Recording(_worker_kwargs(kw), cpus_per_actor=0.5)
    result = search(("src", {}), {"x": [0]}, restarts=restarts, backend=backend, journal=journal,
                    search_id=search_id, **{k: v for k, v in kw.items() if k != "cpus_per_actor"})
    backend.shutdown()
    import ray

    ray.shutdown()
    print(json.dumps({"records": sorted(result.records), "resumed": result.resumed,
                      "started": result.counts["started"], "failed": result.counts["failed"]}))


def _until_gone(pids: list[int], grace_s: float) -> float | None:
    """Seconds until none of ``pids`` runs, or None if some still run after ``grace_s``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < grace_s:
        if not any(netprobe.running(pid) for pid in pids):
            return round(time.monotonic() - t0, 2)
        time.sleep(0.1)
    return None


def _kill(pids: list[int]) -> int:
    n = 0
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            n += 1
        except ProcessLookupError:
            pass
    return n


def driver_kill(restarts: int, work: Path) -> dict:
    journal, started = work / "driver.jsonl", work / "started.txt"
    search_id = "chaos" + os.urandom(4).hex()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def command(run: int) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), "--driver-child", str(journal), search_id,
                str(restarts), str(work / f"ray{run}"), str(started)]

    t0 = time.monotonic()
    first = subprocess.Popen(command(1), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    target = max(1, restarts // 4)
    while first.poll() is None and sum(_journal_counts(journal, search_id).values()) < target:
        time.sleep(0.05)
    logged_at_kill = sum(_journal_counts(journal, search_id).values())
    started_by_first = set(int(x) for x in started.read_text().split()) if started.exists() else set()
    killed_mid_search = first.poll() is None
    below = netprobe.descendants(first.pid)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    gone_after = _until_gone(below, DRIVER_KILL_GRACE_S)
    survivors = sorted(netprobe.process_name(pid) for pid in below if netprobe.running(pid))
    left_alive = _kill([pid for pid in below if netprobe.running(pid)])  # what the cluster left running
    started.write_text("")
    second = subprocess.run(command(2), env=env, capture_output=True, text=True, timeout=240)
    wall = time.monotonic() - t0
    if second.returncode != 0:
        raise RuntimeError(f"the resumed driver failed:\n{second.stderr[-3000:]}")
    out = json.loads(second.stdout.strip().splitlines()[-1])
    run_by_second = set(int(x) for x in started.read_text().split())
    logged = _journal_counts(journal, search_id)
    return {
        "killed_mid_search": killed_mid_search, "journal_lines_at_kill": logged_at_kill,
        "ray_processes_of_the_killed_driver": len(below),
        "seconds_until_they_all_ended": gone_after,
        f"ray_processes_running_{DRIVER_KILL_GRACE_S:.0f}s_after_the_kill": left_alive, "survivors": survivors,
        "restarts_expected": restarts, "finished": len(out["records"]),
        "resumed_from_journal": out["resumed"],
        "lost": len(set(range(restarts)) - set(out["records"])),
        "duplicated": sum(n - 1 for n in logged.values() if n > 1),
        "redone": len(started_by_first & run_by_second),
        "failed": out["failed"], "wall_s": round(wall, 1),
    }


# ------------------------------------------------------------------ (c) concurrent writers


def _run_children(arguments: list[list[str]], env: dict, timeout_s: float = 300) -> tuple[list[dict], list[str]]:
    """Run this script once per argument list, all at once; their last JSON lines, and their errors."""
    procs = [subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *args], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in arguments]
    results, errors = [], []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout_s)
        if proc.returncode == 0:
            results.append(json.loads(out.strip().splitlines()[-1]))
        else:
            errors.append(err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}")
    return results, errors


def _writer_child(uri: str, name: str, writer: int, versions: int, start_at: float) -> None:
    import numpy as np
    from ntpt_dist.library_store.mlflow_store import MlflowStore

    time.sleep(max(0.0, start_at - time.time()))
    store = MlflowStore(uri)  # every writer opens the new store at the same moment
    got = []
    for seq in range(versions):
        net = {"signature": "net(img[4]) -> digit",
               "state": {"w0": np.full((4, 3), writer + seq / 100, dtype=np.float32), "b0": np.arange(3, dtype=np.float32)}}
        got.append(store.add_net_version(name, net, tags={"writer": writer, "seq": seq}))
    print(json.dumps({"writer": writer, "versions": got}))


def store_writers(writers: int, versions: int, work: Path) -> dict:
    uri = f"sqlite:///{work / 'store' / 'mlflow.db'}"
    name = "shared_net"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start_at = time.time() + 15.0  # after every writer has imported mlflow
    t0 = time.monotonic()
    results, errors = _run_children([["--writer-child", uri, name, str(i), str(versions), str(start_at)]
                                     for i in range(writers)], env)
    wall = time.monotonic() - t0
    from ntpt_dist.library_store.mlflow_store import MlflowStore, net_model

    store = MlflowStore(uri)
    stored = store.client.search_model_versions(f"name = '{net_model(name)}'")
    pairs = collections.Counter((int(v.tags["writer"]), int(v.tags["seq"])) for v in stored)
    returned = collections.Counter(v for r in results for v in r["versions"])
    expected = {(w, s) for w in range(writers) for s in range(versions)}
    return {
        "writers": writers, "versions_each": versions, "versions_expected": len(expected),
        "versions_stored": len(stored), "lost": len(expected - set(pairs)),
        "duplicated": sum(n - 1 for n in pairs.values() if n > 1),
        "version_numbers_given_twice": sum(n - 1 for n in returned.values() if n > 1),
        "version_numbers_consecutive": sorted(int(v.version) for v in stored) == list(range(1, len(stored) + 1)),
        "writer_errors": errors, "wall_s": round(wall, 1),
    }


def _merger_child(uri: str, writer: int, start_at: float) -> None:
    from ntpt_dist.library_store.mlflow_store import MlflowStore

    from tests.library_store.helpers import lookup_batch, lookup_program

    # Every task's program calls one network. Task w asks for x -> x on x in {2w, 2w + 1}; merger w's
    # network maps x -> x up to 2w + 1 and gets larger x wrong, so in whatever order the merges run,
    # each is accepted only if it improves on the champion, no accepted one undoes an earlier one,
    # and the last champion (merger 3's network, the identity) is exact on every task.
    program = lookup_program("shared", [x if x <= 2 * writer + 1 else (x + 1) % 8 for x in range(8)])
    batch = lookup_batch([2 * writer, 2 * writer + 1] * 4)
    time.sleep(max(0.0, start_at - time.time()))
    store = MlflowStore(uri)
    out = store.merge(f"task{writer}", program, val_data=batch, test_data=batch, seed=writer)
    print(json.dumps({"writer": writer, "reason": out.decision.reason, "accepted": out.decision.accepted,
                      "new_versions": out.new_versions, "attempts": out.attempts}))


def store_mergers(mergers: int, work: Path) -> dict:
    """``mergers`` processes merge a task each, all calling one network, into one new store at once.

    Serialised merges leave the network's versions as one chain (each version's parent is the
    version before it) and one program and one merge decision per task; merges that raced would
    leave two versions with one parent, or a lost program.
    """
    uri = f"sqlite:///{work / 'merge-store' / 'mlflow.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start_at = time.time() + 20.0  # after every merger has imported mlflow and torch
    t0 = time.monotonic()
    results, errors = _run_children([["--merger-child", uri, str(i), str(start_at)] for i in range(mergers)], env)
    wall = time.monotonic() - t0
    from ntpt_dist.interpreter.program import Program
    from ntpt_dist.library_store.mlflow_store import MlflowStore

    store = MlflowStore(uri)
    versions = store.net_versions("shared")
    parents = collections.Counter(store.get_net_version("shared", v).parent for v in versions)
    tasks = {f"task{i}" for i in range(mergers)}
    stored_tasks = set(store.tasks())
    decisions = collections.Counter(m.get("task") for m in store.merges())
    champion = store.champion_versions().get("shared")
    library = store.load_library()
    correct = 0  # each task's stored program, run with the final library on the task's kept validation data
    for t in tasks & stored_tasks:
        stored = dict(store.get_program(t).program)
        program = Program.from_dict({**stored, "networks": {**stored["networks"], **library}})
        correct += program.accuracy(store.validation_data(t)) == 1.0
    return {
        "mergers": mergers, "merges_returned": len(results), "merger_errors": errors,
        "accepted_or_added": sum(r["accepted"] or bool(r["new_versions"]) for r in results),
        "race_retries": sum(r["attempts"] - 1 for r in results),
        "versions_stored": len(versions), "versions_written_by_the_merges": sum(len(r["new_versions"]) for r in results),
        "champion_is_the_last_version": champion == max(versions, default=None),
        "versions_sharing_a_parent": sum(n - 1 for n in parents.values() if n > 1),
        "lost": len(tasks - stored_tasks) + sum(decisions[t] == 0 for t in tasks),
        "duplicated": sum(n - 1 for n in decisions.values() if n > 1),
        "programs_exact_with_the_final_library": correct, "wall_s": round(wall, 1),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--driver-child":
        journal, sid, restarts, temp_dir, started = sys.argv[2:7]
        _driver_child(journal, sid, int(restarts), temp_dir, started)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--writer-child":
        uri, name, writer, versions, start_at = sys.argv[2:7]
        _writer_child(uri, name, int(writer), int(versions), float(start_at))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--merger-child":
        uri, writer, start_at = sys.argv[2:5]
        _merger_child(uri, int(writer), float(start_at))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=3, help="random actor kills during one search")
    parser.add_argument("--writers", type=int, default=4, help="concurrent writer processes on one new store")
    parser.add_argument("--versions", type=int, default=5, help="versions each writer adds")
    parser.add_argument("--mergers", type=int, default=4, help="concurrent merges (a task each, one shared network)")
    parser.add_argument("--restarts", type=int, default=32, help="restarts of each search")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments and victims")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sys.stdout.flush()
    json_out = os.dup(1)
    os.dup2(2, 1)  # Ray prints its workers' messages on stdout: only the JSON document goes there
    work = Path(tempfile.mkdtemp(prefix="chaos-", dir="/tmp"))  # short: Ray's socket paths must fit
    t0 = time.monotonic()
    report: dict = {"command": "python benchmarks/chaos.py " + " ".join(sys.argv[1:])}
    try:
        report["actor_kills"] = actor_kills(args.kills, args.restarts, str(work / "ray0"), rng)
        report["driver_kill"] = driver_kill(args.restarts, work)
        report["store_writers"] = store_writers(args.writers, args.versions, work)
        report["store_mergers"] = store_mergers(args.mergers, work)
    finally:
        report["processes_left_at_exit"] = _kill(netprobe.processes_using(str(work)))
        shutil.rmtree(work, ignore_errors=True)
    parts = [report[k] for k in ("actor_kills", "driver_kill", "store_writers", "store_mergers")]
    report["lost_total"] = sum(p["lost"] for p in parts)
    report["duplicated_total"] = sum(p["duplicated"] for p in parts)
    report["wall_s"] = round(time.monotonic() - t0, 1)
    sys.stdout.flush()
    os.dup2(json_out, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
