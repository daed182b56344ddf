"""How much a search pays for the MLflow store, and how fast a user gets a program back. Prints JSON.

1. Logging: the driver's store calls for a 100-restart search (start_search,
   log_restarts in batches, end_search with the trajectory plot, then the merge
   with a free evaluate, so only store time counts) into a fresh embedded
   sqlite store. Records carry 50-point trajectories; the converged ones carry
   a MATH-sized program (net_0 784-256-256-10 and net_1, about 1 MB each).
   Compared with a search wall time given by --search-wall-s (an assumption,
   default 600 s: the paper's MATH search of 100 restarts on a single machine is
   minutes to hours; pass a measured one).
2. Cold fetch: a fresh Python process runs ``ntpt_dist.best_program(task,
   store).run(batch)``; timed from process start (imports included) and from
   after the imports.

Usage:
    .venv/bin/python benchmarks/store_overhead.py [--restarts 100] [--batch 10] [--search-wall-s 600]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

TASK = "MATH"


def mlp(rng: np.random.Generator, sizes: list[int], signature: str) -> dict:
    state = {}
    for i in range(len(sizes) - 1):
        state[f"w{i}"] = (rng.standard_normal((sizes[i], sizes[i + 1])) * 0.05).astype(np.float32)
        state[f"b{i}"] = np.zeros(sizes[i + 1], np.float32)
    return {"signature": signature, "state": state}


def math_program(rng: np.random.Generator) -> tuple[dict, dict | None, str]:
    """A MATH-sized program dict, a batch to run it on (None if it cannot run here) and which it is."""
    try:
        from ntpt_dist.experiments import registry

        model = registry.load_model("math")
        params = {d.name: np.zeros(d.shape, np.int64).tolist() if d.shape else 0 for d in model.flat.params}
        nets = {n: mlp(rng, [f.in_features, *f.hid_sizes, f.out_size], f.signature) for n, f in model.flat.learns.items()}
        prog = model.program(params, nets)
        batch = {d.name: rng.integers(0, d.size, (16, *d.shape)) for d in model.flat.inputs}
        batch.update({t.name: rng.random((16, *t.shape, *t.elem_shape), dtype=np.float32)
                      for t in model.flat.tensors.values()})
        return prog.to_dict(), batch, "experiments/models/math.py with zero Params and random nets"
    except Exception as exc:  # noqa: BLE001 - the compiler may not be there yet: fall back, say so
        nets = {"net_0": mlp(rng, [784, 256, 256, 10], "net_0"), "net_1": mlp(rng, [784, 256, 256, 4], "net_1")}
        stand_in = {"source": "# stand-in\n", "filename": "math.py", "hypers": {}, "params": {"instr": [0] * 6},
                    "networks": nets, "meta": {}}
        return stand_in, None, f"stand-in dict (real model unavailable: {type(exc).__name__}: {exc})"


def records(rng: np.random.Generator, n: int, program: dict, converged_every: int = 50) -> list[dict]:
    out = []
    for k in range(n):
        converged = k % converged_every == 1  # MATH: about 2 in 100 restarts converge
        trajectory = np.cumsum(rng.random(50) * 0.02).clip(0, 1)
        out.append({
            "index": k, "seed": 1000 + k, "status": "converged" if converged else "stopped",
            "reason": "jump" if converged else "budget", "jump_step": 300 if converged else None, "steps": 500,
            "trajectory": [[10 * i, float(a)] for i, a in enumerate(trajectory)],
            "program": program if converged else None, "program_val_acc": 0.97 if converged else None,
            "error": None, "wall_s": 5.0, "actor": f"actor-{k % 4}",
        })
    return out


_COLD = """
import time
t0 = time.perf_counter()
import numpy as np, sys
import ntpt_dist
t1 = time.perf_counter()
prog = ntpt_dist.best_program(sys.argv[1], store=sys.argv[2])
t2 = time.perf_counter()
with np.load(sys.argv[3]) as arrays:
    batch = dict(arrays) or None
ran = None
if batch is not None:
    prog.run(batch)
    ran = time.perf_counter() - t2
print(t1 - t0, t2 - t1, ran)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=100)
    parser.add_argument("--batch", type=int, default=10, help="records per log_restarts call (the driver flushes every ~2 s)")
    parser.add_argument("--search-wall-s", type=float, default=600.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    program, batch, program_kind = math_program(rng)
    folder = tempfile.mkdtemp(prefix="ntpt-bench-store-")
    uri = f"sqlite:///{folder}/mlflow.db"

    from ntpt_dist.library_store.mlflow_store import MlflowStore

    store = MlflowStore(uri)
    store.champion_versions()  # the database is created before the search starts (as the driver does)
    recs = records(rng, args.restarts, program)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    sid = store.start_search(TASK, {"restarts": args.restarts, "steps": 500, "policy": {"window": 5}})
    timings["start_search_s"] = time.perf_counter() - t
    t = time.perf_counter()
    calls = []
    for start in range(0, len(recs), args.batch):
        c = time.perf_counter()
        store.log_restarts(sid, recs[start:start + args.batch])
        calls.append(time.perf_counter() - c)
    timings["log_restarts_total_s"] = time.perf_counter() - t
    timings["log_restarts_max_call_s"] = max(calls)
    t = time.perf_counter()
    winner = next(r for r in recs if r["status"] == "converged")
    store.end_search(sid, {"converged": 2, "restarts": args.restarts}, winner)
    timings["end_search_s"] = time.perf_counter() - t
    t = time.perf_counter()
    store.merge(TASK, program, lambda task, library: 0.97, search_id=sid, seed=winner["seed"])
    timings["merge_store_s"] = time.perf_counter() - t
    total = sum(v for k, v in timings.items() if not k.endswith("max_call_s"))

    batch_file = os.path.join(folder, "batch.npz")  # arrays only: nothing is unpickled
    np.savez(batch_file, **(batch or {}))
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _COLD, TASK, uri, batch_file], capture_output=True, text=True,
                          env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"})
    cold_wall = time.perf_counter() - t
    cold = {"process_wall_s": round(cold_wall, 3), "error": done.stderr[-800:] if done.returncode else None}
    if done.returncode == 0:
        imports, fetch, ran = done.stdout.split()[-3:]
        cold.update(imports_s=round(float(imports), 3), fetch_s=round(float(fetch), 3),
                    run_s=None if ran == "None" else round(float(ran), 3))
    print(json.dumps({
        "store": f"embedded sqlite (MLflow {__import__('mlflow').__version__})",
        "program": program_kind,
        "program_blob_mb": round(sum(a.nbytes for n in program["networks"].values() for a in n["state"].values()) / 1e6, 2),
        "restarts": args.restarts, "records_per_call": args.batch, "trajectory_points": 50,
        "logging": {k: round(v, 3) for k, v in timings.items()},
        "logging_total_s": round(total, 3),
        "search_wall_s_assumed": args.search_wall_s,
        "logging_fraction": round(total / args.search_wall_s, 4),
        "goal_fraction": 0.02,
        "shortest_search_meeting_goal_s": round(total / 0.02, 1),
        "cold_fetch_and_run": cold,
        "cold_goal_s": 2.0,
    }, indent=2))


if __name__ == "__main__":
    main()
