"""MATH's restart success on several seeds, from a 2x2 library; prints JSON.

For each seed, ``--restarts`` restarts of MATH run with the MATH recipe
(``registry.recipe("MATH")``: large initial logits, the library held fixed, a
local search of up to 2 Param changes) on that seed's MATH data and restart
seeds. A restart counts when its learned source is exact on symbolic tapes of
2 and 9 digits (``tasks_accuracy._is_math_solution``). Reported per seed,
with the mean and the range (goal: >= 30% on every seed). ``--restart-seeds``
gives the restarts other seeds than the data's, to tell the two apart;
``--perception`` only measures how the library reads each seed's data.

Which library each seed starts from is the question this measures:

* ``--library-cache FILE`` (default): one library for every seed, so what
  varies is only the MATH data and the restarts' seeds;
* ``--library-per-seed DIR``: each seed's own library, built by that seed's
  ADD2x2:top and APPLY2x2:top stages as ``benchmarks/vs_tune.py`` builds it
  (about 25 minutes a seed here) and cached in DIR: the paper's setting.

Usage::

    python benchmarks/math_seeds.py [--seeds 0,1,2,3,4] [--restarts 100] [--steps 1500]
        [--library-cache /tmp/ntpt_vs_tune_library.npz | --library-per-seed DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from report import command, emit  # noqa: E402 - this folder, on sys.path just above


def one_seed(seed: int, restart_seed: int, library, args) -> dict:
    from ntpt_dist.experiments import registry
    from tasks_accuracy import _is_math_solution

    from ntpt_dist.paper_tasks import paper_task

    task = paper_task("MATH", library, seed=seed, sizes={"train": 4000, "val": 1000, "test": 1})
    t0 = time.perf_counter()
    result = task.model.train(task.data["train"], val_data=task.data["val"], restarts=args.restarts, steps=args.steps,
                              seed=restart_seed, library=library, **{**registry.recipe("MATH"), **args.recipe})
    wall = time.perf_counter() - t0
    programs = result.programs()  # the converged restarts' programs
    correct = sorted(k for k, program in programs.items() if _is_math_solution(program, seed))
    ways = {r.reason for k, r in result.records.items() if k in correct}
    return {"seed": seed, "restart_seed": restart_seed, "restarts": args.restarts, "converged": len(programs), "correct": len(correct),
            "rate": len(correct) / args.restarts, "how": sorted(ways), "train_s": round(wall, 1)}


def perception(seed: int, library) -> dict:
    """How the library reads a seed's MATH data (the splits ``paper_task`` builds): digits, operators, whole tapes."""
    import numpy as np
    from ntpt_dist.experiments.tasks import make_task
    from ntpt_dist.interpreter.netfn import mlp_scores

    out = {"seed": seed}
    for offset, (split, n) in enumerate((("train", 4000), ("val", 1000))):  # runner.task_splits' seeds
        task = make_task("MATH", split, n, seed=seed + offset)
        tape, labels = task.inputs["tape"], task.labels["tape"]

        def read(net: str, cells: np.ndarray) -> np.ndarray:
            flat = cells.reshape(cells.shape[0] * cells.shape[1], -1)
            return mlp_scores(library[net]["state"], flat).argmax(1).reshape(cells.shape[:2])

        digits = read("net_0", tape[:, 0::2]) == labels[:, 0::2]
        ops = read("net_1", tape[:, 1::2]) == labels[:, 1::2] - 10
        out[split] = {"digit_accuracy": round(float(digits.mean()), 4), "operator_accuracy": round(float(ops.mean()), 4),
                      "tapes_read_whole": round(float((digits.all(1) & ops.all(1)).mean()), 4)}
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2,3,4", help="the seeds of the MATH data (and of the library per seed)")
    p.add_argument("--restart-seeds", default=None,
                   help="the restarts' seeds, one per --seeds entry (default: the same seeds), to tell data from restarts")
    p.add_argument("--restarts", type=int, default=100)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--recipe", type=json.loads, default={}, metavar="JSON",
                   help='TrainConfig fields over the MATH recipe, e.g. \'{"grad_noise": 0.1}\' (default: the recipe as it is)')
    where = p.add_mutually_exclusive_group()
    where.add_argument("--library-cache", default="/tmp/ntpt_vs_tune_library.npz",
                       help="one 2x2 library for every seed (built here if missing)")
    where.add_argument("--library-per-seed", metavar="DIR", help="each seed's own 2x2 library, cached in DIR")
    p.add_argument("--perception", action="store_true",
                   help="only measure how the library reads each seed's MATH data (no training)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    import torch
    from ntpt_dist.experiments import registry
    from vs_tune import library_for

    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    restart_seeds = [int(s) for s in args.restart_seeds.split(",")] if args.restart_seeds else seeds
    if len(restart_seeds) != len(seeds):
        raise SystemExit(f"--restart-seeds needs one seed per --seeds entry ({len(seeds)}), got {len(restart_seeds)}")
    model = registry.load_model("math")
    rows, libraries = [], {}
    for seed, restart_seed in zip(seeds, restart_seeds):
        cache = (os.path.join(args.library_per_seed, f"library_seed{seed}.npz") if args.library_per_seed
                 else args.library_cache)
        library, meta = library_for(argparse.Namespace(quick=False, library_cache=cache, seed=seed), model)
        libraries[seed] = meta
        rows.append(perception(seed, library) if args.perception else one_seed(seed, restart_seed, library, args))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.perception:
        emit({"command": command("math_seeds.py", argv), "per_seed": rows, "libraries": libraries}, args.out)
        return
    rates = [r["rate"] for r in rows]
    out = {
        "command": command("math_seeds.py", argv),
        "library": "per seed" if args.library_per_seed else f"one for every seed ({args.library_cache})",
        "restarts": args.restarts, "steps": args.steps, "recipe": {**registry.recipe("MATH"), **args.recipe},
        "per_seed": rows, "mean_rate": statistics.mean(rates), "min_rate": min(rates), "max_rate": max(rates),
        "goal_rate_each_seed": 0.3, "met": min(rates) >= 0.3, "libraries": libraries,
    }
    emit(out, args.out)


if __name__ == "__main__":
    main()
