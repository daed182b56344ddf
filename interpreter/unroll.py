"""Pass 3: statements -> a flat list of :class:`~.ir.Assign` (see ir.py for the meaning).

``for`` loops are unrolled, ``with a as i`` becomes one branch per value of
``a``, ``if`` on an element becomes atoms ``a in {values}``, ``@Inline`` bodies
are substituted, constants are folded. Every case of one target becomes one
Assign, emitted after the top-level statement that completes it, so each
element is assigned before any statement reads it.

Checks that need loop values happen here, with the user's span: index
ranges, argument and target ranges, single assignment (two cases of one
element must be provably disjoint), and no read of an element before it is
assigned on every path (a value assigned earlier on the *same* path is
substituted instead).
"""

from __future__ import annotations

import ast
import copy
from fractions import Fraction
from typing import Optional, Union

from .errors import SourceError
from .ir import Assign, Atom, Call, Case, Const, Elem, Expr, FlatModel, TensorArg, TensorElem
from .parse import ModuleIR, NotConstant, const_eval

Path = dict[Elem, frozenset]  # conjunction of atoms, one per element


class _Unroller:
    def __init__(self, ir: ModuleIR):
        self.ir = ir
        self.out: list[Optional[Assign]] = []
        self.cases: dict[Elem, list[Case]] = {}  # all cases so far, per target
        self.emitted: dict[Elem, int] = {}  # target -> index in out
        self.total: set[Elem] = set()
        self.pending: dict[Elem, ast.AST] = {}  # targets touched in the current top-level statement
        self.bindings: list[dict[Elem, Expr]] = []  # values assigned on the current path, innermost last

    # ---- helpers

    def err(self, message: str, node: ast.AST, fix: Optional[str] = None) -> SourceError:
        return self.ir.error(message, node, fix)

    def const(self, node: ast.AST, env: dict, what: str = "this expression") -> int:
        try:
            return const_eval(node, env)
        except NotConstant as e:
            raise self.err(f"{what} must be a compile-time constant, but {e.why}", e.node) from None

    def is_const(self, node: ast.AST, env: dict) -> bool:
        try:
            const_eval(node, env)
            return True
        except NotConstant:
            return False

    def ref(self, node: ast.AST, env: dict) -> Union[Elem, TensorElem, None]:
        """The element a Name/Subscript refers to, with indices checked; None if not a declaration."""
        base, idx_nodes = node, []
        if isinstance(node, ast.Subscript):
            base = node.value
            idx_nodes = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            while isinstance(base, ast.Subscript):  # tape[t][i]
                inner = base.slice.elts if isinstance(base.slice, ast.Tuple) else [base.slice]
                idx_nodes = inner + idx_nodes
                base = base.value
        if not isinstance(base, ast.Name):
            return None
        decl = self.ir.decls.get(base.id) or self.ir.tensors.get(base.id)
        if decl is None:
            return None
        if len(idx_nodes) != len(decl.shape):
            raise self.err(f"'{base.id}' has {len(decl.shape)} dimension(s) {list(decl.shape)} but is indexed with "
                           f"{len(idx_nodes)} index(es)", node, f"write {base.id}[{', '.join('i' * 1 for _ in decl.shape)}]"
                           if decl.shape else f"use '{base.id}' without an index")
        index = []
        for i_node, size in zip(idx_nodes, decl.shape):
            i = self.const(i_node, env, f"an index of '{base.id}'")
            if not 0 <= i < size:
                raise self.err(f"index {i} is out of range for '{base.id}' (size {size}); indices run 0..{size - 1}",
                               i_node)
            index.append(i)
        cls = Elem if base.id in self.ir.decls else TensorElem
        return cls(base.id, tuple(index))

    def size_of(self, e: Expr) -> Optional[int]:
        if isinstance(e, Elem):
            return self.ir.decls[e.name].size
        if isinstance(e, Call):
            fn = self.ir.runtimes.get(e.fn) or self.ir.learns.get(e.fn)
            return fn.out_size
        return None

    # ---- expressions

    def read(self, elem: Elem, node: ast.AST) -> Expr:
        for frame in reversed(self.bindings):
            if elem in frame:
                return frame[elem]
        decl = self.ir.decls[elem.name]
        if decl.kind in ("input", "param"):
            return elem
        if elem in self.pending:
            raise self.err(f"'{elem}' is read on a path where it has no value (it is assigned only on other "
                           "branches of this statement)", node, "assign it on this path first, or before the branch")
        if elem not in self.emitted:
            raise self.err(f"'{elem}' is read before it is assigned", node, "assign it in an earlier statement")
        if elem not in self.total:
            raise self.err(f"'{elem}' is read but is not assigned on every path", node,
                           "assign it in every branch (add an else), or read it only where it is assigned")
        return elem

    def expr(self, node: ast.AST, env: dict, want: Optional[int], arg_of: Optional[str] = None) -> Expr:
        """Lower an expression; ``want`` is the range it must have (None: any)."""
        if self.is_const(node, env):
            value = self.const(node, env)
            if want is not None and not 0 <= value < want:
                raise self.err(f"constant {value} is out of range 0..{want - 1}{arg_of or ''}", node,
                               f"use a value in 0..{want - 1}")
            return Const(value)
        if isinstance(node, ast.Call):
            return self.call(node, env, want)
        ref = self.ref(node, env)
        if ref is None:
            raise self.err("expected a constant, a variable element or a function call", node)
        if isinstance(ref, TensorElem):
            raise self.err(f"tensor '{ref.name}' can only be passed to a @Learn function", node,
                           "wrap it in a @Learn call, e.g. net(img[y, x])")
        value = self.read(ref, node)
        size = self.ir.decls[ref.name].size
        if want is not None and size != want:
            raise self.err(f"'{ref}' ranges over 0..{size - 1} but 0..{want - 1} is expected{arg_of or ''}", node,
                           "convert it with a @Runtime function of the right ranges")
        return value

    def call(self, node: ast.Call, env: dict, want: Optional[int]) -> Expr:
        name = node.func.id
        if name in self.ir.inlines:
            return self.inline(node, env, want)
        if name in ("min", "max"):
            raise self.err(f"{name}() is only available on constants", node)
        rt, learn = self.ir.runtimes.get(name), self.ir.learns.get(name)
        specs = rt.arg_sizes if rt else learn.args
        args: list[Expr] = []
        for k, (a, spec) in enumerate(zip(node.args, specs)):
            where = f" (argument {k + 1} of '{name}')"
            if isinstance(spec, TensorArg):
                ref = self.ref(a, env)
                if not isinstance(ref, TensorElem):
                    raise self.err(f"argument {k + 1} of '{name}' must be a tensor element{where}", a)
                dims = self.ir.tensors[ref.name].elem_shape
                if dims != spec.dims:
                    raise self.err(f"tensor '{ref.name}' has shape {list(dims)} but '{name}' expects "
                                   f"Tensor{tuple(spec.dims)}", a)
                args.append(ref)
            else:
                args.append(self.expr(a, env, spec, where))
        out = (rt or learn).out_size
        if want is not None and out != want:
            raise self.err(f"'{name}' returns 0..{out - 1} but 0..{want - 1} is expected", node,
                           "declare the function with the target's range")
        return Call(name, tuple(args), self.ir.span(node))

    def inline(self, node: ast.Call, env: dict, want: Optional[int]) -> Expr:
        fn = self.ir.inlines[node.func.id]
        body = _substitute(fn, node.args)
        if not body or not isinstance(body[-1], ast.Return):
            raise self.err(f"@Inline '{fn.name}' is used as a value but does not end with `return ...`", node)
        for stmt in body[:-1]:
            self.statement(stmt, env, {})
        return self.expr(body[-1].value, env, want)

    # ---- statements

    def top(self, node: ast.stmt, env: dict) -> None:
        """A top-level statement (loops are transparent): unroll it, then emit what it completed."""
        if isinstance(node, ast.For):
            for value in self.loop_range(node, env):
                for stmt in node.body:
                    self.top(stmt, {**env, node.target.id: value})
            return
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name):
            for stmt in _substitute(self.ir.inlines[node.value.func.id], node.value.args):
                self.top(stmt, env)
            return
        self.pending, self.bindings = {}, [{}]
        self.statement(node, env, {})
        for target, where in self.pending.items():
            self.emit(target, where)
        self.pending = {}

    def loop_range(self, node: ast.For, env: dict) -> range:
        return range(*(self.const(a, env, "a range() bound") for a in node.iter.args))

    def statement(self, node: ast.stmt, env: dict, path: Path) -> None:
        if isinstance(node, (ast.Pass, ast.Expr)) and not (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
            return
        if isinstance(node, ast.For):
            for value in self.loop_range(node, env):
                for stmt in node.body:
                    self.statement(stmt, {**env, node.target.id: value}, path)
            return
        if isinstance(node, ast.With):
            self.with_(node, list(node.items), env, path)
            return
        if isinstance(node, ast.If):
            self.if_(node, env, path)
            return
        call = node.value
        if isinstance(call.func, ast.Name):  # an @Inline called as a statement
            for stmt in _substitute(self.ir.inlines[call.func.id], call.args):
                self.statement(stmt, env, path)
            return
        self.assign(call, env, path)

    def assign(self, call: ast.Call, env: dict, path: Path) -> None:
        target = self.ref(call.func.value, env)
        if not isinstance(target, Elem):
            raise self.err("only Var and Output elements can be assigned", call.func.value)
        decl = self.ir.decls[target.name]
        if decl.kind in ("input", "param"):
            raise self.err(f"'{target}' is an {decl.kind.capitalize()} and cannot be assigned", call.func.value,
                           "declare it as Var(...) or Output(...) to assign it")
        if call.func.attr == "set_to_constant":
            value = self.const(call.args[0], env, "the argument of set_to_constant")
            if not 0 <= value < decl.size:
                raise self.err(f"constant {value} is out of range for '{target}' (0..{decl.size - 1})", call.args[0])
            expr: Expr = Const(value)
        else:
            expr = self.expr(call.args[0], env, decl.size, f" for '{target}'")
        case = Case(tuple(Atom(e, v) for e, v in sorted(path.items(), key=lambda kv: (kv[0].name, kv[0].index))),
                    expr, self.ir.span(call))
        for other in self.cases.get(target, []):
            if not _disjoint(case, other):
                raise self.err(f"'{target}' is assigned twice on one path (first at {other.span})", call,
                               "each element is assigned at most once on any path (single assignment)")
        self.cases.setdefault(target, []).append(case)
        self.pending.setdefault(target, call)
        self.bindings[-1][target] = expr

    def branch(self, body: list[ast.stmt], env: dict, path: Path) -> None:
        self.bindings.append({})
        for stmt in body:
            self.statement(stmt, env, path)
        self.bindings.pop()

    def with_(self, node: ast.With, items: list, env: dict, path: Path) -> None:
        if not items:
            self.branch(node.body, env, path)
            return
        item, rest = items[0], items[1:]
        var = item.optional_vars.id
        if self.is_const(item.context_expr, env):
            self.with_(node, rest, {**env, var: self.const(item.context_expr, env)}, path)
            return
        elem = self.ref(item.context_expr, env)
        if not isinstance(elem, Elem):
            raise self.err("`with` needs a variable element (or a constant)", item.context_expr)
        self.read(elem, item.context_expr)
        for value in range(self.ir.decls[elem.name].size):
            sub = _restrict(path, elem, frozenset([value]))
            if sub is not None:
                self.bindings.append({})
                self.with_(node, rest, {**env, var: value}, sub)
                self.bindings.pop()

    def if_(self, node: ast.If, env: dict, path: Path) -> None:
        if self.is_const(node.test, env):
            self.branch(node.body if self.const(node.test, env) else node.orelse, env, path)
            return
        elem, values = self.condition(node.test, env)
        everything = frozenset(range(self.ir.decls[elem.name].size))
        for vals, body in ((values, node.body), (everything - values, node.orelse)):
            sub = _restrict(path, elem, vals)
            if sub is not None and body:
                self.branch(body, env, sub)

    def condition(self, test: ast.AST, env: dict) -> tuple[Elem, frozenset]:
        ok = isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq))
        if ok:
            left, right = test.left, test.comparators[0]
            if self.is_const(left, env):
                left, right = right, left
            elem = self.ref(left, env)
            if isinstance(elem, Elem) and self.is_const(right, env):
                self.read(elem, left)
                value, size = self.const(right, env), self.ir.decls[elem.name].size
                if not 0 <= value < size:
                    raise self.err(f"'{elem}' ranges over 0..{size - 1}, so it is never {value}", right)
                values = frozenset([value])
                return elem, values if isinstance(test.ops[0], ast.Eq) else frozenset(range(size)) - values
        raise self.err("a condition must compare a variable element with a constant (`x == c` or `x != c`), or be "
                       "a compile-time constant", test, "to compare two variables use `with a as i: if b == i: ...`")

    def emit(self, target: Elem, where: ast.AST) -> None:
        cases = tuple(self.cases[target])
        total = _covers(cases, self.ir)
        assign = Assign(target, cases, total, self.ir.span(where))
        if target in self.emitted:  # more cases from a later statement: move the Assign after it
            self.out[self.emitted[target]] = None
        self.emitted[target] = len(self.out)
        self.out.append(assign)
        if total:
            self.total.add(target)


def _restrict(path: Path, elem: Elem, values: frozenset) -> Optional[Path]:
    """The path with ``elem in values`` added; None if that is impossible."""
    merged = path.get(elem, values) & values
    if not merged:
        return None
    return {**path, elem: merged}


def _disjoint(a: Case, b: Case) -> bool:
    atoms = {x.elem: x.values for x in a.cond}
    return any(y.elem in atoms and not (atoms[y.elem] & y.values) for y in b.cond)


def _covers(cases: tuple[Case, ...], ir: ModuleIR) -> bool:
    """Disjoint cases cover every path iff their probabilities under uniform marginals sum to 1."""
    total = Fraction(0)
    for case in cases:
        p = Fraction(1)
        for atom in case.cond:
            p *= Fraction(len(atom.values), ir.decls[atom.elem.name].size)
        total += p
    return total == 1


def _substitute(fn: ast.FunctionDef, args: list[ast.expr]) -> list[ast.stmt]:
    """The body of an @Inline function with its parameters replaced by the call's argument expressions."""
    mapping = {p.arg: a for p, a in zip(fn.args.args, args)}

    class Replace(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:  # noqa: N802 - ast API
            return copy.deepcopy(mapping[node.id]) if node.id in mapping else node

    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return [Replace().visit(copy.deepcopy(s)) for s in body]


def unroll(ir: ModuleIR) -> FlatModel:
    """Unroll a checked model into a :class:`FlatModel`.

    Raises:
        SourceError: index/range errors, double assignment, reads before assignment.

    Example:
        >>> from .parse import parse
        >>> flat = unroll(parse("x = Input(2)\\ny = Output(2)\\ny.set_to(x)\\n"))
        >>> flat.statements[0].target
        Elem(name='y', index=())
    """
    u = _Unroller(ir)
    for stmt in ir.body:
        u.top(stmt, dict(ir.constants))
    for d in ir.decls.values():
        if d.kind == "output" and not any(e.name == d.name for e in u.emitted):
            raise SourceError(f"output '{d.name}' is never assigned", d.span, ir.source,
                              f"assign it, e.g. {d.name}.set_to(...)")
    return FlatModel(
        decls=dict(ir.decls), tensors=dict(ir.tensors), runtimes=dict(ir.runtimes), learns=dict(ir.learns),
        statements=tuple(a for a in u.out if a is not None), constants=dict(ir.constants),
        source=ir.source, filename=ir.filename,
    )
