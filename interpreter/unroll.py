"""Pass 3: statements -> a flat list of :class:`~.ir.Assign` (see ir.py for the meaning).

``for`` loops are unrolled, ``with a as i`` becomes one branch per value of
``a``, ``if`` on an element becomes atoms ``a in {values}`` (both in
``branches.py``), ``@Inline`` bodies are substituted (``inline.py``), constants
are folded. Every case of one target becomes one
Assign, emitted after the top-level statement that completes it, so each
element is assigned before any statement reads it.

Checks that need loop values happen here, with the user's span: index
ranges, argument and target ranges, single assignment (two cases of one
element must be disjoint), and no read of an element before it is assigned
on every path (a value assigned earlier on the *same* path is substituted
instead).

Single assignment is checked structurally, because this pass is on the hot
path of every compile (Fig. 1 at T=45 yields ~5000 cases): every branch
point (one ``if`` or ``with`` *instance*) gets a key, and a case's position is
the sequence of (key, choice) it was reached by; see :class:`.paths.Slot`.
"""

from __future__ import annotations

import ast
import itertools
from typing import Optional, Union

from .branches import CaseSplits
from .errors import SourceError
from .inline import InlineExpansion
from .ir import Assign, Atom, Call, Case, Const, Decl, Elem, Expr, FlatModel, Span, TensorArg, TensorElem
from .module_ir import ConstantBound, Env, ModuleIR, NotConstant, const_eval, fold_names, unsubscript
from .paths import Path, Pos, Slot, covers, elems, within

MAX_WORK = 250_000  # statements, loop iterations, branches and cases: ~1 s of unrolling; Fig. 1 at T=45 costs ~30,000


class _Unroller(InlineExpansion, CaseSplits):
    def __init__(self, ir: ModuleIR):
        self.ir = ir
        self.out: list[Optional[Assign]] = []
        self.cases: dict[Elem, list[Case]] = {}  # all cases so far, per target
        self.slots: dict[Elem, Slot] = {}  # position trie per target
        self.emitted: dict[Elem, int] = {}  # target -> index in out
        self.total: set[Elem] = set()
        self.pending: dict[Elem, ast.AST] = {}  # targets touched in the current top-level statement
        self.bindings: list[dict[Elem, Expr]] = []  # values assigned on the current path, innermost last
        self.keys = itertools.count()
        self.inlining: list[str] = []  # @Inline functions being expanded, to refuse recursion
        self.path: Path = {}  # path and position of the statement being unrolled
        self.pos: Pos = ()
        self.aux: dict[str, Decl] = {}  # hidden Vars holding a branch-local value (see local_value)
        self.aux_of: dict[tuple[Elem, tuple[Case, ...]], Elem] = {}  # reuse one hidden Var per value
        self.work = 0  # statements unrolled so far, see count()
        self.fixed: dict[Elem, tuple[int, Span]] = {}  # Param elements fixed by set_to_constant
        self.params_read: dict[Elem, Span] = {}  # first read of each Param element

    # ---- helpers

    def err(self, message: str, node: ast.AST, fix: Optional[str] = None) -> SourceError:
        return self.ir.error(message, node, fix)

    def const(self, node: ast.AST, env: Env, what: str = "this expression") -> int:
        try:
            return const_eval(node, env)
        except NotConstant as e:
            raise self.err(f"{what} must be a compile-time constant, but {e.why}", e.node,
                           "use literals, module constants, loop or `with` variables") from None

    def try_const(self, node: ast.AST, env: Env) -> Optional[int]:
        try:
            return const_eval(node, env)
        except NotConstant:
            return None

    def ref(self, node: ast.AST, env: Env) -> Union[Elem, TensorElem, None]:
        """The element a Name/Subscript refers to, with indices checked; None if not a declaration."""
        base, idx_nodes = unsubscript(node)
        alias = env.get(base.id) if isinstance(base, ast.Name) else None
        if isinstance(alias, ast.AST):  # `out = reg[i]` earlier: out[j] means reg[i, j]
            base, first = unsubscript(alias)
            idx_nodes = first + idx_nodes
        if not isinstance(base, ast.Name):
            return None
        decl = self.ir.decls.get(base.id) or self.ir.tensors.get(base.id)
        if decl is None:
            return None
        if len(idx_nodes) != len(decl.shape):
            fix = f"write {base.id}[{', '.join('i' for _ in decl.shape)}]" if decl.shape else f"use '{base.id}' without an index"
            raise self.err(f"'{base.id}' has {len(decl.shape)} dimension(s) {list(decl.shape)} but is indexed with "
                           f"{len(idx_nodes)} index(es)", node, fix)
        index = []
        for i_node, size in zip(idx_nodes, decl.shape):
            i = self.const(i_node, env, f"an index of '{base.id}'")
            if not 0 <= i < size:
                raise self.err(f"index {i} is out of range for '{base.id}' (size {size}); indices run 0..{size - 1}",
                               i_node, "check the loop bounds and the declared size")
            index.append(i)
        cls = Elem if base.id in self.ir.decls else TensorElem
        return cls(base.id, tuple(index))

    # ---- expressions

    def read(self, elem: Elem, node: ast.AST) -> Expr:
        for frame in reversed(self.bindings):
            if elem in frame:
                return frame[elem]
        decl = self.ir.decls[elem.name]
        if decl.kind == "param":
            if elem in self.fixed:
                return Const(self.fixed[elem][0])
            self.params_read.setdefault(elem, self.ir.span(node))
            return elem
        if decl.kind == "input":
            return elem
        if elem in self.pending:
            local = self.local_value(elem, node)
            if local is not None:
                return local
            raise self.err(f"'{elem}' is read on a path where it has no value: in this statement it is assigned only "
                           "inside other branches", node,
                           "assign it before the branching statement, or read it in a later top-level statement")
        if elem not in self.emitted:
            raise self.err(f"'{elem}' is read before it is assigned", node, "assign it in an earlier statement")
        if elem not in self.total:
            raise self.err(f"'{elem}' is read but is not assigned on every path", node,
                           "assign it in every branch (add an else), or read it only where it is assigned")
        return elem

    def local_value(self, elem: Elem, node: ast.AST) -> Optional[Elem]:
        """The value of ``elem`` on the current path when nested branches of this path assigned it.

        TerpreT models read such values (``with s: ... state[t + 1].set_to(...)``
        then ``halted[t + 1].set_to(f(state[t + 1]))`` in the same branch). This
        statement's cases of ``elem`` that agree with the current path, with the
        path's own atoms dropped, become the Assign of a hidden Var, emitted at
        once: the branch-local value TerpreT's FMGD mixes (exactly ``elem`` in
        discrete execution). None when those cases do not cover the path, or
        read something not assigned yet: then the read is an error.
        """
        path = self.path
        local = within(self.slots[elem].below(self.pos[0][0]), path) if self.pos else []  # this statement's cases
        if not local or not covers(local, lambda e: len(path[e]) if e in path else self.size(e)):
            return None
        if not all(self.ready(a.elem) for c in local for a in c.cond) or not all(
                self.ready(e) for c in local for e in elems(c.expr)):
            return None
        value = self.hidden(elem, tuple(local), node)
        self.bindings[-1][elem] = value
        return value

    def hidden(self, elem: Elem, cases: tuple[Case, ...], node: ast.AST) -> Elem:
        """A hidden Var (named after ``elem`` and the reading position) assigned ``cases`` now, in total."""
        key = (elem, cases)
        if key not in self.aux_of:
            span = self.ir.span(node)
            name = f"{elem}@{span.line}:{span.col + 1}#{len(self.aux)}"
            self.aux[name] = Decl(name, "var", self.size(elem), (), span)
            self.out.append(Assign(Elem(name), cases, True, span))
            self.aux_of[key] = Elem(name)
        return self.aux_of[key]

    def atom_elem(self, elem: Elem, node: ast.AST) -> Union[Elem, Const]:
        """The element a condition on ``elem`` (``if``/``with``) puts its atoms on.

        A value assigned on the current path in this statement would make the
        atom read an Assign not emitted yet (and, relaxed, count the path's own
        probability twice); the atom goes on what that value reads instead: an
        element, or a hidden Var holding the call. A constant (a fixed Param)
        is returned as is: the caller decides the branch at compile time.
        """
        value = self.read(elem, node)
        if isinstance(value, (Elem, Const)):
            return value
        return self.hidden(elem, (Case((), value, self.ir.span(node)),), node)

    def ready(self, elem: Elem) -> bool:
        """``elem`` has its final Assign in ``out`` already (or needs none)."""
        if elem.name in self.aux:
            return True
        return self.ir.decls[elem.name].kind in ("input", "param") or (elem in self.emitted and elem not in self.pending)

    def size(self, elem: Elem) -> int:
        return (self.aux.get(elem.name) or self.ir.decls[elem.name]).size

    def expr(self, node: ast.AST, env: Env, want: Optional[int], where: str = "") -> Expr:
        """Lower an expression; ``want`` is the range it must have (None: any)."""
        value = self.try_const(node, env)
        if value is not None:
            if want is not None and not 0 <= value < want:
                raise self.err(f"constant {value} is out of range 0..{want - 1}{where}", node,
                               f"use a value in 0..{want - 1}")
            return Const(value)
        if isinstance(node, ast.Call):
            return self.call(node, env, want, where)
        ref = self.ref(node, env)
        if ref is None:
            raise self.err("expected a constant, a variable element or a function call", node)
        if isinstance(ref, TensorElem):
            raise self.err(f"tensor '{ref.name}' can only be passed to a @Learn function", node,
                           "wrap it in a @Learn call, e.g. net(img[y, x])")
        value_expr = self.read(ref, node)
        size = self.ir.decls[ref.name].size
        if want is not None and size != want:
            raise self.err(f"'{ref}' ranges over 0..{size - 1} but 0..{want - 1} is expected{where}", node,
                           "convert it with a @Runtime function of the right ranges")
        return value_expr

    def call(self, node: ast.Call, env: Env, want: Optional[int], where: str = "") -> Expr:
        name = node.func.id
        if name in self.ir.inlines:
            return self.inline_value(node, env, want)
        if name in ("min", "max"):
            raise self.err(f"{name}() is only available on constants", node,
                           f"declare a @Runtime function computing {name} of elements")
        rt, learn = self.ir.runtimes.get(name), self.ir.learns.get(name)
        specs = rt.arg_sizes if rt else learn.args
        args: list[Expr] = []
        for k, (a, spec) in enumerate(zip(node.args, specs)):
            if isinstance(spec, TensorArg):
                ref = self.ref(a, env)
                if not isinstance(ref, TensorElem):
                    raise self.err(f"argument {k + 1} of '{name}' must be a tensor element, as declared "
                                   f"Tensor{tuple(spec.dims)}", a, "pass an InputTensor element, e.g. img[y, x]")
                dims = self.ir.tensors[ref.name].elem_shape
                if dims != spec.dims:
                    raise self.err(f"tensor '{ref.name}' has shape {list(dims)} but '{name}' expects "
                                   f"Tensor{tuple(spec.dims)}", a, "make the declared shapes agree")
                args.append(ref)
            else:
                args.append(self.expr(a, env, spec, f" (argument {k + 1} of '{name}')"))
        out = (rt or learn).out_size
        if want is not None and out != want:
            raise self.err(f"'{name}' returns 0..{out - 1} but 0..{want - 1} is expected{where}", node,
                           "declare the function with the target's range")
        return Call(name, tuple(args), self.ir.span(node))

    # ---- statements

    def top(self, node: ast.stmt, env: Env) -> None:
        """A top-level statement: unroll it, then emit what it completed.

        Loops, @Inline calls and ifs on compile-time constants are transparent:
        the statements inside them are top-level, so each may read what the
        previous one completed.
        """
        if isinstance(node, ast.For):
            for value in self.loop_range(node, env):
                inner = {**env, node.target.id: value}  # one per iteration: local names carry to later statements
                for stmt in node.body:
                    self.top(stmt, inner)
            return
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name):
            self.inline_statement(node.value, env, lambda s: self.top(s, env))
            return
        if isinstance(node, ast.Assign):
            self.bind(node, env)
            return
        if isinstance(node, ast.If) and (test := self.try_const(node.test, env)) is not None:
            for stmt in node.body if test else node.orelse:
                self.top(stmt, env)
            return
        self.pending, self.bindings = {}, [{}]
        self.statement(node, env, {}, ((next(self.keys), 0),))
        for target, where in self.pending.items():
            self.emit(target, where)
        self.pending = {}

    def bind(self, node: ast.Assign, env: Env) -> None:
        """``name = <constant>`` or ``name = <element or array>``: a local name for the statements after it."""
        name, value = node.targets[0].id, node.value
        const = self.try_const(value, env)
        if const is not None:
            env[name] = const
            return
        folded = fold_names(value, env)
        base, _ = unsubscript(folded)
        if not (isinstance(base, ast.Name) and (base.id in self.ir.decls or base.id in self.ir.tensors)):
            raise self.err(f"local name '{name}' must stand for a constant or a declared element, but its value is "
                           "neither", value, "assign computed values to a Var with set_to")
        env[name] = folded

    def loop_range(self, node: ast.For, env: Env) -> range:
        args = node.iter.args
        if not 1 <= len(args) <= 3 or node.iter.keywords:
            raise self.err(f"range() takes 1 to 3 arguments, but got {len(args)}", node.iter,
                           "write range(stop), range(start, stop) or range(start, stop, step)")
        bounds = [self.const(a, env, "a range() bound") for a in args]
        if len(bounds) == 3 and bounds[2] == 0:
            raise self.err("the step of range() must not be 0", args[2], "use a positive or negative step")
        loop = range(*bounds)
        start, stop, step = loop.start, loop.stop, loop.step
        n = max(0, (stop - start + step - (1 if step > 0 else -1)) // step)  # len() overflows past sys.maxsize
        self.count(n, node.iter)
        return loop

    def count(self, n: int, node: ast.AST) -> None:
        """Charge ``n`` units of work; a model that unrolls to millions is almost surely a bound typo.

        A unit is one statement unrolled, one loop iteration and one case
        gathered into an Assign; a value a ``with``/``if`` branches on costs
        ``BRANCH_COST``. So the budget bounds the time a compile takes, not only
        the number of statements.
        """
        self.work += n
        if self.work > MAX_WORK:
            raise self.err(f"the model unrolls to more than {MAX_WORK:,} units of work (statements, loop "
                           "iterations, branches, cases), reached here", node,
                           "check the loop bounds and hyper-parameter values")

    def statement(self, node: ast.stmt, env: Env, path: Path, pos: Pos) -> None:
        self.path, self.pos = path, pos  # where a value-returning @Inline's statements land
        self.count(1, node)
        if isinstance(node, ast.Pass) or (isinstance(node, ast.Expr) and not isinstance(node.value, ast.Call)):
            return
        if isinstance(node, ast.For):
            for value in self.loop_range(node, env):
                inner = {**env, node.target.id: value}
                for stmt in node.body:
                    self.statement(stmt, inner, path, pos)
            return
        if isinstance(node, ast.Assign):
            self.bind(node, env)
            return
        if isinstance(node, ast.With):
            self.with_(node, list(node.items), env, path, pos)
            return
        if isinstance(node, ast.If):
            self.if_(node, env, path, pos)
            return
        call = node.value
        if isinstance(call.func, ast.Name):  # an @Inline called as a statement
            self.inline_statement(call, env, lambda s: self.statement(s, env, path, pos))
            return
        self.assign(call, env, path, pos)

    def assign(self, call: ast.Call, env: Env, path: Path, pos: Pos) -> None:
        target = self.ref(call.func.value, env)
        if not isinstance(target, Elem):
            raise self.err("only Var and Output elements can be assigned", call.func.value,
                           "assign a declared Var(...) or Output(...)")
        decl = self.ir.decls[target.name]
        if decl.kind == "input":
            raise self.err(f"'{target}' is an Input and cannot be assigned", call.func.value,
                           "declare it as Var(...) or Output(...) to assign it")
        if decl.kind == "param":
            self.fix_param(target, call, env, path)
            return
        if call.func.attr == "set_to_constant":
            value = self.const(call.args[0], env, "the argument of set_to_constant")
            if not 0 <= value < decl.size:
                raise self.err(f"constant {value} is out of range for '{target}' (0..{decl.size - 1})", call.args[0],
                               f"use a value in 0..{decl.size - 1}")
            expr: Expr = Const(value)
        else:
            expr = self.expr(call.args[0], env, decl.size, f" for '{target}'")
        cond = tuple(Atom(e, v) for e, v in sorted(path.items(), key=lambda kv: (kv[0].name, kv[0].index)))
        case = Case(cond, expr, self.ir.span(call))
        self.place(target, pos, case, call)
        self.cases.setdefault(target, []).append(case)
        self.pending.setdefault(target, call)
        self.bindings[-1][target] = expr

    def fix_param(self, target: Elem, call: ast.Call, env: Env, path: Path) -> None:
        """TerpreT's ``instructions[0].set_to_constant(0)``: a Param element fixed for the whole model.

        Reads of it become the constant (conditions on it are decided at
        compile time); its own logits are left unused.
        """
        value = self.try_const(call.args[0], env)
        if value is None or path:
            raise self.err(f"'{target}' is a Param: it can only be fixed to a constant, outside any if/with, not "
                           "assigned", call.func.value,
                           "declare it as Var(...) to compute it, or write p.set_to_constant(c) at top level")
        size = self.ir.decls[target.name].size
        if not 0 <= value < size:
            raise self.err(f"constant {value} is out of range for '{target}' (0..{size - 1})", call.args[0],
                           f"use a value in 0..{size - 1}")
        if target in self.fixed:
            raise self.err(f"'{target}' is fixed twice: here and at {self.fixed[target][1]}", call,
                           "fix each Param element once")
        if target in self.params_read:
            raise self.err(f"'{target}' is fixed after a statement read it (at {self.params_read[target]})", call,
                           "fix Params before the statements that use them")
        self.fixed[target] = (value, self.ir.span(call))

    def place(self, target: Elem, pos: Pos, case: Case, node: ast.AST) -> None:
        """Record ``case`` at ``pos`` in the target's trie; refuse it if it can overlap an earlier case."""
        other = self.slots.setdefault(target, Slot()).add(pos, case)
        if other is not None:
            raise self.err(f"'{target}' is assigned twice on one path: here and at {other.span}", node,
                       "each element is assigned at most once on any path (single assignment); use another "
                       "element (e.g. index it by the time step) or make the branches exclusive")

    def emit(self, target: Elem, where: ast.AST) -> None:
        cases = tuple(self.cases[target])
        self.count(len(cases), where)
        total = covers(cases, self.size)
        assign = Assign(target, cases, total, self.ir.span(where))
        if target in self.emitted:  # more cases from a later statement: move the Assign after it
            self.out[self.emitted[target]] = None
        self.emitted[target] = len(self.out)
        self.out.append(assign)
        if total:
            self.total.add(target)


def unroll(ir: ModuleIR) -> FlatModel:
    """Unroll a checked model into a :class:`FlatModel`.

    Args:
        ir: the output of :func:`~.check.check`.

    Returns:
        the flat model: one :class:`~.ir.Assign` per assigned element, each after
        every Assign it reads.

    Raises:
        SourceError: index/range errors, double assignment, reads before assignment.

    Example:
        >>> from .parse import parse
        >>> flat = unroll(parse("x = Input(2)\\ny = Output(2)\\ny.set_to(x)\\n"))
        >>> flat.statements[0].target
        Elem(name='y', index=())
    """
    u = _Unroller(ir)
    try:
        for stmt in ir.body:
            u.top(stmt, dict(ir.constants))
    except ConstantBound as e:
        raise ir.error(e.why, e.node, "use smaller constants; indices and loop bounds are far below 2**64") from None
    for d in ir.decls.values():
        if d.kind == "output" and not any(e.name == d.name for e in u.emitted):
            raise SourceError(f"output '{d.name}' is never assigned", d.span, ir.source,
                              f"assign it, e.g. {d.name}.set_to(...)")
    return FlatModel(
        decls={**ir.decls, **u.aux}, tensors=dict(ir.tensors), runtimes=dict(ir.runtimes), learns=dict(ir.learns),
        statements=tuple(a for a in u.out if a is not None), constants=dict(ir.constants),
        source=ir.source, filename=ir.filename, fixed={e: value for e, (value, _) in u.fixed.items()},
    )
