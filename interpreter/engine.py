"""The training engine: R random restarts of one model trained in lock step.

A :class:`RestartBlock` holds R *slots*; each slot runs one restart with its own
Param logits, its own copy of every network, its own optimizer state and its
own ``torch.Generator`` (seeded by the restart seed). All slots share one
lowered model, so one forward/backward pass trains all of them; nothing in the
update mixes slots, so restart ``k`` follows the same trajectory in any slot of
any block (docs/design.md, "Restart seeds").

:func:`train` is the single-process driver behind ``Model.train``.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from .batch import shifted
from .discrete import check_params
from .errors import NtptError
from .ir import FlatModel
from .lower import Batch, Lowered
from .memory import keep_freed_memory
from .netfn import check_netstate
from .train_config import TrainConfig, config_with

__all__ = ["TrainConfig", "RestartBlock", "TrainResult", "config_with", "restart_seed", "train"]


def restart_seed(seed: int, k: int) -> int:
    """The seed of restart ``k`` of a run with seed ``seed``: a hash, stable across processes.

    Example:
        >>> restart_seed(0, 1) == restart_seed(0, 1) != restart_seed(0, 2)
        True
    """
    digest = hashlib.blake2b(f"ntpt-restart:{int(seed)}:{int(k)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1  # < 2**63: fits torch.Generator.manual_seed


def _per_slot_sum(x: torch.Tensor, axis: int) -> torch.Tensor:
    """Sum over every dimension but the restart ``axis`` -> ``[R]``, reducing leading dims first
    (contiguous row sums are much faster than a strided reduction over a middle axis)."""
    r, lead = x.shape[axis], int(np.prod(x.shape[:axis]))
    if lead > 1:  # (a sum over a leading dim of 1 would copy the whole tensor: 0.9 s/step for the maze's LOOK)
        x = x.reshape(lead, -1).sum(0)
    return x.reshape(r, -1).sum(1)


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

    Raises:
        DataError: bad training data. NtptError: a library network that does not fit.

    Example:
        >>> block = RestartBlock(model, data, slots=4, config=TrainConfig(batch_size=None))  # doctest: +SKIP
        >>> block.reset(0, restart_seed(0, 0)); block.step(10)  # doctest: +SKIP
    """

    def __init__(self, model: Any, train_data: Union[Mapping[str, Any], Batch], slots: int = 64,
                 config: Optional[TrainConfig] = None, device: Any = "cpu", library: Optional[Mapping[str, Any]] = None,
                 train_params: bool = True):
        keep_freed_memory()
        self.model = model
        self.flat = _flat_of(model)
        self.config = config or TrainConfig()
        self.lowered = Lowered(self.flat, slots, device)
        self.library = {}
        for name, net in (library or {}).items():
            if name in self.lowered.nets:
                check_netstate(self.flat.learns[name], net)
                self.library[name] = net
        self.slots = slots
        self.frozen = set(self.library) if self.config.freeze_library else set()
        for name in self.frozen:  # every slot holds the library copy for good
            for slot in range(slots):
                self.lowered.nets[name].load_slot(slot, self.library[name])
            for _, t, _ in self.lowered.nets[name].tensors():
                t.requires_grad_(False)
        self.data = self.batch(train_data)
        if not train_params:
            for t in self.lowered.logits.values():
                t.requires_grad_(False)
        self._tensors = [(key, t, axis) for key, t, axis in self.lowered.parameters()
                         if (key.startswith("net:") and key.split(":")[1] not in self.frozen)
                         or (key.startswith("param:") and train_params)]
        cfg = self.config
        self._lr = []
        for key, _, _ in self._tensors:
            net = key.split(":")[1] if key.startswith("net:") else None
            scale = 1.0 if net is None else cfg.net_lr_scale if net in self.library else cfg.new_net_lr_scale
            self._lr.append(cfg.lr * scale)
        self._m = [torch.zeros_like(t) for _, t, _ in self._tensors]
        self._v = [torch.zeros_like(t) for _, t, _ in self._tensors]
        self._buf = [torch.empty_like(t) for _, t, _ in self._tensors]  # reused: no 200 MB allocation per step
        self._gens = [torch.Generator() for _ in range(slots)]
        self._seeds: list[Optional[int]] = [None] * slots
        self._steps = np.zeros(slots, dtype=np.int64)
        self._diverged = np.zeros(slots, dtype=bool)
        self._perm: list[Optional[torch.Tensor]] = [None] * slots
        self._pos = [0] * slots
        self.last_loss = np.full(slots, np.nan)

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
                continue  # loaded into every slot once, never changed
            if name in self.library:
                net.load_slot(slot, self.library[name])
            else:
                net.init_slot(slot, gen, cfg.net_init_scale)
        for (_, _, axis), m, v in zip(self._tensors, self._m, self._v):
            m.select(axis, slot).zero_()
            v.select(axis, slot).zero_()
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
        batch = self.data.take(rows)
        if self.config.augment_shift:
            batch = self._shifted(batch, live)
        return batch

    def _shifted(self, batch: Batch, live: np.ndarray) -> Batch:
        """``batch`` with its image cells translated by random offsets (``TrainConfig.augment_shift``)."""
        k = self.config.augment_shift

        def offsets(per_slot: int) -> torch.Tensor:  # each slot's draws depend on its seed only
            out = torch.zeros(2, self.slots, per_slot, dtype=torch.long)
            for slot in np.flatnonzero(live):
                out[:, slot] = torch.randint(-k, k + 1, (2, per_slot), generator=self._gens[slot])
            return out

        return shifted(batch, self.flat, k, offsets)

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
        for _, t, _ in self._tensors:
            t.grad = None
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
        with torch.no_grad():
            self._update(live, live_t, fwd.loss.detach(), t_slot)

    @torch.no_grad()
    def _update(self, live: np.ndarray, live_t: torch.Tensor, loss: torch.Tensor, t_slot: torch.Tensor) -> None:
        cfg, low = self.config, self.lowered
        grads = [t.grad if t.grad is not None else torch.zeros_like(t) for _, t, _ in self._tensors]
        sq = torch.zeros(self.slots, dtype=low.dtype, device=low.device)
        for (_, _t, axis), g, buf in zip(self._tensors, grads, self._buf):
            sq += _per_slot_sum(torch.mul(g, g, out=buf), axis)
        finite = torch.isfinite(loss) & torch.isfinite(sq)
        ok_np = live & finite.cpu().numpy()
        self._diverged |= live & ~ok_np
        ok = torch.as_tensor(ok_np, device=low.device)
        scale = torch.ones_like(sq)
        if cfg.clip_norm is not None:
            scale = (cfg.clip_norm / (sq.sqrt() + 1e-12)).clamp(max=1.0)
        scale = torch.where(ok, scale, torch.zeros_like(scale))
        frozen = np.flatnonzero(~ok_np)
        noise_std = np.sqrt(cfg.grad_noise / (1.0 + self._steps) ** 0.55)
        b1, b2 = cfg.betas
        t_next = t_slot + 1
        # Per-slot factors instead of full-size masks: a frozen slot gets a zero gradient and
        # moment decays of 1, so its weights and optimizer state stay exactly as they were.
        # (computed once per step, [slots] each; every tensor takes a view of them)
        keep = lambda decay: torch.where(ok, torch.full_like(sq, decay), torch.ones_like(sq))  # noqa: E731
        if cfg.optimizer == "rmsprop":
            keep_v = keep(cfg.rms_decay)
        else:
            keep_m, keep_v = keep(b1), keep(b2)
            c1 = torch.where(ok, 1 - b1 ** t_next, torch.ones_like(sq))
            c2 = torch.where(ok, 1 - b2 ** t_next, torch.ones_like(sq))
            moves = ok.to(sq.dtype)  # a frozen slot's step is zero
        for i, ((key, t, axis), g) in enumerate(zip(self._tensors, grads)):
            shape = [1] * t.dim()
            shape[axis] = self.slots
            for slot in frozen:  # zero the lane, NaN included (NaN * 0 would stay NaN)
                g.select(axis, int(slot)).zero_()
            g.mul_(scale.view(shape))
            if cfg.grad_noise > 0 and key.startswith("param:"):
                for slot in np.flatnonzero(ok_np):  # from each slot's own generator: slot-independent draws
                    noise = torch.randn(t.shape[1:], generator=self._gens[slot], dtype=torch.float32)
                    g[slot] += (noise_std[slot] * noise).to(g.dtype)
            m, v, lr = self._m[i], self._v[i], self._lr[i]
            if cfg.optimizer == "rmsprop":
                v.mul_(keep_v.view(shape)).addcmul_(g, g, value=1 - cfg.rms_decay)
                t.addcdiv_(g, torch.sqrt(v, out=self._buf[i]).add_(cfg.eps), value=-lr)
            else:
                m.mul_(keep_m.view(shape)).add_(g, alpha=1 - b1)
                v.mul_(keep_v.view(shape)).addcmul_(g, g, value=1 - b2)
                # In place, into the spent gradient and the buffer: no full-size temporaries (a fresh
                # 200 MB LOOK-layer temporary cost ~0.3 s of page faults per step at R=64).
                step = torch.div(m, c1.view(shape), out=g).mul_(moves.view(shape))
                t.addcdiv_(step, torch.div(v, c2.view(shape), out=self._buf[i]).sqrt_().add_(cfg.eps), value=-lr)
        self._steps[ok_np] += 1
        self.last_loss = np.where(ok_np, loss.cpu().numpy().astype(np.float64), np.nan)

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

    def program(self, slot: int):
        """The learned program of a slot: argmax Params + the slot's networks (a ``Program``).

        Raises:
            NtptError: for a block built from a bare FlatModel (a Program needs the Model).
        """
        from .program import Program

        if isinstance(self.model, FlatModel):
            raise NtptError("program() needs a compiled Model, got a bare FlatModel; fix: build the block from compile_source(...)")
        return Program(self.model, self.params(slot), self.networks(slot))


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        seeds: restart seed per restart.
        losses: ``[R, steps]`` training loss per step (NaN once a restart diverged).
        eval_steps: ``[E]`` steps at which the validation accuracy was measured.
        val_accuracy: ``[R, E]`` relaxed-model validation accuracy.
        diverged: ``[R]`` bool.
        params: argmax Params per restart.
        networks: networks (NetStates) per restart.
        programs: a ``Program`` per restart (empty when program.py is unavailable).
    """

    seeds: list[int]
    losses: np.ndarray
    eval_steps: np.ndarray
    val_accuracy: np.ndarray
    diverged: np.ndarray
    params: list[dict[str, Any]]
    networks: list[dict[str, Any]]
    programs: list[Any] = field(default_factory=list)
    val_data: Any = field(default=None, repr=False)

    def best_index(self) -> int:
        """The restart whose discrete program is most accurate on the validation data
        (the relaxed model's final validation accuracy when there are no Programs);
        ties go to the lower final loss."""
        if self.programs and self.val_data is not None:
            score = np.array([p.accuracy(self.val_data) for p in self.programs], dtype=np.float64)
        else:
            score = self.val_accuracy[:, -1] if self.val_accuracy.size else np.zeros(len(self.seeds))
        final = np.nan_to_num(self.losses[:, -1] if self.losses.size else np.zeros(len(self.seeds)), nan=np.inf)
        order = np.lexsort((final, -np.nan_to_num(score, nan=-1.0)))
        return int(order[0])

    def best_program(self):
        """The ``Program`` of :meth:`best_index`.

        Raises:
            NtptError: when no Programs were built (program.py missing, or a bare FlatModel).
        """
        if not self.programs:
            raise NtptError("no Programs were built (a bare FlatModel was trained, or program.py is missing); "
                            "fix: train a compiled Model, or use params[best_index()]")
        return self.programs[self.best_index()]


def train(model: Any, data: Mapping[str, Any], restarts: int = 16, steps: int = 1000, seed: int = 0,
          device: Any = "cpu", val_data: Optional[Mapping[str, Any]] = None, config: Optional[TrainConfig] = None,
          library: Optional[Mapping[str, Any]] = None, progress: bool = False, **config_overrides: Any) -> TrainResult:
    """Train ``restarts`` random restarts of a model at once, in one process.

    Args:
        model: a compiled ``Model`` (or a ``FlatModel``).
        data: training batch (docs/design.md format).
        restarts: number of restarts R (restart k uses ``restart_seed(seed, k)``).
        steps: optimisation steps per restart.
        seed: the run's seed.
        device: torch device.
        val_data: validation batch (default: the training data).
        config: a :class:`TrainConfig`; ``config_overrides`` replace its fields.
        library: ``dict[name, NetState]`` of pre-trained networks.
        progress: print one line per evaluation to stderr.

    Returns:
        a :class:`TrainResult`.

    Raises:
        NtptError: an unknown config field, bad data, a library network that does not fit.

    Example:
        >>> result = train(model, data, restarts=8, steps=200, lr=0.1)  # doctest: +SKIP
        >>> result.best_program().params  # doctest: +SKIP
    """
    config = config_with(config, **config_overrides)
    block = RestartBlock(model, data, restarts, config, device, library)
    seeds = [restart_seed(seed, k) for k in range(restarts)]
    for k, s in enumerate(seeds):
        block.reset(k, s)
    val_raw = data if val_data is None else val_data
    val = block.batch(val_raw)
    losses = np.full((restarts, steps), np.nan)
    eval_steps, accs = [], []
    done = 0
    while done < steps:
        n = min(config.eval_every - done % config.eval_every, steps - done)
        for i in range(n):
            losses[:, done + i] = block.step(1)
        done += n
        eval_steps.append(done)
        accs.append(block.accuracy(val))
        if progress:
            alive = int((~block.diverged).sum())
            jumped = int((np.stack(accs, 1).max(1) - accs[0] >= 0.25).sum())  # risen well above the start
            last = losses[:, done - 1]
            median = np.nanmedian(last) if not np.isnan(last).all() else math.nan
            print(f"step {done}/{steps}: restarts alive {alive}/{restarts}, jumped {jumped}, "
                  f"best val acc {accs[-1].max():.3f}, median loss {median:.4f}", file=sys.stderr, flush=True)
    programs = [] if isinstance(model, FlatModel) else [block.program(k) for k in range(restarts)]
    params = [block.params(k) for k in range(restarts)]
    if programs and config.polish_edits:
        programs = [polished(p, data, config) for p in programs]
        params = [p.params for p in programs]
    return TrainResult(seeds, losses, np.array(eval_steps), np.stack(accs, 1) if accs else np.zeros((restarts, 0)),
                       block.diverged, params, [block.networks(k) for k in range(restarts)], programs, val_raw)


def polished(program: Any, data: Mapping[str, Any], config: TrainConfig) -> Any:
    """``program`` after the local search of ``config.polish_edits`` (see ``interpreter/polish.py``)."""
    from .polish import local_search

    sample = {k: v[: config.polish_sample] for k, v in data.items()}
    return local_search(program, sample, max_edits=config.polish_edits)[0]
