"""Model data as torch tensors: :class:`Batch` and :func:`prepare_batch` (validation of a data dict).

The lowered model (``lower.py``) and the engine read every input, tensor and
target from a ``Batch``; frozen networks' outputs travel in it too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from .discrete import batch_size, check_inputs, check_outputs, check_tensors, require_observed
from .errors import DataError
from .ir import FlatModel

__all__ = ["Batch", "BatchTransform", "RandomShift", "prepare_batch", "shifted"]


@dataclass
class Batch:
    """Model data as torch tensors, leading dimension ``S`` (1 = shared by all restarts, or R).

    ``inputs``: Input name -> long ``[S, B, *shape]``; ``tensors``: InputTensor
    name -> float ``[S, B, *shape, *dims]``; ``targets``: observed Output name ->
    long ``[S, B, *shape]`` (``-1`` = don't care). ``cached``: outputs of frozen
    networks already computed on these instances, by the key of the op that would
    compute them, ``[S, B, calls, K]`` (see ``RestartBlock`` and ``TrainConfig.freeze_library``).
    """

    inputs: dict[str, torch.Tensor]
    tensors: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor]
    size: int
    cached: dict[int, torch.Tensor] = field(default_factory=dict)

    @property
    def lead(self) -> int:
        for group in (self.inputs, self.tensors, self.targets):
            for t in group.values():
                return t.shape[0]
        return 1

    def take(self, rows: torch.Tensor, buffers: Optional[dict[tuple[str, str], torch.Tensor]] = None) -> Batch:
        """Per-restart minibatches: ``rows[R, b]`` indexes this (shared) batch's instances.

        Args:
            rows: ``[R, b]`` instance indices.
            buffers: optional reusable output memory, by ``(group, name)``: a buffer of the
                right shape is written in place (and the result views it), a missing or
                ill-fitting one is allocated and stored there. The caller must be done with
                the previous minibatch (its backward run) before taking the next one.

        Returns:
            the minibatch, leading dimension R.

        Example:
            >>> b = Batch({"x": torch.tensor([[0, 1, 1]])}, {}, {}, 3)
            >>> b.take(torch.tensor([[2, 0], [1, 1]])).inputs["x"].tolist()
            [[1, 0], [1, 1]]
        """
        assert self.lead == 1, "take() selects from a shared batch"

        def pick(kind: str, group: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            # index_select on flat rows: 1.3-7x faster than advanced indexing v[0][rows]
            out = {}
            for k, v in group.items():
                flat_rows = rows.reshape(-1).to(v.device)
                if buffers is None:
                    out[k] = v[0].index_select(0, flat_rows).view(*rows.shape, *v.shape[2:])
                    continue
                # Into kept memory: a fresh 188 MB image gather (the maze at R = 64) is mmap'd and
                # page-faulted at every step, 8-10x slower than the copy itself.
                shape, buf = (flat_rows.shape[0], *v.shape[2:]), buffers.get((kind, str(k)))
                if buf is None or buf.shape != shape or buf.dtype != v.dtype or buf.device != v.device:
                    buf = buffers[(kind, str(k))] = torch.empty(shape, dtype=v.dtype, device=v.device)
                out[k] = torch.index_select(v[0], 0, flat_rows, out=buf).view(*rows.shape, *v.shape[2:])
            return out

        return Batch(pick("inputs", self.inputs), pick("tensors", self.tensors), pick("targets", self.targets),
                     rows.shape[1], pick("cached", self.cached))

    def slice(self, start: int, stop: int) -> Batch:
        """Instances ``start:stop`` (for evaluating a large batch in chunks)."""

        def cut(group: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {k: v[:, start:stop] for k, v in group.items()}

        return Batch(cut(self.inputs), cut(self.tensors), cut(self.targets), min(stop, self.size) - start, cut(self.cached))


def prepare_batch(flat: FlatModel, data: Mapping[str, Any], device: Any = "cpu", dtype: torch.dtype = torch.float32) -> Batch:
    """Validate a data dict (docs/design.md format) and convert it to a shared :class:`Batch`.

    Outputs missing from ``data`` are unobserved (no loss, no accuracy check).

    Raises:
        DataError: a missing input, a value out of range or a wrong shape.

    Example:
        >>> from ntpt_dist.interpreter.ir import Assign, Case, Decl, Elem, NO_SPAN
        >>> flat = FlatModel({"x": Decl("x", "input", 2, (), NO_SPAN), "y": Decl("y", "output", 2, (), NO_SPAN)},
        ...                  {}, {}, {}, (Assign(Elem("y"), (Case((), Elem("x")),), True),), {})
        >>> prepare_batch(flat, {"x": [0, 1], "y": [1, -1]}).targets["y"].shape
        torch.Size([1, 2])
    """
    n = batch_size(flat, data)
    if n == 0:
        raise DataError("the batch is empty: its arrays have 0 instances (first dimension); fix: give at least one instance")
    inputs = {k: torch.from_numpy(v).to(device).unsqueeze(0) for k, v in check_inputs(flat, data, n).items()}
    tensors = {k: torch.from_numpy(v).to(device, dtype).unsqueeze(0) for k, v in check_tensors(flat, data, n).items()}
    checked = check_outputs(flat, data, n)
    require_observed(flat, checked, data, "the batch")  # nothing observed: no loss, every restart at 1.0
    targets = {k: torch.from_numpy(v).to(device).unsqueeze(0) for k, v in checked.items()}
    return Batch(inputs, tensors, targets, n)


def shifted(batch: Batch, flat: FlatModel, k: int, offsets: Callable[[int], torch.Tensor]) -> Batch:
    """``batch`` with every image cell translated by up to ``k`` pixels (data augmentation).

    Only InputTensors with at least two element dimensions (``h, w`` last) are
    moved; pixels shifted in are zero. ``offsets(n)`` draws the shifts for one
    tensor: a long ``[2, S, n]`` (``dy, dx`` for each of the ``n`` images of each
    of the batch's ``S`` leading rows, each in ``-k..k``); it is called once per
    tensor, in sorted name order, so a caller's draws are reproducible.

    Example:
        >>> from ntpt_dist.interpreter.ir import NO_SPAN, TensorDecl
        >>> flat = FlatModel({}, {"im": TensorDecl("im", (3, 3), (), NO_SPAN)}, {}, {}, (), {})
        >>> b = Batch({}, {"im": torch.eye(3).reshape(1, 1, 3, 3)}, {}, 1)
        >>> shifted(b, flat, 1, lambda n: torch.ones(2, 1, n, dtype=torch.long)).tensors["im"][0, 0].tolist()
        [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    tensors = dict(batch.tensors)
    for name in sorted(tensors):
        decl = flat.tensors[name]
        if len(decl.elem_shape) < 2:
            continue
        t = tensors[name]  # [S, b, *cells, *elem]
        h, w = decl.elem_shape[-2:]
        images = t.reshape(-1, int(np.prod(decl.elem_shape[:-2], dtype=np.int64)), h, w)  # [S*b*cells, C, h, w]
        dy, dx = offsets(images.shape[0] // t.shape[0]).reshape(2, -1).to(t.device)
        padded = F.pad(images, (k, k, k, k))
        rows = torch.arange(h, device=t.device) + k - dy[:, None]  # [N, h]
        cols = torch.arange(w, device=t.device) + k - dx[:, None]  # [N, w]
        n = torch.arange(images.shape[0], device=t.device)[:, None, None]
        moved = padded[n, :, rows[:, :, None], cols[:, None, :]]  # [N, h, w, C]
        tensors[name] = moved.permute(0, 3, 1, 2).reshape(t.shape)
    return Batch(batch.inputs, tensors, batch.targets, batch.size, batch.cached)


class BatchTransform(Protocol):
    """A training-batch transform a ``RestartBlock`` applies to each minibatch (data augmentation).

    ``transform(batch, flat, live, gens)`` gets the minibatch (leading dimension
    R, one row of instances per slot), the model, which slots train now and each
    slot's ``torch.Generator``; every random draw for a slot must come from that
    slot's generator, so a restart's data does not depend on its block-mates.
    """

    def __call__(self, batch: Batch, flat: FlatModel, live: np.ndarray, gens: Sequence[torch.Generator]) -> Batch: ...


@dataclass(frozen=True)
class RandomShift:
    """Shift every training image by a random offset of up to ``k`` pixels each way (``TrainConfig.augment_shift``).

    Offsets are drawn per instance from each live slot's generator; see :func:`shifted`.

    Example:
        >>> from ntpt_dist.interpreter.ir import NO_SPAN, TensorDecl
        >>> flat = FlatModel({}, {"im": TensorDecl("im", (3, 3), (), NO_SPAN)}, {}, {}, (), {})
        >>> b = Batch({}, {"im": torch.eye(3).reshape(1, 1, 3, 3)}, {}, 1)
        >>> RandomShift(1)(b, flat, np.array([True]), [torch.Generator().manual_seed(0)]).tensors["im"].shape
        torch.Size([1, 1, 3, 3])
    """

    k: int

    def __call__(self, batch: Batch, flat: FlatModel, live: np.ndarray, gens: Sequence[torch.Generator]) -> Batch:
        slots = len(gens)

        def offsets(per_slot: int) -> torch.Tensor:  # each slot's draws depend on its seed only
            out = torch.zeros(2, slots, per_slot, dtype=torch.long)
            for slot in np.flatnonzero(live):
                out[:, slot] = torch.randint(-self.k, self.k + 1, (2, per_slot), generator=gens[slot])
            return out

        return shifted(batch, flat, self.k, offsets)
