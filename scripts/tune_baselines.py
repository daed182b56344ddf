"""Tune the lifelong baselines on a validation split held out of the training grids (never the test grids).

Each task's 1k distinct training grids are split: the first ``1000 - val`` are
trained on, the last ``val`` are the validation grids that ``run_lifelong``
evaluates (its "test" slot). One lifetime per configuration; the score of a
configuration is the mean final validation accuracy over the 8 tasks (and per
scenario). Every configuration tried is appended to ``--out`` (JSON lines)
with its wall time, so the tuning budget can be counted from the file.

Configurations are given as ``key=value,key=value`` strings, one per
``--config``; keys are ``BaselineConfig`` fields (``lr``, ``optimizer``,
``perceptual_lr_scale``, ``head_hidden`` as ``128-128``), MTNN's
``add_head`` (its ADD2x2 head depth, e.g. ``add_head=1``) and ``embedding``
(``softmax`` or ``linear``), and PNN's ``lateral_scale`` (a number or ``none``).

Example:
    .venv/bin/python scripts/tune_baselines.py --model mtnn2 --scale 0.25 \
        --config lr=1e-3,optimizer=adam --config lr=3e-3,optimizer=rmsprop --out runs/tune.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from ntpt_dist.experiments import lifelong
from ntpt_dist.experiments.baselines import BaselineConfig
from ntpt_dist.experiments.baselines_2x2 import PNN
from ntpt_dist.experiments.tasks import make_task


def parse_config(text: str) -> dict:
    """``"lr=3e-3,optimizer=rmsprop,head_hidden=128-128"`` -> keyword dict."""
    out: dict = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key == "optimizer":
            out[key] = value
        elif key in ("head_hidden", "embed_hidden"):
            out[key] = tuple(int(v) for v in value.split("-") if v)
        elif key == "add_head":
            out[key] = int(value)
        elif key == "embedding":
            out[key] = value
        elif key == "lateral_scale":
            out[key] = None if value == "none" else float(value)
        else:
            out[key] = float(value)
    return out


def validation_data(distinct: int, val: int, seed: int, data_dir=None) -> dict:
    """task -> (first ``distinct - val`` training grids, last ``val`` training grids)."""
    data = {}
    for task in lifelong.PAPER_TASKS:
        train = make_task(task, "train", distinct, seed, data_dir=data_dir, distinct=distinct)
        data[task] = (train.take(slice(0, distinct - val)), train.take(slice(distinct - val, None)))
    return data


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a learner of lifelong.LEARNERS (indep, pnn, mtnn1, mtnn2)")
    p.add_argument("--config", action="append", default=[], help="key=value,... (repeat); empty: the defaults")
    p.add_argument("--scale", type=float, default=0.25)
    p.add_argument("--eval-every", type=int, default=64_000, help="examples between validation scores at scale 1")
    p.add_argument("--val", type=int, default=200, help="training grids per task held out for validation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/tune_baselines.jsonl")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = validation_data(1000, args.val, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for text in args.config or [""]:
        kwargs = parse_config(text)
        mtnn = {k: kwargs.pop(k) for k in ("add_head", "embedding") if k in kwargs}
        kwargs_pnn = {k: kwargs.pop(k) for k in ("lateral_scale",) if k in kwargs}
        config = BaselineConfig(**kwargs)
        learner = lifelong.make_learner(args.model, lifelong.PAPER_TASKS, config, args.seed)
        if mtnn:  # MTNN's ADD2x2 head depth or embedding, overridden for the search
            learner = _mtnn(args.model, config, args.seed, **mtnn)
        if "lateral_scale" in kwargs_pnn:
            learner = PNN(lifelong.PAPER_TASKS, config=config, seed=args.seed, lateral_scale=kwargs_pnn["lateral_scale"])
        start = time.perf_counter()
        result = lifelong.run_lifelong(learner, data, lifelong.Schedule(), 50, args.eval_every, args.scale, args.seed, name=args.model)
        wall = time.perf_counter() - start
        final = result.final()
        row = {
            "model": args.model, "config": text, "scale": args.scale, "seed": args.seed, "val": args.val,
            "mean": float(np.mean(list(final.values()))),
            "ADD2x2": float(np.mean([v for t, v in final.items() if t.startswith("ADD2x2")])),
            "APPLY2x2": float(np.mean([v for t, v in final.items() if t.startswith("APPLY2x2")])),
            "final": final, "curve": result.accuracy, "examples": result.examples, "wall_s": round(wall, 1), "last_loss": result.loss[-1],
        }
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{args.model} {text or 'defaults'}: val mean {row['mean']:.3f} ADD {row['ADD2x2']:.3f} APPLY {row['APPLY2x2']:.3f} "
              f"loss {row['last_loss']:.3f} ({wall:.0f} s) "
              + " ".join(f"{v:.2f}" for v in final.values()), flush=True)
    return 0


def _mtnn(model: str, config: BaselineConfig, seed: int, add_head=None, embedding="linear"):
    from ntpt_dist.experiments.baselines_2x2 import MTNN

    class Tuned(MTNN):
        def head_hidden(self, task):
            if add_head is None:
                return super().head_hidden(task)
            hidden = tuple(self.config.head_hidden)
            return hidden[:add_head] if task.startswith("ADD2x2") else hidden

    depth = {"mtnn1": "mtnn1", "mtnn2": "mtnn2"}[model]
    return Tuned(lifelong.PAPER_TASKS, depth=depth, config=config, seed=seed, embedding=embedding)


if __name__ == "__main__":
    sys.exit(main())
