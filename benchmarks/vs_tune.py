"""ntpt_dist.search against Ray Tune on the same MATH restarts; prints JSON.

The peer is what a user would reach for: Ray Tune (shipped inside the
installed ``ray``), one trial per restart (a grid over the restart index, so
trial ``k`` trains restart ``k`` with ``restart_seed(seed, k)``, as the search
does), each trial training its one restart in process with the project's own
loop (a ``BlockWorker`` with one slot: the same model, data, ``TrainConfig``,
``JumpPolicy``, evaluation every ``eval_every`` steps and local search of the
program), reporting to Tune after every evaluation round. Tune runs two
trials at once on one CPU each; the search runs two Ray actors of one CPU
each, every actor training a block of ``--slots`` restarts in lock step.

The workload is the MATH recipe as ``ntpt-dist search MATH`` runs it: the
MATH model and data of ``paper_task("MATH")`` (4k training, 1k validation
expressions of 2 digits), the recipe ``registry.recipe("MATH")`` (the 2x2
library held fixed, ``init_scale=3``, ``polish_edits=2``) and
``JumpPolicy(budget_steps=--steps)``. The 2x2 library is trained here once
(ADD2x2:top, then APPLY2x2:top from its net_0, as benchmarks/tasks_accuracy.py
does) and cached in ``--library-cache`` (never committed); ``--quick`` uses a
random library and tiny data instead (a smoke run: no program can be right).

A restart's program is correct when the search would call it a program
(``converged``) and its learned source is exact on symbolic tapes of 2 and 9
digits (benchmarks/tasks_accuracy.py's ``_is_math_solution``), judged after
both runs, outside the timed part.

Figures (both tools on the same restarts, in one run; the search runs before
and after Tune, and its figures are the mean of the two):
  restarts_per_min_ratio          whole run: restarts / (end - start of the call), start-up included
  restarts_per_min_ratio_steady   between the end of the first and the start of the last wave of
                                  concurrent restarts (null under 3 waves)
  first_program_speedup           Tune's time to its first correct restart over the search's,
                                  each from the start of its call (null if either found none)

Usage:
    python benchmarks/vs_tune.py [--restarts 64] [--steps 200] [--slots 32] [--seed 0]
        [--library-cache /tmp/ntpt_vs_tune_library.npz] [--out docs/vs_tune.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Optional

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
HERE = os.path.dirname(os.path.abspath(__file__))
ACTORS = 2  # the search's actors and Tune's concurrent trials: one CPU each


class _Watched:
    """A block that remembers its last validation accuracy and how long it took to build."""

    def __init__(self, factory: Callable, *args: Any):
        t0 = time.perf_counter()
        self._block = factory(*args)
        self.build_s = time.perf_counter() - t0
        self.last_accuracy: Optional[float] = None

    def accuracy(self, data: Any) -> Any:
        acc = self._block.accuracy(data)
        self.last_accuracy = float(acc[0])
        return acc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._block, name)


def tune_trial(trial: dict, *, spec: Any, data: dict, val_data: dict, library: Any, train: dict, policy: Any,
               eval_every: int, block_factory: Optional[Callable] = None, report: Optional[Callable] = None) -> None:
    """One Ray Tune trial: train restart ``trial["restart"]`` alone, reporting every evaluation round.

    Args:
        trial: Tune's config, ``{"restart": k, "seed": s}``; the restart's seed is ``restart_seed(s, k)``.
        spec, data, val_data, library, train, policy, eval_every: what the search's workers get.
        block_factory: as ``BlockWorker``'s (default: the real ``RestartBlock``).
        report: called with each round's metrics (default: ``ray.tune.report``).

    Example:
        >>> tune_trial({"restart": 0, "seed": 0}, spec=model, data=train, val_data=val,  # doctest: +SKIP
        ...            library=lib, train={}, policy=JumpPolicy(), eval_every=25, report=print)
    """
    from ntpt_dist.interpreter.engine import restart_seed
    from ntpt_dist.interpreter.restarts import Assignment, BlockWorker, real_block

    if report is None:
        from ray import tune

        report = tune.report
    if block_factory is None:
        import torch

        torch.set_num_threads(1)  # its one CPU, as a search actor pins its own
    entered = time.time()
    k = int(trial["restart"])
    blocks: list[_Watched] = []

    def factory(*args: Any) -> _Watched:
        blocks.append(_Watched(block_factory or real_block, *args))
        return blocks[-1]

    worker = BlockWorker(spec, data, slots=1, config=train, val_data=val_data, policy=policy, eval_every=eval_every,
                         library=library, name=f"tune-trial-{k}", block_factory=factory)
    worker.assign([Assignment(k, restart_seed(int(trial["seed"]), k))])
    while True:
        out = worker.run(seconds=0.0)  # one evaluation round
        if out.crashes:
            raise RuntimeError(f"restart {k} crashed: {out.crashes[0].error}")
        metrics = {"restart": k, "steps": out.slot_steps[1], "val_acc": blocks[-1].last_accuracy}
        if not out.records:
            report(metrics)
            continue
        record = out.records[0]
        params = (record.program or {}).get("params") or {}
        report({**metrics, "done": True, "status": record.status.value, "reason": record.reason,
                "restart_steps": record.steps, "finished_at": record.finished_at,
                "params": {name: _plain(v) for name, v in params.items()},
                "setup_s": sum(b.build_s for b in blocks), "train_s": out.train_s, "trial_s": time.time() - entered})
        return


def is_correct(status: str, params: Optional[dict], seed: int) -> bool:
    """A converged restart whose learned MATH source is exact (tasks_accuracy.py's judge)."""
    if status != "converged" or not params:
        return False
    key = json.dumps({name: _plain(v) for name, v in params.items()}, sort_keys=True)
    if (key, seed) not in _JUDGED:  # the same restart comes back from every run: judge its program once
        _JUDGED[key, seed] = _judge(params, seed)
    return _JUDGED[key, seed]


_JUDGED: dict[tuple[str, int], bool] = {}


def _plain(value: Any) -> Any:
    import numpy as np

    return np.asarray(value).tolist()


def _judge(params: dict, seed: int) -> bool:
    import numpy as np

    sys.path.insert(0, HERE)
    from tasks_accuracy import _is_math_solution

    program = SimpleNamespace(params={name: np.asarray(v) for name, v in params.items()})
    return _is_math_solution(program, seed)


def steady_rate(finished: list[float], concurrent: int) -> Optional[float]:
    """Restarts/min between the ``concurrent``-th finish and the ``concurrent``-th from last; None under 3 waves.

    Example:
        >>> steady_rate([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2)
        60.0
    """
    t = sorted(finished)
    first, last = concurrent, len(t) - concurrent
    if last - first < concurrent or t[last - 1] <= t[first - 1]:
        return None
    return 60 * (last - first) / (t[last - 1] - t[first - 1])


def summary(outcomes: dict[int, tuple[str, Optional[dict], float]], t0_unix: float, wall_s: float,
            concurrent: int, seed: int, judge: Callable = is_correct) -> dict:
    """One tool's figures from ``{restart: (status, params, finished_at)}`` and the start of its call."""
    correct = sorted(k for k, (status, params, _) in outcomes.items() if judge(status, params, seed))
    finished = [at for _, _, at in outcomes.values()]
    firsts = [outcomes[k][2] - t0_unix for k in correct]
    steady = steady_rate(finished, concurrent)
    statuses: dict[str, int] = {}
    for status, _, _ in outcomes.values():
        statuses[status] = statuses.get(status, 0) + 1
    return {"restarts": len(outcomes), "wall_s": round(wall_s, 2), "statuses": statuses, "correct": correct,
            "restarts_per_min": round(60 * len(outcomes) / wall_s, 2),
            "restarts_per_min_steady": None if steady is None else round(steady, 2),
            "first_correct_s": round(min(firsts), 2) if firsts else None}


def run_search(args, task: Any, library: Any, policy: Any) -> tuple[dict, float]:
    """``ntpt_dist.search`` on Ray: 2 actors of 1 CPU, ``--slots`` restarts each; (outcomes, start-up s)."""
    sys.path.insert(0, HERE)
    from ntpt_dist.search.driver import search
    from ntpt_dist.search.ray_backend import RayBackend
    from ntpt_dist.search.worker import ModelSpec
    from search_scaling import timed

    data = task.data
    worker_kwargs = {"model_spec": ModelSpec.of(task.model), "data": data["train"], "slots": args.slots,
                     "config": task.recipe, "val_data": data["val"], "policy": policy, "eval_every": args.eval_every,
                     "library": library, "block_factory": None}
    pool = timed(RayBackend)(worker_kwargs, cpus_per_actor=1)
    t0, t0_unix = time.perf_counter(), time.time()
    result = search(task.model, data["train"], restarts=args.restarts, seed=args.seed, actors=ACTORS,
                    restarts_per_actor=args.slots, cpus_per_actor=1, policy=policy, progress=False,
                    val_data=data["val"], config=task.recipe, library=library, eval_every=args.eval_every,
                    backend=pool, task="MATH")
    wall = time.perf_counter() - t0
    assert len(result.records) == args.restarts, result
    outcomes = {k: (r.status.value, (r.program or {}).get("params"), r.finished_at) for k, r in result.records.items()}
    out = summary(outcomes, t0_unix, wall, ACTORS * args.slots, args.seed)
    out["startup_s"] = round((pool.ready_at or t0) - t0, 2)
    per_actor: dict[str, int] = {}
    for r in result.records.values():
        per_actor[r.actor] = per_actor.get(r.actor, 0) + 1
    out["restarts_per_actor"] = sorted(per_actor.values())
    # the actors' seconds in training steps and evaluations; the rest of their time is mostly the
    # local search of stopped restarts' programs (polish_edits), one restart at a time
    busy, stepped = (sum(x[i] for x in pool.slot_steps.values()) for i in (0, 1))
    out["actors_train_s"] = round(sum(pool.train_s.values()), 1)
    out["slots_busy"] = round(busy / stepped, 3) if stepped else None
    return out, outcomes


def run_tune(args, task: Any, library: Any, policy: Any) -> tuple[dict, dict]:
    """Ray Tune: one trial per restart, 2 at a time on 1 CPU each, results under a temporary folder."""
    from ntpt_dist.search.worker import ModelSpec
    from ray import tune

    data = task.data
    trainable = tune.with_resources(
        tune.with_parameters(tune_trial, spec=ModelSpec.of(task.model), data=data["train"], val_data=data["val"],
                             library=library, train=task.recipe, policy=policy, eval_every=args.eval_every),
        {"cpu": 1})
    with tempfile.TemporaryDirectory(prefix="ntpt_vs_tune_") as storage:
        tuner = tune.Tuner(
            trainable, param_space={"restart": tune.grid_search(list(range(args.restarts))), "seed": args.seed},
            tune_config=tune.TuneConfig(num_samples=1, max_concurrent_trials=ACTORS),
            run_config=tune.RunConfig(storage_path=storage, name="vs_tune", verbose=0))
        t0, t0_unix = time.perf_counter(), time.time()
        grid = tuner.fit()
        wall = time.perf_counter() - t0
        finals = [r.metrics for r in grid]
    errors = [str(r.error) for r in grid if r.error]
    if errors or len(finals) != args.restarts or not all(m.get("done") for m in finals):
        raise RuntimeError(f"Ray Tune did not finish every restart ({len(finals)} results, errors: {errors[:2]})")
    outcomes = {m["restart"]: (m["status"], m["params"] or None, m["finished_at"]) for m in finals}
    out = summary(outcomes, t0_unix, wall, ACTORS, args.seed)
    trial_s = [m["trial_s"] for m in finals]
    out.update({"trial_setup_s_mean": round(statistics.mean(m["setup_s"] for m in finals), 3),
                "trial_train_s_mean": round(statistics.mean(m["train_s"] for m in finals), 3),
                "trial_fn_s_mean": round(statistics.mean(trial_s), 3),
                "trials_train_s": round(sum(m["train_s"] for m in finals), 1),
                # the share of the 2 CPUs' time the trial functions ran: the rest is Tune's
                "trial_fn_share": round(sum(trial_s) / (ACTORS * wall), 3)})
    return out, outcomes


def library_for(args, model: Any) -> tuple[Any, dict]:
    """The 2x2 library (net_0 from ADD2x2:top, net_1 from APPLY2x2:top), from the cache or trained once."""
    import numpy as np
    from ntpt_dist.library_store.codec import read_file, write_file

    if args.quick:
        from ntpt_dist.interpreter.netfn import random_netstate

        rng = np.random.default_rng(0)
        return {n: random_netstate(fn, rng) for n, fn in model.flat.learns.items()}, {"source": "random (--quick)"}
    if args.library_cache and os.path.exists(args.library_cache):
        blob = read_file(args.library_cache, "the 2x2 library cache")
        return blob["library"], {"source": f"cache {args.library_cache}", **blob["meta"]}
    from ntpt_dist.experiments.runner import train_task

    sizes = {"train": 4000, "val": 1000, "test": 2000}
    t0 = time.perf_counter()
    add = train_task("ADD2x2:top", restarts=4, steps=4000, seed=args.seed, sizes=sizes, progress=False)
    t1 = time.perf_counter()
    # net_0 held fixed so that reading operators falls to the new net_1 (as tasks_accuracy.py)
    apply = train_task("APPLY2x2:top", restarts=8, steps=1500, seed=args.seed, library=dict(add.program.networks),
                       sizes=sizes, progress=False, net_lr_scale=0.0)
    meta = {"built_by": "ADD2x2:top 4 restarts x 4000 steps, then APPLY2x2:top 8 x 1500 (net_0 fixed)",
            "add_test_accuracy": round(add.test_accuracy, 4), "apply_test_accuracy": round(apply.test_accuracy, 4),
            "add_s": round(t1 - t0, 1), "apply_s": round(time.perf_counter() - t1, 1)}
    library = {**add.program.networks, **apply.program.networks}
    if args.library_cache:
        write_file(args.library_cache, {"library": library, "meta": meta})
    return library, {"source": "built in this run", **meta}


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None or b == 0 else round(a / b, 3)


def compare(search_runs: list[dict], tune_run: dict, search_outcomes: dict, tune_outcomes: dict) -> dict:
    """The headline figures: the search's mean over its runs against Tune's run."""
    def mean(key: str) -> Optional[float]:
        values = [r[key] for r in search_runs]
        return None if None in values else statistics.mean(values)

    same = sum(search_outcomes[k][0] == tune_outcomes[k][0] for k in search_outcomes)
    return {"restarts_per_min_ratio": ratio(mean("restarts_per_min"), tune_run["restarts_per_min"]),
            "restarts_per_min_ratio_steady": ratio(mean("restarts_per_min_steady"), tune_run["restarts_per_min_steady"]),
            "first_program_speedup": ratio(tune_run["first_correct_s"], mean("first_correct_s")),
            "same_status_per_restart": f"{same}/{len(search_outcomes)}"}


def main(argv: Optional[list[str]] = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--restarts", type=int, default=64, help="restarts, the same ones in both tools")
    ap.add_argument("--steps", type=int, default=200, help="each restart's step budget (JumpPolicy.budget_steps)")
    ap.add_argument("--slots", type=int, default=32, help="the search's restarts per actor (2 actors)")
    ap.add_argument("--eval-every", type=int, default=25, help="steps between evaluations (the search's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--library-cache", default="/tmp/ntpt_vs_tune_library.npz",
                    help="where the trained 2x2 library is kept between runs ('' : train it every run)")
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--quick", action="store_true", help="a smoke run: random library, tiny data (seconds)")
    args = ap.parse_args(argv)
    if args.quick:
        args.restarts, args.steps, args.slots, args.eval_every = 4, 20, 2, 10
    import ray
    import torch
    from ntpt_dist.experiments import registry
    from ntpt_dist.search.policy import JumpPolicy
    from ntpt_dist.search.ray_backend import init_ray

    from ntpt_dist.paper_tasks import paper_task

    torch.set_num_threads(1)
    t_lib = time.perf_counter()
    library, library_info = library_for(args, registry.load_model("math"))
    library_info["seconds_to_load_or_build"] = round(time.perf_counter() - t_lib, 1)
    sizes = {"train": 256, "val": 64, "test": 1} if args.quick else {"test": 1}
    task = paper_task("MATH", library, seed=args.seed, sizes=sizes)
    policy = JumpPolicy(budget_steps=args.steps)
    init_ray(num_cpus=ACTORS)
    out = {"model": "MATH (experiments/models/math.py, N=2) from the 2x2 library, held fixed (the MATH recipe)",
           "command": " ".join(["python"] + (argv if argv is not None else sys.argv)),
           "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
                       "torch": torch.__version__, "ray": ray.__version__},
           "sizes": {"restarts": args.restarts, "steps_budget": args.steps, "eval_every": args.eval_every,
                     "search": f"{ACTORS} Ray actors x {args.slots} slots, 1 CPU each",
                     "tune": f"{args.restarts} trials (grid over the restart index), {ACTORS} at a time, 1 CPU each",
                     "train": len(task.data["train"]["result"]), "val": len(task.data["val"]["result"])},
           "recipe": task.recipe, "policy": policy.to_dict(), "library": library_info}
    search_runs, tune_run = [], None
    for tool in ("search", "tune", "search"):  # the search brackets Tune: the host's speed drifts
        if tool == "search":
            run, search_outcomes = run_search(args, task, library, policy)
            search_runs.append(run)
        else:
            tune_run, tune_outcomes = run_tune(args, task, library, policy)
        print(json.dumps({tool: search_runs[-1] if tool == "search" else tune_run}), file=sys.stderr, flush=True)
    ray.shutdown()
    out["machine"]["load_avg_1m_end"] = round(os.getloadavg()[0], 2)  # the box is shared: how busy it was
    out.update(compare(search_runs, tune_run, search_outcomes, tune_outcomes))
    out["goals"] = {"restarts_per_min_ratio": ">= 10", "first_program_speedup": ">= 5"}
    out["search_runs"], out["tune"] = search_runs, tune_run
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return out


if __name__ == "__main__":
    main()
