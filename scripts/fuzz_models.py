"""Fuzz the NTPT compiler (and one training step) with mutated model sources; print JSON.

Mutants of the shipped models (``experiments/models/*.py``,
``tests/interpreter/models/*.py``) are made by simple token and character
mutations (a number replaced by an extreme one, a token deleted, duplicated or
swapped, a line deleted or duplicated, a character inserted), plus the known
bad inputs of :data:`KNOWN_BAD`. Each is compiled with a time limit; every
``train_every``-th one that compiles also takes one training step on tiny
random data. The promise checked: every failure is an ``NtptError`` (never a
raw Python exception), and nothing runs past its time limit.

    .venv/bin/python scripts/fuzz_models.py --mutants 3000 --seed 1

prints ``{"mutants": ..., "compiled": ..., "trained": ..., "ntpt_errors": ...,
"raw_exceptions": ..., "hangs": ..., "slowest_s": ..., "slowest": name, "examples": [...]}``. A model source is
data: mutants are compiled, never executed or imported.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import sys
import time
import tokenize
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL_DIRS = (ROOT / "experiments" / "models", ROOT / "tests" / "interpreter" / "models")
HYPERS = {"N": 3, "T": 4, "W": 3, "H": 3, "numTimesteps": 4, "tapeLength": 3}
EXTREME_NUMBERS = ("0", "1", "-1", "2", "7", "100", "65537", "10**9", "2**64", "2**64 + 1", "9**9**9", "-2**70",
                   "9" * 5000, "10**5000", "0**-1", "2**-1")
TINY = "x = Input(2)\ny = Output(2)\np = Param(2)\nwith p as v:\n    y.set_to(v)\n"



def _deep_inline(levels: int = 40, per_level: int = 20) -> str:
    """@Inline functions each wrapping its argument in ``per_level`` calls before passing it down."""
    src = "x = Input(100)\ny = Output(100)\n@Runtime([100], 100)\ndef inc(a):\n    return (a + 1) % 100\n"
    src += "@Inline\ndef g0(a, b):\n    b.set_to(a)\n"
    for k in range(1, levels):
        src += f"@Inline\ndef g{k}(a, b):\n    g{k - 1}(" + "inc(" * per_level + "a" + ")" * per_level + ", b)\n"
    return src + f"g{levels - 1}(x, y)\n"


# (name, source, hypers, train?) found by earlier fuzzing; each must fail with an NtptError, quickly
KNOWN_BAD: list[tuple[str, str, dict, bool]] = [
    ("long sum", "N = " + " + ".join(["1"] * 100_000) + "\n", {}, False),
    ("long sum in a declaration", "x = Input(" + "+".join(["1"] * 300) + ")\n", {}, False),
    ("deep parentheses", "N = " + "(" * 100_000 + "1" + ")" * 100_000 + "\n", {}, False),
    ("deep calls", "N = " + "max(1, " * 150 + "1" + ")" * 150 + "\n", {}, False),
    ("many unary minus", "N = " + "-" * 100_000 + "1\n", {}, False),
    ("deep list", "N = " + "[" * 10_000 + "]" * 10_000 + "\n", {}, False),
    ("5000-digit literal", "x = Input(" + "9" * 5000 + ")\n", {}, False),
    ("5000-digit negative size", "N = -" + "9" * 4000 + "\nx = Input(N)\n", {}, False),
    ("huge power size", "x = Input(10 ** 5000)\n", {}, False),
    ("tower of powers", "N = 9**9**9\n", {}, False),
    ("negative power", "N = 0 ** -1\n", {}, False),
    ("range 2**64", TINY + "for t in range(2**64):\n    y.set_to(0)\n", {}, False),
    ("range -2**64..2**64", TINY + "for t in range(-2**64, 2**64):\n    pass\n", {}, False),
    ("range step 0", TINY + "for t in range(0, 4, 0):\n    pass\n", {}, False),
    ("range of four", TINY + "for t in range(0, 4, 1, 1):\n    pass\n", {}, False),
    ("range 10**9", TINY + "for t in range(10**9):\n    pass\n", {}, False),
    ("nested loops", TINY + "for t in range(10**4):\n    for u in range(10**4):\n        pass\n", {}, False),
    ("huge Input", "x = Input(10**9)\ny = Output(2)\np = Param(2)\nwith p as v:\n    y.set_to(v)\n", {}, True),
    ("70-dimension Var", "v = Var(2)[" + ", ".join(["2"] * 70) + "]\n", {}, False),
    ("million-element Var", "v = Var(100)[1000, 1000]\n", {}, False),
    ("huge hid_sizes", "@Learn([10], 10, hid_sizes=[60000, 60000])\ndef f(a):\n    pass\n", {}, False),
    ("huge tensor", "img = InputTensor(60000, 60000)\n", {}, False),
    ("nothing trainable", "x = Input(2)\ny = Output(2)\ny.set_to(x)\n", {}, True),
    ("fixed Param", "x = Input(2)\ny = Output(2)\np = Param(2)\np.set_to_constant(1)\nwith p as v:\n"
                    "    y.set_to(v)\n", {}, True),
    ("huge hyper", "T = Hyper()\nx = Var(2)[T]\n", {"T": 10**9}, False),
    ("hyper beyond 2**64", "T = Hyper()\n", {"T": 2**70}, False),
    ("wide with", "n_states = 10**9\ns = Var(n_states)\n", {}, False),
    ("wide with, within range", "s = Input(65536)[40]\ny = Output(2)[40]\nfor t in range(40):\n"
                                "    with s[t] as i:\n        y[t].set_to(i % 2)\n", {}, False),
    ("not text", b"x = Input(2)\n", {}, False),
    ("arguments nesting through @Inline", _deep_inline(), {}, False),
]
MAZE_T = ("maze T=10**6", "maze.py", {"T": 10**6, "W": 3, "H": 3})
TURING = ("turing n_states=10**9", "turing.py", "n_states = 2", "n_states = 10**9")


@dataclass
class Outcome:
    """The tally of one fuzz run."""

    mutants: int = 0
    compiled: int = 0
    trained: int = 0
    ntpt_errors: int = 0
    raw_exceptions: int = 0
    hangs: int = 0
    slowest_s: float = 0.0
    slowest: str = ""
    examples: list[dict] = field(default_factory=list)

    def report(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


class _TimeUp(BaseException):
    """Raised by the alarm when a mutant runs past its limit (a BaseException: no `except Exception` eats it)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def ring(signum, frame):  # noqa: ARG001 - signal API
        raise _TimeUp()

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def shipped_models() -> dict[str, str]:
    """name -> source of every shipped model."""
    return {p.name: p.read_text() for d in MODEL_DIRS for p in sorted(d.glob("*.py")) if p.name != "__init__.py"}


def mutate(source: str, rng: random.Random) -> str:
    """One random token- or character-level mutation of ``source``."""
    kind = rng.randrange(8)
    lines = source.splitlines(keepends=True)
    if kind == 0 and lines:  # delete a line
        del lines[rng.randrange(len(lines))]
        return "".join(lines)
    if kind == 1 and lines:  # duplicate a line
        i = rng.randrange(len(lines))
        lines.insert(rng.randrange(len(lines) + 1), lines[i])
        return "".join(lines)
    if kind == 2:  # a character inserted, deleted or replaced
        i = rng.randrange(len(source) + 1)
        ch = rng.choice("()[]:,.=+-*/%<>!01234567899\n    #'\"abcxyzT_")
        op = rng.randrange(3)
        if op == 0:
            return source[:i] + ch + source[i:]
        if op == 1:
            return source[:i] + source[i + 1:]
        return source[:i] + ch + source[i + 1:]
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)]
    except (tokenize.TokenError, SyntaxError):
        return source[: len(source) // 2]
    words = [t for t in tokens if t.type in (tokenize.NAME, tokenize.NUMBER, tokenize.OP)]
    if not words:
        return source
    numbers = [t for t in tokens if t.type == tokenize.NUMBER]
    if kind in (3, 4) and numbers:  # a number replaced by an extreme one
        tok, new = rng.choice(numbers), rng.choice(EXTREME_NUMBERS)
    elif kind == 5:  # a token deleted
        tok, new = rng.choice(words), ""
    elif kind == 6:  # a token duplicated
        tok = rng.choice(words)
        new = tok.string + " " + tok.string
    else:  # a token replaced by another token of the model
        tok, new = rng.choice(words), rng.choice(words).string
    return _replace(source, tok, new)


def _replace(source: str, tok: tokenize.TokenInfo, new: str) -> str:
    lines = source.splitlines(keepends=True)
    (row, col), (end_row, end_col) = tok.start, tok.end
    if row != end_row:
        return source
    line = lines[row - 1]
    lines[row - 1] = line[:col] + new + line[end_col:]
    return "".join(lines)


def tiny_data(flat, rng: np.random.Generator, batch: int = 2) -> dict[str, np.ndarray]:
    """Random inputs and outputs for a compiled model, ``batch`` instances."""
    data: dict[str, np.ndarray] = {}
    for d in flat.decls.values():
        if d.kind in ("input", "output"):
            data[d.name] = rng.integers(0, d.size, size=(batch, *d.shape))
    for t in flat.tensors.values():
        data[t.name] = rng.standard_normal((batch, *t.shape, *t.elem_shape)).astype(np.float32)
    return data


def try_one(name: str, source, hypers: dict, train: bool, limit_s: float, out: Outcome, seed: int = 0) -> None:
    """Compile (and maybe train one step) ``source``; tally how it ended."""
    from ntpt_dist.interpreter.errors import NtptError
    from ntpt_dist.interpreter.model import compile_source

    out.mutants += 1
    start = time.perf_counter()
    stage = "compile"
    try:
        with time_limit(limit_s):
            model = compile_source(source, hypers, filename=f"{name}.py")
            out.compiled += 1
            if train:
                stage = "train"
                model.train(tiny_data(model.flat, np.random.default_rng(seed)), restarts=1, steps=1, seed=seed,
                            batch_size=None, polish_edits=0)
                out.trained += 1
    except NtptError:
        out.ntpt_errors += 1
    except _TimeUp:
        out.hangs += 1
        out.examples.append({"name": name, "stage": stage, "hang_s": limit_s, "source": _head(source)})
    except (Exception, RecursionError, MemoryError) as e:  # noqa: BLE001 - counting exactly these is the point
        out.raw_exceptions += 1
        out.examples.append({"name": name, "stage": stage, "error": f"{type(e).__name__}: {str(e)[:200]}",
                             "source": _head(source)})
    took = time.perf_counter() - start
    if took > out.slowest_s:
        out.slowest_s, out.slowest = took, name


def _head(source) -> str:
    text = source if isinstance(source, str) else repr(source)
    return text if len(text) <= 400 else text[:400] + f"... ({len(text)} chars)"


def run(mutants: int, seed: int, limit_s: float, train_every: int, known_bad: bool = True) -> Outcome:
    """Fuzz: ``mutants`` mutants (1 to 3 mutations each, mostly 1) of the shipped models, plus the known bad inputs."""
    out = Outcome()
    models = shipped_models()
    if known_bad:
        for name, source, hypers, train in KNOWN_BAD:
            try_one(name, source, hypers, train, limit_s, out)
        try_one(MAZE_T[0], models[MAZE_T[1]], MAZE_T[2], False, limit_s, out)
        try_one(TURING[0], models[TURING[1]].replace(TURING[2], TURING[3]), HYPERS, False, limit_s, out)
    rng = random.Random(seed)
    names = sorted(models)
    for k in range(mutants):
        base = rng.choice(names)
        source = models[base]
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            source = mutate(source, rng)
        train = train_every > 0 and out.compiled % train_every == 0  # so every train_every-th compiled mutant trains
        try_one(f"{base[:-3]}-mutant{k}", source, HYPERS, train, limit_s, out, k)
    return out


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", type=int, default=2000, help="mutants to try (default 2000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=float, default=20.0, help="seconds a mutant may take (default 20)")
    ap.add_argument("--train-every", type=int, default=10, help="train one step on every k-th mutant (0: never)")
    args = ap.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    out = run(args.mutants, args.seed, args.limit, args.train_every)
    report = {"command": "scripts/fuzz_models.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              **out.report(), "wall_s": round(time.perf_counter() - start, 1)}
    print(json.dumps(report, indent=1))
    return 0 if out.raw_exceptions == 0 and out.hangs == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
