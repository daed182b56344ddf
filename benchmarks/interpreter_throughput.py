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
  the same step with the fused kernel, interleaved in the same run.

Usage::

    python benchmarks/interpreter_throughput.py [--restarts 1 64] [--batch 16] [--steps 7] [--threads 1]
        [--device cuda]

On CUDA every timed call ends with ``torch.cuda.synchronize()``, so the times are the GPU's work.

The model comes from experiments/models/maze.py through the front end; while
the front end is missing, from the hand-unrolled copy in tests/interpreter/flatmodels.py.
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


def step_rates(flat, data, restarts: list[int], batch: int, steps: int) -> list[dict]:
    """Seconds per ``RestartBlock.step`` for each R, steps interleaved across the blocks, medians.

    Interleaved because this machine's CPU speed drifts by up to 3x for seconds at a time. The
    last entry is the largest R again with Adam updated elementwise instead of fused (the
    optimiser's share of the step, measured side by side).
    """
    from ntpt_dist.interpreter.engine import RestartBlock, TrainConfig, restart_seed

    blocks = []
    for r in [*restarts, restarts[-1]]:
        block = RestartBlock(flat, data, slots=r, config=TrainConfig(batch_size=batch), device=DEVICE)
        for k in range(r):
            block.reset(k, restart_seed(0, k))
        if len(blocks) == len(restarts):
            block.optimizer.use_elementwise()
        block.step(1)  # warm-up (allocations, first-touch)
        blocks.append(block)
    times: list[list[float]] = [[] for _ in blocks]
    for _ in range(steps):
        for block, out in zip(blocks, times):
            sync()
            start = time.perf_counter()
            block.step(1)
            sync()
            out.append(time.perf_counter() - start)
    return [{"restarts": r, "seconds_per_step": statistics.median(t), "restart_steps_per_s": r / statistics.median(t),
             "seconds_per_step_all": [round(x, 4) for x in t]} for r, t in zip([*restarts, restarts[-1]], times)]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, nargs=2, default=[1, 64])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=7, help="timed steps per R, interleaved; the median counts")
    parser.add_argument("--instances", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    torch.set_num_threads(args.threads)
    flat, origin = load_maze()
    data = random_data(flat, args.instances, np.random.default_rng(0))
    low, high, elementwise = step_rates(flat, data, args.restarts, args.batch, args.steps)
    network = network_flops(flat, args.restarts[1], args.batch, args.steps)
    # However fast the interpreter part, R=64 cannot step faster than its network FLOPs at the
    # plain-matmul rate, so on this machine the ratio is at most R=1's step time over that.
    net_s_per_restart = network["network_gflop_per_step"] * 1e9 / args.restarts[1] / (network["matmul_gflops_per_s"] * 1e9)
    result = {
        "model": origin, "hypers": HYPERS, "image": list(flat.tensors["img_grid"].elem_shape),
        "hid_sizes": list(flat.learns["LOOK"].hid_sizes), "batch_size": args.batch, "threads": args.threads,
        "device": str(DEVICE) if DEVICE.type == "cpu" else torch.cuda.get_device_name(DEVICE),
        "low": low, "high": high,
        "throughput_ratio": high["restart_steps_per_s"] / low["restart_steps_per_s"], "throughput_ratio_goal": 20.0,
        "throughput_ratio_bound_here": low["seconds_per_step"] / net_s_per_restart,
        "network": network, "network_ratio_goal": 2.0,
        # the share of the FLOP limit: the block's network FLOPs at the plain-matmul rate over its step time
        "limit_share": net_s_per_restart * args.restarts[1] / high["seconds_per_step"], "limit_share_goal": 0.8,
        "low_over_its_network": low["seconds_per_step"] / (net_s_per_restart * args.restarts[0]),
        "low_over_its_network_goal": 3.0,
        "high_with_elementwise_adam": elementwise,
        "fused_adam_speedup_of_the_step": elementwise["seconds_per_step"] / high["seconds_per_step"],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
