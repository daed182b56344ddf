"""Non-perceptual MATH (paper section 6.2, Fig. 8(a)): tapes of symbols instead of images.

A tape of N digits is ``d op d op ... d`` (2N - 1 symbols): digits are the
symbols 0..9, the operators ``+ - * /`` are 10..13 (the labels of
``make_task("MATH", ...)``), and the answer is the left-to-right fold of
:func:`~ntpt_dist.experiments.tasks.apply_op` modulo 19 (no precedence, the
paper's footnote 1). :func:`symbolic_math` builds such tapes as a
:class:`~ntpt_dist.experiments.tasks.TaskData` whose input ``tape`` is the
symbols themselves (no images are loaded), so the baselines read them as one-hot
vectors and the symbolic MATH model (``experiments/models/math_symbolic.py``)
runs them directly. :func:`math_params_from_listing` turns a recorded Fig. 4(b)
listing back into that model's Param values.

Example:
    >>> data = symbolic_math(3, 4, seed=0)
    >>> data.inputs["tape"].shape, bool((fold(data.inputs["tape"]) == data.outputs["result"]).all())
    ((4, 5), True)
"""

from __future__ import annotations

import re

import numpy as np

from ..interpreter.errors import NtptError
from .tasks import TaskData, apply_op

N_SYMBOLS = 14  # digits 0..9, operators 10..13
OP_OFFSET = 10


def fold(tape: np.ndarray) -> np.ndarray:
    """The value of every tape ``[n, 2N - 1]``: ``((d0 op0 d1) op1 d2) ...`` modulo 19.

    Example:
        >>> fold(np.array([[7, 12, 3, 10, 9]]))  # (7 * 3) + 9 = 30 = 11 mod 19
        array([11])
    """
    tape = np.asarray(tape, dtype=np.int64)
    value = tape[:, 0]
    for k in range(1, (tape.shape[1] + 1) // 2):
        value = apply_op(value, tape[:, 2 * k - 1] - OP_OFFSET, tape[:, 2 * k])
    return np.asarray(value, dtype=np.int64)


def symbolic_math(digits: int, n: int, seed: int, split: str = "test") -> TaskData:
    """``n`` random MATH tapes of ``digits`` digits as symbols, with their values.

    Args:
        digits: N >= 1 (the tape has 2N - 1 symbols).
        n: number of tapes.
        seed: the tapes are a function of ``(seed, digits)`` only.
        split: the name recorded in the TaskData.

    Returns:
        TaskData "MATH" with inputs and labels ``{"tape": int64 [n, 2N - 1]}`` and
        outputs ``{"result": int64 [n]}``.

    Raises:
        NtptError: ``digits < 1`` or ``n < 0``.

    Example:
        >>> symbolic_math(1, 3, seed=1).inputs["tape"].shape
        (3, 1)
    """
    if digits < 1 or n < 0:
        raise NtptError(f"symbolic MATH needs digits >= 1 and n >= 0, got digits={digits}, n={n}")
    rng = np.random.default_rng([int(seed), int(digits)])
    tape = np.empty((n, 2 * digits - 1), dtype=np.int64)
    tape[:, 0::2] = rng.integers(0, 10, size=(n, digits))
    tape[:, 1::2] = rng.integers(OP_OFFSET, N_SYMBOLS, size=(n, digits - 1))
    return TaskData("MATH", split, inputs={"tape": tape}, outputs={"result": fold(tape)}, labels={"tape": tape}, ids={})


def symbolic_sets(digits, n: int, seed: int, split: str = "test") -> dict[int, TaskData]:
    """One :func:`symbolic_math` set per number of digits, each from its own stream of ``seed``.

    Example:
        >>> sorted(symbolic_sets((1, 2), 5, seed=0))
        [1, 2]
    """
    return {int(d): symbolic_math(int(d), n, seed, split) for d in digits}


def misread_accuracy(digit_accuracy: float, digits: int, n: int = 100_000, seed: int = 0) -> float:
    """How often an exact MATH program is still right when each digit is misread with probability 1 - ``digit_accuracy``.

    A misread digit becomes one of the 9 others uniformly; operators are read right.
    Many misreads do not change the value modulo 19 (a product with 0, a quotient
    that rounds the same), so this is well above ``digit_accuracy ** digits``: it is the
    ceiling that net_0 sets on NTPT's perceptual MATH accuracy (Fig. 8(b)).

    Example:
        >>> misread_accuracy(1.0, 16, n=100)
        1.0
    """
    data = symbolic_math(digits, n, seed)
    tape = data.inputs["tape"].copy()
    rng = np.random.default_rng([int(seed), 1])
    read = tape[:, 0::2]
    wrong = rng.random(read.shape) >= digit_accuracy
    read[wrong] = (read[wrong] + rng.integers(1, 10, int(wrong.sum()))) % 10
    tape[:, 0::2] = read
    return float(np.mean(fold(tape) == data.outputs["result"]))


def symbol_tape(task: str, inputs, symbols: int):
    """The integer tape ``[n, length >= 1]`` of a model's inputs, its symbols checked to lie in 0..symbols-1.

    Raises:
        NtptError: no ``tape``, a float or misshapen one, or a symbol out of range.

    Example:
        >>> import torch
        >>> symbol_tape("MATH", {"tape": torch.tensor([[3, 10, 4]])}, N_SYMBOLS).shape
        torch.Size([1, 3])
    """
    tape = inputs.get("tape")
    if tape is None or tape.dim() != 2 or tape.shape[1] < 1 or tape.dtype.is_floating_point:
        raise NtptError(f"{task} input 'tape' must be integer symbols [n, length >= 1], got "
                        f"{None if tape is None else (tuple(tape.shape), tape.dtype)}")
    if int(tape.min()) < 0 or int(tape.max()) >= symbols:
        raise NtptError(f"{task} tape symbols must lie in 0..{symbols - 1}, got {int(tape.min())}..{int(tape.max())}")
    return tape


_BLOCK = re.compile(
    r"^L(?P<b>\d): (?:MOVE; R(?P=b) = READ\(net_(?P<net>\d)\)"
    r"|R(?P=b) = APPLY\(R(?P<a1>\d), R(?P<a2>\d), R(?P<a3>\d)\)); GOTO_IF L(?P<goto>\d)$"
)
_HALT = re.compile(r"^halt: return R(?P<ret>\d)$")


def math_params_from_listing(listing: str) -> dict:
    """The Param values of the MATH models (``math.py``, ``math_symbolic.py``) from a Fig. 4(b) listing.

    Raises:
        NtptError: a line that is not one of ``listing_math``'s three block lines and its halt line.

    Example:
        >>> p = math_params_from_listing(
        ...     "L0: MOVE; R0 = READ(net_0); GOTO_IF L2\\n"
        ...     "L1: MOVE; R1 = READ(net_1); GOTO_IF L0\\n"
        ...     "L2: R2 = APPLY(R2, R0, R1); GOTO_IF L1\\n"
        ...     "halt: return R2")
        >>> p["instr"], p["goto"], p["ret"]
        ([0, 0, 1], [2, 0, 1], 2)
    """
    lines = listing.strip().splitlines()
    params = {key: [0, 0, 0] for key in ("instr", "net_choice", "arg1", "arg2", "arg3", "goto")}
    halt = _HALT.match(lines[-1]) if lines else None
    blocks = [_BLOCK.match(line) for line in lines[:-1]]
    if halt is None or len(blocks) != 3 or not all(blocks) or sorted(int(m["b"]) for m in blocks) != [0, 1, 2]:
        raise NtptError(f"not a three-block MATH listing (listing_math's format): {listing!r}")
    for m in blocks:
        b = int(m["b"])
        params["goto"][b] = int(m["goto"])
        if m["net"] is not None:
            params["net_choice"][b] = int(m["net"])
        else:
            params["instr"][b] = 1
            params["arg1"][b], params["arg2"][b], params["arg3"][b] = int(m["a1"]), int(m["a2"]), int(m["a3"])
    return {**params, "ret": int(halt["ret"])}
