"""R copies of one ``@Learn`` MLP, stacked along a restart dimension.

Every restart owns its own copy of every network. The copies live in a few
big tensors so that one batched matmul serves all restarts:

* weights ``[R, in, out]``: rows per restart (``x[R, N, D]``, a training
  minibatch) or shared by all (``x[N, D]``, an evaluation) are one ``bmm``;
  restart-major, so neither pass nor the gradient copies the weight (a
  ``[D, R, H]`` layer 0 cost a 200 MB transposing copy per step of the
  maze's LOOK at R=64);
* biases: ``[R, out]``.

The single-copy (library) form is docs/design.md's ``{"w0": [D, h1], "b0": [h1], ...}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np
import torch

from .ir import LearnFn
from .netfn import check_netstate

__all__ = ["StackedMLP"]


class StackedMLP:
    """R restart copies of the MLP of one ``@Learn`` declaration.

    Args:
        fn: the declaration (in-features, ``hid_sizes``, out size).
        restarts: R, the number of copies.
        device: torch device.
        dtype: float dtype of the weights.
        single_copy: hold ONE copy that every restart reads (a network that never
            trains: a frozen library network). The tensors are then ``[R, ...]`` views
            of one ``[1, ...]`` storage, without gradients; writing any restart's copy
            (:meth:`load_slot`) writes every restart's.

    Example:
        >>> net = StackedMLP(LearnFn("g", (3,), 2, (4,)), restarts=5)
        >>> net.scores(torch.zeros(7, 3)).shape
        torch.Size([5, 7, 2])
    """

    def __init__(self, fn: LearnFn, restarts: int, device: Any = "cpu", dtype: torch.dtype = torch.float32,
                 single_copy: bool = False):
        self.fn = fn
        self.restarts = restarts
        self.single_copy = single_copy
        self.sizes = [fn.in_features, *fn.hid_sizes, fn.out_size]
        kw = {"device": device, "dtype": dtype}

        def stacked(*shape: int) -> torch.Tensor:
            if single_copy:  # R views of one copy: the same numbers in every op, 1/R of the memory
                return torch.zeros(1, *shape, **kw).expand(restarts, *shape)
            return torch.zeros(restarts, *shape, **kw).requires_grad_()

        self.weights = [stacked(self.sizes[i], self.sizes[i + 1]) for i in range(len(self.sizes) - 1)]
        self.biases = [stacked(s) for s in self.sizes[1:]]
        self.grad_buffers: Optional[list[Optional[torch.Tensor]]] = None  # see keep_grad_memory

    def keep_grad_memory(self, min_bytes: int = 32 << 20) -> None:
        """Write the gradients of weights of at least ``min_bytes`` into memory kept across steps.

        A fresh weight gradient that large is mmap'd by malloc and page-faulted at every
        step (the maze's LOOK layer 0 at R = 64: 200 MB, ~49 thousand faults a step).
        With this on, backward writes such a gradient into one buffer per weight and
        sets ``.grad`` to it, so a caller must be done with a step's gradients (the
        optimiser has read them) before the next backward. The values are the same as
        autograd's, bit for bit. ``engine.RestartBlock`` turns it on for its networks.
        A single-copy network never trains: nothing to keep.
        """
        if self.single_copy:
            return
        self.grad_buffers = [torch.empty_like(w) if w.numel() * w.element_size() >= min_bytes else None
                             for w in self.weights]

    def tensors(self) -> list[tuple[str, torch.Tensor, int]]:
        """``(key, tensor, restart_axis)`` of every weight, in a fixed order."""
        out = [(f"w{i}", w, 0) for i, w in enumerate(self.weights)]
        out += [(f"b{i}", b, 0) for i, b in enumerate(self.biases)]
        return sorted(out, key=lambda t: t[0])

    def _slot_views(self, slot: int) -> dict[str, torch.Tensor]:
        return {key: t.select(axis, slot) for key, t, axis in self.tensors()}

    @torch.no_grad()
    def init_slot(self, slot: int, gen: torch.Generator, scale: float = 1.0) -> None:
        """Fresh random weights for one restart, drawn from that restart's generator.

        He-style normal weights (std ``scale * sqrt(2 / fan_in)``), zero biases;
        the draws depend only on ``gen``, never on ``slot`` or R.
        """
        for i in range(len(self.sizes) - 1):
            fan_in, fan_out = self.sizes[i], self.sizes[i + 1]
            w = torch.randn(fan_in, fan_out, generator=gen, dtype=torch.float32) * (scale * math.sqrt(2.0 / fan_in))
            self._slot_views(slot)[f"w{i}"].copy_(w)
            self._slot_views(slot)[f"b{i}"].zero_()

    @torch.no_grad()
    def load_slot(self, slot: int, net: Mapping[str, Any]) -> None:
        """Copy a library ``NetState`` into one restart's copy.

        Raises:
            NtptError: when the NetState does not fit the declaration.
        """
        state = check_netstate(self.fn, net)
        views = self._slot_views(slot)
        for key, arr in state.items():
            # arrays from Ray's object store are read-only; torch wants writable memory to wrap
            views[key].copy_(torch.from_numpy(np.require(arr, requirements="W")))

    @torch.no_grad()
    def state(self, slot: int) -> dict[str, Any]:
        """One restart's copy as a library ``NetState`` (float32 numpy arrays)."""
        views = self._slot_views(slot)
        state = {key: views[key].detach().cpu().to(torch.float32).numpy().copy() for key in sorted(views)}
        return {"signature": self.fn.signature, "state": state}

    def scores_of(self, slot: int, x: torch.Tensor) -> torch.Tensor:
        """Pre-softmax scores ``[N, K]`` of one restart's copy on rows ``x[N, D]``."""
        views = self._slot_views(slot)
        y = x
        for i in range(len(self.sizes) - 1):
            y = y @ views[f"w{i}"] + views[f"b{i}"]
            if i < len(self.sizes) - 2:
                y = torch.relu(y)
        return y

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-softmax scores of every copy.

        Args:
            x: ``[N, D]`` (the same rows for every restart: one GEMM) or
               ``[R, N, D]`` (rows per restart: batched matmul).

        Returns:
            ``[R, N, K]``.
        """
        if x.dim() == 2:
            x = x.expand(self.restarts, *x.shape)  # a view: bmm reads the shared rows R times
        y = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if i:
                y = torch.relu(y)
            buf = None if self.grad_buffers is None else self.grad_buffers[i]
            if buf is not None and w.requires_grad and torch.is_grad_enabled():
                y = _KeptGradLayer.apply(b.unsqueeze(1), y, w, buf)
            else:
                y = torch.baddbmm(b.unsqueeze(1), y, w)
        return y


class _KeptGradLayer(torch.autograd.Function):
    """``baddbmm(bias, x, w)`` whose weight gradient goes into the kept buffer ``buf`` (as ``w.grad``).

    The gradients are computed as autograd's own ``baddbmm`` backward computes them.
    """

    @staticmethod
    def forward(ctx, bias: torch.Tensor, x: torch.Tensor, w: torch.Tensor, buf: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        # The weight itself, not a saved tensor: under saved_tensors_hooks, ctx.saved_tensors
        # gives back another tensor object, and its .grad would not be the weight's.
        ctx.w, ctx.buf = w, buf
        return torch.baddbmm(bias, x, w)

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        (x,), w = ctx.saved_tensors, ctx.w
        if w.grad is None:
            w.grad = torch.bmm(x.transpose(1, 2), dy, out=ctx.buf)
        else:  # a second call of the network in this backward
            w.grad.add_(torch.bmm(x.transpose(1, 2), dy))
        dx = dy.bmm(w.transpose(1, 2)) if ctx.needs_input_grad[1] else None
        dbias = dy.sum(1, keepdim=True) if ctx.needs_input_grad[0] else None
        return dbias, dx, None, None


def numpy_state(net: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The weight arrays of a NetState as float32 numpy (a helper for tests)."""
    return {k: np.asarray(v, dtype=np.float32) for k, v in net["state"].items()}
