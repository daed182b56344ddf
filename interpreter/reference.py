"""Plain-Python forward marginals (FMGD) for ONE instance: the test oracle.

Deliberately naive: lists of floats, explicit loops over every argument tuple,
no torch, no vectorisation. It follows the meaning in ``ir.py`` literally::

    mu_target = sum_case  P(case.cond) * mu(case.expr)
    P(cond)   = prod_atom  sum_{v in atom.values} mu_atom.elem[v]

with ``mu(Const c)`` one-hot, ``mu(f(a, b))[i] = sum_{j,k} [f(j,k) = i] mu_a[j] mu_b[k]``
for a ``@Runtime`` ``f`` and ``mu(g(a, img[y, x]))`` the network's output on the
concatenated argument marginals / flattened tensor cell for a ``@Learn`` ``g``.
The torch lowering must agree with it to 1e-5 on every construct.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from .ir import Assign, Call, Const, Elem, Expr, FlatModel, TensorArg, TensorElem

__all__ = ["marginals", "instance"]

NetFn = Callable[[list[float]], list[float]]


def marginals(
    flat: FlatModel,
    param_probs: Mapping[str, Any],
    net_fns: Mapping[str, NetFn],
    inputs: Mapping[str, Any],
) -> dict[Elem, list[float]]:
    """The marginal of every element of one instance.

    Args:
        flat: the unrolled model.
        param_probs: Param name -> probabilities as nested lists ``[*shape, K]``
            (numpy arrays are accepted and converted with ``tolist``).
        net_fns: ``@Learn`` name -> function from the list of input features to
            the list of output probabilities (see ``netfn.net_fn``).
        inputs: ONE instance: Input name -> int / nested lists ``[*shape]``;
            InputTensor name -> nested lists ``[*shape, *dims]``.

    Returns:
        Elem -> list of ``size`` probabilities for every Input, Param and
        assigned element (an element not assigned on every path sums to < 1).

    Example:
        >>> from ntpt_dist.interpreter.ir import Case, Decl, NO_SPAN
        >>> flat = FlatModel(
        ...     decls={"p": Decl("p", "param", 2, (), NO_SPAN), "y": Decl("y", "output", 2, (), NO_SPAN)},
        ...     tensors={}, runtimes={}, learns={}, constants={},
        ...     statements=(Assign(Elem("y"), (Case((), Elem("p")),), True),))
        >>> marginals(flat, {"p": [0.25, 0.75]}, {}, {})[Elem("y")]
        [0.25, 0.75]
    """
    mu: dict[Elem, list[float]] = {}
    for d in flat.inputs:
        for index, value in _cells(_plain(inputs[d.name]), d.shape):
            mu[Elem(d.name, index)] = [1.0 if v == value else 0.0 for v in range(d.size)]
    for d in flat.params:
        for index, probs in _cells(_plain(param_probs[d.name]), d.shape):
            assert len(probs) == d.size, f"Param {d.name}{list(index)} needs {d.size} probabilities"
            mu[Elem(d.name, index)] = [float(p) for p in probs]
    ev = _Evaluator(flat, mu, net_fns, {t: _plain(inputs[t]) for t in flat.tensors})
    for stmt in flat.statements:
        mu[stmt.target] = ev.assign(stmt)
    return mu


def instance(batch: Mapping[str, Any], i: int) -> dict[str, Any]:
    """Row ``i`` of a batch (docs/design.md format), as :func:`marginals` takes it.

    Example:
        >>> instance({"x": [[1, 2], [3, 4]]}, 1)
        {'x': [3, 4]}
    """
    return {name: _plain(arr)[i] for name, arr in batch.items()}


class _Evaluator:
    def __init__(self, flat: FlatModel, mu, net_fns, tensors):
        self.flat = flat
        self.mu = mu
        self.net_fns = net_fns
        self.tensors = tensors

    def assign(self, stmt: Assign) -> list[float]:
        size = self.flat.decls[stmt.target.name].size
        result = [0.0] * size
        for case in stmt.cases:
            p = 1.0
            for atom in case.cond:
                p *= sum(self.mu[atom.elem][v] for v in atom.values)
            m = self.expr(case.expr, size)
            for v in range(size):
                result[v] += p * m[v]
        return result

    def expr(self, e: Expr, size: int) -> list[float]:
        if isinstance(e, Const):
            assert 0 <= e.value < size, f"constant {e.value} out of range {size}"
            return [1.0 if v == e.value else 0.0 for v in range(size)]
        if isinstance(e, Elem):
            m = self.mu[e]
            assert len(m) == size, f"{e} has {len(m)} values where {size} are expected"
            return m
        assert isinstance(e, Call), f"{e} may only appear as a @Learn argument"
        if e.fn in self.flat.runtimes:
            return self.runtime(e, size)
        return self.learn(e, size)

    def runtime(self, call: Call, size: int) -> list[float]:
        fn = self.flat.runtimes[call.fn]
        assert fn.out_size == size
        args = [self.expr(a, k) for a, k in zip(call.args, fn.arg_sizes)]
        result = [0.0] * size
        for combo in itertools.product(*[range(k) for k in fn.arg_sizes]):
            p = 1.0
            for a, v in zip(args, combo):
                p *= a[v]
            result[int(fn.table[combo])] += p
        return result

    def learn(self, call: Call, size: int) -> list[float]:
        fn = self.flat.learns[call.fn]
        assert fn.out_size == size
        features: list[float] = []
        for spec, a in zip(fn.args, call.args):
            if isinstance(spec, TensorArg):
                assert isinstance(a, TensorElem)
                cell = self.tensors[a.name]
                for i in a.index:
                    cell = cell[i]
                features.extend(_flatten(cell))
            else:
                features.extend(self.expr(a, spec))
        out = list(self.net_fns[call.fn](features))
        assert len(out) == size, f"network {call.fn} returned {len(out)} values, expected {size}"
        return out


def _plain(x: Any) -> Any:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return x.tolist() if hasattr(x, "tolist") else x


def _cells(value: Any, shape: tuple[int, ...]):
    """(index, cell) for every index of ``shape`` in nested lists ``value``."""
    for index in itertools.product(*[range(k) for k in shape]):
        cell = value
        for i in index:
            cell = cell[i]
        yield index, cell


def _flatten(x: Any) -> list[float]:
    if isinstance(x, (list, tuple)):
        return [f for item in x for f in _flatten(item)]
    return [float(x)]
