"""``with`` and ``if`` for the unroller: one branch per value a statement splits on.

A mixin of ``unroll._Unroller``: it uses the unroller's ``statement``, ``try_const``,
``ref``, ``atom_elem``, ``size``, ``count``, ``err``, its branch ``keys`` and its
``bindings`` stack. ``with a as i`` becomes one branch per value of ``a``; ``if`` on an
element becomes two branches, the values it is compared with and the rest; a branch
whose path can never hold (``paths.restrict``) is not unrolled. Each branch point gets
a key, and a branch's position is the sequence of (key, choice) that reached it.
"""

from __future__ import annotations

import ast
from typing import Union

from .ir import Const, Elem
from .module_ir import Env
from .paths import Path, Pos, restrict

BRANCH_COST = 4  # units of work per value a `with` or `if` branches on: a branch costs several statements' time


class CaseSplits:
    """Unrolls ``with`` and ``if`` statements into branches."""

    def branch(self, body: list[ast.stmt], env: Env, path: Path, pos: Pos) -> None:
        self.bindings.append({})
        for stmt in body:
            self.statement(stmt, env, path, pos)
        self.bindings.pop()

    def with_(self, node: ast.With, items: list, env: Env, path: Path, pos: Pos) -> None:
        if not items:
            self.branch(node.body, env, path, pos)
            return
        item, rest = items[0], items[1:]
        var = item.optional_vars.id
        value = self.try_const(item.context_expr, env)
        if value is not None:
            self.with_(node, rest, {**env, var: value}, path, pos)
            return
        elem = self.ref(item.context_expr, env)
        if not isinstance(elem, Elem):
            raise self.err("`with` needs a variable element (or a constant)", item.context_expr,
                           "write `with x[t] as i:` for a declared Input/Param/Var/Output x")
        elem = self.atom_elem(elem, item.context_expr)
        if isinstance(elem, Const):
            self.with_(node, rest, {**env, var: elem.value}, path, pos)
            return
        key = next(self.keys)
        self.count(BRANCH_COST * self.size(elem), item.context_expr)
        for v in range(self.size(elem)):
            sub = restrict(path, elem, frozenset([v]))
            if sub is not None:
                self.bindings.append({})
                self.with_(node, rest, {**env, var: v}, sub, pos + ((key, v),))
                self.bindings.pop()

    def if_(self, node: ast.If, env: Env, path: Path, pos: Pos) -> None:
        test = self.try_const(node.test, env)
        if test is not None:
            self.branch(node.body if test else node.orelse, env, path, pos)
            return
        elem, values = self.condition(node.test, env)
        if isinstance(elem, Const):
            self.branch(node.body if elem.value in values else node.orelse, env, path, pos)
            return
        self.count(BRANCH_COST * self.size(elem), node.test)
        everything = frozenset(range(self.size(elem)))
        key = next(self.keys)
        for choice, (vals, body) in enumerate(((values, node.body), (everything - values, node.orelse))):
            sub = restrict(path, elem, vals)
            if sub is not None and body:
                self.branch(body, env, sub, pos + ((key, choice),))

    def condition(self, test: ast.AST, env: Env) -> tuple[Union[Elem, Const], frozenset]:
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.NotEq)):
            left, right = test.left, test.comparators[0]
            if self.try_const(left, env) is not None:
                left, right = right, left
            elem = self.ref(left, env)
            value = self.try_const(right, env)
            if isinstance(elem, Elem) and value is not None:
                shown, elem = elem, self.atom_elem(elem, left)
                size = self.size(shown)
                if not 0 <= value < size:
                    raise self.err(f"'{shown}' ranges over 0..{size - 1}, so it is never {value}", right,
                                   f"compare with a value in 0..{size - 1}")
                values = frozenset([value])
                return elem, values if isinstance(test.ops[0], ast.Eq) else frozenset(range(size)) - values
        raise self.err("a condition must compare a variable element with a constant (`x == c` or `x != c`), or be "
                       "a compile-time constant", test, "to compare two variables use `with a as i: if b == i: ...`")
