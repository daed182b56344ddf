"""The training engine: R random restarts of one model trained in lock step.

A :class:`RestartBlock` holds R *slots*; each slot runs one restart with its own
Param logits, its own copy of every network (except frozen library networks:
one copy that every slot reads), its own optimizer state and its own
``torch.Generator`` (seeded by the restart seed). All slots share one
lowered model, so one forward/backward pass trains all of them; nothing in the
update mixes slots, so restart ``k`` follows the same trajectory in any slot of
any block (docs/design.md, "Restart seeds").

The block trains and evaluates; it does not decide. The optimiser is
``optim.SlotOptimizer``, augmentation a batch transform (``batch.RandomShift``),
and the loop that evaluates restarts and asks the policy what to do with them
is ``restarts.BlockWorker``, the one loop behind ``Model.train`` and the search.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from .batch import BatchTransform, RandomShift
from .discrete import check_params
from .errors import NtptError
from .ir import FlatModel
from .lower import Batch, Lowered
from .memory import keep_freed_memory
from .netfn import check_netstate
from .optim import SlotOptimizer
from .program import Program
from .train_config import TrainConfig, config_with

__all__ = ["TrainConfig", "RestartBlock", "config_with", "restart_seed", "train_transforms"]


def restart_seed(seed: int, k: int) -> int:
    """The seed of restart ``k`` of a run with seed ``seed``: a hash, stable across processes.

    Example:
        >>> restart_seed(0, 1) == restart_seed(0, 1) != restart_seed(0, 2)
        True
    """
    digest = hashlib.blake2b(f"ntpt-restart:{int(seed)}:{int(k)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1  # < 2**63: fits torch.Generator.manual_seed


def train_transforms(config: TrainConfig) -> list[BatchTransform]:
    """The batch transforms ``config`` asks for, in the order a block applies them."""
    return [RandomShift(config.augment_shift)] if config.augment_shift else []


def _flat_of(model: Any) -> FlatModel:
    flat = getattr(model, "flat", model)
    if not isinstance(flat, FlatModel):
        raise NtptError(f"expected a compiled Model (or a FlatModel), got {type(model).__name__}; fix: use compile_source/compile_file")
    return flat


class RestartBlock:
    """R restart slots of one model, trained in lock step on one device.

    Args:
        model: a compiled ``Model`` (a bare ``FlatModel`` works, except for :meth:`program`).
        train_data: the training batch (docs/design.md data format).
        slots: R.
        config: a :class:`TrainConfig`.
        device: torch device.
        library: optional ``dict[name, NetState]``: networks found here start
            every restart as this copy and train at ``lr * net_lr_scale``.
        train_params: ``False`` trains the networks only; Params keep the logits
            they are given (see :meth:`set_params`).
        frozen: names of library networks held fixed (all of them under
            ``config.freeze_library``), e.g. one network tuned while another is kept.
        reuse_memory: keep the minibatch and the large weight gradients in memory
            reused at every step (``Batch.take`` buffers, ``StackedMLP.keep_grad_memory``)
            instead of fresh allocations that are page-faulted at every step; the
            numbers are the same bit for bit. ``False`` is the reference the benchmark
            measures it against.

    Raises:
        DataError: bad training data. NtptError: a library network that does not fit.

    Example:
        >>> block = RestartBlock(model, data, slots=4, config=TrainConfig(batch_size=None))  # doctest: +SKIP
        >>> block.reset(0, restart_seed(0, 0)); block.step(10)  # doctest: +SKIP
    """

    def __init__(self, model: Any, train_data: Union[Mapping[str, Any], Batch], slots: int = 64,
                 config: Optional[TrainConfig] = None, device: Any = "cpu", library: Optional[Mapping[str, Any]] = None,
                 train_params: bool = True, reuse_memory: bool = True, frozen: Iterable[str] = ()):
        keep_freed_memory()
        self.model = model
        self.flat = _flat_of(model)
        self.config = config or TrainConfig()
        library = {name: net for name, net in (library or {}).items() if name in self.flat.learns}
        unknown = sorted(set(frozen) - set(library))
        if unknown:
            raise NtptError(f"frozen networks {unknown} are not library networks of this model (library: "
                            f"{sorted(library)}); fix: name networks the library gives")
        frozen = set(library) if self.config.freeze_library else set(frozen)
        # A frozen library network never trains and every slot holds the same weights: ONE copy
        # that all slots read (StackedMLP(single_copy=True)), loaded once, not one per slot.
        self.lowered = Lowered(self.flat, slots, device, single_copy=frozen)
        self.library = {}
        for name, net in library.items():
            if name in self.lowered.nets:
                check_netstate(self.flat.learns[name], net)
                self.library[name] = net
        self.slots = slots
        self.frozen = frozen & set(self.library)
        for name in self.frozen:
            self.lowered.nets[name].load_slot(0, self.library[name])  # every slot's copy
        for name, net in self.lowered.nets.items():
            if reuse_memory and name not in self.frozen:
                net.keep_grad_memory()
        self.data = self.batch(train_data)
        if not train_params:
            for t in self.lowered.logits.values():
                t.requires_grad_(False)
        self._tensors = [(key, t, axis) for key, t, axis in self.lowered.parameters()
                         if (key.startswith("net:") and key.split(":")[1] not in self.frozen)
                         or (key.startswith("param:") and train_params)]
        cfg = self.config
        lrs = []
        for key, _, _ in self._tensors:
            net = key.split(":")[1] if key.startswith("net:") else None
            scale = 1.0 if net is None else cfg.net_lr_scale if net in self.library else cfg.new_net_lr_scale
            lrs.append(cfg.lr * scale)
        self.optimizer = SlotOptimizer(self._tensors, lrs, cfg, slots, dtype=self.lowered.dtype,
                                       device=self.lowered.device)
        self.transforms = train_transforms(cfg)
        self._gens = [torch.Generator() for _ in range(slots)]
        self._seeds: list[Optional[int]] = [None] * slots
        self._steps = np.zeros(slots, dtype=np.int64)
        self._diverged = np.zeros(slots, dtype=bool)
        self._perm: list[Optional[torch.Tensor]] = [None] * slots
        self._pos = [0] * slots
        self.last_loss = np.full(slots, np.nan)
        # the minibatch's memory, reused at every step (Batch.take); None: fresh at every step
        self._take_buffers: Optional[dict] = {} if reuse_memory else None

    def batch(self, data: Union[Mapping[str, Any], Batch]) -> Batch:
        """``data`` as a shared :class:`Batch` for this block, with the outputs of frozen
        networks computed once (convert validation data once, evaluate it often)."""
        batch = data if isinstance(data, Batch) else self.lowered.batch(data)
        if self.frozen and batch.lead == 1:
            batch = self.lowered.frozen_outputs(batch, self.frozen)
        return batch

    # ---- state per slot

    @property
    def steps(self) -> np.ndarray:
        """Steps done per slot."""
        return self._steps.copy()

    @property
    def seeds(self) -> list[Optional[int]]:
        """Restart seed per slot (``None`` = empty)."""
        return list(self._seeds)

    @property
    def diverged(self) -> np.ndarray:
        """Slots that saw a NaN/inf loss or gradient; they are frozen."""
        return self._diverged.copy()

    def _check_slot(self, slot: int) -> None:
        if not 0 <= slot < self.slots:
            raise NtptError(f"slot {slot} is out of range for a block of {self.slots} slots; fix: use 0..{self.slots - 1}")

    @torch.no_grad()
    def reset(self, slot: int, seed: int) -> None:
        """Start a fresh restart with restart seed ``seed`` in ``slot`` (fresh weights and optimizer state).

        Example:
            >>> block.reset(3, restart_seed(0, 17))  # doctest: +SKIP
        """
        self._check_slot(slot)
        gen = self._gens[slot]
        gen.manual_seed(int(seed))
        cfg = self.config
        for name in sorted(self.lowered.logits):  # fixed draw order: the trajectory depends on the seed only
            logits = self.lowered.logits[name]
            u = torch.rand(logits.shape[1:], generator=gen, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
            logits[slot] = (cfg.init_scale * torch.log(-torch.log(u))).to(logits.dtype)
        for name, net in self.lowered.nets.items():
            if name in self.frozen:
                continue  # the one copy every slot reads, loaded once, never changed
            if name in self.library:
                net.load_slot(slot, self.library[name])
            else:
                net.init_slot(slot, gen, cfg.net_init_scale)
        self.optimizer.reset(slot)
        self._seeds[slot] = int(seed)
        self._steps[slot] = 0
        self._diverged[slot] = False
        self._perm[slot], self._pos[slot] = None, 0
        self.last_loss[slot] = np.nan

    @torch.no_grad()
    def set_params(self, slot: int, params: Mapping[str, Any]) -> None:
        """Make a slot's Params exactly the program ``params`` (name -> ints): one-hot marginals."""
        self._check_slot(slot)
        for name, logits in self.lowered.logits.items():
            chosen = torch.as_tensor(params[name], dtype=torch.long, device=logits.device)
            hot = F.one_hot(chosen, logits.shape[-1]).bool()
            logits[slot] = torch.where(hot, 0.0, -1e4)  # softmax: exactly 1 and 0 in float32

    def clear(self, slot: int) -> None:
        """Empty a slot (it stops training until the next :meth:`reset`)."""
        self._check_slot(slot)
        self._seeds[slot] = None

    # ---- training

    def _minibatch(self, live: np.ndarray) -> Batch:
        n, size = self.data.size, self.config.batch_size
        if size is None or size >= n:
            return self.data
        rows = torch.zeros(self.slots, size, dtype=torch.long)
        for slot in np.flatnonzero(live):
            if self._perm[slot] is None or self._pos[slot] + size > n:
                self._perm[slot], self._pos[slot] = torch.randperm(n, generator=self._gens[slot]), 0
            rows[slot] = self._perm[slot][self._pos[slot]: self._pos[slot] + size]
            self._pos[slot] += size
        batch = self.data.take(rows, self._take_buffers)
        for transform in self.transforms:
            batch = transform(batch, self.flat, live, self._gens)
        return batch

    def step(self, n: int = 1) -> np.ndarray:
        """Train every live slot ``n`` steps.

        Returns:
            the last loss per slot ``[slots]`` (NaN for empty or diverged slots).
        """
        for _ in range(n):
            live = np.array([s is not None for s in self._seeds]) & ~self._diverged
            if not live.any():
                break
            self._one_step(live)
        return self.last_loss.copy()

    def _one_step(self, live: np.ndarray) -> None:
        cfg, low = self.config, self.lowered
        batch = self._minibatch(live)
        self.optimizer.zero_grad()
        fwd = low.run(batch)
        t_slot = torch.as_tensor(self._steps, dtype=low.dtype, device=low.device)
        objective = fwd.loss
        if cfg.entropy_bonus > 0:
            objective = objective - cfg.entropy_bonus * torch.exp(-cfg.entropy_decay * t_slot) * fwd.entropy
        if not objective.requires_grad:
            raise NtptError(f"model {self.flat.filename!r} has nothing to train: its loss depends on no Param and no "
                            "@Learn network (none declared, all fixed by set_to_constant, or the library held "
                            "fixed); fix: declare a Param or @Learn function the outputs depend on, or use "
                            "Program.run to execute a fixed model")
        live_t = torch.as_tensor(live, device=low.device)
        torch.where(live_t, objective, torch.zeros_like(objective)).sum().backward()
        loss = fwd.loss.detach()
        ok = self.optimizer.step(live, loss, self._steps, self._gens)
        self._diverged |= live & ~ok
        self._steps[ok] += 1
        self.last_loss = np.where(ok, loss.cpu().numpy().astype(np.float64), np.nan)

    # ---- evaluation and results

    @torch.no_grad()
    def accuracy(self, data: Union[Mapping[str, Any], Batch], chunk: int = 256) -> np.ndarray:
        """Relaxed-model accuracy per slot ``[slots]``: all slots see all of ``data``.

        Example:
            >>> block.accuracy(val_data)  # doctest: +SKIP
            array([0.25, 1.  , ...])
        """
        batch = self.batch(data)
        correct = torch.zeros(self.slots, dtype=torch.float64)
        for start in range(0, batch.size, chunk):
            fwd = self.lowered.run(batch.slice(start, start + chunk))
            correct += fwd.correct.sum(1).cpu().double()
        return (correct / max(batch.size, 1)).numpy()

    @torch.no_grad()
    def params(self, slot: int) -> dict[str, Any]:
        """The argmax of every Param of a slot: int (scalar Param) or nested list of ints."""
        self._check_slot(slot)
        chosen = {name: logits[slot].argmax(-1).cpu().numpy() for name, logits in self.lowered.logits.items()}
        # check_params puts the set_to_constant values in place of their (unused) logits' argmax
        return {name: arr.tolist() for name, arr in check_params(self.flat, chosen).items()}

    def networks(self, slot: int) -> dict[str, Any]:
        """A slot's networks as library ``NetState``s."""
        self._check_slot(slot)
        return {name: net.state(slot) for name, net in self.lowered.nets.items()}

    def program(self, slot: int) -> Program:
        """The learned program of a slot: argmax Params + the slot's networks (a ``Program``).

        Raises:
            NtptError: for a block built from a bare FlatModel (a Program needs the Model).
        """
        if isinstance(self.model, FlatModel):
            raise NtptError("program() needs a compiled Model, got a bare FlatModel; fix: build the block from compile_source(...)")
        return Program(self.model, self.params(slot), self.networks(slot))
