"""How often random restarts find the MATH program when perception is exact; prints JSON.

MATH with the tape given as symbols (``experiments/models/math_symbolic.py``,
networks replaced by exact readers) is program search alone. Trains R
restarts of it on 2-digit expressions in one process and counts the restarts
whose learned source is exact on 16-digit tapes (the paper: 2 of 100 converge
on the perceptual task).

Usage:
    python benchmarks/math_symbolic_search.py --restarts 32 --steps 1000 lr=0.1 init_scale=3.0
    (trailing key=value pairs are TrainConfig options)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def symbolic(split: str, n: int, seed: int, digits: int = 2) -> dict:
    from ntpt_dist.experiments.tasks import make_task

    td = make_task("MATH", split, n, seed=seed, digits=digits)
    return {"tape": td.labels["tape"], "result": td.outputs["result"]}


def main(argv=None) -> None:
    import torch
    from ntpt_dist.experiments.registry import load_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--restarts", type=int, default=32)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("config", nargs="*", help="TrainConfig options as key=value")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = {}
    for item in args.config:
        key, value = item.split("=", 1)
        config[key] = value if key == "optimizer" else float(value) if "." in value or "e" in value else int(value)
    config.setdefault("eval_every", 100)
    train, val = symbolic("train", 2000, args.seed), symbolic("val", 500, args.seed + 1)
    long = symbolic("test", 500, args.seed + 2, digits=16)
    model = load_model("math_symbolic", N=2)
    started = time.perf_counter()
    result = model.train(train, restarts=args.restarts, steps=args.steps, seed=args.seed, val_data=val, **config)
    wall = time.perf_counter() - started
    exact = [k for k, prog in enumerate(result.programs) if prog.accuracy(long, hypers={"N": 16}) == 1.0]
    print(json.dumps({
        "command": "python benchmarks/math_symbolic_search.py " + " ".join(argv or sys.argv[1:]),
        "restarts": args.restarts, "steps": args.steps, "config": config,
        "exact_on_16_digits": len(exact), "rate": round(len(exact) / args.restarts, 4),
        "train_s": round(wall, 1),
        "programs": [result.programs[k].listing() for k in exact],
    }, indent=2))


if __name__ == "__main__":
    main()
