"""Fig. 8 (paper section 6.2): how MATH models generalise from short expressions to 16 digits; writes JSON + a figure.

Part ``a`` (non-perceptual MATH, tapes of one-hot symbols, ``math_symbolic_data.py``):
the LSTM and the Neural GPU trained on 1..5-digit expressions, and NTPT's recorded
MATH program (``docs/tasks_accuracy.json``, Fig. 4(b)) run exactly on the
symbolic model; all tested on 1..16 digits.

Part ``b`` (perceptual MATH, handwritten tapes): every model's image networks
start from the library the 2x2 tasks leave (ADD2x2:top, then APPLY2x2:top with
``benchmarks/tasks_accuracy.py``'s recipe; built once and cached under ``runs/``):
the LSTM trained on 2-digit and on 1..5-digit expressions, and NTPT's program with
the library's net_0/net_1 (tuned on 2-digit expressions with the program fixed),
run exactly; plus net_0/net_1's per-symbol accuracy and the bound it sets at 16 digits.

Usage (``ntpt-dist generalisation`` is the same as ``python -m ntpt_dist.experiments.generalisation``):
    ntpt-dist generalisation --part a --out docs/fig8a.json --figure docs/fig8a.png
    ntpt-dist generalisation --part b --out docs/fig8b.json --figure docs/fig8b.png

Models may run in separate processes (``--models``) and be merged afterwards:
    python -m ntpt_dist.experiments.generalisation --combine runs/fig8/a_lstm.json runs/fig8/a_gpu.json \
        --out docs/fig8a.json --figure docs/fig8a.png

The JSON is ``{"symbolic" | "perceptual": {model: {"1": acc, ..., "16": acc}}, "models": {model:
{parameters, steps, wall_s, curve}}, "command": ...}`` (NTPT under ``ntpt``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import numpy as np

from ..arguments import at_least, subcommand_parser
from ..interpreter.errors import NtptError
from .generalisation_results import combine, figure

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "docs" / "tasks_accuracy.json"
PAPER = {  # as read from Fig. 8's printed labels (paper_numbers.json "math"), accuracy at 16 digits
    "symbolic": {"ntpt": 1.0, "lstm": 0.928, "neural_gpu": 0.25},
    "perceptual": {"ntpt": 0.871, "lstm5": 0.828},
}


def recorded_math_params(record: Path = RECORD) -> dict:
    """The Param values of the recorded MATH program (the MATH stage's listing in ``record``)."""
    from .math_symbolic_data import math_params_from_listing

    return math_params_from_listing(json.loads(Path(record).read_text())["stages"]["MATH"]["listing"])


def _keyed(acc: dict) -> dict:
    return {str(d): round(float(a), 4) for d, a in sorted(acc.items())}


def fit(learner, train_sets: dict, steps: int, batch_size: int, seed: int, probes: dict, every: int) -> dict:
    """Train a MATH learner with ``train_lstm``; a learning curve of the mean loss and the accuracy on ``probes``."""
    from .baselines_math import accuracy_by_length, train_lstm

    curve = []
    started = time.perf_counter()

    def probe(step: int, losses: list) -> None:
        acc = accuracy_by_length(learner, probes)
        curve.append({"step": step, "loss": round(float(np.mean(losses[-every:])), 4),
                      **{f"acc{d}": round(a, 4) for d, a in acc.items()}, "s": round(time.perf_counter() - started, 1)})
        print(json.dumps({type(learner).__name__: curve[-1]}), file=sys.stderr, flush=True)

    train_lstm(learner, train_sets, steps, batch_size=batch_size, seed=seed, every=every, callback=probe)
    return {"parameters": sum(p.numel() for p in learner.parameters()), "steps": steps, "batch_size": batch_size,
            "train_s": round(time.perf_counter() - started, 1), "curve": curve}


# --- part a: symbolic tapes ----------------------------------------------------------


def part_a(args) -> dict:
    """Fig. 8(a): LSTM and Neural GPU on 1..5 symbolic digits, the recorded program run exactly, tested on 1..max."""
    from .baselines import BaselineConfig
    from .baselines_math import LSTMBaseline, accuracy_by_length
    from .math_symbolic_data import N_SYMBOLS, symbolic_sets
    from .neural_gpu import NeuralGPU
    from .registry import load_model

    lengths = range(1, args.max_digits + 1)
    test = symbolic_sets(lengths, args.test_n, seed=args.seed + 1000)
    train = symbolic_sets(range(1, args.train_digits + 1), args.train_n, seed=args.seed, split="train")
    probes = symbolic_sets((args.train_digits, args.max_digits), args.probe_n, seed=args.seed + 2000, split="val")
    out: dict = {"symbolic": {}, "models": {}, "train_digits": list(range(1, args.train_digits + 1))}
    if "ntpt" in args.models:
        started = time.perf_counter()
        program = load_model("math_symbolic").program(recorded_math_params())
        acc = {d: program.accuracy({"tape": t.inputs["tape"], "result": t.outputs["result"]}, hypers={"N": d})
               for d, t in test.items()}
        out["symbolic"]["ntpt"] = _keyed(acc)
        out["models"]["ntpt"] = {"parameters": 32, "source": "docs/tasks_accuracy.json MATH listing, run by argmax",
                                 "train_digits": [2], "wall_s": round(time.perf_counter() - started, 1)}
    builders: dict[str, Callable] = {
        "lstm": lambda: LSTMBaseline(hidden=args.lstm_hidden, layers=args.lstm_layers, dropout=args.lstm_dropout,
                                     symbols=N_SYMBOLS, config=BaselineConfig(lr=args.lr), seed=args.seed),
        "neural_gpu": lambda: NeuralGPU(filters=args.gpu_filters, height=args.gpu_height, layers=args.gpu_layers,
                                        config=BaselineConfig(lr=args.lr), seed=args.seed),
    }
    steps = {"lstm": args.lstm_steps, "neural_gpu": args.gpu_steps}
    for name in ("lstm", "neural_gpu"):
        if name not in args.models:
            continue
        learner = builders[name]()
        record = fit(learner, train, steps[name], args.batch_size, args.seed, probes, args.eval_every)
        started = time.perf_counter()
        out["symbolic"][name] = _keyed(accuracy_by_length(learner, test))
        record["test_s"] = round(time.perf_counter() - started, 1)
        out["models"][name] = record
    out["models"].get("lstm", {}).update(hidden=args.lstm_hidden, layers=args.lstm_layers, dropout=args.lstm_dropout)
    out["models"].get("neural_gpu", {}).update(filters=args.gpu_filters, height=args.gpu_height, cgru_layers=args.gpu_layers)
    return out


# --- part b: handwritten tapes ---------------------------------------------------------


def library_2x2(path: Path, seed: int, store: Optional[str] = None, add_steps: int = 4000,
                apply_steps: int = 1500, data_dir=None) -> dict:
    """net_0/net_1 as the 2x2 tasks leave them, cached at ``path`` (read from there when it exists).

    With ``store`` (a library store URI, e.g. the store a lifelong run of the eight 2x2
    tasks wrote, ``experiments/lifelong_store.py``): its champion net_0/net_1, the
    paper's "net_0/1 from the end of the NTPT 2x2 training". Without: trained here
    as ``benchmarks/tasks_accuracy.py``'s add and apply stages do, ADD2x2:top in the 4k
    regime (4 restarts x ``add_steps`` steps, augment_shift=2, batch 128), then APPLY2x2:top
    from that net_0 held fixed (8 x ``apply_steps``, batch 128). The cache is an ntpt-dist
    ``.npz`` blob (``library_store.codec``: arrays and JSON, no pickle).
    """
    from ..library_store.codec import decode, encode
    from .runner import train_task

    path = Path(path)
    if path.exists():
        return decode(path.read_bytes(), f"library cache {path}")
    if store is not None:
        from ..library_store.api import load_library

        library = {name: dict(state) for name, state in load_library(store).items() if name in ("net_0", "net_1")}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(library))
        return library
    sizes = {"train": 4000, "val": 1000, "test": 2000}
    print(f"part b: no 2x2 library at {path}: training it here (ADD2x2:top, 4 restarts x {add_steps} steps, "
          f"then APPLY2x2:top, 8 x {apply_steps}), then caching it there", file=sys.stderr, flush=True)
    add = train_task("ADD2x2:top", restarts=4, steps=add_steps, seed=seed, sizes=sizes, progress=False,
                     data_dir=data_dir, augment_shift=2, batch_size=128)
    library = dict(add.program.networks)
    apply = train_task("APPLY2x2:top", restarts=8, steps=apply_steps, seed=seed, library=library, sizes=sizes,
                       progress=False, data_dir=data_dir, net_lr_scale=0.0, batch_size=128)
    library.update(apply.program.networks)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode({name: dict(state) for name, state in library.items()}))
    print(json.dumps({"library": str(path), "ADD2x2:top": add.test_accuracy, "APPLY2x2:top": apply.test_accuracy}),
          file=sys.stderr, flush=True)
    return library


def symbol_accuracy(library: dict, tests: dict) -> dict:
    """net_0's accuracy on the digit cells and net_1's on the operator cells of MATH test tapes, by argmax."""
    import torch

    from .baselines import library_signature, load_netstate, mlp

    right = {"net_0": [0, 0], "net_1": [0, 0]}
    nets = {}
    for name, k in (("net_0", 10), ("net_1", 4)):
        hidden = tuple(int(h) for h in library[name]["signature"].split("|")[1].split("-"))
        nets[name] = mlp([28 * 28, *hidden, k])
        load_netstate(nets[name], library[name], name, library_signature(name, (28, 28), hidden))
    with torch.no_grad():
        for t in tests.values():
            images, labels = t.inputs["tape"].reshape(*t.labels["tape"].shape, -1), t.labels["tape"]
            for name, cells, offset in (("net_0", slice(0, None, 2), 0), ("net_1", slice(1, None, 2), 10)):
                x, y = images[:, cells].reshape(-1, 28 * 28), labels[:, cells].reshape(-1) - offset
                if len(y):
                    right[name][0] += int((nets[name](torch.from_numpy(x)).argmax(1).numpy() == y).sum())
                    right[name][1] += len(y)
    return {name: round(r / max(n, 1), 5) for name, (r, n) in right.items()}


def part_b(args) -> dict:
    """Fig. 8(b): NTPT (2 digits) against the LSTM on 2 and on 1..5 digits, image nets from the 2x2 library."""
    from .baselines import BaselineConfig
    from .baselines_math import LSTMBaseline, accuracy_by_length
    from .registry import load_model
    from .runner import batch
    from .tasks import make_task

    started = time.perf_counter()
    cache = Path(args.library or default_library_cache(args.seed, args.library_add_steps, args.library_apply_steps))
    source = (f"cache {cache}" if cache.exists() else f"store {args.library_store}" if args.library_store
              else "trained here (benchmarks/tasks_accuracy.py add, apply stages)")
    print(f"part b: 2x2 library from {source}", file=sys.stderr, flush=True)
    library = library_2x2(cache, args.seed, args.library_store, args.library_add_steps, args.library_apply_steps,
                          args.data_dir)
    out: dict = {"perceptual": {}, "models": {}, "library_s": round(time.perf_counter() - started, 1), "library": source}
    hidden = tuple(int(h) for h in library["net_0"]["signature"].split("|")[1].split("-"))
    lengths = list(range(1, args.max_digits + 1))

    def tests():  # one length at a time: a 16-digit set of 1000 tapes is ~100 MB of images
        for d in lengths:
            yield d, make_task("MATH", "test", args.test_n, seed=args.seed + 100 + d, data_dir=args.data_dir, digits=d)

    evaluators = {}
    if "ntpt" in args.models:
        from ..interpreter.tune import tune_networks

        t0 = time.perf_counter()
        program = load_model("math").program(recorded_math_params(), networks=library)
        train2 = batch(make_task("MATH", "train", args.train_n, seed=args.seed, data_dir=args.data_dir, digits=2))
        val2 = batch(make_task("MATH", "val", 1000, seed=args.seed + 1, data_dir=args.data_dir, digits=2))
        if args.ntpt_tune_steps:
            program = tune_networks(program, train2, steps=args.ntpt_tune_steps, val_data=val2, seed=args.seed,
                                    augment_shift=args.augment_shift, batch_size=args.ntpt_batch_size)
        out["models"]["ntpt"] = {"parameters": 32, "train_digits": [2], "tune_steps": args.ntpt_tune_steps,
                                 "tune_batch_size": args.ntpt_batch_size, "augment_shift": args.augment_shift,
                                 "train_n": args.train_n, "train_s": round(time.perf_counter() - t0, 1)}
        evaluators["ntpt"] = lambda d, t: program.accuracy(batch(t), hypers={"N": d})
        library = {**library, **program.networks}
    config = BaselineConfig(embed_hidden=hidden, perceptual_lr_scale=args.perceptual_lr_scale, lr=args.lr)
    for name, digits in (("lstm2", [2]), ("lstm5", list(range(1, 6)))):
        if name not in args.models:
            continue
        lstm = LSTMBaseline(library, hidden=args.lstm_hidden, layers=args.lstm_layers, dropout=args.lstm_dropout,
                            config=config, seed=args.seed)
        train = {d: make_task("MATH", "train", args.train_n, seed=args.seed + 10 * d, data_dir=args.data_dir, digits=d)
                 for d in digits}
        probes = {d: make_task("MATH", "val", args.probe_n, seed=args.seed + 2000 + d, data_dir=args.data_dir, digits=d)
                  for d in (2, args.max_digits)}
        out["models"][name] = {**fit(lstm, train, args.lstm_steps, args.batch_size, args.seed, probes, args.eval_every),
                               "train_digits": digits, "hidden": args.lstm_hidden, "layers": args.lstm_layers,
                               "perceptual_lr_scale": args.perceptual_lr_scale}
        evaluators[name] = lambda d, t, lstm=lstm: accuracy_by_length(lstm, {d: t})[d]
    t0 = time.perf_counter()
    acc: dict = {name: {} for name in evaluators}
    symbol_sets = {}
    for d, t in tests():
        for name, evaluate in evaluators.items():
            acc[name][d] = evaluate(d, t)
        if d == args.max_digits:
            symbol_sets[d] = t
        print(json.dumps({"digits": d, **{k: round(v[d], 4) for k, v in acc.items()}}), file=sys.stderr, flush=True)
    out["perceptual"] = {name: _keyed(a) for name, a in acc.items()}
    out["test_s"] = round(time.perf_counter() - t0, 1)
    sym = symbol_accuracy(library, symbol_sets)
    n = args.max_digits
    out["symbol_accuracy"] = {**sym, "digits": n, "bound": round(sym["net_0"] ** n * sym["net_1"] ** (n - 1), 4),
                              "note": f"net_0 on the digit cells, net_1 on the operator cells of the {n}-digit test tapes "
                                      f"(the library's, tuned by NTPT when it ran); bound = net_0^{n} * net_1^{n - 1}, the chance that all "
                                      f"{2 * n - 1} symbols are read right"}
    return out


# --- figure and CLI ------------------------------------------------------------------


MODULE_PROG = "python -m ntpt_dist.experiments.generalisation"
MODELS = {"a": ("ntpt", "lstm", "neural_gpu"), "b": ("ntpt", "lstm2", "lstm5")}


def default_library_cache(seed: int, add_steps: int = 4000, apply_steps: int = 1500) -> Path:
    """Where part b caches the 2x2 library it trains: one file per seed and (non-default) step budget."""
    budget = "" if (add_steps, apply_steps) == (4000, 1500) else f"_add{add_steps}_apply{apply_steps}"
    return Path(f"runs/fig8/library_seed{seed}{budget}.npz")


def parser(prog: str = MODULE_PROG) -> argparse.ArgumentParser:
    """The runner's options (``ntpt-dist generalisation`` and ``python -m ntpt_dist.experiments.generalisation``)."""
    p = subcommand_parser(prog, __doc__.splitlines()[0])
    n, n0 = at_least(1), at_least(0)
    p.add_argument("--part", choices=("a", "b"), help="a: Fig. 8(a), symbolic; b: Fig. 8(b), handwritten (required unless --combine)")
    p.add_argument("--combine", nargs="+", metavar="FILE[:MODELS]",
                   help="merge these result JSON files instead of running (FILE:m1,m2 takes only those models)")
    p.add_argument("--models", help="comma list; a: ntpt,lstm,neural_gpu; b: ntpt,lstm2,lstm5 (default: all of the part's)")
    p.add_argument("--out", type=Path, metavar="JSON", help="write the JSON here too (default: stdout only)")
    p.add_argument("--figure", type=Path, metavar="PNG", help="write the figure (PNG) here (default: none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the models")
    p.add_argument("--threads", type=n, default=1, help="torch CPU threads")
    p.add_argument("--max-digits", type=n, default=16, help="test on 1..this many digits")
    p.add_argument("--train-digits", type=n, default=5, help="part a: train on 1..this many digits")
    p.add_argument("--train-n", type=n, default=10000, help="training tapes per length")
    p.add_argument("--test-n", type=n, default=1000, help="test tapes per length")
    p.add_argument("--probe-n", type=n, default=300, help="tapes per length for the learning curve")
    p.add_argument("--eval-every", type=n, default=1000, help="steps between learning-curve points")
    p.add_argument("--batch-size", type=n, default=64, help="the baselines' tapes per step")
    p.add_argument("--lr", type=at_least(0, float), help="the baselines' learning rate (default: each learner's, 1e-3)")
    p.add_argument("--lstm-steps", type=n, default=20000, help="the LSTMs' training steps")
    p.add_argument("--lstm-hidden", type=n, default=128, help="units of each LSTM layer")
    p.add_argument("--lstm-layers", type=n, default=3, help="stacked LSTM layers")
    p.add_argument("--lstm-dropout", type=at_least(0, float), default=0.0, help="dropout between LSTM layers")
    p.add_argument("--gpu-steps", type=n, default=20000, help="part a: the Neural GPU's training steps")
    p.add_argument("--gpu-filters", type=n, default=64, help="part a: the Neural GPU's filters")
    p.add_argument("--gpu-height", type=n, default=4, help="part a: the Neural GPU's mental-image height")
    p.add_argument("--gpu-layers", type=n, default=2, help="part a: the Neural GPU's convolutional GRUs")
    p.add_argument("--data-dir", metavar="DIR", help="part b: folder with MNIST/ and operators/ (default: $NTPT_DATA_DIR, else download)")
    p.add_argument("--library", metavar="NPZ", help="part b: cached 2x2 library (.npz), built there if missing "
                   "(default: runs/fig8/library_seed<SEED>.npz)")
    p.add_argument("--library-store", metavar="URI", help="part b: take net_0/net_1 from this library store (URI) "
                   "instead of training the 2x2 stages; cached at --library (default: none)")
    p.add_argument("--library-add-steps", type=n, default=4000, help="part b, library built here: ADD2x2:top steps")
    p.add_argument("--library-apply-steps", type=n, default=1500, help="part b, library built here: APPLY2x2:top steps")
    p.add_argument("--perceptual-lr-scale", type=at_least(0, float), default=0.01,
                   help="part b: the LSTM's image nets learn this much slower than the LSTM (0: held fixed)")
    # NTPT's tuning defaults, measured (docs/fig8.md): 5000 steps of 128 tapes shifted by up to 1 pixel take
    # net_0 from 94.1% to 98.2% per digit; 500 steps of 32 unshifted tapes stopped near 96%
    p.add_argument("--ntpt-tune-steps", type=n0, default=5000, help="part b: steps of tune_networks on 2-digit MATH")
    p.add_argument("--ntpt-batch-size", type=n, default=128, help="part b: tapes per tune_networks step")
    p.add_argument("--augment-shift", type=n0, default=1, help="part b: image shift while tuning NTPT's nets")
    return p


def _check_writable(path: Optional[Path], option: str) -> None:
    """Refuse an output path that cannot be written before any work (its folder is made at the end)."""
    if path.is_dir():
        raise NtptError(f"{option} {path} is a folder; fix: pass a file path")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise NtptError(f"{option} {path} cannot be written ({parent} is not a writable folder); fix: pass another path")


def run(argv: Optional[list[str]] = None, prog: str = MODULE_PROG) -> dict:
    """Run (or ``--combine``) the Fig. 8 experiment as the command line ``argv`` says; print and write its JSON.

    Args:
        argv: the options of :func:`parser` (default: ``sys.argv[1:]``).
        prog: the command's name, in usage errors and in the JSON's ``command``.

    Returns:
        the result, ``{"symbolic" | "perceptual": {model: {"1": acc, ...}}, "models": {...}, "command": ...}``.

    Raises:
        NtptError: an unknown model, an output path that cannot be written, a file to combine that cannot be read.
        SystemExit: ``--help`` (status 0), or a usage error (status 2, after one ``error:`` line).

    Example:
        >>> run(["--part", "a", "--models", "ntpt", "--max-digits", "2"])["symbolic"]  # doctest: +SKIP
        {'ntpt': {'1': 1.0, '2': 1.0}}
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser(prog).parse_args(argv)
    command = " ".join([prog, *argv])
    for path, option in ((args.out, "--out"), (args.figure, "--figure")):
        if path is not None:
            _check_writable(path, option)
    if args.combine:
        if args.part or args.models:
            raise NtptError("--combine merges finished runs; fix: drop --part and --models (FILE:MODELS picks models)")
        result = {**combine(args.combine), "command": command}
        _write(result, args.out, args.figure)
        return result
    if args.part is None:
        raise NtptError(f"{prog} needs --part a or --part b (or --combine FILE ...); fix: add one")
    models = [m.strip() for m in (args.models or ",".join(MODELS[args.part])).split(",") if m.strip()]
    if not models or set(models) - set(MODELS[args.part]):
        raise NtptError(f"--models of part {args.part} are {','.join(MODELS[args.part])}, but got {args.models!r}; fix: pick from those")
    args.models = models
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    result = part_a(args) if args.part == "a" else part_b(args)
    result.update({"part": args.part, "max_digits": args.max_digits, "test_n": args.test_n, "seed": args.seed,
                   "paper_at_16_digits": PAPER["symbolic" if args.part == "a" else "perceptual"],
                   "machine": f"{os.cpu_count()} cpus, torch {torch.__version__}, {args.threads} thread(s)",
                   "wall_s": round(time.perf_counter() - started, 1),
                   "command": command})
    _write(result, args.out, args.figure)
    return result


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m ntpt_dist.experiments.generalisation``: :func:`run`; 2 after one ``error:`` line for bad input."""
    try:
        run(argv)
    except NtptError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _write(result: dict, out: Optional[Path], fig: Optional[Path]) -> None:
    text = json.dumps(result, indent=1)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    if fig:
        figure(result, fig)


if __name__ == "__main__":
    sys.exit(main())
