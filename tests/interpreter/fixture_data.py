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
    "circuit": {"op": [2, 0, 0, 2, 1], "src1": [0, 0, 3, 3, 4], "src2": [1, 1, 2, 2, 5]},
    "turing": {"write": [[1, 0, 2], [0, 1, 2]], "move": [[2, 2, 1], [1, 1, 1]], "next_state": [[0, 0, 1], [1, 1, 1]]},
    "maze_int": {"instr": [3, 2, 0], "goto": [1, 2, 0]},
}


def circuit_data() -> dict[str, np.ndarray]:
    """The full adder's truth table (8 instances)."""
    bits = np.array([[(k >> 2) & 1, (k >> 1) & 1, k & 1] for k in range(8)])
    count = bits.sum(1)
    return {"a": bits[:, 0], "b": bits[:, 1], "carry_in": bits[:, 2], "total": count % 2, "carry_out": count // 2}


def turing_data(rng: np.random.Generator, n: int, tape_length: int) -> dict[str, np.ndarray]:
    """Random bit strings of length ``tape_length - 1`` and a blank (2); the output inverts every bit."""
    tape = np.concatenate([rng.integers(0, 2, (n, tape_length - 1)), np.full((n, 1), 2)], 1)
    return {"initial_tape": tape, "final_tape": np.where(tape == 2, 2, 1 - tape)}


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
