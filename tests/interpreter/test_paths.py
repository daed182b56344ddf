"""paths: the path/case algebra of unroll (restrict, covers, within, the position trie)."""

from __future__ import annotations

from ntpt_dist.interpreter.ir import Atom, Case, Const, Elem
from ntpt_dist.interpreter.paths import Slot, covers, disjoint, restrict, within

X, K = Elem("x"), Elem("k")


def case(*atoms: tuple[Elem, set[int]], expr=Const(0)) -> Case:
    return Case(tuple(Atom(e, frozenset(v)) for e, v in atoms), expr)


def test_restrict_intersects_and_refuses_the_impossible():
    path = restrict({}, X, frozenset([0, 1]))
    assert restrict(path, X, frozenset([1, 2])) == {X: frozenset([1])}
    assert restrict(path, X, frozenset([2])) is None
    assert restrict(path, K, frozenset([3])) == {X: frozenset([0, 1]), K: frozenset([3])}


def test_covers_counts_every_path_once():
    size = {X: 3, K: 2}.get
    assert covers([case((X, {0})), case((X, {1, 2}), (K, {0})), case((X, {1, 2}), (K, {1}))], size)
    assert not covers([case((X, {0})), case((X, {1}))], size)
    assert covers([case()], size)
    assert covers([case((X, {1}))], lambda e: 1)  # inside a path where x is already 1


def test_disjoint_needs_an_element_with_no_common_value():
    assert disjoint(case((X, {0})), case((X, {1}), (K, {0})))
    assert not disjoint(case((X, {0, 1})), case((X, {1})))
    assert not disjoint(case((X, {0})), case((K, {0})))


def test_within_drops_implied_atoms_and_contradicting_cases():
    cases = [case((X, {0})), case((X, {1, 2}), (K, {0})), case((K, {1}))]
    got = within(cases, {X: frozenset([1, 2])})
    assert [c.cond for c in got] == [(Atom(K, frozenset([0])),), (Atom(K, frozenset([1])),)]
    assert [c.cond for c in within(cases, {X: frozenset([1])})][0] == (Atom(K, frozenset([0])),)


def test_slot_finds_overlaps_only_where_they_can_be():
    root = Slot()
    a, b = case((X, {0})), case((X, {1}))
    assert root.add(((0, 0), (1, 0)), a) is None
    assert root.add(((0, 0), (1, 1)), b) is None  # other choice of the same branch point: disjoint
    c = case((X, {1}), (K, {0}))
    assert root.add(((0, 0), (2, 0)), c) is b  # a sibling statement overlapping b's atoms
    assert root.add(((0, 0),), case()) is a  # on the path of earlier cases
    assert root.add(((3, 0),), case((X, {2}))) is None  # a later statement, disjoint atoms
    assert sorted(len(c.cond) for c in root.below(0)) == [1, 1]
