"""The tree IR between ``parse`` and ``unroll``: a :class:`ModuleIR`.

``parse`` resolves everything that is module-level and static (constants,
hypers, declarations, ``@Runtime`` tables, ``@Learn`` signatures) and keeps
the executable statements as :mod:`ast` nodes, which already carry line and
column for every construct; ``check`` and ``unroll`` walk those nodes. Also
here: :func:`const_eval`, the one compile-time integer evaluator all passes
share, so constants mean the same thing everywhere.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Union

from .errors import SourceError
from .ir import Decl, LearnFn, RuntimeFn, Span, TensorDecl


@dataclass
class ModuleIR:
    """A parsed model: everything declared, and the executable statements as ast."""

    source: str
    filename: str
    constants: dict[str, int] = field(default_factory=dict)
    decls: dict[str, Decl] = field(default_factory=dict)
    tensors: dict[str, TensorDecl] = field(default_factory=dict)
    runtimes: dict[str, RuntimeFn] = field(default_factory=dict)
    learns: dict[str, LearnFn] = field(default_factory=dict)
    inlines: dict[str, ast.FunctionDef] = field(default_factory=dict)
    body: list[ast.stmt] = field(default_factory=list)

    def span(self, node: ast.AST) -> Span:
        return span_of(node, self.filename)

    def error(self, message: str, node: ast.AST, fix: str | None = None) -> SourceError:
        return SourceError(message, self.span(node), self.source, fix)

    def names(self) -> set[str]:
        """Every module-level name a statement may refer to."""
        return set(self.constants) | set(self.decls) | set(self.tensors) | set(self.runtimes) | set(
            self.learns) | set(self.inlines)


def span_of(node: ast.AST, filename: str) -> Span:
    line = getattr(node, "lineno", 0)
    col = getattr(node, "col_offset", 0)
    return Span(filename, line, col, getattr(node, "end_lineno", line) or line, getattr(node, "end_col_offset", col) or col)


# ---------------------------------------------------------------- constants


_BINOPS = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b, ast.Pow: lambda a, b: a ** b,
}  # fmt: skip
_CMPOPS = {
    ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
}  # fmt: skip


VALUE_BOUND = 2**64  # |value| of every compile-time integer (as in @Runtime bodies)
MAX_NESTING = 100  # how deep expressions and statements may nest (checked by parse on the whole tree)


def show_int(value: int) -> str:
    """An integer for an error message: huge ones by their size, never all their digits."""
    return f"a {value.bit_length()}-bit integer" if value.bit_length() > 128 else str(value)


def nesting(node: ast.AST) -> int:
    """How deep ``node``'s tree is (iteratively: a tree too deep for recursion is measured too)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


class ConstantBound(Exception):
    """Raised by :func:`const_eval` for a constant beyond ``±VALUE_BOUND`` (or a fraction): ``node`` is where."""

    def __init__(self, node: ast.AST, why: str):
        super().__init__(why)
        self.node, self.why = node, why


def _bounded(value: int, node: ast.AST, what: str) -> int:
    if not -VALUE_BOUND <= value <= VALUE_BOUND:
        raise ConstantBound(node, f"{what} is {show_int(value)}, beyond the ±2**64 allowed for constants")
    return value


def _binop(node: ast.BinOp, left: int, right: int) -> int:
    if isinstance(node.op, ast.Pow):  # decide before computing: 9**9**9 must not be computed
        if right < 0:
            raise ConstantBound(node, f"{show_int(left)} ** {show_int(right)} has a negative exponent, so it is not "
                                      "an integer")
        if abs(left) > 1 and right > 64:
            raise ConstantBound(node, f"{show_int(left)} ** {show_int(right)} is beyond the ±2**64 allowed for "
                                      "constants")
    return _bounded(int(_BINOPS[type(node.op)](left, right)), node, "this constant")


class NotConstant(Exception):
    """Raised by :func:`const_eval` for an expression that is not a compile-time constant."""

    def __init__(self, node: ast.AST, why: str):
        super().__init__(why)
        self.node, self.why = node, why


def const_eval(node: ast.AST, env: Mapping[str, object]) -> int:
    """Evaluate a compile-time integer expression (bools count as 0/1).

    Args:
        node: the expression.
        env: constant values by name (non-integer bindings, i.e. aliases, are not constants).

    Returns:
        its integer value.

    Raises:
        NotConstant: the expression reads something that is not a constant.
        ConstantBound: a value beyond ``±VALUE_BOUND`` (checked before ``**`` is computed), or a fraction.

    Example:
        >>> const_eval(ast.parse("max(N, 2) * 3", mode="eval").body, {"N": 4})
        12
    """
    if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int)):
        return _bounded(int(node.value), node, "the literal")
    if isinstance(node, ast.Name):
        value = env.get(node.id)
        if isinstance(value, int):  # unroll also binds local aliases (ast nodes) in env
            return _bounded(value, node, f"'{node.id}'")
        raise NotConstant(node, f"'{node.id}' is not a constant")
    if isinstance(node, ast.BinOp):
        op = _BINOPS.get(type(node.op))
        if op is None:
            hint = "; use // for integer division" if isinstance(node.op, ast.Div) else ""
            raise NotConstant(node, f"operator {type(node.op).__name__} is not supported in constants{hint}")
        left, right = const_eval(node.left, env), const_eval(node.right, env)
        if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and right == 0:
            raise NotConstant(node, "division by zero in a constant expression")
        return _binop(node, left, right)
    if isinstance(node, ast.UnaryOp):
        value = const_eval(node.operand, env)
        if isinstance(node.op, ast.USub):
            return _bounded(-value, node, "this constant")
        if isinstance(node.op, ast.UAdd):
            return value
        if isinstance(node.op, ast.Not):
            return int(not value)
        raise NotConstant(node, "operator ~ is not supported in constants")
    if isinstance(node, ast.Compare):
        left = const_eval(node.left, env)
        for op, right_node in zip(node.ops, node.comparators):
            fn = _CMPOPS.get(type(op))
            if fn is None:
                raise NotConstant(node, f"comparison {type(op).__name__} is not supported")
            right = const_eval(right_node, env)
            if not fn(left, right):
                return 0
            left = right
        return 1
    if isinstance(node, ast.BoolOp):
        values = [const_eval(v, env) for v in node.values]
        return int(all(values) if isinstance(node.op, ast.And) else any(values))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max") and node.args:
        args = [const_eval(a, env) for a in node.args]
        return min(args) if node.func.id == "min" else max(args)
    raise NotConstant(node, f"{type(node).__name__} is not a constant expression")


# ---------------------------------------------------------------- tree rewriting used by unroll

Env = dict[str, Union[int, ast.expr]]  # constants, and local aliases of elements (folded ast)


def unsubscript(node: ast.AST) -> tuple[ast.AST, list[ast.expr]]:
    """``tape[t, i]`` and ``tape[t][i]`` -> (``tape``, [t, i]).

    Example:
        >>> base, idx = unsubscript(ast.parse("tape[t][i]", mode="eval").body)
        >>> base.id, [ast.unparse(i) for i in idx]
        ('tape', ['t', 'i'])
    """
    idx: list[ast.expr] = []
    while isinstance(node, ast.Subscript):
        idx = (node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]) + idx
        node = node.value
    return node, idx


def fold_names(node: ast.expr, env: Env) -> ast.expr:
    """A copy of ``node`` with every name bound in ``env`` replaced by its value (constant or alias).

    Example:
        >>> ast.unparse(fold_names(ast.parse("reg[t + 1]", mode="eval").body, {"t": 2}))
        'reg[2 + 1]'
    """

    class Fold(ast.NodeTransformer):
        def visit_Name(self, name: ast.Name) -> ast.AST:  # noqa: N802 - ast API
            value = env.get(name.id)
            if isinstance(value, ast.AST):
                return copy.deepcopy(value)
            return ast.copy_location(ast.Constant(value), name) if value is not None else name

    return Fold().visit(copy.deepcopy(node))


def substitute(fn: ast.FunctionDef, args: list[ast.expr]) -> list[ast.stmt]:
    """The body of an @Inline function with its parameters replaced by the call's argument expressions.

    Example:
        >>> fn = ast.parse("def h(a, b):\\n    b.set_to(a)").body[0]
        >>> ast.unparse(substitute(fn, [ast.Name("x"), ast.parse("y[0]", mode="eval").body])[0])
        'y[0].set_to(x)'
    """
    mapping = {p.arg: a for p, a in zip(fn.args.args, args)}

    class Replace(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:  # noqa: N802 - ast API
            return copy.deepcopy(mapping[node.id]) if node.id in mapping else node

    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return [Replace().visit(copy.deepcopy(s)) for s in body]
