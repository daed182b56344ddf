"""The street-sign maze of Fig. 1: ground-truth walk and random mazes, in integers only.

A maze is a ``[H, W]`` grid of sign classes (0 halt, 1 east, 2 north, 3 west,
4 south; ``data.DIRECTIONS``), indexed ``[y, x]``. The agent of Fig. 1 runs the
loop LOOK (halt on a stop sign) -> MOVE one cell the way the sign points ->
INC the path register, with moves wrapping around the grid edges.
``tasks.make_task("MAZE", ...)`` turns these integer mazes into image grids.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

HALT, EAST, NORTH, WEST, SOUTH = range(5)
MAX_INT = 15  # the path register of Fig. 1 counts modulo 15


class Walk(NamedTuple):
    """Where the agent ends: ``x``, ``y``, moves made (``path_len``, mod MAX_INT) and whether it halted."""

    x: int
    y: int
    path_len: int
    halted: bool


def step(x: int, y: int, direction: int, width: int, height: int) -> tuple[int, int]:
    """One move of Fig. 1's MOVE_X/MOVE_Y: east x+1, west x-1, north y-1, south y+1, wrapping.

    Example:
        >>> step(4, 0, EAST, 5, 3), step(0, 0, NORTH, 5, 3), step(2, 1, HALT, 5, 3)
        ((0, 0), (0, 2), (2, 1))
    """
    if direction == EAST:
        return (x + 1) % width, y
    if direction == WEST:
        return (x - 1) % width, y
    if direction == NORTH:
        return x, (y - 1) % height
    if direction == SOUTH:
        return x, (y + 1) % height
    return x, y


def maze_walk(signs: np.ndarray, x: int, y: int, max_moves: int) -> Walk:
    """Ground truth: run the Fig. 1 loop on a grid of sign classes.

    The agent reads the sign under it; a stop sign halts it, any other sign
    moves it one cell that way and counts one move. It stops after
    ``max_moves`` moves if no stop sign was reached (``halted=False``).

    Args:
        signs: int ``[H, W]`` sign classes, indexed ``[y, x]``.
        x, y: start cell.
        max_moves: move budget; ``max_moves_for(T, W, H)`` matches a T-step model.

    Returns:
        ``Walk(x, y, path_len % MAX_INT, halted)``.

    Example:
        >>> maze_walk(np.array([[EAST, EAST, SOUTH], [HALT, WEST, WEST]]), 0, 0, 14)
        Walk(x=0, y=1, path_len=5, halted=True)
    """
    height, width = np.shape(signs)
    x, y, moves = int(x), int(y), 0
    while True:
        direction = int(signs[y][x])
        if direction == HALT:
            return Walk(x, y, moves % MAX_INT, True)
        if moves == max_moves:
            return Walk(x, y, moves % MAX_INT, False)
        x, y = step(x, y, direction, width, height)
        moves += 1


INC, DEC, MOVE, LOOK = range(4)  # Fig. 1's instructions, as ``instr`` numbers them


def run_program(instr, goto, signs: np.ndarray, x: int, y: int, steps: int) -> Walk:
    """Run a Fig. 1 program (its ``instr`` and ``goto`` Params) for ``steps`` time steps, reading signs exactly.

    The semantics of ``experiments/models/maze.py`` with LOOK replaced by the true sign
    (its integer twin is ``tests/interpreter/models/maze_int.py``, which a test checks this
    against): the agent starts facing east with the path register at 0; at each of the
    ``steps - 1`` transitions it is halted while its direction is the stop sign, and
    otherwise runs instruction ``instr[ip]`` and jumps to ``goto[ip]``. A found program
    is the intended loop when this agrees with :func:`maze_walk` on every maze.

    Returns:
        ``Walk(final x, final y, path register, halted at step steps - 2)``.

    Example:
        >>> grid = np.array([[EAST, EAST, SOUTH], [HALT, WEST, WEST]])
        >>> run_program([LOOK, MOVE, INC], [1, 2, 0], grid, 0, 0, 45) == maze_walk(grid, 0, 0, 14)
        True
    """
    height, width = np.shape(signs)
    x, y, direction, reg, ip, halted = int(x), int(y), EAST, 0, 0, False
    for _ in range(steps - 1):
        halted = direction == HALT
        if halted:
            continue
        op = int(instr[ip])
        if op in (INC, DEC):
            reg = (reg + (1 if op == INC else -1)) % MAX_INT
        elif op == MOVE:
            x, y = step(x, y, direction, width, height)
        else:
            direction = int(signs[y][x])
        ip = int(goto[ip])
    return Walk(x, y, reg, halted)


def max_moves_for(steps: int, width: int, height: int) -> int:
    """Longest path a ``steps``-step Fig. 1 model can finish and report as halted.

    The loop takes 3 time steps per move and the model reads ``is_halted`` at
    step ``T - 2``; the halt after m moves is known at step 3m + 1, so
    m <= (T - 3) // 3 (14 for T = 45). A path through distinct cells also has
    at most W * H - 1 moves.

    Example:
        >>> max_moves_for(45, 5, 3), max_moves_for(45, 3, 2)
        (14, 5)
    """
    return min((steps - 3) // 3, width * height - 1)


def random_mazes(rng: np.random.Generator, n: int, width: int, height: int, max_moves: int) -> tuple[np.ndarray, ...]:
    """Random mazes whose walk halts within ``max_moves`` along a path of distinct cells.

    Path length is uniform on ``0..max_moves``; the start is uniform; the path
    is a random self-avoiding walk on the wrapping grid; every path cell points
    to the next one, the last holds a stop sign, and every other cell gets a
    uniformly random sign (stop signs included).

    Args:
        rng: numpy generator (the only source of randomness).
        n: number of mazes.
        width, height: grid size W, H.
        max_moves: the longest path (see :func:`max_moves_for`); at most W*H - 1.

    Returns:
        ``(signs int64 [n, H, W], init_x [n], init_y [n], path_len [n])``.

    Example:
        >>> signs, x, y, moves = random_mazes(np.random.default_rng(0), 2, 5, 3, 14)
        >>> maze_walk(signs[0], x[0], y[0], 14).path_len == int(moves[0])
        True
    """
    assert 0 <= max_moves <= width * height - 1, (max_moves, width, height)
    signs = rng.integers(0, 5, size=(n, height, width))
    init_x = rng.integers(0, width, size=n)
    init_y = rng.integers(0, height, size=n)
    lengths = rng.integers(0, max_moves + 1, size=n)
    for i in range(n):
        path = _self_avoiding_path(rng, int(init_x[i]), int(init_y[i]), int(lengths[i]), width, height)
        for (cx, cy), (nx, ny) in zip(path, path[1:]):
            ways = [d for d in (EAST, NORTH, WEST, SOUTH) if step(cx, cy, d, width, height) == (nx, ny)]
            signs[i, cy, cx] = ways[rng.integers(len(ways))]
        end_x, end_y = path[-1]
        signs[i, end_y, end_x] = HALT
    return signs.astype(np.int64), init_x.astype(np.int64), init_y.astype(np.int64), lengths.astype(np.int64)


def _self_avoiding_path(rng: np.random.Generator, x: int, y: int, moves: int, width: int, height: int) -> list[tuple[int, int]]:
    """Random depth-first search for a path of ``moves`` moves from (x, y) through distinct cells.

    Long paths on a small grid (a Hamiltonian path for 14 moves on 5 x 3) can
    send a random search into long dead ends, so each attempt is capped and a
    fresh attempt starts with new random choices.
    """
    for _attempt in range(1000):
        path = [(x, y)]
        seen = {(x, y)}
        options = [_neighbours(rng, x, y, width, height, seen)]
        budget = 5000
        while path and len(path) < moves + 1 and budget > 0:
            budget -= 1
            if options[-1]:
                cell = options[-1].pop()
                path.append(cell)
                seen.add(cell)
                options.append(_neighbours(rng, cell[0], cell[1], width, height, seen))
            else:  # dead end: step back
                seen.discard(path.pop())
                options.pop()
        if len(path) == moves + 1:
            return path
    raise AssertionError(f"no self-avoiding path of {moves} moves on a {width}x{height} grid")


def _neighbours(rng: np.random.Generator, x: int, y: int, width: int, height: int, seen: set) -> list[tuple[int, int]]:
    cells = {step(x, y, d, width, height) for d in (EAST, NORTH, WEST, SOUTH)} - seen
    ordered = sorted(cells)  # sets have no stable order; sort, then shuffle by rng
    return [ordered[k] for k in rng.permutation(len(ordered))]
