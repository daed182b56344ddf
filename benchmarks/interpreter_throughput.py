"""Training throughput of the lowered Fig. 1 maze (T=45, image LOOK) on a CPU or a GPU; prints JSON.

Measures, in one process:
* restart-steps per second of ``RestartBlock.step`` at R=1 and R=64 (a fixed
  per-restart minibatch size; steps interleaved, medians), and their ratio
  (goal: R=64 >= 20x R=1);
* achieved FLOP/s of the network part (LOOK forward + backward on the rows one
  training step feeds it) against a plain ``torch.matmul`` of the same total
  size, measured in the same run (goal: within 2x);
* ``throughput_ratio_bound_here``: the highest ratio this machine allows, R=1's
  step time over one restart's network FLOPs at the plain-matmul rate (an
  R=64 step can be no faster than its 64 networks);
* ``limit_share``: R=64's network FLOPs at the plain-matmul rate over its step time
  (goal >= 0.8), and ``low_over_its_network``: R=1's step time over its own network
  arithmetic at that rate (goal <= 3);
* ``fused_adam_speedup_of_the_step``: the R=64 step with Adam updated elementwise over
  the same step with the fused kernel, interleaved in the same run;
* ``before``: the same R=1 and R=64 steps with ``RestartBlock(reuse_memory=False)`` (fresh
  minibatch and weight-gradient memory at every step), interleaved with the others, and
  ``reuse_memory_speedup`` per R;
* ``math``: the MATH block step (experiments/models/math.py, N=2, a 2x2 random library as
  benchmarks/search_scaling.py builds it) at R=64, with the library frozen (the search's
  workload: the networks' outputs computed once per block, so the step runs no network)
  and fine-tuned (``trained``: the networks train in every step), each with its own
  ``limit_share`` (network FLOPs of the step at the run's plain-matmul rate over its step
  time; 0 for frozen, which has no network FLOPs) and its ``before``;
* with ``--profile``, the top aten ops of one step of each block (torch.profiler, self CPU time);
* with ``--compile-probe S``, ``torch.compile`` (inductor) of the R=1 forward + loss and its
  backward, given S seconds in a child process: compile time, then eager vs compiled steps.

Usage::

    python benchmarks/interpreter_throughput.py [--restarts 1 64] [--batch 16] [--steps 7] [--threads 1]
        [--device cuda] [--profile] [--no-math] [--compile-probe SECONDS]

On CUDA every timed call ends with ``torch.cuda.synchronize()``, so the times are the GPU's work.

The model comes from experiments/models/maze.py through the front end; while
the front end is missing, from the hand-unrolled copy in tests/interpreter/flatmodels.py.
MATH needs the front end and the MATH data (``NTPT_DATA_DIR``); without them the run
fails with the reason (``--no-math`` skips it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
HYPERS = {"T": 45, "W": 5, "H": 3}


def load_maze():
    """(flat model, how it was obtained)."""
    try:
        from ntpt_dist.interpreter.model import compile_file

        return compile_file(ROOT / "experiments" / "models" / "maze.py", HYPERS).flat, "experiments/models/maze.py"
    except ImportError:  # front end not there yet
        sys.path.insert(0, str(ROOT))
        from tests.interpreter.flatmodels import maze

        return maze(**HYPERS), "hand-unrolled (tests/interpreter/flatmodels.py)"


def random_data(flat, n: int, rng: np.random.Generator) -> dict:
    data = {d.name: rng.integers(0, d.size, (n, *d.shape)) for d in flat.decls.values() if d.kind in ("input", "output")}
    for t in flat.tensors.values():
        data[t.name] = rng.random((n, *t.shape, *t.elem_shape), dtype=np.float32)
    return data


DEVICE = torch.device("cpu")


def sync() -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def timed(fn, repeat: int) -> float:
    fn()  # warm-up (allocations, first-touch)
    sync()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync()
    return (time.perf_counter() - start) / repeat


def build_block(model, data, slots: int, batch: int, device=None, **kw):
    """A block of ``slots`` restarts of seed 0, stepped once (allocations, first-touch)."""
    from ntpt_dist.interpreter.engine import RestartBlock, TrainConfig, restart_seed

    library = kw.pop("library", None)
    config = TrainConfig(batch_size=batch, freeze_library=kw.pop("freeze_library", False))
    block = RestartBlock(model, data, slots=slots, config=config, device=device or DEVICE, library=library, **kw)
    for k in range(slots):
        block.reset(k, restart_seed(0, k))
    block.step(1)
    return block


def step_rates(blocks: dict, steps: int) -> dict[str, dict]:
    """Seconds per ``RestartBlock.step`` of every block, steps interleaved across the blocks, medians.

    Interleaved because this machine's CPU speed drifts by up to 3x for seconds at a time,
    so every ratio between two of these blocks is measured side by side.
    """
    import resource

    times: dict[str, list[float]] = {name: [] for name in blocks}
    faults: dict[str, list[int]] = {name: [] for name in blocks}  # minor page faults: fresh memory touched
    for _ in range(steps):
        for name, block in blocks.items():
            sync()
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            block.step(1)
            sync()
            times[name].append(time.perf_counter() - start)
            faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return {name: {"restarts": blocks[name].slots, "seconds_per_step": statistics.median(t),
                   "restart_steps_per_s": blocks[name].slots / statistics.median(t),
                   "seconds_per_step_all": [round(x, 4) for x in t],
                   "page_faults_per_step": statistics.median(faults[name])} for name, t in times.items()}


def step_network_flop(block) -> float:
    """FLOPs of the network arithmetic in one training step of ``block``: forward, weight
    gradients, and input gradients of every layer but the first (data needs none), of every
    network op that runs (frozen networks' cached outputs run none)."""
    from ntpt_dist.interpreter.lower_ops import DynamicNetOp, StaticNetOp

    flop = 0.0
    for op in block.lowered.plan.ops:
        if not isinstance(op, (StaticNetOp, DynamicNetOp)) or op.net.fn.name in block.frozen:
            continue
        sizes = op.net.sizes
        macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        calls = len(op.outs) if isinstance(op, StaticNetOp) else 1
        flop += 2 * block.slots * block.config.batch_size * calls * (2 * macs + (macs - sizes[0] * sizes[1]))
    return flop


def profile_step(block, rows: int = 12) -> list[dict]:
    """The top aten ops of one step by self CPU time (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        block.step(1)
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    events.sort(key=lambda e: -e.self_cpu_time_total)
    return [{"op": e.key, "calls": e.count, "self_ms": round(e.self_cpu_time_total / 1e3, 2),
             "share": round(e.self_cpu_time_total / total, 3)} for e in events[:rows]] + [
        {"op": "aten calls in all", "calls": sum(e.count for e in events), "self_ms": round(total / 1e3, 2)}]


def math_workload(batch: int):
    """(model, data, 2x2 random library) of MATH as benchmarks/search_scaling.py builds it."""
    from ntpt_dist.interpreter.netfn import random_netstate

    try:
        from ntpt_dist.experiments import registry
        from ntpt_dist.experiments.runner import task_splits

        model = registry.load_model("math")
        data = task_splits("MATH", sizes={"train": 512, "val": 64, "test": 1})["train"]
    except Exception as e:
        raise SystemExit(f"the MATH workload cannot run here ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                         "fix: set NTPT_DATA_DIR to the data directory, or pass --no-math") from None
    library = {name: random_netstate(fn, np.random.default_rng(0)) for name, fn in model.flat.learns.items()}
    return model, data, library


def network_flops(flat, restarts: int, batch: int, repeat: int) -> dict:
    """LOOK forward+backward on the per-restart rows of one step vs one plain matmul of the same FLOPs."""
    from ntpt_dist.interpreter.nets import StackedMLP

    fn = flat.learns["LOOK"]
    net = StackedMLP(fn, restarts, device=DEVICE)
    gen = torch.Generator().manual_seed(0)
    for r in range(restarts):
        net.init_slot(r, gen)
    rows = batch * int(np.prod(flat.tensors["img_grid"].shape))
    x = torch.rand(restarts, rows, fn.in_features, device=DEVICE)
    sizes = [fn.in_features, *fn.hid_sizes, fn.out_size]
    macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    # forward, weight gradients, input gradients of every layer but the first (data needs none)
    flops = 2 * restarts * rows * (2 * macs + (macs - sizes[0] * sizes[1]))

    def net_step():
        for _, t, _ in net.tensors():
            t.grad = None
        torch.softmax(net.scores(x), -1).sum().backward()

    net_s = timed(net_step, repeat)
    # a plain GEMM with the same FLOPs: [M, D] @ [D, H0], M chosen to match
    d, h = sizes[0], sizes[1]
    m = max(1, round(flops / (2 * d * h)))
    a, b = torch.rand(m, d, device=DEVICE), torch.rand(d, h, device=DEVICE)
    mm_s = timed(lambda: torch.matmul(a, b), repeat)
    return {"network_gflops_per_s": flops / net_s / 1e9, "matmul_gflops_per_s": 2 * m * d * h / mm_s / 1e9,
            "matmul_over_network": (2 * m * d * h / mm_s) / (flops / net_s), "network_gflop_per_step": flops / 1e9}


def compile_probe(limit_s: float, batch: int) -> dict:
    """``torch.compile`` (inductor) of the R=1 maze forward + loss and its backward, in a child
    process killed after ``limit_s``: compile seconds, then eager vs compiled steps side by side."""
    import subprocess

    cmd = [sys.executable, __file__, "--compile-child", "--batch", str(batch)]
    start = time.perf_counter()
    try:
        # one compile thread: no pool of compile workers left behind when the child is killed
        env = {**os.environ, "TORCHINDUCTOR_COMPILE_THREADS": "1"}
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=limit_s, check=True, env=env).stdout
    except subprocess.TimeoutExpired:
        return {"finished": False, "limit_s": limit_s, "note": "the first compiled step did not finish in time"}
    except subprocess.CalledProcessError as e:
        return {"finished": False, "error": (e.stderr or "").strip().splitlines()[-1:]}
    return {"finished": True, "wall_s": time.perf_counter() - start, **json.loads(out.strip().splitlines()[-1])}


def compile_child(batch: int) -> None:
    """The child of :func:`compile_probe`: prints one JSON line."""
    from ntpt_dist.interpreter.lower import Batch

    torch.set_num_threads(1)
    flat, _ = load_maze()
    block = build_block(flat, random_data(flat, 128, np.random.default_rng(0)), 1, batch)
    low, live = block.lowered, np.ones(1, dtype=bool)

    def loss(inputs, tensors, targets):
        return low.run(Batch(inputs, tensors, targets, batch)).loss

    compiled = torch.compile(loss, dynamic=False)

    def step(fn) -> tuple[float, torch.Tensor]:
        b = block._minibatch(live)
        block.optimizer.zero_grad()
        start = time.perf_counter()
        out = fn(b.inputs, b.tensors, b.targets)
        out.sum().backward()
        return time.perf_counter() - start, out.detach()

    first_s, _ = step(compiled)
    b = block._minibatch(live)
    diff = (compiled(b.inputs, b.tensors, b.targets) - loss(b.inputs, b.tensors, b.targets)).abs().max().item()
    times = {"eager": [], "compiled": []}
    for _ in range(5):
        for name, fn in (("eager", loss), ("compiled", compiled)):
            times[name].append(step(fn)[0])
    print(json.dumps({"first_step_s": first_s, "max_abs_loss_diff": diff,
                      **{f"{k}_s": statistics.median(v) for k, v in times.items()}}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, nargs=2, default=[1, 64])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=7, help="timed steps per block, interleaved; the median counts")
    parser.add_argument("--instances", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    parser.add_argument("--profile", action="store_true", help="add the top aten ops of one step of each block")
    parser.add_argument("--no-math", action="store_true", help="skip the MATH block step")
    parser.add_argument("--compile-probe", type=float, default=0, metavar="S",
                        help="also try torch.compile of the R=1 step in a child process given S seconds")
    parser.add_argument("--compile-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compile_child:
        return compile_child(args.batch)
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    torch.set_num_threads(args.threads)
    flat, origin = load_maze()
    data = random_data(flat, args.instances, np.random.default_rng(0))
    r_low, r_high = args.restarts
    blocks = {"low": build_block(flat, data, r_low, args.batch), "high": build_block(flat, data, r_high, args.batch),
              "low_before": build_block(flat, data, r_low, args.batch, reuse_memory=False),
              "high_before": build_block(flat, data, r_high, args.batch, reuse_memory=False),
              "high_with_elementwise_adam": build_block(flat, data, r_high, args.batch)}
    blocks["high_with_elementwise_adam"].optimizer.use_elementwise()
    if not args.no_math:
        model, mdata, library = math_workload(args.batch)
        for lib in ("frozen", "trained"):
            for reuse in (True, False):
                blocks[f"math_{lib}" + ("" if reuse else "_before")] = build_block(
                    model, mdata, r_high, args.batch, library=library, freeze_library=lib == "frozen",
                    reuse_memory=reuse)
    rates = step_rates(blocks, args.steps)
    low, high, elementwise = rates["low"], rates["high"], rates["high_with_elementwise_adam"]
    network = network_flops(flat, r_high, args.batch, args.steps)
    matmul_flop_s = network["matmul_gflops_per_s"] * 1e9
    # However fast the interpreter part, R=64 cannot step faster than its network FLOPs at the
    # plain-matmul rate, so on this machine the ratio is at most R=1's step time over that.
    net_s_per_restart = network["network_gflop_per_step"] * 1e9 / r_high / matmul_flop_s
    result = {
        "model": origin, "hypers": HYPERS, "image": list(flat.tensors["img_grid"].elem_shape),
        "hid_sizes": list(flat.learns["LOOK"].hid_sizes), "batch_size": args.batch, "threads": args.threads,
        "device": str(DEVICE) if DEVICE.type == "cpu" else torch.cuda.get_device_name(DEVICE),
        "low": low, "high": high,
        "throughput_ratio": high["restart_steps_per_s"] / low["restart_steps_per_s"], "throughput_ratio_goal": 20.0,
        "throughput_ratio_bound_here": low["seconds_per_step"] / net_s_per_restart,
        "network": network, "network_ratio_goal": 2.0,
        # the share of the FLOP limit: the block's network FLOPs at the plain-matmul rate over its step time
        "limit_share": net_s_per_restart * r_high / high["seconds_per_step"], "limit_share_goal": 0.8,
        "low_over_its_network": low["seconds_per_step"] / (net_s_per_restart * r_low),
        "low_over_its_network_goal": 3.0,
        "before": {"low": rates["low_before"], "high": rates["high_before"],
                   "limit_share": net_s_per_restart * r_high / rates["high_before"]["seconds_per_step"],
                   "low_over_its_network": rates["low_before"]["seconds_per_step"] / (net_s_per_restart * r_low)},
        "reuse_memory_speedup": {which: rates[f"{which}_before"]["seconds_per_step"] / rates[which]["seconds_per_step"]
                                 for which in ("low", "high")},
        "high_with_elementwise_adam": elementwise,
        "fused_adam_speedup_of_the_step": elementwise["seconds_per_step"] / high["seconds_per_step"],
    }
    if not args.no_math:
        result["math"] = {}
        for lib in ("frozen", "trained"):
            now, before = rates[f"math_{lib}"], rates[f"math_{lib}_before"]
            limit_s = step_network_flop(blocks[f"math_{lib}"]) / matmul_flop_s
            result["math"][lib] = {"step": now, "before": before, "network_gflop_per_step": limit_s * matmul_flop_s / 1e9,
                                   "limit_share": limit_s / now["seconds_per_step"],
                                   "limit_share_before": limit_s / before["seconds_per_step"],
                                   "reuse_memory_speedup": before["seconds_per_step"] / now["seconds_per_step"]}
    if args.compile_probe:
        result["compile_probe"] = compile_probe(args.compile_probe, args.batch)
    if args.profile:
        result["profile"] = {name: profile_step(blocks[name]) for name in blocks if not name.endswith("_adam")}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
