"""Peak resident memory per restart slot of a training block, against the tensors it must hold; prints JSON.

For every workload and every R in ``--restarts``, ``--repeats`` FRESH
subprocesses (so that peaks do not mix; each imports, loads the data and
compiles the model, hands its freed heap back (``malloc_trim``), resets its high-water mark
(``/proc/self/clear_refs``) and reads its resident memory: the baseline. It
then builds a ``RestartBlock`` of R slots, resets every slot, runs ``--steps``
training steps and one validation evaluation, and reads ``VmHWM`` after each
phase). The peaks above the baseline of every process, fitted as ``fixed +
per_slot * R`` (least squares), give the measured bytes per slot (the slope)
and the fixed part; ``peak_above_baseline_by_r`` shows how far repeats differ.

The same subprocess then counts, exactly, what the block must hold for a
training step (:func:`tensor_accounting`): the trained tensors (parameters),
their gradients, Adam's two moments, the minibatch, and the activations
autograd keeps for backward (unique storages saved during one step's forward,
seen through ``torch.autograd.graph.saved_tensors_hooks``, less the parameters
and the minibatch it saves). The slope of their sum over R is
``must_hold_bytes_per_slot``; the goal is ``measured / must_hold <= 1.5``.
Tensors the block holds beyond that (networks held fixed, one copy per block;
optimiser buffers) are reported beside it as ``held_beyond_must_hold``.

The largest R within ``--budget-gib`` is read from the fit (baseline + fixed +
per_slot * R for the whole process), then checked by running that R (or the
largest this machine's free memory allows) in one more subprocess, and
refined by up to ``--verify-runs - 1`` more at the R where the line through
two measured peaks crosses the budget (``largest_r_verified``,
``smallest_r_measured_over_budget``).

Workloads (built by the benchmarks that time them):
  maze          experiments/models/maze.py, T=45, W=5, H=3, image LOOK 3072-256-256-5, 128 random
                instances, batch 16 (benchmarks/interpreter_throughput.py); 64 more for validation
  math_frozen   MATH, N=2, searched from a 2x2 library held fixed (the MATH recipe: freeze_library),
                512 instances, batch 16 (benchmarks/search_scaling.py); its first 64 for validation
  math_trained  the same, the library fine-tuned per restart at 0.01x (the paper's setting)

Usage::

    python benchmarks/memory.py [--workloads maze math_frozen math_trained] [--restarts 1 8 16 32 64]
        [--steps 2] [--repeats 3] [--budget-gib 8] [--verify-runs 3] [--no-verify]

Linux only (``/proc/self/status``, ``clear_refs``); one torch thread, on the CPU.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("maze", "math_frozen", "math_trained")
GIB = 1 << 30


# ---------------------------------------------------------------- process memory


def status_bytes(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``, ...) in bytes.

    Example:
        >>> status_bytes("VmRSS") > 0
        True
    """
    with open("/proc/self/status") as f:
        found = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"/proc/self/status has no {field} line; this benchmark needs Linux")
    return int(found.group(1)) * 1024


def reset_peak() -> int:
    """Hand freed heap back to the OS, reset the high-water mark to the resident size; returns that size."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # Linux >= 4.0: VmHWM := VmRSS
    return status_bytes("VmRSS")


# ---------------------------------------------------------------- the tensors a block must hold


def _storages(tensors) -> dict[int, int]:
    """data_ptr -> nbytes of the unique storages under ``tensors``."""
    out = {}
    for t in tensors:
        s = t.untyped_storage()
        if s.nbytes():
            out[s.data_ptr()] = s.nbytes()
    return out


def _batch_tensors(batch) -> list:
    return [*batch.inputs.values(), *batch.tensors.values(), *batch.targets.values(), *batch.cached.values()]


def tensor_accounting(block) -> dict[str, int]:
    """Run one training step of ``block`` and count, in bytes, the tensors it holds for it.

    Args:
        block: a ``RestartBlock`` whose slots are reset (it trains one more step).

    Returns:
        ``params_trained`` (the tensors Adam updates), ``grads`` (a gradient of
        each one's size), ``adam_moments`` (both), ``minibatch`` (the step's
        per-slot rows), ``saved_activations`` (unique storages autograd saved
        for backward, less parameters and minibatch), ``params_fixed`` (lowered
        tensors not trained: networks held fixed), ``optimizer_buffers``,
        ``training_data`` (the shared batch the minibatches are taken from),
        and ``must_hold``: params_trained + grads + adam_moments + minibatch +
        saved_activations.

    Example:
        >>> acc = tensor_accounting(block)  # doctest: +SKIP
        >>> acc["adam_moments"] == 2 * acc["params_trained"]  # doctest: +SKIP
        True
    """
    import torch

    params = _storages(t for _, t, _ in block.lowered.parameters())
    data = _storages(_batch_tensors(block.data))
    saved: dict[int, Any] = {}  # data_ptr -> storage, kept alive until counted (no address reuse)
    taken = []
    minibatch = block._minibatch

    def record_minibatch(live):
        taken.append(minibatch(live))
        return taken[-1]

    def pack(t):
        s = t.untyped_storage()
        saved.setdefault(s.data_ptr(), s)
        return t

    block._minibatch = record_minibatch  # the step's own minibatch, as it takes it
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            block.step(1)
    finally:
        del block._minibatch
    batch = _storages(_batch_tensors(taken[0])) if taken else {}
    batch = {p: n for p, n in batch.items() if p not in data}  # a full batch is the data itself
    activations = sum(s.nbytes() for p, s in saved.items() if p not in params and p not in batch and p not in data)
    trained = {id(t) for _, t, _ in block.optimizer.tensors}
    opt = block.optimizer
    out = {
        "params_trained": sum(_storages(t for _, t, _ in opt.tensors).values()),
        # by construction: autograd gives every trained tensor a dense gradient of its own size (counting
        # .grad after the step would miss one a custom Function sets through ctx.saved_tensors: under
        # saved-tensor hooks that is another tensor object, so the weight's .grad stays None)
        "grads": sum(_storages(t for _, t, _ in opt.tensors).values()),
        "adam_moments": sum(_storages([*opt._m, *opt._v]).values()),
        "minibatch": sum(batch.values()),
        "saved_activations": activations,
        "params_fixed": sum(_storages(t for _, t, _ in block.lowered.parameters() if id(t) not in trained).values()),
        "optimizer_buffers": sum(_storages(b for b in opt._buf if b is not None).values()),
        "training_data": sum(data.values()),
    }
    out["must_hold"] = sum(out[k] for k in ("params_trained", "grads", "adam_moments", "minibatch", "saved_activations"))
    return out


def eval_accounting(block, val, chunk: int = 256) -> dict[str, int]:
    """What an evaluation of ``val`` holds beside the block's state, in bytes.

    Args:
        block: a ``RestartBlock``.
        val: a batch from ``block.batch`` (evaluated in chunks of ``chunk`` instances, as ``accuracy`` does).

    Returns:
        ``grads_held``: gradients of the last training step still alive during the
        evaluation; ``forward_values``: unique storages of every marginal one
        chunk's forward keeps until it ends (the parameters and the data left out).
    """
    import torch

    known = _storages(t for _, t, _ in block.lowered.parameters()) | _storages(_batch_tensors(val))
    with torch.no_grad():
        fwd = block.lowered.run(val.slice(0, chunk))
    values = _storages(t for t in fwd._values if isinstance(t, torch.Tensor))
    return {"grads_held": sum(_storages(t.grad for _, t, _ in block.optimizer.tensors if t.grad is not None).values()),
            "forward_values": sum(n for p, n in values.items() if p not in known)}


# ---------------------------------------------------------------- workloads


def build_workload(name: str) -> dict:
    """The model, data and block arguments of a workload, as the benchmark that times it builds them.

    Args:
        name: one of ``WORKLOADS``.

    Returns:
        ``{"label", "model", "train", "val", "config", "library"}``.

    Raises:
        SystemExit: MATH cannot be built here (its benchmark would fall back to another model).
    """
    from ntpt_dist.interpreter.engine import config_with

    sys.path.insert(0, str(ROOT))
    if name == "maze":
        from benchmarks.interpreter_throughput import HYPERS, load_maze, random_data

        flat, origin = load_maze()
        return {"label": f"maze ({origin}, {HYPERS}, LOOK {flat.learns['LOOK'].in_features}-"
                         f"{'-'.join(map(str, flat.learns['LOOK'].hid_sizes))}-5, 128 random instances, batch 16)",
                "model": flat, "train": random_data(flat, 128, np.random.default_rng(0)),
                "val": random_data(flat, 64, np.random.default_rng(1)),
                "config": config_with(batch_size=16), "library": None}
    from ntpt_dist.interpreter.netfn import random_netstate

    from benchmarks.search_scaling import workload

    library = "frozen" if name == "math_frozen" else "trained"
    label, model, data, factory = workload(argparse.Namespace(library=library, maze_t=10, hid=64))
    if factory is not None:
        raise SystemExit(f"memory.py: the MATH workload cannot be built here: {label}")
    return {"label": f"{label} (benchmarks/search_scaling.py, 512 instances, batch 16)", "model": model,
            "train": data, "val": {k: v[:64] for k, v in data.items()},
            "config": config_with(batch_size=16, freeze_library=library == "frozen"),
            "library": {n: random_netstate(fn, np.random.default_rng(0)) for n, fn in model.flat.learns.items()}}


def measure_one(name: str, slots: int, steps: int) -> dict:
    """One R of one workload, in this process (run it in a fresh one): peaks above the baseline, and the tensors.

    Returns:
        bytes: ``load_peak`` (the high-water mark before the baseline), ``baseline``,
        ``peak_build`` / ``peak_train`` / ``peak_eval`` (VmHWM after building and
        resetting, after the steps, after the evaluation; whole process), and
        ``accounting`` (:func:`tensor_accounting`), plus timings.
    """
    import torch
    from ntpt_dist.interpreter.engine import RestartBlock, restart_seed
    from ntpt_dist.interpreter.memory import keep_freed_memory

    torch.set_num_threads(1)
    keep_freed_memory()  # the malloc settings every block runs under, before anything is allocated
    work = build_workload(name)
    load_peak = status_bytes("VmHWM")
    baseline = reset_peak()
    t0 = time.perf_counter()
    block = RestartBlock(work["model"], work["train"], slots=slots, config=work["config"], library=work["library"])
    for k in range(slots):
        block.reset(k, restart_seed(0, k))
    val = block.batch(work["val"])  # converted once, as BlockWorker does
    peak_build = status_bytes("VmHWM")
    t1 = time.perf_counter()
    block.step(steps)
    peak_train = status_bytes("VmHWM")
    t2 = time.perf_counter()
    block.accuracy(val)
    peak_eval = status_bytes("VmHWM")
    t3 = time.perf_counter()
    evaluation = eval_accounting(block, val)
    return {"restarts": slots, "label": work["label"], "load_peak": load_peak, "baseline": baseline,
            "peak_build": peak_build, "peak_train": peak_train, "peak_eval": peak_eval,
            "ru_maxrss": _ru_maxrss(), "accounting": tensor_accounting(block), "evaluation": evaluation,
            "seconds": {"build": round(t1 - t0, 2), "steps": round(t2 - t1, 2), "eval": round(t3 - t2, 2)}}


def _ru_maxrss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_child(name: str, slots: int, steps: int) -> dict:
    """:func:`measure_one` in a fresh subprocess; a failure there is a failure here, with its stderr."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--slots", str(slots), "--steps", str(steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"memory.py: {name} at R={slots} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"# {name} R={slots}: peak {row['peak_eval'] / GIB:.3f} GiB, baseline {row['baseline'] / GIB:.3f} GiB, "
          f"{row['seconds']}", file=sys.stderr, flush=True)
    return row


# ---------------------------------------------------------------- fits and the report


def fit_line(rs, ys) -> dict:
    """Least-squares ``y = fixed + per_slot * R``.

    Example:
        >>> fit_line([1, 2, 4], [12, 14, 18])
        {'fixed': 10.0, 'per_slot': 2.0, 'max_residual': 0.0}
    """
    slope, intercept = np.polyfit(np.asarray(rs, float), np.asarray(ys, float), 1)
    residual = np.asarray(ys, float) - (intercept + slope * np.asarray(rs, float))
    return {"fixed": round(float(intercept), 1), "per_slot": round(float(slope), 1),
            "max_residual": round(float(np.abs(residual).max()), 1)}


def summarise(rows: list[dict], budget: int) -> dict:
    """The fits, the per-slot breakdown, the ratio and the R that fits in ``budget`` bytes."""
    rs = [r["restarts"] for r in rows]
    above = {phase: [r[f"peak_{phase}"] - r["baseline"] for r in rows] for phase in ("build", "train", "eval")}
    fits = {phase: fit_line(rs, ys) for phase, ys in above.items()}
    keys = rows[0]["accounting"].keys()
    tensors = {k: fit_line(rs, [r["accounting"][k] for r in rows]) for k in keys}
    evaluation = {k: fit_line(rs, [r["evaluation"][k] for r in rows])["per_slot"] for k in rows[0]["evaluation"]}
    must = tensors["must_hold"]["per_slot"]
    measured = fits["eval"]["per_slot"]  # the whole run: build, steps and evaluation
    baseline = float(np.mean([r["baseline"] for r in rows]))
    r_fit = int((budget - baseline - fits["eval"]["fixed"]) // measured)
    return {
        "rows": rows,
        "fit_bytes_above_baseline": fits,
        "measured_bytes_per_slot": measured,
        "measured_fixed_bytes": fits["eval"]["fixed"],
        "baseline_bytes": round(baseline),
        "must_hold_bytes_per_slot": must,
        "must_hold_breakdown_per_slot": {k: tensors[k]["per_slot"] for k in
                                         ("params_trained", "grads", "adam_moments", "minibatch", "saved_activations")},
        "held_beyond_must_hold_per_slot": {k: tensors[k]["per_slot"] for k in ("params_fixed", "optimizer_buffers")},
        "evaluation_holds_per_slot": evaluation,
        "tensor_fits": tensors,
        "ratio_measured_over_must_hold": round(measured / must, 3),
        "ratio_train_only_over_must_hold": round(fits["train"]["per_slot"] / must, 3),
        # against everything the block allocates per slot (networks held fixed: one copy per block)
        "ratio_measured_over_held": round(measured / (must + sum(tensors[k]["per_slot"] for k in
                                                                   ("params_fixed", "optimizer_buffers"))), 3),
        "ratio_goal": 1.5,
        "largest_r_in_budget_from_fit": r_fit,
    }


def _process_peak(row: dict) -> int:
    return max(row["peak_eval"], row["load_peak"])


def check_run(name: str, slots: int, predicted: float, steps: int, budget: int) -> dict:
    """Run ``slots`` (fewer if this machine's free memory is short) and compare its peak with ``predicted``."""
    avail = status_bytes_meminfo("MemAvailable") - 2 * GIB  # leave the other users of this machine room
    capped = predicted > avail
    if capped:
        slots = int(slots * avail / predicted)
    row = run_child(name, slots, steps)
    del row["label"]
    return {"restarts": slots, "capped_by_free_memory": capped, "predicted_process_peak_bytes": round(predicted),
            "measured_process_peak_bytes": _process_peak(row), "measured_peak_gib": round(_process_peak(row) / GIB, 3),
            "fits_budget": _process_peak(row) <= budget, "row": row}


def verify(name: str, summary: dict, budget: int, steps: int, runs_max: int = 3) -> list[dict]:
    """Run the largest R the fit allows in ``budget``, then up to ``runs_max - 1`` more, each where the line
    through two measured peaks crosses the budget: between the largest R that fits and the smallest over it,
    or, while none is over, beyond the two largest that fit (the fitted R = 64 median among them)."""
    fixed = summary["baseline_bytes"] + summary["measured_fixed_bytes"]
    r = summary["largest_r_in_budget_from_fit"]
    runs = [check_run(name, r, fixed + summary["measured_bytes_per_slot"] * r, steps, budget)]
    top = max(row["restarts"] for row in summary["rows"])
    big = median_row([row for row in summary["rows"] if row["restarts"] == top])
    while len(runs) < runs_max and not runs[-1]["capped_by_free_memory"]:
        fit = sorted([(big["restarts"], _process_peak(big))] + [(x["restarts"], x["measured_process_peak_bytes"])
                                                                 for x in runs if x["fits_budget"]])
        over = sorted((x["restarts"], x["measured_process_peak_bytes"]) for x in runs if not x["fits_budget"])
        (ra, pa), (rb, pb) = (fit[-1], over[0]) if over else (fit[-2], fit[-1])
        slope = (pb - pa) / (rb - ra)
        r = fit[-1][0] + int((budget - fit[-1][1]) // slope)
        if r in {x["restarts"] for x in runs} or (over and over[0][0] - fit[-1][0] <= max(1, fit[-1][0] // 100)):
            break  # nothing new to learn: the bracket is within 1%
        runs.append(check_run(name, r, fit[-1][1] + slope * (r - fit[-1][0]), steps, budget))
        runs[-1]["from_secant_bytes_per_slot"] = round(slope, 1)
    return runs


def secants(rows: list[dict]) -> dict:
    """Bytes per slot between consecutive R of ``rows`` (smallest, largest fitted, largest run): measured
    (peak above baseline) and must-hold, and their ratio; the fit is one line, these show where it bends."""
    rows = sorted(rows, key=lambda row: row["restarts"])
    above = lambda row: row["peak_eval"] - row["baseline"]  # noqa: E731
    out = {}
    for a, b in zip(rows, rows[1:]):
        dr = b["restarts"] - a["restarts"]
        measured, must = (above(b) - above(a)) / dr, (b["accounting"]["must_hold"] - a["accounting"]["must_hold"]) / dr
        out[f"r{a['restarts']}_to_r{b['restarts']}"] = {"measured": round(measured, 1), "must_hold": round(must, 1),
                                                       "ratio": round(measured / must, 3)}
    return out


def median_row(rows: list[dict]) -> dict:
    """The row whose whole-run peak above its baseline is the median (the lower one of an even count)."""
    ranked = sorted(rows, key=lambda row: row["peak_eval"] - row["baseline"])
    return ranked[(len(ranked) - 1) // 2]


def spread(rows: list[dict]) -> dict:
    """Per R: the whole-run peaks above baseline of its repeats, in bytes, and their max - min."""
    out: dict[str, dict] = {}
    for row in rows:
        out.setdefault(str(row["restarts"]), {"eval": []})["eval"].append(row["peak_eval"] - row["baseline"])
    for v in out.values():
        v["range"] = max(v["eval"]) - min(v["eval"])
    return out


def status_bytes_meminfo(field: str) -> int:
    """A ``/proc/meminfo`` field in bytes (the machine's, not this process's)."""
    with open("/proc/meminfo") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.MULTILINE).group(1)) * 1024


def code_state() -> dict:
    """The commit measured, and the files it runs that differ from it (edits not committed), with their hashes."""
    import hashlib

    git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True, cwd=ROOT).stdout  # noqa: E731
    used = ("interpreter", "benchmarks/interpreter_throughput.py", "benchmarks/search_scaling.py")
    dirty = [line[3:] for line in git("status", "--porcelain", "--", *used).splitlines()]
    return {"head": git("rev-parse", "HEAD").strip(),
            "uncommitted": {p: hashlib.sha256((ROOT / p).read_bytes()).hexdigest()[:12]
                                        for p in dirty if (ROOT / p).is_file()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    ap.add_argument("--restarts", type=int, nargs="+", default=[1, 8, 16, 32, 64])
    ap.add_argument("--steps", type=int, default=2, help="training steps per block before the evaluation")
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per R (the fit takes every one)")
    ap.add_argument("--budget-gib", type=float, default=8.0)
    ap.add_argument("--verify-runs", type=int, default=3, help="at most this many runs to find the largest R")
    ap.add_argument("--no-verify", action="store_true", help="skip running the largest R that fits the budget")
    ap.add_argument("--child", choices=WORKLOADS, help=argparse.SUPPRESS)
    ap.add_argument("--slots", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure_one(args.child, args.slots, args.steps)))
        return
    if len(set(args.restarts)) < 2:
        ap.error("a slope needs at least two different --restarts")
    budget = int(args.budget_gib * GIB)
    out = {"command": " ".join(["python", *sys.argv]), "budget_bytes": budget, "steps": args.steps,
           "machine": {"cpus": os.cpu_count(), "mem_total_bytes": status_bytes_meminfo("MemTotal")},
           "code": code_state(),
           "workloads": {}}
    for name in args.workloads:
        rows = [run_child(name, r, args.steps) for r in args.restarts for _ in range(args.repeats)]
        summary = {"label": rows[0]["label"], **summarise(rows, budget), "peak_above_baseline_by_r": spread(rows)}
        for row in rows:
            del row["label"]
        at = median_row([r for r in rows if r["restarts"] == max(args.restarts)])
        summary[f"at_r{at['restarts']}"] = {"peak_above_baseline_bytes": at["peak_eval"] - at["baseline"],
                                            "process_peak_bytes": max(at["peak_eval"], at["load_peak"]),
                                            "per_slot_bytes": (at["peak_eval"] - at["baseline"]) / at["restarts"]}
        if not args.no_verify:
            runs = verify(name, summary, budget, args.steps, args.verify_runs)
            summary["verification_runs"] = runs
            fitting = [run for run in runs if run["fits_budget"]]
            summary["largest_r_verified"] = {k: v for k, v in max(fitting, key=lambda run: run["restarts"]).items()
                                             if k != "row"} if fitting else None
            over = [run["restarts"] for run in runs if not run["fits_budget"]]
            summary["smallest_r_measured_over_budget"] = min(over) if over else None
            ends = [median_row([r for r in rows if r["restarts"] == min(args.restarts)]), at,
                    *[run["row"] for run in fitting[-1:]]]
            summary["per_slot_secants"] = secants(ends)
        out["workloads"][name] = summary
    out["code_changed_during_run"] = code_state() != out["code"]  # then the rows mix two interpreters
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
