"""How often random restarts find the MATH program when perception is exact; prints JSON.

MATH with the tape given as symbols (``experiments/models/math_symbolic.py``,
networks replaced by exact readers) is program search alone. Trains R
restarts of it on 2-digit expressions in one process and counts the restarts
whose learned source is exact on 16-digit tapes (the paper: 2 of 100 converge
on the perceptual task).

Usage:
    python benchmarks/math_symbolic_search.py --restarts 32 --steps 1000 lr=0.1 init_scale=3.0
    (trailing key=value pairs are TrainConfig options; ``clip_norm=none`` turns clipping off)

With ``--details`` the JSON also has, per restart, the discrete program's accuracy
on the 2-digit validation data, the relaxed model's final and best validation
accuracy, a structural class of the learned program (see :func:`classify`), and
a count of restarts per class. ``--out FILE`` also writes the JSON to FILE.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from report import command, emit  # noqa: E402 - this folder, on sys.path just above


def symbolic(split: str, n: int, seed: int, digits: int = 2) -> dict:
    from ntpt_dist.experiments.tasks import make_task

    td = make_task("MATH", split, n, seed=seed, digits=digits)
    return {"tape": td.labels["tape"], "result": td.outputs["result"]}


def signature(p: dict) -> str:
    """A compact form of a learned MATH program, e.g. ``M0>2 M1>0 A(2,0,1)>1 r2``
    (block b: ``M<net>`` a MOVE that reads with that network, ``A(a,b,c)`` an APPLY;
    ``>g`` its goto; ``r`` the returned register)."""
    parts = []
    for b, instr in enumerate(p["instr"]):
        body = f"M{p['net_choice'][b]}" if instr == 0 else f"A({p['arg1'][b]},{p['arg2'][b]},{p['arg3'][b]})"
        parts.append(f"{body}>{p['goto'][b]}")
    return " ".join(parts) + f" r{p['ret']}"


def classify(p: dict) -> str:
    """Structural class of a learned MATH program (3 blocks; execution starts at block 0).

    The intended program (up to relabelling of blocks 1 and 2): block 0 a MOVE that
    reads a digit into R0; a cycle 0 -> APPLY -> MOVE(net_1) -> 0, the APPLY
    computing R_apply = R_apply (op) R0 with the operator register of the net_1 MOVE;
    return R_apply. Classes, checked in this order:
      ``intended``: exactly that;
      ``no_apply`` / ``two_apply`` / ``three_apply``: the wrong number of APPLY blocks;
      ``same_net``: two MOVEs that both read with the same network;
      ``not_a_cycle``: the gotos do not visit all three blocks from block 0;
      ``bad_order``: a 3-cycle, but block 0 is not the digit MOVE or the order is
      digit -> op -> APPLY;
      ``bad_return``: right cycle and order, returns another register;
      ``bad_args``: right cycle, order and return, wrong APPLY arguments.
    """
    instr, net, goto = p["instr"], p["net_choice"], p["goto"]
    applies = [b for b in range(3) if instr[b] == 1]
    if len(applies) != 1:
        return {0: "no_apply", 2: "two_apply", 3: "three_apply"}[len(applies)]
    a = applies[0]
    moves = [b for b in range(3) if b != a]
    if net[moves[0]] == net[moves[1]]:
        return "same_net"
    seen, b = [], 0
    while b not in seen:
        seen.append(b)
        b = goto[b]
    if len(seen) != 3 or b != 0:
        return "not_a_cycle"
    d = [m for m in moves if net[m] == 0][0]
    o = [m for m in moves if net[m] == 1][0]
    if d != 0 or goto[d] != a:
        return "bad_order"
    if p["ret"] != a:
        return "bad_return"
    if (p["arg1"][a], p["arg2"][a], p["arg3"][a]) != (a, d, o):
        return "bad_args"
    return "intended"


def main(argv=None) -> None:
    import torch
    from ntpt_dist.experiments.registry import load_model
    from ntpt_dist.interpreter.train_config import parse_option

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--restarts", type=int, default=32)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--details", action="store_true", help="per-restart accuracies and program classes")
    p.add_argument("--out", default=None, help="also write the JSON to this file")
    p.add_argument("config", nargs="*", help="TrainConfig options as key=value")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = dict(parse_option(item) for item in args.config)
    config.setdefault("eval_every", 100)
    train, val = symbolic("train", 2000, args.seed), symbolic("val", 500, args.seed + 1)
    long = symbolic("test", 500, args.seed + 2, digits=16)
    model = load_model("math_symbolic", N=2)
    started = time.perf_counter()
    result = model.train(train, restarts=args.restarts, steps=args.steps, seed=args.seed, val_data=val,
                         keep_programs=True, **config)
    wall = time.perf_counter() - started
    programs = result.programs()  # every restart's, by index (diverged ones have none)
    exact = [k for k, prog in programs.items() if prog.accuracy(long, hypers={"N": 16}) == 1.0]
    out = {
        "command": command("math_symbolic_search.py", argv),
        "restarts": args.restarts, "steps": args.steps, "config": config,
        "exact_on_16_digits": len(exact), "rate": round(len(exact) / args.restarts, 4),
        "train_s": round(wall, 1),
        "programs": [programs[k].listing() for k in exact],
    }
    if args.details:
        from collections import Counter

        restarts = []
        for k, prog in programs.items():
            trajectory = result.records[k].trajectory
            va = [a for _, a in trajectory]
            hit = [int(s) for s, a in trajectory if a >= 0.99]
            restarts.append({
                "k": k, "exact16": k in exact, "class": classify(prog.params), "program": signature(prog.params),
                "val2_discrete": round(prog.accuracy(val), 4),
                "val2_relaxed_final": round(float(va[-1]), 4), "val2_relaxed_best": round(float(max(va)), 4),
                "first_step_relaxed_ge_0.99": hit[0] if hit else None,
                "status": result.records[k].status.value, "steps": result.records[k].steps,
            })
        out["classes"] = dict(Counter(r["class"] for r in restarts).most_common())
        acc = sorted((r["val2_discrete"] for r in restarts), reverse=True)
        out["val2_discrete_sorted"] = acc
        out["top_programs"] = dict(Counter(r["program"] for r in restarts).most_common(10))
        out["restarts_detail"] = restarts
    out["total_s"] = round(time.perf_counter() - started, 1)
    emit(out, args.out)


if __name__ == "__main__":
    main()
