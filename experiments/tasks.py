"""The paper's tasks as data: ADD2x2, APPLY2x2, MATH and the street-sign MAZE.

``make_task(name, split, n, seed)`` builds ``n`` instances from the images of
one split only (train grids from training images, test grids from test
images), deterministically from ``seed``. Input and output names are those of
the NTPT models in ``experiments/models``; see docs/tasks.md for the choices
the paper leaves open.

Example:
    >>> task = make_task("ADD2x2:left", "train", 1000, seed=0, data_dir="../shared/data")  # doctest: +SKIP
    >>> task.inputs["grid"].shape, task.outputs["result"][:3]  # doctest: +SKIP
    ((1000, 2, 2, 28, 28), array([ 9, 12,  4]))
"""

from __future__ import annotations

import difflib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from ..interpreter.errors import NtptError
from . import data, maze_tasks
from .data import SPLITS, ImageSet, PathLike

M = 18  # registers hold 0..M; every operation is modulo M + 1, x / 0 = M
PLUS, MINUS, TIMES, DIVIDE = range(4)
SIDES = {  # the two cells (row, column) of each side, in reading order
    "top": ((0, 0), (0, 1)),
    "left": ((0, 0), (1, 0)),
    "bottom": ((1, 0), (1, 1)),
    "right": ((0, 1), (1, 1)),
}
SIZES = {"MATH": {"digits": 2}, "MAZE": {"W": 5, "H": 3, "T": 45}}  # task sizes and their defaults


def apply_op(a, op, b):
    """``a op b`` modulo M + 1 = 19, op 0 +, 1 -, 2 *, 3 / (integer division; x / 0 = 18).

    The one definition of the paper's arithmetic; works elementwise on numpy
    integer arrays as well as on ints.

    Args:
        a, b: operands in 0..18 (ints or int arrays).
        op: operator code 0..3 (int or int array).

    Returns:
        An int for int arguments, else an int64 array.

    Example:
        >>> apply_op(9, PLUS, 15), apply_op(2, MINUS, 5), apply_op(7, TIMES, 3), apply_op(7, DIVIDE, 2), apply_op(4, DIVIDE, 0)
        (5, 16, 2, 3, 18)
    """
    scalar = all(np.ndim(v) == 0 for v in (a, op, b))
    a, op, b = (np.asarray(v, dtype=np.int64) for v in (a, op, b))
    modulus = M + 1
    quotient = np.where(b == 0, M, a // np.where(b == 0, 1, b))
    result = np.select([op == PLUS, op == MINUS, op == TIMES], [a + b, a - b, a * b], quotient) % modulus
    return int(result) if scalar else result


@dataclass(frozen=True)
class TaskData:
    """Instances of one task, keyed by the NTPT model's names.

    Attributes:
        name, split: as given to :func:`make_task`.
        inputs: model inputs, e.g. ``{"grid": float32 [n, 2, 2, 28, 28]}``.
        outputs: expected outputs, e.g. ``{"result": int64 [n]}``.
        labels: per image input, the true class of every image cell (its grid shape).
        ids: per image input, the source-image id of every image cell (see ``data``).
    """

    name: str
    split: str
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    ids: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.outputs.values())))

    def batch(self) -> dict[str, np.ndarray]:
        """Inputs and outputs in one dict, the batch format models take.

        Example:
            >>> sorted(make_task("MATH", "val", 4, 0).batch())  # doctest: +SKIP
            ['result', 'tape']
        """
        return {**self.inputs, **self.outputs}

    def take(self, index: Union[np.ndarray, slice]) -> TaskData:
        """The instances at ``index`` (an index array or a slice), as a new TaskData.

        Example:
            >>> len(make_task("MATH", "val", 10, 0).take(slice(0, 3)))  # doctest: +SKIP
            3
        """
        pick = {kind: {k: v[index] for k, v in getattr(self, kind).items()} for kind in ("inputs", "outputs", "labels", "ids")}
        return TaskData(self.name, self.split, **pick)


def task_names() -> list[str]:
    """Every task :func:`make_task` knows, in the paper's order.

    Example:
        >>> task_names()[:2], task_names()[-3:]
        (['ADD2x2:top', 'ADD2x2:left'], ['MATH', 'SIGN', 'MAZE'])
    """
    return [f"{scenario}:{side}" for scenario in ("ADD2x2", "APPLY2x2") for side in SIDES] + ["MATH", "SIGN", "MAZE"]


def make_task(
    name: str,
    split: str,
    n: int,
    seed: int,
    data_dir: Optional[PathLike] = None,
    distinct: Optional[int] = None,
    **sizes: int,
) -> TaskData:
    """Build ``n`` instances of a task from the images of one split.

    Args:
        name: one of :func:`task_names`.
        split: "train", "val" or "test"; only that split's images are used.
        n: number of instances.
        seed: everything random comes from it (same arguments -> same data).
        data_dir: folder of the data sets (see :func:`data.data_dir`).
        distinct: if set, first build this many distinct instances, then
            deal the ``n`` instances from them in shuffled passes, so each is
            used equally often (the paper's 64k training instances from 1k or
            4k distinct grids; ``n == distinct`` gives each grid once).
            ``None``: every instance is drawn afresh.
        **sizes: MATH ``digits`` (N digits, tape length 2N - 1; default 2);
            MAZE ``W``, ``H`` (grid, default 5 x 3) and ``T`` (time steps of the
            model, default 45; paths have at most ``(T - 3) // 3`` moves).

    Returns:
        TaskData with the model's inputs and outputs, cell labels and ids.

    Raises:
        NtptError: unknown task, split or size; bad ``n``/``distinct``; missing data.

    Example:
        >>> t = make_task("APPLY2x2:top", "test", 3, seed=1, data_dir="../shared/data")  # doctest: +SKIP
        >>> t.inputs["aux"].shape, t.outputs["result"].dtype  # doctest: +SKIP
        ((3, 3), dtype('int64'))
    """
    scenario, _, side = name.partition(":")
    if name not in task_names():
        close = difflib.get_close_matches(name, task_names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise NtptError(f"unknown task {name!r}; tasks are {', '.join(task_names())}{hint}")
    if split not in SPLITS:
        raise NtptError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise NtptError(f"n must be a non-negative int, got {n!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise NtptError(f"seed must be a non-negative int, got {seed!r}")
    if distinct is not None and (not isinstance(distinct, (int, np.integer)) or distinct < 1):
        raise NtptError(f"distinct must be a positive int or None, got {distinct!r}")
    allowed = SIZES.get(scenario, {})
    unknown = sorted(set(sizes) - set(allowed))
    if unknown:
        raise NtptError(
            f"{name} takes the sizes {sorted(allowed) or 'none'}, got {unknown}; drop them"
            + (f" or use one of {sorted(allowed)}" if allowed else "")
        )
    size = {**allowed, **sizes}
    rng = np.random.default_rng([int(seed), zlib.crc32(name.encode()), SPLITS.index(split)])
    pool = _pools(scenario, split, data_dir)
    sample = _GENERATORS[scenario](side, size, pool)
    if distinct is None:
        draw = sample(rng, n)
    else:
        passes = -(-n // distinct)  # shuffled passes over the distinct set: every grid used equally often
        order = np.concatenate([rng.permutation(distinct) for _ in range(passes)])[:n] if n else np.zeros(0, np.int64)
        draw = _distinct(sample, rng, int(distinct), name).take(order)
    return draw.to_task(name, split, pool)


# --- image pools -------------------------------------------------------------


class _Pool:
    """Several image sets seen as one, indexed 0..size-1; class labels shifted per set."""

    def __init__(self, *parts: tuple[ImageSet, int]):
        self.parts = parts
        self.starts = np.cumsum([0] + [len(s.labels) for s, _ in parts])
        self.labels = np.concatenate([s.labels + offset for s, offset in parts])
        self.ids = np.concatenate([s.ids for s, _ in parts])

    def part(self, k: int) -> np.ndarray:
        """Pool indices of the k-th set."""
        return np.arange(self.starts[k], self.starts[k + 1])

    def images(self, index: np.ndarray) -> np.ndarray:
        first = self.parts[0][0].images
        out = np.empty(index.shape + first.shape[1:], dtype=np.float32)
        for k, (images, _) in enumerate(self.parts):
            inside = (index >= self.starts[k]) & (index < self.starts[k + 1])
            out[inside] = images.images[index[inside] - self.starts[k]]
        return out


def _pools(scenario: str, split: str, data_dir: Optional[PathLike]) -> _Pool:
    if scenario == "ADD2x2":
        return _Pool((data.mnist(split, data_dir), 0))
    if scenario == "APPLY2x2":
        return _Pool((data.operators(split, data_dir), 0))
    if scenario == "MATH":  # labels: digits 0..9, operators 10 + op
        return _Pool((data.mnist(split, data_dir), 0), (data.operators(split, data_dir), 10))
    return _Pool((data.signs(split, data_dir), 0))  # SIGN and MAZE


# --- instances as pool indices (images are gathered once, at the end) --------


@dataclass
class _Draw:
    cells: dict[str, np.ndarray]  # image input -> pool indices [n, *grid]
    ints: dict[str, np.ndarray]  # integer inputs
    outputs: dict[str, np.ndarray]

    def take(self, index: np.ndarray) -> _Draw:
        return _Draw(*({k: v[index] for k, v in part.items()} for part in (self.cells, self.ints, self.outputs)))

    def concat(self, other: _Draw) -> _Draw:
        return _Draw(*({k: np.concatenate([mine[k], theirs[k]]) for k in mine} for mine, theirs in zip(
            (self.cells, self.ints, self.outputs), (other.cells, other.ints, other.outputs))))

    def keys(self) -> np.ndarray:
        """One row per instance; equal rows = the same instance."""
        n = len(next(iter(self.outputs.values())))
        columns = [v.reshape(n, -1) for part in (self.cells, self.ints) for _, v in sorted(part.items())]
        return np.concatenate(columns, axis=1)

    def to_task(self, name: str, split: str, pool: _Pool) -> TaskData:
        inputs = {k: pool.images(v) for k, v in self.cells.items()}
        inputs.update(self.ints)
        return TaskData(
            name,
            split,
            inputs=inputs,
            outputs=dict(self.outputs),
            labels={k: pool.labels[v] for k, v in self.cells.items()},
            ids={k: pool.ids[v] for k, v in self.cells.items()},
        )


def _distinct(sample: Callable[[np.random.Generator, int], _Draw], rng: np.random.Generator, count: int, name: str) -> _Draw:
    """``count`` instances with pairwise different keys (resampling the duplicates)."""
    draw = sample(rng, count)
    for _round in range(100):
        _, first = np.unique(draw.keys(), axis=0, return_index=True)
        if len(first) == count:
            return draw
        kept = draw.take(np.sort(first))
        draw = kept.concat(sample(rng, count - len(first)))
    raise NtptError(f"could not build {count} distinct {name} instances (only {len(first)} found); ask for fewer")


def _add2x2(side: str, size: dict, pool: _Pool) -> Callable[[np.random.Generator, int], _Draw]:
    (r1, c1), (r2, c2) = SIDES[side]

    def sample(rng: np.random.Generator, n: int) -> _Draw:
        grid = rng.integers(0, len(pool.labels), size=(n, 2, 2))
        digit = pool.labels[grid]
        return _Draw({"grid": grid}, {}, {"result": digit[:, r1, c1] + digit[:, r2, c2]})

    return sample


def _apply2x2(side: str, size: dict, pool: _Pool) -> Callable[[np.random.Generator, int], _Draw]:
    (r1, c1), (r2, c2) = SIDES[side]

    def sample(rng: np.random.Generator, n: int) -> _Draw:
        grid = rng.integers(0, len(pool.labels), size=(n, 2, 2))
        aux = rng.integers(0, 10, size=(n, 3))
        op = pool.labels[grid]
        result = apply_op(apply_op(aux[:, 0], op[:, r1, c1], aux[:, 1]), op[:, r2, c2], aux[:, 2])
        return _Draw({"grid": grid}, {"aux": aux}, {"result": result})

    return sample


def _math(side: str, size: dict, pool: _Pool) -> Callable[[np.random.Generator, int], _Draw]:
    digits = size["digits"]
    if not isinstance(digits, (int, np.integer)) or digits < 1:
        raise NtptError(f"MATH needs digits >= 1 (the tape is d op d ... d), got digits={digits!r}")
    digit_pool, op_pool = pool.part(0), pool.part(1)

    def sample(rng: np.random.Generator, n: int) -> _Draw:
        tape = np.empty((n, 2 * digits - 1), dtype=np.int64)
        tape[:, 0::2] = rng.choice(digit_pool, size=(n, digits))
        tape[:, 1::2] = rng.choice(op_pool, size=(n, digits - 1))
        label = pool.labels[tape]
        result = label[:, 0]
        for k in range(1, digits):  # left to right, no precedence (the paper's footnote 1)
            result = apply_op(result, label[:, 2 * k - 1] - 10, label[:, 2 * k])
        return _Draw({"tape": tape}, {}, {"result": np.asarray(result, dtype=np.int64)})

    return sample


def _maze(side: str, size: dict, pool: _Pool) -> Callable[[np.random.Generator, int], _Draw]:
    width, height, steps = size["W"], size["H"], size["T"]
    if min(width, height) < 1 or steps < 3:
        raise NtptError(f"MAZE needs W >= 1, H >= 1 and T >= 3 (one LOOK plus the halt check), got W={width}, H={height}, T={steps}")
    max_moves = maze_tasks.max_moves_for(steps, width, height)
    by_class = [np.nonzero(pool.labels == c)[0] for c in range(len(data.DIRECTIONS))]
    assert all(len(members) for members in by_class), "every sign class has images in every split"

    def sample(rng: np.random.Generator, n: int) -> _Draw:
        signs, init_x, init_y, moves = maze_tasks.random_mazes(rng, n, width, height, max_moves)
        cells = np.empty_like(signs)
        for c, members in enumerate(by_class):
            where = signs == c
            cells[where] = rng.choice(members, size=int(where.sum()))
        end_x, end_y = init_x.copy(), init_y.copy()
        for i in range(n):
            walk = maze_tasks.maze_walk(signs[i], init_x[i], init_y[i], max_moves)
            assert walk.halted and walk.path_len == moves[i] % maze_tasks.MAX_INT
            end_x[i], end_y[i] = walk.x, walk.y
        outputs = {
            "final_X": end_x,
            "final_Y": end_y,
            "path_len": moves % maze_tasks.MAX_INT,
            "is_halted_at_end": np.ones(n, dtype=np.int64),
        }
        return _Draw({"img_grid": cells}, {"init_X": init_x, "init_Y": init_y}, outputs)

    return sample


def _sign(side: str, size: dict, pool: _Pool) -> Callable[[np.random.Generator, int], _Draw]:
    """SIGN: one street sign, and which way it points (the maze's LOOK as a task of its own)."""
    by_class = [np.nonzero(pool.labels == c)[0] for c in range(len(data.DIRECTIONS))]

    def sample(rng: np.random.Generator, n: int) -> _Draw:
        label = rng.integers(0, len(by_class), n)  # classes drawn evenly: a maze's one stop sign is rare
        cells = np.array([rng.choice(by_class[c]) for c in label], dtype=np.int64)
        return _Draw({"img": cells}, {}, {"dir": label})

    return sample


_GENERATORS = {"ADD2x2": _add2x2, "APPLY2x2": _apply2x2, "MATH": _math, "SIGN": _sign, "MAZE": _maze}
