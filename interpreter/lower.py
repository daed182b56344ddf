"""Lowering: a :class:`FlatModel` as a torch computation of marginals ``[R, B, K]``.

Every integer element is a probability vector per restart ``r`` and instance
``b`` (FMGD, see ``ir.py``). Params are ``softmax`` of logits ``[R, *shape, K]``
(seen as ``[R, 1, K]``), Inputs are one-hot ``[S, B, K]`` where ``S`` is 1 when
all restarts see the same rows and R when every restart has its own minibatch.

Lowering is done once: it turns the statements into a list of *ops* over
integer value slots (no per-step dict lookups of names, no per-step walking of
the IR). One forward pass then runs the ops in order:

* ``AtomsOp``: all ``P(elem in values)`` an element is ever tested for, as one
  matmul with a 0/1 mask, computed once per forward;
* ``RuntimeOp``: a ``@Runtime`` call, contracting its one-hot table with the
  argument marginals one argument at a time (constant arguments are folded
  into the table at lowering);
* ``StaticNetOp``: every call of a network whose arguments are data (tensor
  cells, Inputs, constants) in ONE batched network call, at the start;
* ``DynamicNetOp``: a network call on computed marginals, once per distinct call;
* ``MixOp``: an Assign: case probabilities (gathered products of atom
  probabilities), summed per distinct expression, times the expressions.

Identical calls share one slot, so a call is computed once per forward.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from .batch import Batch, prepare_batch
from .errors import NtptError
from .ir import Assign, Call, Const, Elem, Expr, FlatModel, TensorArg, TensorElem
from .lower_ops import AtomsOp, Ctx, DynamicNetOp, MixOp, RuntimeOp, StaticNetOp
from .nets import StackedMLP

__all__ = ["Lowered", "Batch", "Forward", "prepare_batch", "EPS"]

EPS = 1e-7  # added inside the log of the loss: keeps gradients bounded (<= 1/EPS)


# ---------------------------------------------------------------- ops


class _Planner:
    """Walks the statements once and emits the ops over numbered value slots."""

    def __init__(self, flat: FlatModel, nets: dict[str, StackedMLP], dtype: torch.dtype, device: Any):
        self.flat, self.nets, self.dtype, self.device = flat, nets, dtype, device
        self.n = 0
        self.slot_of: dict[Elem, int] = {}
        self.call_slot: dict[Call, int] = {}
        self.const_vec: dict[int, torch.Tensor] = {}  # slot -> constant marginal [K]
        self.const_key: dict[tuple, int] = {}
        self.atom_at: dict[Elem, tuple[int, dict[frozenset, int]]] = {}
        self.ops: list = []
        self.atoms_of: dict[Elem, list[frozenset]] = {}
        for st in flat.statements:
            for case in st.cases:
                for atom in case.cond:
                    seen = self.atoms_of.setdefault(atom.elem, [])
                    if atom.values not in seen:
                        seen.append(atom.values)
        self.input_slots = {d.name: self._decl_slots(d) for d in flat.inputs}
        self.param_slots = {d.name: self._decl_slots(d) for d in flat.params}
        self._static_nets()
        for st in flat.statements:
            self.statement(st)
        # An Output element no statement assigns has the all-zero marginal (it never matches).
        self.output_slots = {d.name: [self.slot_of[e] if e in self.slot_of else self.const(torch.zeros(d.size))
                                      for e in _elems(d.name, d.shape)] for d in flat.outputs}

    def new(self) -> int:
        self.n += 1
        return self.n - 1

    def _decl_slots(self, d) -> list[int]:
        slots = []
        for e in _elems(d.name, d.shape):
            self.slot_of[e] = self.new()
            slots.append(self.slot_of[e])
        return slots

    def const(self, vec: torch.Tensor) -> int:
        key = tuple(vec.tolist())
        if key not in self.const_key:
            slot = self.new()
            self.const_key[key] = slot
            self.const_vec[slot] = vec.to(self.device, self.dtype)
        return self.const_key[key]

    def onehot(self, value: int, size: int) -> torch.Tensor:
        assert 0 <= value < size, f"constant {value} out of range {size}"
        return F.one_hot(torch.tensor(value), size).to(self.dtype)

    # ---- expressions

    def expr(self, e: Expr, size: int) -> int:
        if isinstance(e, Const):
            return self.const(self.onehot(e.value, size))
        if isinstance(e, Elem):
            assert e in self.slot_of, f"{e} is read before it is assigned"
            return self.slot_of[e]
        assert isinstance(e, Call), f"{e} may only appear as a @Learn argument"
        if e not in self.call_slot:
            self.call_slot[e] = self.runtime(e) if e.fn in self.flat.runtimes else self.dynamic_net(e)
        return self.call_slot[e]

    def runtime(self, call: Call) -> int:
        fn = self.flat.runtimes[call.fn]
        table = F.one_hot(torch.as_tensor(np.array(fn.table, dtype=np.int64)), fn.out_size).to(self.dtype)
        args = []
        for pos in reversed(range(len(call.args))):  # fold constants, last position first
            a = call.args[pos]
            if isinstance(a, Const):
                table = table.select(pos, a.value)
            else:
                args.insert(0, self.expr(a, fn.arg_sizes[pos]))
        if not args:
            return self.const(table)
        out = self.new()
        self.ops.append(RuntimeOp(out, args, table.contiguous().to(self.device)))
        return out

    def dynamic_net(self, call: Call) -> int:
        fn = self.flat.learns[call.fn]
        args: list[tuple[str, Any]] = []
        for spec, a in zip(fn.args, call.args):
            if isinstance(spec, TensorArg):
                assert isinstance(a, TensorElem), f"{call}: tensor argument expected"
                args.append(("tensor", (a.name, a.index)))
            else:
                args.append(("slot", self.expr(a, spec)))
        out = self.new()
        self.ops.append(DynamicNetOp(out, self.nets[call.fn], args))
        return out

    def _static_nets(self) -> None:
        """One op per network for all its calls on data only (tensor cells, Inputs, constants)."""
        calls: dict[str, dict[Call, None]] = {}
        for c in _calls(self.flat):
            if c.fn in self.flat.learns and all(self._is_data(a) for a in c.args):
                calls.setdefault(c.fn, {})[c] = None
        for name, unique in sorted(calls.items()):
            fn = self.flat.learns[name]
            # Cell order, so that calls covering a whole tensor grid read it without a gather.
            group = sorted(unique, key=lambda c: [(type(a).__name__, getattr(a, "name", ""), getattr(a, "index", ()),
                                                   getattr(a, "value", 0)) for a in c.args])
            blocks = [self._block(spec, [c.args[j] for c in group]) for j, spec in enumerate(fn.args)]
            if any(b is None for b in blocks):
                continue  # mixed sources at one argument position: computed call by call
            outs = [self.new() for _ in group]
            self.call_slot.update(zip(group, outs))
            self.ops.append(StaticNetOp(len(self.ops), self.nets[name], outs, blocks))

    def _is_data(self, a: Expr) -> bool:
        if isinstance(a, Elem):
            return self.flat.decls[a.name].kind == "input"
        return isinstance(a, (Const, TensorElem))

    def _block(self, spec, args: list[Expr]):
        first = args[0]
        if isinstance(spec, TensorArg):
            if not all(isinstance(a, TensorElem) and a.name == first.name for a in args):
                return None
            shape = self.flat.tensors[first.name].shape
            idx = [int(np.ravel_multi_index(a.index, shape)) if shape else 0 for a in args]
            ident = idx == list(range(int(np.prod(shape))))
            return ("tensor", (first.name, int(np.prod(shape))), None if ident else torch.tensor(idx, device=self.device))
        if all(isinstance(a, Const) for a in args):
            return ("const", None, torch.stack([self.onehot(a.value, spec) for a in args]).to(self.device))
        if all(isinstance(a, Elem) and a.name == first.name for a in args):
            shape = self.flat.decls[first.name].shape
            idx = [int(np.ravel_multi_index(a.index, shape)) if shape else 0 for a in args]
            return ("input", first.name, torch.tensor(idx, device=self.device))
        return None

    # ---- statements

    def atoms(self, e: Elem) -> tuple[int, dict[frozenset, int]]:
        if e not in self.atom_at:
            values = self.atoms_of[e]
            size = self.flat.decls[e.name].size
            mask = torch.zeros(size, len(values), dtype=self.dtype)
            for j, vals in enumerate(values):
                mask[sorted(vals), j] = 1.0
            out = self.new()
            self.ops.append(AtomsOp(self.slot_of[e], out, mask.to(self.device)))
            self.atom_at[e] = (out, {vals: j for j, vals in enumerate(values)})
        return self.atom_at[e]

    def statement(self, st: Assign) -> None:
        size = self.flat.decls[st.target.name].size
        cases = st.cases
        if len(cases) == 1 and not cases[0].cond:
            self.slot_of[st.target] = self.expr(cases[0].expr, size)  # a plain copy: share the slot
            return
        atom_slots: list[int] = []
        offset: dict[int, int] = {}
        width = 0
        rows = []
        for case in cases:
            row = []
            for atom in case.cond:
                slot, cols = self.atoms(atom.elem)
                if slot not in offset:
                    offset[slot] = width
                    atom_slots.append(slot)
                    width += len(cols)
                row.append(offset[slot] + cols[atom.values])
            rows.append(row)
        longest = max(len(r) for r in rows)
        pad = any(len(r) < longest for r in rows)
        idx = torch.tensor([r + [width] * (longest - len(r)) for r in rows], device=self.device)
        const = torch.zeros(len(cases), size, dtype=self.dtype)
        has_const = False
        dyn: dict[int, int] = {}
        members: list[tuple[int, int]] = []
        for c, case in enumerate(cases):
            slot = self.expr(case.expr, size)
            if slot in self.const_vec:
                const[c] += self.const_vec[slot].cpu()
                has_const = True
            else:
                members.append((c, dyn.setdefault(slot, len(dyn))))
        group = torch.zeros(len(cases), len(dyn), dtype=self.dtype)
        for c, e in members:
            group[c, e] = 1.0
        if len(dyn) == len(cases):
            group = None  # every case has its own expression: no summing needed
        out = self.new()
        self.ops.append(MixOp(out, atom_slots, idx, pad, const.to(self.device) if has_const else None,
                             None if group is None else group.to(self.device), list(dyn), size, st.total))
        self.slot_of[st.target] = out


def _elems(name: str, shape: tuple[int, ...]) -> list[Elem]:
    return [Elem(name, tuple(int(i) for i in ix)) for ix in np.ndindex(*shape)] if shape else [Elem(name)]


def _calls(flat: FlatModel):
    """Every Call in statement order (nested arguments before the call)."""
    def walk(e: Expr):
        if isinstance(e, Call):
            for a in e.args:
                yield from walk(a)
            yield e

    for st in flat.statements:
        for case in st.cases:
            yield from walk(case.expr)


# ---------------------------------------------------------------- the lowered model


class Forward:
    """The result of one forward pass: every marginal, the loss and the accuracy.

    Attributes:
        loss: ``[R]`` NLL of the observed outputs, summed over output elements,
            averaged over the batch (restarts stay independent: sum it for backward).
        correct: ``[R, B]`` bool, every observed output element's argmax equals its target.
        entropy: ``[R]`` total entropy of the Param marginals (for an entropy bonus).
    """

    def __init__(self, lowered: Lowered, values: list, batch: Batch, probs: dict[str, torch.Tensor]):
        self._lowered, self._values, self.batch, self.param_probs = lowered, values, batch, probs
        r, b = lowered.restarts, batch.size
        tiny = torch.finfo(lowered.dtype).tiny
        self.entropy = sum((-(p * torch.log(p + tiny)).flatten(1).sum(1) for p in probs.values()),
                           torch.zeros(r, dtype=lowered.dtype, device=lowered.device))
        self.loss = torch.zeros(r, dtype=lowered.dtype, device=lowered.device)
        self.correct = torch.ones(r, b, dtype=torch.bool, device=lowered.device)
        for name, target in batch.targets.items():
            marg = self._stack(name)  # [R, B, n, K]
            t = target.reshape(target.shape[0], b, -1).expand(r, b, -1)
            seen = t >= 0
            p = marg.gather(-1, t.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            self.loss = self.loss - (torch.log(p + EPS) * seen).sum(2).mean(1)
            self.correct &= ((marg.argmax(-1) == t) | ~seen).all(2)

    def _stack(self, name: str) -> torch.Tensor:
        lw = self._lowered
        size = lw.flat.decls[name].size
        slots = lw.plan.output_slots[name]
        return torch.stack([self._values[s].expand(lw.restarts, self.batch.size, size) for s in slots], 2)

    @property
    def accuracy(self) -> torch.Tensor:
        """``[R]`` fraction of instances whose every observed output is predicted exactly."""
        return self.correct.to(self.loss.dtype).mean(1)

    def output(self, name: str) -> torch.Tensor:
        """Marginals of an Output: ``[R, B, *shape, K]``."""
        d = self._lowered.flat.decls[name]
        return self._stack(name).reshape(self._lowered.restarts, self.batch.size, *d.shape, d.size)

    def marginal(self, elem: Elem) -> torch.Tensor:
        """Marginal of any Input, Param or assigned element: ``[R, B, K]``."""
        lw = self._lowered
        slot = lw.plan.slot_of.get(elem)
        if slot is None:
            raise NtptError(f"{elem} is not an element of the model or is never assigned; fix: ask for an assigned element")
        return self._values[slot].expand(lw.restarts, self.batch.size, lw.flat.decls[elem.name].size)


def as_device(device: Any, here: bool = True) -> torch.device:
    """``device`` as a ``torch.device`` (one this machine has, with ``here``), else an NtptError.

    A search's driver checks only the name (``here=False``): its workers may run where the GPUs are.

    Example:
        >>> as_device("cpu")
        device(type='cpu')
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise NtptError(f"unknown torch device {device!r} ({str(e).splitlines()[0][:120]}); "
                        "fix: pass 'cpu', or 'cuda' / 'cuda:N' on a machine with a GPU") from None
    if here and resolved.type == "cuda" and not torch.cuda.is_available():
        raise NtptError(f"device {device!r} asks for CUDA, but torch sees no GPU here; fix: pass device='cpu'")
    return resolved


class Lowered:
    """A FlatModel as torch marginals with a leading restart dimension R.

    Holds the learnable tensors of R independent restarts: ``logits[name]``
    ``[R, *shape, K]`` per Param and a :class:`StackedMLP` per ``@Learn``
    function. Everything is zero until set (``engine.RestartBlock`` initialises
    slots); tests may write the tensors directly under ``torch.no_grad()``.

    Args:
        flat: the unrolled model.
        restarts: R.
        device: torch device.
        dtype: float dtype (float64 for gradient checks).
        nets: networks to use instead of fresh ones, by name (models sharing a library).
        single_copy: names of networks held as ONE copy that every restart reads
            (``StackedMLP(single_copy=True)``: networks that never train, e.g. a frozen library).

    Example:
        >>> from ntpt_dist.interpreter.ir import Case, Decl, NO_SPAN
        >>> flat = FlatModel({"p": Decl("p", "param", 2, (), NO_SPAN), "y": Decl("y", "output", 2, (), NO_SPAN)},
        ...                  {}, {}, {}, (Assign(Elem("y"), (Case((), Elem("p")),), True),), {})
        >>> low = Lowered(flat, restarts=3)
        >>> fwd = low.run(low.batch({"y": np.array([1, 1])}))
        >>> [round(x, 4) for x in fwd.loss.tolist()]
        [0.6931, 0.6931, 0.6931]
    """

    def __init__(self, flat: FlatModel, restarts: int = 1, device: Any = "cpu", dtype: torch.dtype = torch.float32,
                 nets: Optional[Mapping[str, StackedMLP]] = None, single_copy: Collection[str] = ()):
        if restarts < 1:
            raise NtptError(f"restarts must be >= 1, got {restarts}; fix: pass a positive number of restarts")
        self.flat, self.restarts, self.device, self.dtype = flat, restarts, as_device(device), dtype
        self.logits = {d.name: torch.zeros(restarts, *d.shape, d.size, device=self.device, dtype=dtype).requires_grad_()
                       for d in flat.params}
        called = {c.fn for c in _calls(flat)}
        shared = dict(nets or {})
        for name, net in shared.items():  # several models may share one library (lifelong learning)
            fn = flat.learns.get(name)
            if fn is not None and (net.fn.signature != fn.signature or net.restarts != restarts):
                raise NtptError(f"shared network '{name}' has signature {net.fn.signature} and {net.restarts} "
                                f"copies, but the model declares {fn.signature} with {restarts} restarts; "
                                "fix: share networks only between models declaring them alike")
        self.nets = {name: shared.get(name) or StackedMLP(fn, restarts, self.device, dtype, name in single_copy)
                     for name, fn in sorted(flat.learns.items()) if name in called}
        self.plan = _Planner(flat, self.nets, dtype, self.device)
        self._consts = [(slot, vec.view(1, 1, -1)) for slot, vec in self.plan.const_vec.items()]

    def parameters(self) -> list[tuple[str, torch.Tensor, int]]:
        """``(key, tensor, restart_axis)`` for every learnable tensor; keys ``param:<name>``, ``net:<fn>:<w>``."""
        out = [(f"param:{name}", t, 0) for name, t in sorted(self.logits.items())]
        for name, net in self.nets.items():
            out += [(f"net:{name}:{key}", t, axis) for key, t, axis in net.tensors()]
        return out

    def batch(self, data: Mapping[str, Any]) -> Batch:
        """Validate ``data`` and convert it to a shared :class:`Batch` on this device (see :func:`prepare_batch`)."""
        return prepare_batch(self.flat, data, self.device, self.dtype)

    def _onehots(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Input name -> one-hot values ``[S, B, cells, K]``."""
        return {d.name: F.one_hot(batch.inputs[d.name].reshape(batch.lead, batch.size, -1), d.size).to(self.dtype)
                for d in self.flat.inputs}

    @torch.no_grad()
    def frozen_outputs(self, batch: Batch, names: set[str], slot: int = 0, chunk: int = 1024) -> Batch:
        """``batch`` carrying the outputs of the networks ``names`` on its data, as computed
        by restart ``slot``'s copy: ops then read them instead of running the networks.

        Only valid while every restart holds the same weights for those networks
        (frozen library networks); calls on computed values are not cached.

        Example:
            >>> cached = low.frozen_outputs(low.batch(data), {"net_0"})  # doctest: +SKIP
        """
        assert batch.lead == 1, "cache the outputs of a shared batch"
        cached = dict(batch.cached)
        for op in self.plan.ops:
            if not isinstance(op, StaticNetOp) or op.net.fn.name not in names or op.key in cached:
                continue  # not a frozen network's call on data, or already there
            parts = []
            for start in range(0, batch.size, chunk):
                part = batch.slice(start, start + chunk)
                scores = op.net.scores_of(slot, op.rows(part, self._onehots(part))[0])  # [b*C, K]
                parts.append(torch.softmax(scores, -1).unflatten(0, (part.size, len(op.outs))))
            cached[op.key] = torch.cat(parts).unsqueeze(0)  # [1, B, C, K]
        return Batch(batch.inputs, batch.tensors, batch.targets, batch.size, cached)

    def run(self, batch: Batch, param_probs: Optional[Mapping[str, torch.Tensor]] = None,
            hard_nets: bool = False) -> Forward:
        """One forward pass over a batch.

        Args:
            batch: from :meth:`batch` (shared) or ``Batch.take`` (per restart).
            param_probs: optional Param name -> marginals ``[R, *shape, K]`` used
                instead of ``softmax(logits)`` (e.g. one-hot Params).
            hard_nets: replace every network output by the one-hot of its argmax.

        Returns:
            a :class:`Forward`.
        """
        assert batch.lead in (1, self.restarts), f"batch leading dim {batch.lead} is neither 1 nor R={self.restarts}"
        plan, r, b = self.plan, self.restarts, batch.size
        v: list = [None] * plan.n
        for slot, vec in self._consts:
            v[slot] = vec
        onehots = self._onehots(batch)
        for d in self.flat.inputs:
            for slot, t in zip(plan.input_slots[d.name], onehots[d.name].unbind(2)):
                v[slot] = t
        probs = {}
        for d in self.flat.params:
            given = None if param_probs is None else param_probs.get(d.name)
            p = torch.softmax(self.logits[d.name], -1) if given is None else torch.as_tensor(
                given, dtype=self.dtype, device=self.device)
            probs[d.name] = p
            for slot, t in zip(plan.param_slots[d.name], p.reshape(r, -1, d.size).unbind(1)):
                v[slot] = t.unsqueeze(1)
        ctx = Ctx(r, b, batch, hard_nets, onehots)
        for op in plan.ops:
            op(v, ctx)
        return Forward(self, v, batch, probs)
