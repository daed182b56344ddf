"""The lookup table of a ``@Runtime`` function, built by a bounded evaluator, never by Python.

:func:`tabulate` checks the body (``runtime_body.compile_body``: the sublanguage
and its bounds are described there) and calls it on every argument tuple. A
call runs at most ``MAX_STEPS_PER_CALL`` steps and a whole table
``MAX_STEPS_PER_TABLE``; a failure, a step limit or a value outside the output
range is a :class:`SourceError` that names the call and its source line.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Sequence

import numpy as np

from .errors import SourceError
from .ir import Span
from .module_ir import ModuleIR
from .runtime_body import MAX_DEPTH, VALUE_BOUND, BodyError, OutOfSteps, Run, compile_body, show_value

__all__ = ["MAX_DEPTH", "MAX_STEPS_PER_CALL", "MAX_STEPS_PER_TABLE", "VALUE_BOUND", "compile_body", "tabulate"]

MAX_STEPS_PER_CALL = 100_000
MAX_STEPS_PER_TABLE = 20_000_000


def tabulate(ir: ModuleIR, fn: ast.FunctionDef, arg_sizes: Sequence[int], out: int) -> np.ndarray:
    """The read-only table ``table[a1, ..., an] = fn(a1, ..., an)`` over ``0..K-1`` per argument.

    Raises:
        SourceError: the body leaves the sublanguage (before anything runs); a call fails,
            runs too long or returns something other than an integer in ``0..out-1``.

    Example:
        >>> src = "M = 3\\n@Runtime([M], M)\\ndef inc(a):\\n    return (a + 1) % M\\n"
        >>> ir = ModuleIR(src, "m.py", {"M": 3})
        >>> tabulate(ir, ast.parse(src).body[1], [3], 3).tolist()
        [1, 2, 0]
    """
    body = compile_body(ir, fn)
    values: list[int] = []
    left = MAX_STEPS_PER_TABLE
    run = Run(0)
    for args in itertools.product(*(range(k) for k in arg_sizes)):
        run.steps, run.limit = 0, min(MAX_STEPS_PER_CALL, left)
        try:
            value = body(args, run)
        except BodyError as e:
            raise SourceError(f"@Runtime '{_call(fn, args)}' {e.what}", _line_of(ir, e.node), ir.source,
                              e.fix or "make the function total on its declared argument ranges") from None
        except OutOfSteps as e:
            what = (f"the table of @Runtime '{fn.name}' needs more than {MAX_STEPS_PER_TABLE:,} steps in all"
                    if run.limit < MAX_STEPS_PER_CALL else
                    f"@Runtime '{_call(fn, args)}' runs more than {MAX_STEPS_PER_CALL:,} steps")
            raise SourceError(f"{what} (a step is one statement executed)", _line_of(ir, e.node), ir.source,
                              "bound its loops more tightly, or use smaller argument ranges") from None
        left -= run.steps
        if value.__class__ is not int:  # the common case costs one test
            if isinstance(value, bool):
                value = int(value)
            else:
                raise ir.error(f"@Runtime '{_call(fn, args)}' returned {show_value(value)}, not an integer in 0..{out - 1}",
                               fn, f"return an integer in 0..{out - 1} for every argument, or widen the range")
        if not 0 <= value < out:
            raise ir.error(f"@Runtime '{_call(fn, args)}' returned {value}, outside its output range 0..{out - 1}", fn,
                           f"return an integer in 0..{out - 1} for every argument, or widen the range")
        values.append(value)
    table = np.array(values, dtype=np.int64).reshape(tuple(arg_sizes))
    table.setflags(write=False)
    return table


def _call(fn: ast.FunctionDef, args: tuple) -> str:
    return f"{fn.name}({', '.join(map(str, args))})"


def _line_of(ir: ModuleIR, node: ast.AST) -> Span:
    """The whole source line of ``node``, from its indentation on (where a call failed)."""
    line = getattr(node, "lineno", 0)
    lines = ir.source.splitlines()
    if not 1 <= line <= len(lines):
        return ir.span(node)
    text = lines[line - 1]
    indent = len(text) - len(text.lstrip())
    return Span(ir.filename, line, indent, line, len(text.rstrip()))

