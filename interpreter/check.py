"""Pass 2: static checks of the statements before unrolling.

Rejects Python the language does not have, unknown names and calls of the
wrong arity, each with the user's line and column. Checks that need the
values of loop variables (index ranges, single assignment, read before
assignment, argument ranges) happen in ``unroll``, which keeps the spans.
"""

from __future__ import annotations

import ast

from .module_ir import ModuleIR

STATEMENT_METHODS = ("set_to", "set_to_constant")
CONST_FUNCS = ("min", "max", "range")


def check(ir: ModuleIR) -> ModuleIR:
    """Check a parsed model; returns it unchanged.

    Raises:
        SourceError: unsupported statements or expressions, unknown names, wrong arity.

    Example:
        >>> from .parse import parse
        >>> _ = check(parse("x = Input(2)\\ny = Output(2)\\ny.set_to(x)\\n"))
    """
    scope = ir.names()
    for stmt in ir.body:
        _statement(ir, stmt, scope)
    for fn in ir.inlines.values():
        inner = scope | {a.arg for a in fn.args.args}
        for i, stmt in enumerate(fn.body):
            if isinstance(stmt, ast.Return) and i == len(fn.body) - 1 and stmt.value is not None:
                _expr(ir, stmt.value, inner)
            elif not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
                _statement(ir, stmt, inner)
    return ir


def _statement(ir: ModuleIR, node: ast.stmt, scope: set[str]) -> None:
    if isinstance(node, ast.Pass):
        return
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        call = node.value
        if isinstance(call.func, ast.Attribute):
            if call.func.attr not in STATEMENT_METHODS:
                raise ir.error(f"unknown method '.{call.func.attr}()'; statements are x.set_to(e) and "
                               "x.set_to_constant(c)", call.func, "use set_to or set_to_constant")
            _target(ir, call.func.value, scope)
            if len(call.args) != 1 or call.keywords:
                raise ir.error(f".{call.func.attr}() takes exactly one argument, but got {len(call.args)}", call)
            _expr(ir, call.args[0], scope)
            return
        if isinstance(call.func, ast.Name) and call.func.id in ir.inlines:
            _expr(ir, call, scope)
            return
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
        return
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        # A local constant (`ptr = base + i`) or alias (`out = reg[i]`), as TerpreT models use in loops.
        name = node.targets[0]
        callee = node.value.func.id if isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name) else ""
        if callee in ("Input", "Output", "Param", "Var", "InputTensor", "Hyper"):
            raise ir.error(f"{callee}(...) declared inside a statement; declarations are made once, at module level",
                           node.value, "move the declaration to module level (use an array for one per step)")
        if name.id in ir.names():
            raise ir.error(f"'{name.id}' is declared at module level and cannot be rebound inside a statement", name,
                           "give the local name another name")
        _expr(ir, node.value, scope)
        scope.add(name.id)
        return
    if isinstance(node, ast.If):
        _expr(ir, node.test, scope)
        for s in node.body + node.orelse:
            _statement(ir, s, scope)
        return
    if isinstance(node, ast.For):
        if not isinstance(node.target, ast.Name):
            raise ir.error("a for loop needs a single loop variable", node.target)
        it = node.iter
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
                and 1 <= len(it.args) <= 3 and not it.keywords):
            raise ir.error("for loops must iterate over range(...) with constant bounds", it,
                           "write `for t in range(a, b):`; the loop is unrolled at compile time")
        if node.orelse:
            raise ir.error("for ... else is not supported", node.orelse[0])
        for a in it.args:
            _expr(ir, a, scope)
        _fresh(ir, node.target, scope)
        inner = scope | {node.target.id}
        for s in node.body:
            _statement(ir, s, inner)
        return
    if isinstance(node, ast.With):
        inner = set(scope)
        for item in node.items:
            if not isinstance(item.optional_vars, ast.Name):
                raise ir.error("`with` needs the form `with x as i:`", item.context_expr)
            _expr(ir, item.context_expr, inner)
            _fresh(ir, item.optional_vars, inner)
            inner.add(item.optional_vars.id)
        for s in node.body:
            _statement(ir, s, inner)
        return
    why, fix = _UNSUPPORTED.get(type(node), (f"{type(node).__name__} statements are not part of the language", None))
    raise ir.error(f"unsupported statement: {why}", node,
                   fix or "models use set_to/set_to_constant, if/elif/else, for ... in range(...) and with ... as ...")


# Statements a Python programmer may reach for, with what to write instead.
_UNSUPPORTED = {
    ast.While: ("`while` loops cannot be unrolled at compile time", "use `for t in range(T):` with a constant bound"),
    ast.AugAssign: ("augmented assignment (`+=` ...) would assign an element twice",
                    "assign a new element, e.g. `x[t + 1].set_to(INC(x[t]))`"),
    ast.Assign: ("`=` with several or non-name targets; elements are assigned with .set_to(e)",
                 "write `x.set_to(e)`; `name = <constant or element>` makes a local name"),
    ast.AnnAssign: ("annotated assignment", "write `x.set_to(e)`"),
    ast.Return: ("`return` outside a function", "only @Runtime and @Inline functions return values"),
    ast.FunctionDef: ("a function defined inside a statement", "define @Runtime/@Learn/@Inline functions at module level"),
    ast.Expr: ("an expression whose value is thrown away", "assign it with x.set_to(...)"),
    ast.Break: ("`break` (loops are unrolled completely)", "guard the body with `if` on a variable instead"),
    ast.Continue: ("`continue` (loops are unrolled completely)", "guard the body with `if` on a variable instead"),
    ast.Try: ("`try` (nothing in a model raises at run time)", None),
    ast.Delete: ("`del`", None),
    ast.Global: ("`global`", None),
    ast.Nonlocal: ("`nonlocal`", None),
}


def _fresh(ir: ModuleIR, name: ast.Name, scope: set[str]) -> None:
    """A loop or `with` variable must not hide a declared name (its reads would silently change meaning)."""
    if name.id in ir.names():
        raise ir.error(f"the loop/with variable '{name.id}' has the name of a module-level declaration", name,
                       "choose another variable name")


def _target(ir: ModuleIR, node: ast.expr, scope: set[str]) -> None:
    base = node.value if isinstance(node, ast.Subscript) else node
    if not isinstance(base, ast.Name):
        raise ir.error("the target of set_to must be a declared variable or an element of one", node)
    _expr(ir, node, scope)


def _expr(ir: ModuleIR, node: ast.expr, scope: set[str]) -> None:
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, bool)):
            raise ir.error(f"only integer constants are supported, got {node.value!r}", node)
        return
    if isinstance(node, ast.Name):
        if node.id not in scope:
            raise ir.error(f"unknown name '{node.id}'", node, "declare it at module level before using it")
        return
    if isinstance(node, ast.Subscript):
        _expr(ir, node.value, scope)
        idx = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        for i in idx:
            if isinstance(i, ast.Slice):
                raise ir.error("slices are not supported; index one element at a time", i)
            _expr(ir, i, scope)
        return
    if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp)):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                _expr(ir, child, scope)
        return
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise ir.error("only calls of @Runtime, @Learn and @Inline functions are allowed here", node.func)
        name = node.func.id
        if node.keywords:
            raise ir.error(f"keyword arguments are not supported in calls of '{name}'", node.keywords[0].value)
        if name in ir.runtimes:
            expected = len(ir.runtimes[name].arg_sizes)
        elif name in ir.learns:
            expected = len(ir.learns[name].args)
        elif name in ir.inlines:
            expected = len(ir.inlines[name].args.args)
        elif name in CONST_FUNCS:
            expected = len(node.args)
        else:
            raise ir.error(f"'{name}' is not a @Runtime, @Learn or @Inline function", node.func,
                           "declare it with a decorator at module level")
        if len(node.args) != expected:
            raise ir.error(f"'{name}' takes {expected} argument(s), but got {len(node.args)}", node)
        for a in node.args:
            _expr(ir, a, scope)
        return
    if isinstance(node, ast.Lambda):
        raise ir.error("lambda is not supported in a model", node, "declare a @Runtime function instead")
    if isinstance(node, ast.Attribute):
        raise ir.error(f"attribute '.{node.attr}' is not supported here", node)
    raise ir.error(f"unsupported expression ({type(node).__name__}) in a model", node)
