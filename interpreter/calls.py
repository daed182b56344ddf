"""Which ``@Learn`` networks a program's Outputs depend on, once its Params are fixed.

A model may call a network on every path (ADD2x2's two-network model reads
each cell with ``net_0`` *and* ``net_1``), yet a fixed program keeps only the
readings its Params route to an Output. Merging the others into a library
would version networks the program never trained in earnest; so the store
versions only what :func:`called_networks` returns.

The analysis is a backward liveness pass over the flat statements (they are
in dependency order): an element is live if an Output is, or a live element's
active case reads it (in its expression or its condition). A case is active
unless an atom on a Param (or a ``set_to_constant`` element) rules it out;
conditions on Vars and Inputs depend on the data, so their cases all stay
active. The answer is therefore exact for everything Params decide and
conservative (it may name a network whose output a data-dependent branch
never uses) otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .discrete import check_params
from .ir import Call, Elem, Expr, FlatModel

__all__ = ["called_networks"]


def called_networks(flat: FlatModel, params: Mapping[str, Any]) -> frozenset[str]:
    """Names of the ``@Learn`` networks whose outputs can reach an Output of the program.

    Args:
        flat: the unrolled model.
        params: Param name -> value (as for ``discrete.execute``).

    Returns:
        The network names (a subset of ``flat.learns``).

    Raises:
        NtptError: a Param missing, of the wrong shape or out of range.

    Example:
        >>> from ntpt_dist.interpreter.model import compile_source
        >>> m = compile_source(
        ...     "@Learn([2], 2, hid_sizes=[])\\ndef f(a):\\n    pass\\n"
        ...     "@Learn([2], 2, hid_sizes=[])\\ndef g(a):\\n    pass\\n"
        ...     "x = Input(2)\\np = Param(2)\\ny = Output(2)\\n"
        ...     "if p == 0:\\n    y.set_to(f(x))\\nelse:\\n    y.set_to(g(x))\\n")
        >>> sorted(called_networks(m.flat, {"p": 1}))
        ['g']
    """
    values = check_params(flat, params)
    fixed = {d.name for d in flat.params}

    def holds(atom) -> bool:
        if atom.elem.name not in fixed:
            return True  # decided by the data: the case may run
        return int(values[atom.elem.name][atom.elem.index]) in atom.values

    live: set[Elem] = {Elem(d.name, index) for d in flat.outputs for index in _indices(d.shape)}
    found: set[str] = set()
    for stmt in reversed(flat.statements):
        if stmt.target not in live:
            continue
        for case in stmt.cases:
            if not all(holds(atom) for atom in case.cond):
                continue
            live.update(atom.elem for atom in case.cond if atom.elem.name not in fixed)
            _visit(case.expr, flat, live, found)
    return frozenset(found)


def _visit(e: Expr, flat: FlatModel, live: set[Elem], found: set[str]) -> None:
    stack = [e]
    while stack:
        e = stack.pop()
        if isinstance(e, Elem):
            live.add(e)
        elif isinstance(e, Call):
            if e.fn in flat.learns:
                found.add(e.fn)
            stack.extend(e.args)


def _indices(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = [()]
    for n in shape:
        out = [index + (i,) for index in out for i in range(n)]
    return out
