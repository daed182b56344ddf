"""The set algebra ``unroll`` does on paths and cases, kept pure so it can be tested alone.

A *path* is a conjunction of atoms, one per element (``{elem: values}``); a
*case* (:class:`~.ir.Case`) is a path frozen into atoms plus an expression. A
*position* names where a case was assigned: the (branch-point key, choice)
pairs from its top-level statement down; :class:`Slot` is the trie of one
target's positions, which finds the earlier cases a new one may overlap
without comparing it to all of them (Fig. 1 at T=45 yields ~5000 cases).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Optional

from .ir import Atom, Call, Case, Elem, Expr

Path = dict[Elem, frozenset]  # conjunction of atoms, one per element
Pos = tuple[tuple[int, int], ...]  # (branch-point key, choice) pairs from the top-level statement down


class Slot:
    """A node of one target's position trie: cases that end here, branches below.

    Example:
        >>> a, b = Case((), Elem("x")), Case((Atom(Elem("p"), frozenset([0])),), Elem("y"))
        >>> root = Slot()
        >>> root.add(((0, 0),), a) is None
        True
        >>> root.add(((1, 0),), b) is a  # a sibling statement reassigns on a's path
        True
    """

    __slots__ = ("cases", "children")

    def __init__(self) -> None:
        self.cases: list[Case] = []
        self.children: dict[int, dict[int, Slot]] = {}

    def all_cases(self) -> Iterator[Case]:
        yield from self.cases
        for alternatives in self.children.values():
            for slot in alternatives.values():
                yield from slot.all_cases()

    def add(self, pos: Pos, case: Case) -> Optional[Case]:
        """Record ``case`` at ``pos``, or return an earlier case it may overlap (then nothing is recorded).

        Cases that part at the same branch point with different choices are
        disjoint by construction; only those parting at *different* keys
        (sibling statements) need their atoms compared.
        """
        slot = self
        for key, choice in pos:
            if slot.cases:  # an earlier case on a prefix of this path: the same path
                return slot.cases[0]
            for other_key, alternatives in slot.children.items():
                if other_key != key:
                    for sub in alternatives.values():
                        for other in sub.all_cases():
                            if not disjoint(case, other):
                                return other
            slot = slot.children.setdefault(key, {}).setdefault(choice, Slot())
        for other in slot.all_cases():
            return other
        slot.cases.append(case)
        return None

    def below(self, key: int) -> Iterator[Case]:
        """Every case under the branch point ``key`` (one top-level statement's cases)."""
        for slot in self.children.get(key, {}).values():
            yield from slot.all_cases()


def restrict(path: Path, elem: Elem, values: frozenset) -> Optional[Path]:
    """The path with ``elem in values`` added; None if that is impossible.

    Example:
        >>> x = Elem("x")
        >>> restrict({x: frozenset([0, 1])}, x, frozenset([1, 2]))[x]
        frozenset({1})
        >>> restrict({x: frozenset([0])}, x, frozenset([1])) is None
        True
    """
    merged = path.get(elem, values) & values
    if not merged:
        return None
    return {**path, elem: merged}


def disjoint(a: Case, b: Case) -> bool:
    """Some element has atoms in both cases with no common value."""
    atoms = {x.elem: x.values for x in a.cond}
    return any(y.elem in atoms and not (atoms[y.elem] & y.values) for y in b.cond)


def covers(cases: Sequence[Case], size: Callable[[Elem], int]) -> bool:
    """Disjoint cases cover every path iff their probabilities under uniform marginals sum to 1.

    ``size(elem)`` is the number of values ``elem`` can take (its range, or
    fewer where a path already restricts it). Counted in integers over the
    common denominator: exact like fractions, several times faster on wide ``with``s.

    Example:
        >>> x = Elem("x")
        >>> covers([Case((Atom(x, frozenset([0])),), x), Case((Atom(x, frozenset([1, 2])),), x)], lambda e: 3)
        True
    """
    sizes = {a.elem: size(a.elem) for case in cases for a in case.cond}
    whole = math.prod(sizes.values())
    covered = 0
    for case in cases:
        part = whole
        for atom in case.cond:
            part = part // sizes[atom.elem] * len(atom.values)
        covered += part
    return covered == whole


def within(cases: Iterable[Case], path: Path) -> list[Case]:
    """The cases that agree with ``path``, seen from inside it: atoms intersected with the
    path's values, atoms the path already implies dropped, contradicting cases left out.

    Example:
        >>> x, k = Elem("x"), Elem("k")
        >>> cases = [Case((Atom(x, frozenset([0])),), Elem("a")),
        ...          Case((Atom(k, frozenset([2])), Atom(x, frozenset([1]))), Elem("b"))]
        >>> [(c.cond, str(c.expr)) for c in within(cases, {x: frozenset([1])})]
        [((Atom(elem=Elem(name='k', index=()), values=frozenset({2})),), 'b')]
    """
    out = []
    for case in cases:
        cond = []
        for atom in case.cond:
            values = atom.values & path[atom.elem] if atom.elem in path else atom.values
            if not values:
                break  # on another branch of the path
            if values != path.get(atom.elem):
                cond.append(Atom(atom.elem, values))
        else:
            out.append(Case(tuple(cond), case.expr, case.span))
    return out


def elems(expr: Expr) -> Iterator[Elem]:
    """The integer elements an expression reads."""
    if isinstance(expr, Elem):
        yield expr
    elif isinstance(expr, Call):
        for a in expr.args:
            yield from elems(a)
