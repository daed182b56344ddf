"""The flat intermediate representation every pass after ``unroll`` works on.

``parse -> check -> unroll`` turn model source into a :class:`FlatModel`: a
straight-line list of :class:`Assign` statements over integer *elements*
(one cell of a declared array), in an order where every element is assigned
before it is read. ``lower`` (torch marginals), ``discrete`` (exact integer
execution) and ``reference`` (plain-Python marginals, the test oracle) all
consume this one structure, so it is small, immutable and carries a
:class:`Span` on everything a user wrote.

Meaning of an :class:`Assign` (FMGD, forward marginals)::

    mu_target = sum_case  P(case.cond) * mu(case.expr)
    P(cond)   = prod_atom  sum_{v in atom.values} mu_atom.elem[v]

Conditions are conjunctions of atoms on *distinct* elements (the unroller
merges atoms on the same element by intersecting their value sets and drops
cases whose set becomes empty). The cases of one Assign are mutually exclusive
on every path; ``total`` says they cover every path, so the probabilities sum
to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np

KINDS = ("input", "output", "param", "var")


@dataclass(frozen=True)
class Span:
    """Where a construct stands in the user's file (1-based line, 0-based col)."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col + 1}"


NO_SPAN = Span("<generated>", 0, 0, 0, 0)


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True)
class Decl:
    """An array (or scalar, ``shape == ()``) of integer elements in ``0..size-1``."""

    name: str
    kind: str  # one of KINDS
    size: int
    shape: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class TensorDecl:
    """``InputTensor(*elem_shape)[*shape]``: float tensors observed from data."""

    name: str
    elem_shape: tuple[int, ...]
    shape: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class RuntimeFn:
    """``@Runtime``: a lookup table ``table[a1, ..., an] -> 0..out_size-1``."""

    name: str
    arg_sizes: tuple[int, ...]
    out_size: int
    table: np.ndarray = field(compare=False, repr=False)  # int64, shape arg_sizes
    span: Span = NO_SPAN


@dataclass(frozen=True)
class TensorArg:
    """A tensor-typed argument of a ``@Learn`` function (``Tensor(d1, ...)``)."""

    dims: tuple[int, ...]


@dataclass(frozen=True)
class LearnFn:
    """``@Learn``: an MLP shared by every call site, identified by its name.

    ``args`` holds an ``int`` (an integer range, fed as a marginal vector) or a
    :class:`TensorArg` (flattened) per argument; inputs are concatenated.
    """

    name: str
    args: tuple[Union[int, TensorArg], ...]
    out_size: int
    hid_sizes: tuple[int, ...]
    span: Span = NO_SPAN

    @property
    def in_features(self) -> int:
        return sum(a if isinstance(a, int) else int(np.prod(a.dims)) for a in self.args)

    @property
    def signature(self) -> str:
        """Name-independent shape of the network: two models share a library
        network only when name *and* signature agree."""
        args = ",".join(str(a) if isinstance(a, int) else "T" + "x".join(map(str, a.dims)) for a in self.args)
        return f"({args})->{self.out_size}|{'-'.join(map(str, self.hid_sizes))}"


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Elem:
    """One integer element: ``name[index]`` (``index == ()`` for a scalar)."""

    name: str
    index: tuple[int, ...] = ()

    def __str__(self) -> str:
        return self.name + (f"[{', '.join(map(str, self.index))}]" if self.index else "")


@dataclass(frozen=True)
class TensorElem:
    """One float tensor cell ``name[index]``, only valid as a ``@Learn`` argument."""

    name: str
    index: tuple[int, ...] = ()

    def __str__(self) -> str:
        return self.name + (f"[{', '.join(map(str, self.index))}]" if self.index else "")


@dataclass(frozen=True)
class Const:
    value: int

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Call:
    """A call of a RuntimeFn or LearnFn (``fn`` names it) on element arguments.

    Arguments may be nested Calls where the unroller substituted a value
    assigned earlier on the same path.
    """

    fn: str
    args: tuple[Expr, ...]
    span: Span = field(default=NO_SPAN, compare=False)

    def __str__(self) -> str:
        return f"{self.fn}({', '.join(map(str, self.args))})"


Expr = Union[Const, Elem, TensorElem, Call]


# ---------------------------------------------------------------- statements


@dataclass(frozen=True)
class Atom:
    """The event ``elem in values``."""

    elem: Elem
    values: frozenset[int]


@dataclass(frozen=True)
class Case:
    cond: tuple[Atom, ...]  # conjunction; () means "always"
    expr: Expr
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Assign:
    target: Elem
    cases: tuple[Case, ...]
    total: bool  # the cases cover every path
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class FlatModel:
    """A whole model after unrolling: what lowering and execution consume."""

    decls: dict[str, Decl]
    tensors: dict[str, TensorDecl]
    runtimes: dict[str, RuntimeFn]
    learns: dict[str, LearnFn]
    statements: tuple[Assign, ...]
    constants: dict[str, int]  # every module-level constant, hypers included
    source: str = ""
    filename: str = "<string>"
    fixed: dict[Elem, int] = field(default_factory=dict)  # Param elements fixed by set_to_constant

    def of_kind(self, kind: str) -> list[Decl]:
        return [d for d in self.decls.values() if d.kind == kind]

    @property
    def inputs(self) -> list[Decl]:
        return self.of_kind("input")

    @property
    def outputs(self) -> list[Decl]:
        return self.of_kind("output")

    @property
    def params(self) -> list[Decl]:
        return self.of_kind("param")
