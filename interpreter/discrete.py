"""Exact integer execution of a :class:`FlatModel`, vectorised over the batch.

Every element is a numpy ``int64`` array over the batch; ``-1`` means the
element has no value on that instance's path (TerpreT's partial assignment).
A case's condition is a boolean mask, the cases of one Assign are merged with
``np.where``, ``@Runtime`` calls index their table with the argument arrays and
``@Learn`` calls run the network on one-hot integer arguments / flattened
tensor cells and take the argmax. Each distinct call is computed once per batch,
and only for the instances whose path reaches it.

This is the discrete meaning of ntpt-language.md: with one-hot Params (and
argmax'd network outputs) the relaxed model gives exactly these values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import DataError, NtptError, SourceError
from .ir import NO_SPAN, Assign, Call, Case, Const, Elem, Expr, FlatModel, Span, TensorArg, TensorElem
from .netfn import check_netstate, mlp_scores

__all__ = ["execute", "as_numpy", "batch_size", "check_data", "check_inputs", "check_outputs", "check_params",
           "check_tensors"]


def execute(
    flat: FlatModel,
    params: Mapping[str, Any],
    networks: Mapping[str, Any],
    inputs: Mapping[str, Any],
    everything: bool = False,
) -> dict[str, np.ndarray]:
    """Run a model with fixed Param values on a batch, exactly, with integers.

    Args:
        flat: the unrolled model.
        params: Param name -> int (scalar Param) or nested list / int array of the
            declared shape.
        networks: ``@Learn`` name -> NetState (docs/design.md); only the networks
            the model calls are needed.
        inputs: the batch (docs/design.md): ``Input(K)[*shape]`` -> int ``[B, *shape]``,
            ``InputTensor(*dims)[*shape]`` -> float ``[B, *shape, *dims]``; other
            keys (e.g. the outputs) are ignored. Torch tensors are accepted.
        everything: also return every Var, Param and Input (for debugging).

    Returns:
        name -> int64 array ``[B, *shape]`` for every Output (every declaration
        with ``everything``); ``-1`` where an element got no value.

    Raises:
        DataError: a missing input, a value out of range or a wrong shape.
        NtptError: a missing or mismatched Param or network.
        SourceError: an instance reads an element that has no value on its path.

    Example:
        >>> from ntpt_dist.interpreter.ir import Decl, NO_SPAN
        >>> flat = FlatModel(
        ...     decls={"x": Decl("x", "input", 2, (), NO_SPAN), "y": Decl("y", "output", 2, (), NO_SPAN)},
        ...     tensors={}, runtimes={}, learns={}, constants={},
        ...     statements=(Assign(Elem("y"), (Case((), Elem("x")),), True),))
        >>> execute(flat, {}, {}, {"x": np.array([1, 0])})["y"].tolist()
        [1, 0]
    """
    n = batch_size(flat, inputs)
    values: dict[str, np.ndarray] = {}
    values.update(check_inputs(flat, inputs, n))
    for name, arr in check_params(flat, params).items():
        values[name] = np.broadcast_to(arr, (n, *arr.shape))
    for d in flat.decls.values():
        if d.kind in ("var", "output"):
            values[d.name] = np.full((n, *d.shape), -1, dtype=np.int64)
    tensors = check_tensors(flat, inputs, n)
    ex = _Executor(flat, values, tensors, _check_networks(flat, networks), n)
    for stmt in flat.statements:
        ex.assign(stmt)
    keep = flat.decls if everything else {d.name: d for d in flat.outputs}
    return {name: np.array(values[name]) for name in keep}


def _check_networks(flat: FlatModel, networks: Mapping[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    called = {c.fn for c in _calls(flat) if c.fn in flat.learns}
    missing = sorted(called - set(networks))
    if missing:
        raise NtptError(
            f"no network given for @Learn function(s) {missing}; networks given: {sorted(networks)}; "
            "fix: pass a NetState for every @Learn function the model calls"
        )
    return {name: check_netstate(flat.learns[name], networks[name]) for name in sorted(called)}


def _calls(flat: FlatModel):
    stack: list[Expr] = [c.expr for s in flat.statements for c in s.cases]
    while stack:
        e = stack.pop()
        if isinstance(e, Call):
            yield e
            stack.extend(e.args)


class _Executor:
    """Holds the element arrays of one batch while the statements run in order."""

    def __init__(self, flat: FlatModel, values, tensors, nets, n: int):
        self.flat = flat
        self.values = values
        self.tensors = tensors
        self.nets = nets
        self.n = n
        self.cache: dict[Call, tuple[np.ndarray, np.ndarray]] = {}  # call -> (values, rows computed)

    def read(self, e: Elem) -> np.ndarray:
        return self.values[e.name][(slice(None), *e.index)]

    def assign(self, stmt: Assign) -> None:
        out = np.full(self.n, -1, dtype=np.int64)
        taken = np.zeros(self.n, dtype=bool)
        for case in stmt.cases:
            sel = self.condition(case, stmt)
            if not sel.any():
                continue
            val = self.eval(case.expr, sel)
            bad = sel & (val < 0)
            if bad.any():
                self.fail_unassigned(case, stmt, _leaves(case.expr), bad)
            assert not (taken & sel).any(), f"cases of {stmt.target} overlap"
            out = np.where(sel, val, out)
            taken |= sel
        assert not stmt.total or taken.all(), f"total Assign of {stmt.target} left instances without a value"
        self.values[stmt.target.name][(slice(None), *stmt.target.index)] = out

    def condition(self, case: Case, stmt: Assign) -> np.ndarray:
        sel = np.ones(self.n, dtype=bool)
        unknown = np.zeros(self.n, dtype=bool)
        for atom in case.cond:
            v = self.read(atom.elem)
            if len(atom.values) == 1:
                hit = v == next(iter(atom.values))
            else:
                hit = np.isin(v, np.fromiter(atom.values, dtype=np.int64))
            unknown |= v < 0
            sel &= hit | (v < 0)
        # An instance reads an unassigned element only if every assigned atom holds.
        bad = sel & unknown
        if bad.any():
            self.fail_unassigned(case, stmt, [a.elem for a in case.cond], bad)
        return sel

    def eval(self, e: Expr, need: np.ndarray) -> np.ndarray:
        """Values of ``e``; only the rows in ``need`` are guaranteed (calls are lazy per row)."""
        if isinstance(e, Const):
            return np.full(self.n, e.value, dtype=np.int64)
        if isinstance(e, Elem):
            return self.read(e)
        assert isinstance(e, Call), f"unexpected expression {e!r} outside a @Learn call"
        if e not in self.cache:
            self.cache[e] = (np.full(self.n, -1, dtype=np.int64), np.zeros(self.n, dtype=bool))
        values, done = self.cache[e]
        todo = need & ~done
        if todo.any():
            # A network runs only on the instances whose path reaches the call (most
            # maze cells are never looked at by most instances); runtimes are cheap.
            args = [a if isinstance(a, TensorElem) else self.eval(a, todo) for a in e.args]
            if e.fn in self.flat.runtimes:
                values[todo] = self.runtime(e, args)[todo]
            else:
                values[todo] = self.learn(e, args, np.flatnonzero(todo))
            done |= todo
        return values

    def runtime(self, call: Call, args: list[np.ndarray]) -> np.ndarray:
        fn = self.flat.runtimes[call.fn]
        invalid = np.zeros(self.n, dtype=bool)
        for a in args:
            invalid |= a < 0
        res = fn.table[tuple(np.maximum(a, 0) for a in args)].astype(np.int64)
        return np.where(invalid, -1, res)

    def learn(self, call: Call, args: list, rows: np.ndarray) -> np.ndarray:
        """Argmax of the network on the given rows (instance indices)."""
        fn = self.flat.learns[call.fn]
        invalid = np.zeros(len(rows), dtype=bool)
        feats = []
        for spec, a in zip(fn.args, args):
            if isinstance(spec, TensorArg):
                assert isinstance(a, TensorElem), f"{call}: tensor argument expected"
                cell = self.tensors[a.name][(rows, *a.index)]
                feats.append(cell.reshape(len(rows), -1))
            else:
                a = a[rows]
                invalid |= a < 0
                feats.append(np.eye(spec, dtype=np.float32)[np.maximum(a, 0)])
        scores = mlp_scores(self.nets[call.fn], np.concatenate(feats, axis=1))
        return np.where(invalid, -1, scores.argmax(axis=1).astype(np.int64))

    def fail_unassigned(self, case: Case, stmt: Assign, elems: list[Elem], bad: np.ndarray) -> None:
        inst = int(np.flatnonzero(bad)[0])
        culprit = next((e for e in elems if self.read(e)[inst] < 0), None)
        assert culprit is not None, "a -1 value came from no element"
        message = (
            f"instance {inst} reads {culprit} while computing {stmt.target}, "
            f"but {culprit} has no value on that instance's path (it is assigned only under some conditions)"
        )
        fix = f"assign {culprit} on every path, or read it only under the conditions that assign it"
        span: Span = case.span if case.span != NO_SPAN else stmt.span
        if span == NO_SPAN:
            raise NtptError(f"{message}; fix: {fix}")
        raise SourceError(message, span, self.flat.source, fix=fix)


def _leaves(e: Expr) -> list[Elem]:
    if isinstance(e, Elem):
        return [e]
    if isinstance(e, Call):
        return [leaf for a in e.args for leaf in _leaves(a)]
    return []


# ---------------------------------------------------------------- batch and Param validation


def as_numpy(x: Any) -> np.ndarray:
    """``x`` as a numpy array (torch tensors are moved to the CPU first).

    Example:
        >>> as_numpy([1, 2]).tolist()
        [1, 2]
    """
    if hasattr(x, "detach"):  # a torch tensor; interpreter data may come either way
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def batch_size(flat: FlatModel, batch: Mapping[str, Any]) -> int:
    """The batch size B of ``batch``: the leading dimension of its inputs.

    Falls back to the outputs' leading dimension, then 1, for a model without inputs.

    Raises:
        DataError: when ``batch`` is not a dict of arrays, or the arrays disagree on B.

    Example:
        >>> batch_size(FlatModel({}, {}, {}, {}, (), {}), {})
        1
    """
    if not isinstance(batch, Mapping):
        raise DataError(
            f"a batch must be a dict name -> array, got {type(batch).__name__}; "
            "fix: pass e.g. {'x': int array [B, ...], 'y': int array [B, ...]} (docs/design.md)"
        )
    sizes = {}
    names = [d.name for d in flat.inputs] + list(flat.tensors)
    if not any(n in batch for n in names):
        names = [d.name for d in flat.outputs]
    for name in names:
        if name in batch:
            arr = as_numpy(batch[name])
            if arr.ndim == 0:
                raise DataError(f"data for {name!r} is a scalar; fix: give an array whose first dimension is the batch")
            sizes[name] = arr.shape[0]
    if len(set(sizes.values())) > 1:
        raise DataError(f"the batch arrays disagree on the batch size (first dimension): {sizes}; fix: give every array B rows")
    return next(iter(sizes.values()), 1)


def check_inputs(flat: FlatModel, batch: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    """Validate every ``Input`` of ``flat`` in ``batch``: present, shape ``[B, *shape]``, values in range.

    Returns:
        name -> int64 array ``[n, *shape]``.

    Raises:
        DataError: naming the input and the bad value (and the instance).

    Example:
        >>> from ntpt_dist.interpreter.ir import Decl, NO_SPAN
        >>> flat = FlatModel({"x": Decl("x", "input", 3, (2,), NO_SPAN)}, {}, {}, {}, (), {})
        >>> check_inputs(flat, {"x": [[0, 2]]}, 1)["x"].tolist()
        [[0, 2]]
    """
    out = {}
    for d in flat.inputs:
        if d.name not in batch:
            raise DataError(
                f"input {d.name!r} (Input({d.size}){list(d.shape) if d.shape else ''}) is missing from the batch, "
                f"which has keys {sorted(batch)}; fix: add {d.name!r} as an int array of shape [B, *{list(d.shape)}]"
            )
        arr = as_numpy(batch[d.name])
        if arr.shape != (n, *d.shape):
            raise DataError(
                f"input {d.name!r} has shape {tuple(arr.shape)}, expected {(n, *d.shape)} ([B, *shape] with B={n}); "
                "fix: give one row per instance with the declared shape"
            )
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            if not (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr))):
                raise DataError(f"input {d.name!r} must hold integers, got dtype {arr.dtype}; fix: pass an int array")
        arr = arr.astype(np.int64)
        bad = (arr < 0) | (arr >= d.size)
        if bad.any():
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(
                f"input {d.name!r} has value {int(arr[pos])} at instance {pos[0]}"
                f"{', index ' + str(pos[1:]) if pos[1:] else ''}; Input({d.size}) values run 0..{d.size - 1}; "
                "fix: correct the data or declare a larger range"
            )
        out[d.name] = arr
    return out


def check_outputs(flat: FlatModel, batch: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    """Validate the Outputs present in ``batch``: ints of shape ``[B, *shape]`` in ``-1..size-1``.

    An Output missing from ``batch`` is unobserved; ``-1`` marks one element as don't care.

    Returns:
        name -> int64 array ``[n, *shape]`` for each Output in ``batch``.

    Raises:
        DataError: naming the output and the bad shape, dtype or value (and the instance).

    Example:
        >>> from ntpt_dist.interpreter.ir import Decl, NO_SPAN
        >>> flat = FlatModel({"y": Decl("y", "output", 2, (), NO_SPAN)}, {}, {}, {}, (), {})
        >>> check_outputs(flat, {"y": [1, -1]}, 2)["y"].tolist()
        [1, -1]
    """
    out = {}
    for d in flat.outputs:
        if d.name not in batch:
            continue
        arr = as_numpy(batch[d.name])
        if arr.shape != (n, *d.shape) or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise DataError(
                f"output {d.name!r} has shape {arr.shape} and dtype {arr.dtype}, expected ints of shape {(n, *d.shape)}; "
                "fix: give one row per instance with the declared shape, -1 for don't care"
            )
        bad = (arr < -1) | (arr >= d.size)
        if bad.any():
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(
                f"output {d.name!r} has value {int(arr[pos])} at instance {pos[0]}; Output({d.size}) values run "
                f"0..{d.size - 1} (-1 = don't care); fix: correct the data"
            )
        out[d.name] = arr.astype(np.int64)
    return out


def check_data(flat: FlatModel, data: Any, what: str = "the data") -> int:
    """Validate a batch to train or score on: a dict, at least one instance, every input
    and observed output valid, and at least one output element observed (not ``-1``).

    Data that observes nothing scores every program 1.0, so it is refused.

    Args:
        what: how error messages name the batch (e.g. ``"val_data"``).

    Returns:
        the batch size B.

    Raises:
        DataError: naming the rule, the value found and the fix.

    Example:
        >>> from ntpt_dist.interpreter.ir import Decl, NO_SPAN
        >>> flat = FlatModel({"y": Decl("y", "output", 2, (), NO_SPAN)}, {}, {}, {}, (), {})
        >>> check_data(flat, {"y": [1, -1]})
        2
    """
    if not isinstance(data, Mapping):
        raise DataError(
            f"{what} must be a dict name -> array, got {type(data).__name__}; "
            "fix: pass e.g. {'x': int array [B, ...], 'y': int array [B, ...]} (docs/design.md)"
        )
    n = batch_size(flat, data)
    if n == 0:
        raise DataError(f"{what} is empty: its arrays have 0 instances (first dimension); fix: give at least one instance")
    check_inputs(flat, data, n)
    check_tensors(flat, data, n)
    require_observed(flat, check_outputs(flat, data, n), data, what)
    return n


def require_observed(flat: FlatModel, targets: Mapping[str, np.ndarray], data: Mapping[str, Any], what: str) -> None:
    """Raise a DataError unless some element of ``targets`` (checked outputs) is observed (not ``-1``)."""
    if not targets:
        raise DataError(
            f"{what} has none of the model's outputs {[d.name for d in flat.outputs]} (keys: {sorted(data)}); "
            "fix: add the expected outputs as int arrays [B, *shape], -1 where any value is acceptable"
        )
    if not any((t != -1).any() for t in targets.values()):
        raise DataError(
            f"{what} observes no output: every element of {sorted(targets)} is -1 (don't care), "
            "so every program would score 1.0; fix: give the expected output values for some instances"
        )


def check_tensors(flat: FlatModel, batch: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    """Validate every ``InputTensor``: present, float, shape ``[B, *shape, *elem_shape]``.

    Returns:
        name -> float32 array.

    Raises:
        DataError: naming the tensor input and the shape found.

    Example:
        >>> from ntpt_dist.interpreter.ir import TensorDecl, NO_SPAN
        >>> flat = FlatModel({}, {"img": TensorDecl("img", (2,), (3,), NO_SPAN)}, {}, {}, (), {})
        >>> check_tensors(flat, {"img": np.zeros((4, 3, 2))}, 4)["img"].shape
        (4, 3, 2)
    """
    out = {}
    for t in flat.tensors.values():
        want = (n, *t.shape, *t.elem_shape)
        if t.name not in batch:
            raise DataError(
                f"tensor input {t.name!r} is missing from the batch, which has keys {sorted(batch)}; "
                f"fix: add {t.name!r} as a float array of shape {list(want)}"
            )
        arr = as_numpy(batch[t.name])
        if arr.shape != want:
            raise DataError(
                f"tensor input {t.name!r} has shape {tuple(arr.shape)}, expected {want} ([B, *shape, *dims]); "
                "fix: give one row per instance with the declared shape"
            )
        out[t.name] = arr.astype(np.float32)
    return out


def check_params(flat: FlatModel, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Validate Param values: every Param present, of the declared shape, in range.

    Args:
        params: name -> int or nested list / array of ints.

    Returns:
        name -> int64 array of the declared shape.

    Raises:
        NtptError: naming the Param and the bad value.

    Example:
        >>> from ntpt_dist.interpreter.ir import Decl, NO_SPAN
        >>> flat = FlatModel({"p": Decl("p", "param", 4, (2,), NO_SPAN)}, {}, {}, {}, (), {})
        >>> check_params(flat, {"p": [3, 1]})["p"].tolist()
        [3, 1]
    """
    out = {}
    for d in flat.params:
        if d.name not in params:
            raise NtptError(
                f"no value given for Param {d.name!r} (Param({d.size}){list(d.shape) if d.shape else ''}); "
                f"values given: {sorted(params)}; fix: give every Param a value"
            )
        arr = as_numpy(params[d.name])
        if arr.shape != d.shape or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise NtptError(
                f"Param {d.name!r} must be {'an int' if not d.shape else 'ints of shape ' + str(d.shape)}, "
                f"got {params[d.name]!r} (shape {arr.shape}, dtype {arr.dtype}); fix: give a value of the declared shape"
            )
        arr = arr.astype(np.int64)
        bad = (arr < 0) | (arr >= d.size)
        if bad.any():
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            raise NtptError(
                f"Param {d.name!r}{list(pos) if pos else ''} has value {int(arr[pos])}, "
                f"but Param({d.size}) values run 0..{d.size - 1}; fix: give values in range"
            )
        out[d.name] = arr
    for elem, value in flat.fixed.items():  # set_to_constant: the model's value, whatever was given
        out[elem.name][elem.index] = value
    return out
