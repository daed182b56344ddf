"""Ground truth and data for the fixture models in ``tests/interpreter/models/``.

Each ``*_data`` function returns a batch in the docs/design.md format, computed
by plain Python independent of the compiler, and each ``INTENDED`` entry is
the program the fixture's header comment describes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MODELS = Path(__file__).parent / "models"

INTENDED = {
    "circuit": {"gate_type": [2, 0, 4], "in1": [0, 0, 0], "in2": [1, 1, 0], "out_sum": 2, "out_carry": 3},
    "turing": {"write": [[0, 0, 0], [1, 0, 2]], "dir": [[0, 0, 0], [1, 1, 0]], "newState": [[0, 0, 0], [1, 1, 0]]},
    "maze_int": {"instr": [3, 2, 0], "goto": [1, 2, 0]},
}


def circuit_data() -> dict[str, np.ndarray]:
    """The half adder's truth table (4 instances)."""
    a, b = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    return {"a": a, "b": b, "sum_out": a ^ b, "carry_out": a & b}


def turing_data(rng: np.random.Generator, n: int, tape_length: int) -> dict[str, np.ndarray]:
    """Random bit strings ending in a blank (2); the output inverts every bit."""
    tape = np.concatenate([rng.integers(0, 2, (n, tape_length - 1)), np.full((n, 1), 2)], 1)
    final = np.where(tape == 2, 2, 1 - tape)
    return {"initial_tape": tape, "final_tape": final, "final_is_halted": np.ones(n, dtype=np.int64)}


def maze_walk(signs: np.ndarray, x: int, y: int, steps: int) -> tuple[int, int, int, int]:
    """Fig. 1's loop on integer signs for ``steps`` time steps: (x, y, moves mod 15, halted).

    The loop LOOK, MOVE, INC takes three time steps per move; LOOK of a stop
    sign halts on the next step.
    """
    h, w = signs.shape
    direction, reg, ip = 1, 0, 0
    halted = []
    for _ in range(steps - 1):
        halted.append(direction == 0)
        if direction == 0:
            continue
        if ip == 0:
            direction = int(signs[y, x])
        elif ip == 1:
            dx, dy = {1: (1, 0), 2: (0, -1), 3: (-1, 0), 4: (0, 1)}[direction]
            x, y = (x + dx) % w, (y + dy) % h
        else:
            reg = (reg + 1) % 15
        ip = (ip + 1) % 3
    return x, y, reg, int(halted[-1])


def maze_data(rng: np.random.Generator, n: int, T: int, W: int, H: int) -> dict[str, np.ndarray]:
    """Random sign grids and start cells; outputs from :func:`maze_walk`."""
    grid = rng.integers(0, 5, (n, H, W))
    x0, y0 = rng.integers(0, W, n), rng.integers(0, H, n)
    walks = np.array([maze_walk(grid[k], int(x0[k]), int(y0[k]), T) for k in range(n)])
    return {"sign_grid": grid, "init_X": x0, "init_Y": y0, "final_X": walks[:, 0], "final_Y": walks[:, 1],
            "path_len": walks[:, 2], "is_halted_at_end": walks[:, 3]}
