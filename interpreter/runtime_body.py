"""The ``@Runtime`` sublanguage: a ``@Runtime`` body checked and turned into a bounded evaluator.

A ``@Runtime`` body is never run as Python. :func:`compile_body` checks the
function's :mod:`ast` against the sublanguage below (anything else is a
:class:`SourceError` at the offending line and column, before anything runs)
and turns it into a tree of small closures that only compute on integers;
``runtime_eval.tabulate`` calls it on every argument tuple to build the lookup table.

The sublanguage, on integers (``True``/``False`` count as 1/0):

- expressions: int and bool literals; the function's parameters, its local
  variables and the model's constants; ``+ - * // % ** << >> & | ^``; unary
  ``- + ~ not``; comparisons ``== != < <= > >=`` (chains too); ``and``/``or``;
  ``a if c else b``; calls of ``abs``, ``bool``, ``int`` (one argument) and
  ``min``, ``max`` (two or more);
- statements: ``return e``, ``name = e``, ``name op= e``, ``if/elif/else``,
  ``for name in range(...)`` with ``break``/``continue``, ``pass``, docstrings.

Bounds, each a clear error: every value stays within ``±2**64``; a call runs at
most the steps its :class:`Run` allows (a step is one statement executed, so a
loop iteration is at least one); expressions and blocks nest at most ``MAX_DEPTH`` deep.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any, Optional

from .errors import SourceError
from .module_ir import ModuleIR

__all__ = ["MAX_DEPTH", "VALUE_BOUND", "BodyError", "OutOfSteps", "Run", "compile_body", "show_value"]

VALUE_BOUND = 2**64  # |value| of every integer a body computes
MAX_DEPTH = 100
BUILTINS = {"abs": (abs, 1), "bool": (bool, 1), "int": (int, 1), "max": (max, 2), "min": (min, 2)}  # name: (fn, min args)
_ONE_ARG = ("abs", "bool", "int")
_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod, ast.Pow: operator.pow, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
}  # fmt: skip
_OP_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**", ast.LShift: "<<",
            ast.RShift: ">>", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.Div: "/", ast.MatMult: "@"}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}  # fmt: skip
_STATEMENT_NAMES = {
    ast.While: "`while` loops", ast.With: "`with` blocks", ast.Try: "`try` blocks", ast.Raise: "`raise`",
    ast.Import: "imports", ast.ImportFrom: "imports", ast.FunctionDef: "nested functions", ast.Lambda: "lambdas",
    ast.ClassDef: "classes", ast.Global: "`global`", ast.Nonlocal: "`nonlocal`", ast.Delete: "`del`",
    ast.Assert: "`assert`", ast.AsyncFunctionDef: "nested functions", ast.AnnAssign: "annotated assignments",
}  # fmt: skip
_EXPR_NAMES = {
    ast.Attribute: "attribute access (`x.y`)", ast.Subscript: "subscripts (`x[i]`)", ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions", ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions", ast.List: "lists", ast.Tuple: "tuples", ast.Set: "sets",
    ast.Dict: "dicts", ast.Starred: "`*` unpacking", ast.NamedExpr: "`:=`", ast.JoinedStr: "f-strings",
    ast.Await: "`await`", ast.Yield: "`yield`", ast.YieldFrom: "`yield`", ast.Slice: "slices",
}  # fmt: skip

Env = dict[str, Any]
Expr = Callable[[Env], Any]
Stmt = Callable[[Env, "Run"], Any]
_BREAK, _CONTINUE = object(), object()


class BodyError(Exception):
    """A body failed while running (division by zero, a bound exceeded): ``node`` is where."""

    def __init__(self, node: ast.AST, what: str, fix: Optional[str] = None):
        super().__init__(what)
        self.node, self.what, self.fix = node, what, fix


class OutOfSteps(Exception):
    """A call used up its steps at ``node``."""

    def __init__(self, node: ast.AST):
        super().__init__()
        self.node = node


class Run:
    """Step accounting for one call."""

    __slots__ = ("steps", "limit")

    def __init__(self, limit: int):
        self.steps, self.limit = 0, limit



def compile_body(ir: ModuleIR, fn: ast.FunctionDef) -> Callable[[tuple, Run], Any]:
    """Check ``fn`` against the sublanguage and build its evaluator ``(args, run) -> value``.

    Raises:
        SourceError: at the first construct outside the sublanguage.
    """
    return _Compiler(ir, fn).function()


class _Compiler:
    def __init__(self, ir: ModuleIR, fn: ast.FunctionDef):
        self.ir, self.fn = ir, fn
        self.params = self._params()
        assigned = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        self.locals = set(self.params) | assigned  # Python's rule: assigned anywhere = local everywhere

    def error(self, message: str, node: ast.AST, fix: Optional[str] = None) -> SourceError:
        return self.ir.error(f"in @Runtime '{self.fn.name}': {message}", node, fix)

    def _params(self) -> list[str]:
        a = self.fn.args
        odd = a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg or a.defaults
        if odd:
            raise self.error("parameters must be plain names (no defaults, `*`, `**` or `/`)", self.fn,
                             "write `def f(a, b):` with one parameter per argument range")
        names: list[str] = []
        for arg in a.args:
            if arg.annotation is not None:
                raise self.error(f"parameter '{arg.arg}' has an annotation, which @Runtime bodies do not take",
                                 arg.annotation, "remove the annotation")
            self._check_name(arg.arg, arg)
            if arg.arg in names:
                raise self.error(f"parameter '{arg.arg}' is declared twice", arg, "give each parameter its own name")
            names.append(arg.arg)
        if self.fn.returns is not None:
            raise self.error("a return annotation is not supported", self.fn.returns, "remove `-> ...`")
        return names

    def _check_name(self, name: str, node: ast.AST) -> None:
        if name.startswith("__") or name.endswith("__"):
            raise self.error(f"the name '{name}' is not allowed (names may not start or end with '__')", node,
                             "rename it")

    def function(self) -> Callable[[tuple, Run], Any]:
        params = tuple(self.params)
        body = [s for s in self.fn.body if not _is_docstring(s)]
        if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:  # most bodies: one step
            only, value = body[0], self.expr(body[0].value, 1)

            def expression(args: tuple, run: Run) -> Any:
                run.steps += 1
                if run.steps > run.limit:
                    raise OutOfSteps(only)
                return value(dict(zip(params, args)))

            return expression
        block = self.block(self.fn.body, depth=0, in_loop=False)

        def call(args: tuple, run: Run) -> Any:
            signal = block(dict(zip(params, args)), run)
            return signal[0] if isinstance(signal, tuple) else None

        return call

    # ------------------------------------------------------------ statements

    def block(self, stmts: list[ast.stmt], depth: int, in_loop: bool) -> Stmt:
        steps = [(s, self.statement(s, depth, in_loop)) for s in stmts if not _is_docstring(s)]
        if not steps:  # only docstrings
            return lambda env, run: None

        def run_block(env: Env, run: Run) -> Any:
            for node, step in steps:
                run.steps += 1
                if run.steps > run.limit:
                    raise OutOfSteps(node)
                signal = step(env, run)
                if signal is not None:
                    return signal
            return None

        return run_block

    def statement(self, s: ast.stmt, depth: int, in_loop: bool) -> Stmt:
        if depth > MAX_DEPTH:
            raise self.error(f"statements nest more than {MAX_DEPTH} deep", s, "flatten the body")
        if isinstance(s, ast.Return):
            if s.value is None:
                raise self.error("a bare `return` gives no value", s, "return an integer, e.g. `return 0`")
            value = self.expr(s.value, depth + 1)
            return lambda env, run: (value(env),)
        if isinstance(s, ast.Assign):
            if len(s.targets) != 1 or not isinstance(s.targets[0], ast.Name):
                raise self.error("only `name = expression` assignments are supported", s, "assign one name at a time")
            return self._assign(s.targets[0], self.expr(s.value, depth + 1))
        if isinstance(s, ast.AugAssign):
            if not isinstance(s.target, ast.Name):
                raise self.error("only `name op= expression` is supported", s.target, "assign to a plain name")
            read = ast.copy_location(ast.Name(s.target.id, ast.Load()), s.target)
            combined = ast.copy_location(ast.BinOp(read, s.op, s.value), s)
            return self._assign(s.target, self.expr(combined, depth + 1))
        if isinstance(s, ast.If):
            test = self.expr(s.test, depth + 1)
            then = self.block(s.body, depth + 1, in_loop)
            other = self.block(s.orelse, depth + 1, in_loop) if s.orelse else None
            if other is None:
                return lambda env, run: then(env, run) if test(env) else None
            return lambda env, run: then(env, run) if test(env) else other(env, run)
        if isinstance(s, ast.For):
            return self._for(s, depth)
        if isinstance(s, (ast.Break, ast.Continue)):
            word = "break" if isinstance(s, ast.Break) else "continue"
            if not in_loop:
                raise self.error(f"`{word}` outside a `for` loop", s, f"remove the `{word}`")
            signal = _BREAK if isinstance(s, ast.Break) else _CONTINUE
            return lambda env, run: signal
        if isinstance(s, ast.Pass):
            return lambda env, run: None
        if isinstance(s, ast.Expr):
            raise self.error("an expression on its own does nothing here", s, "assign it to a name or return it")
        what = _STATEMENT_NAMES.get(type(s), f"the statement {type(s).__name__}")
        raise self.error(f"not allowed in a @Runtime body: {what}", s, _SUBLANGUAGE)

    def _assign(self, target: ast.Name, value: Expr) -> Stmt:
        self._check_name(target.id, target)
        name = target.id

        def assign(env: Env, run: Run) -> None:
            env[name] = value(env)

        return assign

    def _for(self, s: ast.For, depth: int) -> Stmt:
        if not isinstance(s.target, ast.Name):
            raise self.error("a `for` loop variable must be a plain name", s.target, "write `for i in range(n):`")
        it = s.iter
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
                and it.func.id not in self.locals and 1 <= len(it.args) <= 3 and not it.keywords):
            raise self.error("a `for` loop must iterate over range(stop), range(start, stop) or "
                             "range(start, stop, step)", it, "loop over a range of integers")
        if s.orelse:
            raise self.error("`for ... else` is not supported", s.orelse[0], "move the `else` body after the loop")
        self._check_name(s.target.id, s.target)
        bounds = [self.expr(a, depth + 1) for a in it.args]
        body = self.block(s.body, depth + 1, in_loop=True)
        name = s.target.id

        def loop(env: Env, run: Run) -> Any:
            values = [b(env) for b in bounds]
            if len(values) == 3 and values[2] == 0:
                raise BodyError(it, "raised ValueError: range() step must not be zero")
            for i in range(*values):
                env[name] = i
                signal = body(env, run)
                if signal is _BREAK:
                    break
                if signal is not None and signal is not _CONTINUE:
                    return signal
            return None

        return loop

    # ----------------------------------------------------------- expressions

    def expr(self, e: ast.expr, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            raise self.error(f"the expression nests more than {MAX_DEPTH} deep", e, "split it with local variables")
        if isinstance(e, ast.Constant):
            value = e.value
            if not isinstance(value, int):  # bools are ints
                raise self.error(f"the literal {value!r} is not an integer; @Runtime bodies compute on integers",
                                 e, "use integer literals (or True/False)")
            _bounded(value, e, lambda: self.error(f"the literal {show_value(value)} exceeds ±2**64", e))
            return lambda env: value
        if isinstance(e, ast.Name):
            return self._name(e)
        if isinstance(e, ast.BinOp):
            return self._binop(e, depth)
        if isinstance(e, ast.UnaryOp):
            operand = self.expr(e.operand, depth + 1)
            if isinstance(e.op, ast.USub):
                return lambda env: -operand(env)
            if isinstance(e.op, ast.UAdd):
                return lambda env: +operand(env)
            if isinstance(e.op, ast.Not):
                return lambda env: not operand(env)
            return lambda env: ~operand(env)
        if isinstance(e, ast.Compare):
            return self._compare(e, depth)
        if isinstance(e, ast.BoolOp):
            parts = [self.expr(v, depth + 1) for v in e.values]
            if isinstance(e.op, ast.And):
                def both(env: Env) -> Any:
                    for part in parts:
                        value = part(env)
                        if not value:
                            return value
                    return value
                return both

            def either(env: Env) -> Any:
                for part in parts:
                    value = part(env)
                    if value:
                        return value
                return value
            return either
        if isinstance(e, ast.IfExp):
            test, then, other = (self.expr(x, depth + 1) for x in (e.test, e.body, e.orelse))
            return lambda env: then(env) if test(env) else other(env)
        if isinstance(e, ast.Call):
            return self._call(e, depth)
        what = _EXPR_NAMES.get(type(e), f"the expression {type(e).__name__}")
        raise self.error(f"not allowed in a @Runtime body: {what}", e, _SUBLANGUAGE)

    def _name(self, e: ast.Name) -> Expr:
        name = e.id
        self._check_name(name, e)
        if name in self.params:
            return lambda env: env[name]
        if name in self.locals:
            def local(env: Env) -> Any:
                try:
                    return env[name]
                except KeyError:
                    raise BodyError(e, f"reads the local variable '{name}' before any value was assigned to it",
                                    "assign it on every path before reading it") from None
            return local
        if name in self.ir.constants:
            value = self.ir.constants[name]
            _bounded(value, e, lambda: self.error(f"the constant '{name}' ({show_value(value)}) exceeds ±2**64", e))
            return lambda env: value
        if name in BUILTINS or name == "range":
            raise self.error(f"'{name}' is a function here; call it", e, f"write e.g. {name}(x, y)")
        known = sorted(self.ir.constants)
        shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
        raise self.error(f"unknown name '{name}': a @Runtime body reads only its parameters "
                         f"({', '.join(self.params) or 'none'}), its local variables and the model's constants "
                         f"({shown or 'none'})", e, "declare it as a module-level integer constant, or pass it in")

    def _binop(self, e: ast.BinOp, depth: int) -> Expr:
        op = _BINOPS.get(type(e.op))
        if op is None:
            text = _OP_TEXT.get(type(e.op), type(e.op).__name__)
            fix = "use // for integer division" if isinstance(e.op, ast.Div) else _SUBLANGUAGE
            raise self.error(f"operator {text} is not supported: @Runtime bodies compute on integers", e, fix)
        left, right = self.expr(e.left, depth + 1), self.expr(e.right, depth + 1)
        text = _OP_TEXT[type(e.op)]
        if isinstance(e.op, (ast.Add, ast.Sub, ast.Mult, ast.Pow, ast.LShift)):  # the ones that can grow a value
            grows = isinstance(e.op, (ast.Pow, ast.LShift))

            def growing(env: Env) -> Any:
                a, b = left(env), right(env)
                if grows:
                    _check_growth(e, text, a, b)
                    try:
                        value = op(a, b)
                    except ValueError as exc:  # a negative shift count
                        raise BodyError(e, f"raised ValueError: {exc}") from None
                else:
                    value = op(a, b)
                if not -VALUE_BOUND <= value <= VALUE_BOUND:
                    raise BodyError(e, f"computes {show_value(a)} {text} {show_value(b)} = {show_value(value)}, beyond ±2**64",
                                    "keep intermediate values small, e.g. reduce them with % as you go")
                return value

            return growing

        def shrinking(env: Env) -> Any:  # // % >> & | ^ of bounded values stay (about) as small as their operands
            a, b = left(env), right(env)
            try:
                return op(a, b)
            except (ZeroDivisionError, ValueError) as exc:
                raise BodyError(e, f"raised {type(exc).__name__}: {exc}") from None

        return shrinking

    def _compare(self, e: ast.Compare, depth: int) -> Expr:
        ops = []
        for op in e.ops:
            fn = _CMPOPS.get(type(op))
            if fn is None:
                raise self.error(f"comparison {type(op).__name__} is not supported (only == != < <= > >=)", e,
                                 "compare integers with == != < <= > >=")
            ops.append(fn)
        first = self.expr(e.left, depth + 1)
        rest = [self.expr(c, depth + 1) for c in e.comparators]
        pairs = list(zip(ops, rest))

        def compare(env: Env) -> bool:
            left = first(env)
            for fn, right_of in pairs:
                right = right_of(env)
                if not fn(left, right):
                    return False
                left = right
            return True

        return compare

    def _call(self, e: ast.Call, depth: int) -> Expr:
        if isinstance(e.func, ast.Attribute):
            raise self.error(f"not allowed in a @Runtime body: {_EXPR_NAMES[ast.Attribute]}", e.func, _SUBLANGUAGE)
        name = e.func.id if isinstance(e.func, ast.Name) else None
        if name is None or name not in BUILTINS or name in self.locals or name in self.ir.constants:
            if name == "range":
                raise self.error("range(...) may only be the iterable of a `for` loop", e,
                                 "write `for i in range(n):`")
            called = name if name is not None else ast.unparse(e.func)[:40]
            raise self.error(f"'{called}' cannot be called in a @Runtime body; it may call only "
                             f"{', '.join(sorted(BUILTINS))}", e.func, _SUBLANGUAGE)
        if e.keywords or any(isinstance(a, ast.Starred) for a in e.args):
            raise self.error(f"{name}() takes plain positional arguments here", e, f"write {name}(x, y)")
        fn, least = BUILTINS[name]
        count = len(e.args)
        if (name in _ONE_ARG and count != 1) or count < least:
            want = "exactly one argument" if name in _ONE_ARG else f"at least {least} arguments"
            raise self.error(f"{name}() takes {want} here, but got {count}", e, f"write e.g. {name}(x{', y' * (least - 1)})")
        args = [self.expr(a, depth + 1) for a in e.args]
        if count == 1:
            only = args[0]
            return lambda env: fn(only(env))
        return lambda env: fn(*[a(env) for a in args])


_SUBLANGUAGE = ("@Runtime bodies use integers, parameters, constants, local variables, arithmetic, comparisons, "
                "and/or/not, `x if c else y`, abs/bool/int/min/max, if/elif/else, `for i in range(...)` and return")


def _is_docstring(s: ast.stmt) -> bool:
    return isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str)


def _bounded(value: int, node: ast.AST, error: Callable[[], SourceError]) -> None:
    if not -VALUE_BOUND <= value <= VALUE_BOUND:
        raise error()


def _check_growth(e: ast.BinOp, text: str, a: int, b: int) -> None:
    """``a ** b`` and ``a << b``: refuse before computing what would exceed the bound (or not be an integer)."""
    if b < 0 and text == "**":
        raise BodyError(e, f"computes {show_value(a)} ** {show_value(b)}: a negative exponent gives a fraction, "
                           "and @Runtime values are integers", "use a non-negative exponent")
    stays_small = a in (0, 1, -1) if text == "**" else a == 0  # the only bases whose result stays bounded
    if b > 64 and not stays_small:
        raise BodyError(e, f"computes {show_value(a)} {text} {show_value(b)}, beyond ±2**64",
                        "keep intermediate values small, e.g. reduce them with % as you go")


def show_value(value: Any) -> str:
    """``repr(value)``, or its size in bits for a huge integer (never a 5000-digit message)."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"a {value.bit_length()}-bit integer"
    return repr(value)
