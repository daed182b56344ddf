"""``@Inline`` expansion for the unroller: a call site is replaced by the function's body.

A mixin of ``unroll._Unroller``: it uses the unroller's ``ir``, ``err``,
``statement``, ``expr``, ``path``/``pos`` and its ``inlining`` stack.
"""

from __future__ import annotations

import ast
from typing import Optional

from .ir import Expr
from .module_ir import MAX_NESTING, Env, fold_names, nesting, substitute


class InlineExpansion:
    """Expands ``@Inline`` calls used as statements or as values."""

    def expand(self, node: ast.Call, env: Env) -> list[ast.stmt]:
        """The body of the called @Inline function with its parameters replaced by the arguments."""
        fn = self.ir.inlines[node.func.id]
        if fn.name in self.inlining:
            raise self.err(f"@Inline '{fn.name}' calls itself (through {' -> '.join(self.inlining)}); inlining "
                           "would never end", node, "unroll the recursion with a for loop")
        # The caller's constants (loop and `with` variables) are folded into the arguments now, so a
        # same-named variable in the body cannot capture them.
        args = [fold_names(a, env) for a in node.args]
        for a, folded in zip(node.args, args):  # arguments nest into arguments: bound the depth they reach
            if nesting(folded) > MAX_NESTING:
                raise self.err(f"the argument of @Inline '{fn.name}' nests more than {MAX_NESTING} deep once the "
                               "calls it passes through are expanded", a,
                               "assign intermediate values to Vars with set_to instead of passing expressions down")
        return substitute(fn, args)

    def inline_value(self, node: ast.Call, env: Env, want: Optional[int]) -> Expr:
        body = self.expand(node, env)
        if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
            raise self.err(f"@Inline '{node.func.id}' is used as a value but does not end with `return <expr>`",
                           node, "add a return, or call it as a statement")
        path, pos = self.path, self.pos  # the statement this value is computed in
        self.inlining.append(node.func.id)
        for stmt in body[:-1]:
            self.statement(stmt, env, path, pos)
        self.path, self.pos = path, pos
        value = self.expr(body[-1].value, env, want)
        self.inlining.pop()
        return value

    def inline_statement(self, node: ast.Call, env: Env, run) -> None:
        body = self.expand(node, env)
        if body and isinstance(body[-1], ast.Return):
            body = body[:-1]  # a value-returning helper called for its side effects
        self.inlining.append(node.func.id)
        for stmt in body:
            run(stmt)
        self.inlining.pop()
