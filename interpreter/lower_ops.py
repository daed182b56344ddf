"""The operations a lowered model runs, one per flat statement or call (see lower.py).

Each op reads the marginals it needs from the value list ``v`` (slots assigned
by the planner in ``lower.py``) and writes its result into its own slot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from .nets import StackedMLP

if TYPE_CHECKING:
    from .lower import Batch


class Ctx:
    """What one forward pass needs besides the value slots."""

    def __init__(self, r: int, b: int, batch: Batch, hard_nets: bool, onehots: dict[str, torch.Tensor]):
        self.r, self.b, self.batch, self.hard_nets, self.onehots = r, b, batch, hard_nets, onehots


class AtomsOp:
    """``v[out][..., j] = P(elem in values_j)`` for every atom on one element: one matmul."""

    def __init__(self, src: int, out: int, mask: torch.Tensor):
        self.src, self.out, self.mask = src, out, mask

    def __call__(self, v: list, ctx: Ctx) -> None:
        v[self.out] = v[self.src] @ self.mask


class RuntimeOp:
    """A ``@Runtime`` call: one-hot table ``[K1..Kn, Kout]`` contracted with the argument marginals."""

    def __init__(self, out: int, args: list[int], table: torch.Tensor):
        self.out, self.args = out, args
        # table viewed as [K1, K2*...*Kout]; each step contracts the leading argument.
        self.table = table.reshape(table.shape[0], -1)
        self.rests = [int(np.prod(table.shape[i + 1 :])) for i in range(len(args))]
        self.sizes = list(table.shape)

    def __call__(self, v: list, ctx: Ctx) -> None:
        x = v[self.args[0]] @ self.table  # [S, B, K2*...*Kout]
        for i, a in enumerate(self.args[1:], start=1):
            x = x.unflatten(-1, (self.sizes[i], self.rests[i]))
            x = (v[a].unsqueeze(-1) * x).sum(-2)  # 2x faster than a bmm of [S*B] 1-row matrices
        v[self.out] = x


def net_output(scores: torch.Tensor, hard: bool) -> torch.Tensor:
    if hard:
        return F.one_hot(scores.argmax(-1), scores.shape[-1]).to(scores.dtype)
    return torch.softmax(scores, -1)


class StaticNetOp:
    """Every call of one network whose arguments are data, as ONE batched network call.

    ``blocks`` describe the argument positions: per position a source
    (``("tensor", name)``, ``("input", name)`` or ``("const", size)``) and the
    flat cell index per call. ``key`` names the op's outputs in ``Batch.cached``:
    when the batch carries them (a frozen network), nothing is computed.
    """

    def __init__(self, key: int, net: StackedMLP, outs: list[int], blocks: list[tuple[str, Any, torch.Tensor]]):
        self.key, self.net, self.outs, self.blocks = key, net, outs, blocks

    def rows(self, batch: Batch, onehots: dict[str, torch.Tensor]) -> torch.Tensor:
        """The network's input rows ``[S, B*C, D]``, instance-major."""
        s, b, c = batch.lead, batch.size, len(self.outs)
        parts = []
        for kind, key, idx in self.blocks:
            if kind == "tensor":
                name, cells = key
                t = batch.tensors[name]
                t = t.reshape(t.shape[0], t.shape[1], cells, -1)  # [S, B, cells, D]
                # Calls reading every cell in order (the usual "with X as x: with Y as y") need no gather.
                part = t if idx is None else t[:, :, idx]  # [S, B, C, D]
            elif kind == "input":
                part = onehots[key][:, :, idx]  # [S, B, C, K]
            else:  # constants: idx is their one-hot matrix [C, K]
                part = idx.unsqueeze(0).unsqueeze(0)  # [1, 1, C, K]
            parts.append(part.expand(s, b, c, part.shape[-1]))
        x = torch.cat(parts, -1) if len(parts) > 1 else parts[0]
        return x.reshape(s, b * c, -1)  # a view for one in-order tensor block

    def __call__(self, v: list, ctx: Ctx) -> None:
        out = ctx.batch.cached.get(self.key)  # [S, B, C, K] of a frozen network
        if out is None:
            x = self.rows(ctx.batch, ctx.onehots)
            scores = self.net.scores(x[0] if x.shape[0] == 1 else x)  # [R, B*C, K]
            out = net_output(scores, ctx.hard_nets).unflatten(1, (ctx.b, len(self.outs)))
        elif ctx.hard_nets:
            out = F.one_hot(out.argmax(-1), out.shape[-1]).to(out.dtype)
        for i, slot in enumerate(self.outs):
            v[slot] = out[:, :, i]


class DynamicNetOp:
    """A network call with computed (per-restart) marginals among its arguments."""

    def __init__(self, out: int, net: StackedMLP, args: list[tuple[str, Any]]):
        self.out, self.net, self.args = out, net, args

    def __call__(self, v: list, ctx: Ctx) -> None:
        parts = []
        for kind, key in self.args:
            if kind == "slot":
                x = v[key]
            else:  # ("tensor", (name, index))
                name, index = key
                t = ctx.batch.tensors[name]
                x = t[(slice(None), slice(None), *index)].flatten(2)
            parts.append(x.expand(ctx.r, ctx.b, x.shape[-1]))
        x = torch.cat(parts, -1) if len(parts) > 1 else parts[0]
        v[self.out] = net_output(self.net.scores(x), ctx.hard_nets)


class MixOp:
    """An Assign: ``sum_case P(cond) * mu(expr)`` with cases fused.

    ``idx[C, L]`` indexes the concatenated atom tensors of the statement (a
    trailing column of ones pads shorter conditions); ``group[C, E]`` sums case
    probabilities per distinct dynamic expression; constant expressions fold
    into one ``[C, K]`` matrix.
    """

    def __init__(self, out: int, atom_slots: list[int], idx: torch.Tensor, pad: bool, const: Optional[torch.Tensor],
                 group: Optional[torch.Tensor], exprs: list[int], size: int, total: bool):
        self.out, self.atom_slots, self.pad, self.const, self.total = out, atom_slots, pad, const, total
        self.group, self.exprs, self.size = group, exprs, size
        self.cols = [idx[:, j].contiguous() for j in range(idx.shape[1])]

    def __call__(self, v: list, ctx: Ctx) -> None:
        r, b = ctx.r, ctx.b
        if len(self.atom_slots) == 1 and not self.pad:
            a = v[self.atom_slots[0]]
        else:
            a = [v[s].expand(r, b, -1) for s in self.atom_slots]
            if self.pad:
                a.append(a[0].new_ones(r, b, 1))
            a = torch.cat(a, -1)
        # index_select, not a[..., col]: its backward is an index_add, 2x faster at R=16 than
        # the sorting index_put_ of advanced indexing
        p = a.index_select(-1, self.cols[0])
        for col in self.cols[1:]:
            p = p * a.index_select(-1, col)  # [R|S, B, C]
        out = None
        if self.const is not None:
            out = p @ self.const
        if self.exprs:
            pe = p @ self.group if self.group is not None else p  # [.., E]
            if len(self.exprs) == 1:
                dyn = pe * v[self.exprs[0]]
            else:
                stack = torch.stack([v[s].expand(r, b, self.size) for s in self.exprs], -2)  # [R, B, E, K]
                dyn = (pe.unsqueeze(-1) * stack).sum(-2)  # 3x faster than a bmm of 1-row matrices
            out = dyn if out is None else out + dyn
        if self.total:
            # The cases cover every path, so the mass is exactly 1 for ANY Params/networks: dividing by it
            # changes neither the function nor its gradient, but stops rounding errors in the mass from
            # compounding over a long unroll (they grow ~3x per step of the Fig. 1 maze without it).
            out = out / out.sum(-1, keepdim=True).clamp_min(torch.finfo(out.dtype).tiny)
        v[self.out] = out


# ---------------------------------------------------------------- lowering (done once)
