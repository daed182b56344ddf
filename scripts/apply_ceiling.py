"""How far a column can get on APPLY2x2 from 1k distinct training grids, and why.

Three measurements on one APPLY2x2 task (default ``APPLY2x2:left``), each
tested on held-out test grids:

- ``blind``: the best operator-blind predictor: for each ``aux`` triple the
  answer most probable over the 16 operator pairs (operator frequencies of the
  training cells);
- ``oracle``: the paper's head (3 x 128, ReLU) trained on the *true* operator
  labels of the 4 cells (one-hot) and the one-hot ``aux``: perfect perception,
  so what is left is learning the arithmetic from the 1k training instances;
- ``fresh_aux``: an ``Indep`` column on the images, trained on the same 1k
  distinct operator grids, but every batch gets new ``aux`` integers (and the
  answer recomputed from the cells' labels): the regime where only the images
  are scarce.

Prints one JSON line per measurement.

Example:
    .venv/bin/python scripts/apply_ceiling.py --task APPLY2x2:left --steps 1280
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from ntpt_dist.experiments.baselines import BaselineConfig, mlp
from ntpt_dist.experiments.baselines_2x2 import Indep
from ntpt_dist.experiments.tasks import SIDES, TaskData, apply_op, make_task


def blind(task: str, train: TaskData, test: TaskData) -> float:
    """The best answer for each ``aux`` triple when the operators are unknown (operator frequencies from the training cells)."""
    (r1, c1), (r2, c2) = SIDES[task.partition(":")[2]]
    freq = np.bincount(train.labels["grid"].ravel(), minlength=4) / train.labels["grid"].size
    aux = test.inputs["aux"]
    weight = np.zeros((len(test), 19))
    for op1 in range(4):
        for op2 in range(4):
            answer = apply_op(apply_op(aux[:, 0], op1, aux[:, 1]), op2, aux[:, 2])
            weight[np.arange(len(test)), answer] += freq[op1] * freq[op2]
    return float(np.mean(weight.argmax(1) == test.outputs["result"]))


def _symbols(data: TaskData) -> torch.Tensor:
    ops = data.labels["grid"].reshape(len(data), -1)
    return torch.tensor(np.concatenate([np.eye(4)[ops].reshape(len(data), -1), np.eye(10)[data.inputs["aux"]].reshape(len(data), -1)], 1),
                        dtype=torch.float32)


def oracle(train: TaskData, test: TaskData, steps: int, lr: float, seed: int) -> float:
    torch.manual_seed(seed)
    net = mlp([16 + 30, 128, 128, 128, 19])
    opt = torch.optim.Adam(net.parameters(), lr)
    x, y = _symbols(train), torch.as_tensor(train.outputs["result"])
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        idx = torch.as_tensor(rng.integers(0, len(train), 50))
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((net(_symbols(test)).argmax(1).numpy() == test.outputs["result"]).mean())


def fresh_aux(task: str, train: TaskData, test: TaskData, steps: int, lr: float, seed: int) -> float:
    (r1, c1), (r2, c2) = SIDES[task.partition(":")[2]]
    column = Indep([task], config=BaselineConfig(lr=lr), seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        batch = train.take(rng.integers(0, len(train), 50))
        aux = rng.integers(0, 10, size=(50, 3))
        op = batch.labels["grid"]
        result = apply_op(apply_op(aux[:, 0], op[:, r1, c1], aux[:, 1]), op[:, r2, c2], aux[:, 2])
        column.train_step(task, TaskData(task, "train", {"grid": batch.inputs["grid"], "aux": aux}, {"result": result}, batch.labels, batch.ids))
    return column.accuracy(task, test)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="APPLY2x2:left")
    p.add_argument("--distinct", type=int, default=1000)
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--steps", type=int, default=1280, help="batches of 50 (1280: the 64k examples a task dominates)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default="blind,oracle,fresh_aux")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    train = make_task(args.task, "train", args.distinct, args.seed, distinct=args.distinct)
    test = make_task(args.task, "test", args.test_size, args.seed)
    runs = {
        "blind": lambda: blind(args.task, train, test),
        "oracle": lambda: oracle(train, test, args.steps, args.lr, args.seed),
        "fresh_aux": lambda: fresh_aux(args.task, train, test, args.steps, args.lr, args.seed),
    }
    majority = float(np.bincount(test.outputs["result"]).max() / len(test))
    for name in args.only.split(","):
        start = time.perf_counter()
        accuracy = runs[name]()
        print(json.dumps({"task": args.task, "measure": name, "accuracy": round(accuracy, 4), "majority": round(majority, 4),
                          "distinct": args.distinct, "test": args.test_size, "steps": args.steps, "lr": args.lr, "seed": args.seed,
                          "wall_s": round(time.perf_counter() - start, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
