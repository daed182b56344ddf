"""Why a lifelong NTPT learner forgets: which networks move, and which task's batches move them.

Runs a lifetime of the chosen learner (``ntpt-lockstep``: every restart trains
the shared networks from every task's batches, the design before restart
selection; or ``ntpt``) and records at every evaluation, besides the tasks'
test accuracy:

- each shared network's own accuracy on the test grids' cell labels (net_0 on
  ADD2x2 digits, net_1 on APPLY2x2 operators), restart 0's copy and the mean;
- per task, how far its batches moved each network since the last evaluation:
  the L2 norm of the summed weight changes of its optimiser steps, and the
  fraction of all movement of that network it accounts for.

Prints one JSON document (``--out`` writes it too).

Example:
    .venv/bin/python scripts/diagnose_forgetting.py --learner ntpt-lockstep --scale 0.5 --test-size 500
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


def _net_accuracy(net, images: np.ndarray, labels: np.ndarray) -> list[float]:
    """Accuracy of every restart copy of ``net`` on ``images [n, 28, 28]``."""
    with torch.no_grad():
        x = torch.from_numpy(images.reshape(len(images), -1)).float()
        pred = net.scores(x).argmax(-1).numpy()  # [R, n]
    return (pred == labels[None]).mean(1).tolist()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--learner", default="ntpt-lockstep")
    p.add_argument("--scale", type=float, default=0.5)
    p.add_argument("--test-size", type=int, default=500)
    p.add_argument("--eval-every", type=int, default=16_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    tasks = lifelong.PAPER_TASKS
    data = lifelong.prepare_data(tasks, 1000, args.test_size, args.seed)
    learner = lifelong.make_learner(args.learner, tasks, BaselineConfig(), args.seed)
    nets = learner.shared_networks()  # name -> StackedMLP (all restart copies)
    probes = {"net_0": [t for t in tasks if t.startswith("ADD2x2")], "net_1": [t for t in tasks if t.startswith("APPLY2x2")]}
    probe_data = {}
    for name, probe_tasks in probes.items():
        test = [data[t][1] for t in probe_tasks]
        probe_data[name] = (np.concatenate([d.inputs["grid"].reshape(-1, 28, 28) for d in test]),
                            np.concatenate([d.labels["grid"].reshape(-1) for d in test]))
    moved = {t: {n: 0.0 for n in nets} for t in tasks}  # summed weight change since the last evaluation
    trace = {"examples": [], "net_accuracy": {n: [] for n in nets}, "moved_norm": {t: {n: [] for n in nets} for t in tasks}}
    deltas = {t: {n: None for n in nets} for t in tasks}

    def snapshot():
        return {n: torch.cat([w.detach().reshape(-1) for _, w, _ in net.tensors()]).clone() for n, net in nets.items()}

    inner = learner.train_step

    def train_step(task, batch):
        before = snapshot()
        loss = inner(task, batch)
        after = snapshot()
        for n in nets:
            d = after[n] - before[n]
            deltas[task][n] = d if deltas[task][n] is None else deltas[task][n] + d
        return loss

    learner.train_step = train_step
    seen = [0]

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        trace["examples"].append(int(line.split()[1].split("/")[0]))
        for n, net in nets.items():
            trace["net_accuracy"][n].append(_net_accuracy(net, *probe_data[n]))
        for t in tasks:
            for n in nets:
                d = deltas[t][n]
                trace["moved_norm"][t][n].append(0.0 if d is None else float(d.norm()))
                deltas[t][n] = None
        seen[0] += 1

    start = time.perf_counter()
    result = lifelong.run_lifelong(learner, {t: data[t] for t in tasks}, lifelong.Schedule(), 50, args.eval_every,
                                   args.scale, args.seed, name=args.learner, log=log)
    totals = {n: {t: float(np.sum(trace["moved_norm"][t][n])) for t in tasks} for n in nets}
    out = {
        "command": "python scripts/diagnose_forgetting.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "accuracy": result.accuracy, "examples": result.examples,
        "net_accuracy_mean": {n: [float(np.mean(a)) for a in trace["net_accuracy"][n]] for n in nets},
        "net_accuracy": trace["net_accuracy"],
        "moved_norm": trace["moved_norm"],
        "moved_share": {n: {t: totals[n][t] / max(sum(totals[n].values()), 1e-12) for t in tasks} for n in nets},
        "wall_s": time.perf_counter() - start,
    }
    del moved
    text = json.dumps(out, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
