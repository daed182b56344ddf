"""A fake ``RestartBlock`` whose validation accuracy follows scripted trajectories.

The script is a pure function of (restart seed, steps), so a restart's
trajectory does not depend on its slot or block, as the real contract demands.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Optional

import numpy as np

AccFn = Callable[[int, int], float]


def jump_every_third(seed: int, steps: int) -> float:
    """Seeds divisible by 3 jump to 0.95 at step 100 + 25 * (seed % 5); others sit near 0.15."""
    wobble = 0.02 * math.sin(seed + steps / 25.0)
    if seed % 3 == 0 and steps >= 100 + 25 * (seed % 5):
        return 0.95 + wobble
    return 0.15 + wobble


def nan_for_seven(seed: int, steps: int) -> float:
    """Like :func:`jump_every_third`, but seeds divisible by 7 go NaN at step 50."""
    if seed % 7 == 0 and steps >= 50:
        return float("nan")
    return jump_every_third(seed, steps)


class FakeProgram:
    """Stands in for ``Program``: accuracy from the script at a late step."""

    def __init__(self, seed: int, acc_fn: AccFn):
        self.seed = seed
        self.acc_fn = acc_fn

    def accuracy(self, batch: Any, hypers: Any = None) -> float:
        return round(min(1.0, self.acc_fn(self.seed, 10**6) + 0.04), 6)

    def to_dict(self) -> dict:
        return {"fake_seed": self.seed, "weights": np.arange(3, dtype=np.float32) * self.seed}


class FakeBlock:
    """Same methods as ``interpreter.engine.RestartBlock``, no torch.

    Args:
        acc_fn: validation accuracy of seed at steps (NaN -> the slot diverges).
        crash_fn: ``crash_fn(seed, steps)`` true -> ``step`` raises while that seed is live
            (``steps == -1`` is checked in ``reset``).
        step_cost_s: sleep per step per block (to mimic device time).
        program_acc_fn: like ``acc_fn``, for the extracted program (default: ``acc_fn``).
    """

    def __init__(self, spec, data, slots, config, device, library, acc_fn: AccFn = jump_every_third,
                 crash_fn: Optional[Callable[[int, int], bool]] = None, step_cost_s: float = 0.0,
                 program_acc_fn: Optional[AccFn] = None):
        self.slots = slots
        self.acc_fn = acc_fn
        self.program_acc_fn = program_acc_fn  # the argmax program's accuracy, if it differs from the relaxed one
        self.crash_fn = crash_fn
        self.step_cost_s = step_cost_s
        self.seeds: list[Optional[int]] = [None] * slots
        self.steps = np.zeros(slots, dtype=np.int64)
        self.diverged = np.zeros(slots, dtype=bool)
        self.step_calls = 0

    def reset(self, slot: int, seed: int) -> None:
        if self.crash_fn is not None and self.crash_fn(seed, -1):
            raise ValueError(f"scripted reset failure for seed {seed}")
        self.seeds[slot] = seed
        self.steps[slot] = 0
        self.diverged[slot] = False

    def clear(self, slot: int) -> None:
        self.seeds[slot] = None

    def step(self, n: int = 1) -> np.ndarray:
        self.step_calls += 1
        for s, seed in enumerate(self.seeds):
            if seed is not None and self.crash_fn is not None and self.crash_fn(seed, int(self.steps[s])):
                raise RuntimeError(f"scripted block failure with seed {seed} at step {int(self.steps[s])}")
        if self.step_cost_s:
            time.sleep(self.step_cost_s * n)
        for s, seed in enumerate(self.seeds):
            if seed is None or self.diverged[s]:
                continue
            self.steps[s] += n
            if math.isnan(self.acc_fn(seed, int(self.steps[s]))):
                self.diverged[s] = True
        return np.zeros(self.slots)

    def accuracy(self, data: Any) -> np.ndarray:
        out = np.zeros(self.slots)
        for s, seed in enumerate(self.seeds):
            if seed is not None and not self.diverged[s]:
                out[s] = self.acc_fn(seed, int(self.steps[s]))
        return out

    def program(self, slot: int) -> FakeProgram:
        return FakeProgram(self.seeds[slot], self.program_acc_fn or self.acc_fn)


def fake_factory(**kwargs: Any):
    """A block factory for ``BlockWorker(block_factory=...)`` building :class:`FakeBlock`s."""
    return partial(FakeBlock, **kwargs)
