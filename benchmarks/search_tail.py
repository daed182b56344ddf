"""The search's tail with and without work stealing, side by side in one run; prints JSON.

A search hands each worker its block of restarts plus a block queued behind it
(so a wave finishing together refills at once). Restarts end at different
times (a jump, a stall, the budget), so when the queue runs dry one worker can
still hold queued restarts behind full slots while another has nothing left:
the last wave is held by one actor. With work stealing
(``search(..., work_stealing=True)``, the default) a worker with free slots
takes those queued restarts over.

Measured on the same restarts (same seeds, so the same trajectories) both ways,
``--rounds`` times each, interleaved:

* ``tail_s``: from the moment the first worker finished its last restart to the
  moment the last one did (read from the records' ``finished_at`` and
  ``actor``), and ``tail_share``: that over the span from the first restart's
  start to the last one's end;
* ``wall_s``: the search's whole wall time;
* medians over rounds, and ``wall_ratio`` = no stealing / stealing.

Workloads (``--workload``):

* ``math`` (default): MATH as ``ntpt-dist search MATH`` runs it, from the 2x2
  library (held fixed; the MATH recipe, ``registry.recipe("MATH")``): a third
  of the restarts jump and end early, the rest run to the budget. The library
  is read from ``--library-cache`` or built once as ``benchmarks/vs_tune.py``
  builds it (about 25 minutes here).
* ``symbolic``: symbolic MATH (``experiments/models/math_symbolic.py``, exact
  readers, 2k 2-digit expressions) under the entropy recipe of
  ``docs/math_recipe.md``, with a policy that also stops a restart whose
  validation accuracy stalls (``--stall-evals``).

Usage::

    python benchmarks/search_tail.py [--workload math] [--restarts 48] [--slots 4] [--actors 2] [--steps 300]
        [--rounds 2] [--library-cache /tmp/ntpt_vs_tune_library.npz] [--out docs/search_tail.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from report import command, emit  # noqa: E402 - this folder, on sys.path just above

SYMBOLIC_RECIPE = {"init_scale": 3.0, "entropy_bonus": 0.1, "entropy_decay": 0.002, "eval_every": 25}


def workload(args) -> dict:
    """The model, data, recipe and library the searches run, and a label saying what they are."""
    from ntpt_dist.experiments import registry

    if args.workload == "symbolic":
        from math_symbolic_search import symbolic

        return {"model": registry.load_model("math_symbolic", N=2), "train": symbolic("train", 2000, args.seed),
                "val": symbolic("val", 500, args.seed + 1), "config": SYMBOLIC_RECIPE, "library": None,
                "label": f"symbolic MATH (N=2), stall after {args.stall_evals} evaluations, recipe {SYMBOLIC_RECIPE}"}
    from vs_tune import library_for

    from ntpt_dist.paper_tasks import paper_task

    library, meta = library_for(argparse.Namespace(quick=False, library_cache=args.library_cache, seed=args.seed),
                                registry.load_model("math"))
    task = paper_task("MATH", library, seed=args.seed, sizes={"train": 4000, "val": 1000, "test": 1})
    return {"model": task.model, "train": task.data["train"], "val": task.data["val"], "config": registry.recipe("MATH"),
            "library": library, "label": f"MATH from the 2x2 library ({meta.get('source')}), recipe {registry.recipe('MATH')}"}


def tail(records) -> dict:
    """Tail length and share of a search from its records (``finished_at``, ``wall_s``, ``actor``)."""
    last: dict[str, float] = {}
    for r in records:
        last[r.actor] = max(last.get(r.actor, 0.0), r.finished_at)
    start = min(r.finished_at - r.wall_s for r in records)
    end = max(last.values())
    tail_s = end - min(last.values())
    return {"tail_s": tail_s, "span_s": end - start, "tail_share": tail_s / (end - start), "actors": len(last)}


def one_search(work: dict, args, steal: bool) -> dict:
    from ntpt_dist.search.policy import JumpPolicy

    import ntpt_dist

    policy = JumpPolicy(budget_steps=args.steps, stall_evals=args.stall_evals or None)
    t0 = time.perf_counter()
    result = ntpt_dist.search(work["model"], work["train"], restarts=args.restarts, seed=args.seed, actors=args.actors,
                              restarts_per_actor=args.slots, val_data=work["val"], config=work["config"],
                              library=work["library"], policy=policy, progress=False, publish=False,
                              work_stealing=steal, slice_s=1.0)
    wall = time.perf_counter() - t0
    records = list(result.records.values())
    if len(records) != args.restarts:
        raise SystemExit(f"the search finished {len(records)} of {args.restarts} restarts")
    steps = sorted(r.steps for r in records)
    return {"work_stealing": steal, "wall_s": wall, **tail(records),
            "steps_min_median_max": [steps[0], steps[len(steps) // 2], steps[-1]],
            "outcomes": {r.status.value: sum(x.status is r.status for x in records) for r in records}}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--restarts", type=int, default=48)
    p.add_argument("--slots", type=int, default=4, help="restarts per actor's block")
    p.add_argument("--actors", type=int, default=2)
    p.add_argument("--workload", choices=("math", "symbolic"), default="math")
    p.add_argument("--steps", type=int, default=300, help="each restart's budget")
    p.add_argument("--stall-evals", type=int, default=None,
                   help="stop a restart after this many evaluations without gain; 0: never (default: 6 for "
                        "symbolic, 0 for math)")
    p.add_argument("--library-cache", default="/tmp/ntpt_vs_tune_library.npz", help="the 2x2 library for math")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.stall_evals is None:
        args.stall_evals = 6 if args.workload == "symbolic" else 0

    from ntpt_dist.search.ray_backend import init_ray

    work = workload(args)
    init_ray(num_cpus=args.actors)  # one cluster for every search, so start-up is not in their times
    runs = []
    for _ in range(args.rounds):
        for steal in (False, True):
            runs.append(one_search(work, args, steal))
            print(json.dumps({k: runs[-1][k] for k in ("work_stealing", "wall_s", "tail_share")}), file=sys.stderr)
    summary = {}
    for steal, label in ((False, "without"), (True, "with")):
        mine = [r for r in runs if r["work_stealing"] is steal]
        summary[label] = {key: statistics.median(r[key] for r in mine) for key in ("wall_s", "tail_s", "tail_share")}
    out = {
        "command": command("search_tail.py", argv),
        "workload": f"{work['label']}; {args.restarts} restarts, {args.actors} Ray actors x {args.slots} slots, "
                    f"budget {args.steps} steps",
        "without_stealing": summary["without"], "with_stealing": summary["with"],
        "wall_ratio": summary["without"]["wall_s"] / summary["with"]["wall_s"],
        "runs": runs,
    }
    emit(out, args.out)


if __name__ == "__main__":
    main()
