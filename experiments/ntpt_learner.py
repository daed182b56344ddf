"""NTPT as a lifelong learner: one program per task, one shared neural library.

Every task of the lifetime gets its own NTPT model (its own Params: the task's
source code) compiled from ``experiments/models``; the ``@Learn`` networks are
one library shared by all tasks. :class:`NtptLearner` learns each task the way
the product's search does (``ntpt_dist.search`` then a gated merge):

1. **Search.** While a task has no program, its batches train ``restarts``
   random restarts of its Params at once, with the library networks it already
   has *held fixed* (their outputs are computed once per batch and shared by
   every restart). A network the library does not have yet (at most one per
   task: the one-new-network rule of section 4.1) is trained per restart.
   Every ``eval_every`` of the task's steps each restart's discrete program is
   scored on validation grids held out from the task's training grids; a
   :class:`~ntpt_dist.search.policy.JumpPolicy` decides which restart converged
   (a jump in validation accuracy) and which stalled or ran out of budget (it
   is re-drawn from a fresh seed).
2. **Program.** The first converged restart becomes the task's program: its
   argmax Params are fixed from then on, and the new network it calls joins the
   library (a network it does not call does not).
3. **Library.** From then on the task's batches train only the library
   networks, through the task's fixed program, at ``net_lr_scale`` times the
   Params' rate (the paper's 100x smaller rate for the shared networks). A
   program that is right gives its networks the right supervision; a task
   still searching sends the library no gradient at all.

This is why the learner does not forget (measured in docs/results.md): in the
lock-step design (:class:`LockstepLearner`, each restart a whole lifetime that
trains its networks from every task's batches) the tasks whose program is still
wrong moved the shared networks away from what the solved tasks needed.

Accuracy of a task is its program's discrete accuracy (argmax networks); a task
still searching reports the restart with the best validation accuracy.

Example:
    >>> learner = NtptLearner(["ADD2x2:top", "ADD2x2:left"], restarts=8)  # doctest: +SKIP
    >>> train = learner.hold_out("ADD2x2:top", train_grids)              # doctest: +SKIP
    >>> learner.train_step("ADD2x2:top", batch)                           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from ntpt_dist.interpreter.batch import Batch, shifted
from ntpt_dist.interpreter.calls import called_networks
from ntpt_dist.interpreter.engine import restart_seed
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.interpreter.lower import Lowered
from ntpt_dist.interpreter.lower_ops import StaticNetOp
from ntpt_dist.interpreter.nets import StackedMLP
from ntpt_dist.search.policy import CONTINUE, CONVERGED, JumpPolicy

from . import registry

# Jump detection on 200 validation grids evaluated every 20 task steps: a rise of 0.3 within
# 25 evaluations (500 steps: a new network's digits take that long to sharpen) that ends at 0.5
# or more. A wrong 2x2 program scores 4-15%; a restart that has not jumped after 1500 of its
# steps, or whose best has not risen for 40 evaluations, is re-drawn.
DEFAULT_POLICY = JumpPolicy(delta=0.3, window=25, floor=0.5, refine_evals=2, budget_steps=1500,
                            stall_evals=40, stall_tol=0.02, solved=None)


def _gumbel_logits(shape, gen: torch.Generator, scale: float) -> torch.Tensor:
    u = torch.rand(shape, generator=gen).clamp(1e-12, 1 - 1e-12)
    return scale * torch.log(-torch.log(u))


def _onehot(logits: torch.Tensor) -> torch.Tensor:
    return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)


def _library_outputs(low: Lowered, batch: Batch, library: dict[str, StackedMLP], names: set[str]) -> Batch:
    """``batch`` carrying the outputs of the library networks ``names`` (one copy, shared by all restarts)."""
    cached = dict(batch.cached)
    onehots = low._onehots(batch)
    for op in low.plan.ops:
        if isinstance(op, StaticNetOp) and op.net.fn.name in names:
            rows = op.rows(batch, onehots)[0]  # [B*C, D]
            probs = torch.softmax(library[op.net.fn.name].scores(rows)[0], -1)
            cached[op.key] = probs.unflatten(0, (batch.size, len(op.outs))).unsqueeze(0)  # [1, B, C, K]
    return Batch(batch.inputs, batch.tensors, batch.targets, batch.size, cached)


@dataclass
class _Search:
    """R restarts of one task's Params (and of its one new network) with the library held fixed."""

    low: Lowered
    fixed: set[str]  # library networks, held fixed
    new: set[str]  # networks trained per restart
    opt: torch.optim.Optimizer
    seeds: list[int]
    history: list[list[float]]
    steps: np.ndarray  # per restart, since it was drawn
    drawn: int  # restarts drawn so far (the next fresh seed's index)
    ticks: int = 0  # steps of the search

    @property
    def nets_ok(self) -> bool:
        return len(self.new) <= 1  # the one-new-network rule


@dataclass
class _Program:
    """A task's found program: fixed one-hot Params over the library networks it calls."""

    low: Lowered  # one restart
    probs: dict[str, torch.Tensor]  # Param name -> one-hot [1, *shape, K]
    calls: set[str]


@dataclass
class Event:
    """A task's program was found: at which learner step, after how many restarts, with which validation accuracy."""

    task: str
    step: int
    restarts: int
    val_acc: float
    adopted: list[str] = field(default_factory=list)


class NtptLearner:
    """The :class:`~.baselines.Learner` protocol for NTPT with restart selection and one shared library.

    Args:
        tasks: the tasks of the lifetime, first task first.
        restarts: program restarts searched at once per task.
        seed: restart ``k`` of task ``t`` draws from ``restart_seed(seed, 1000 * t + k)``.
        lr: Adam learning rate of the Params.
        net_lr_scale: the networks' learning rate relative to ``lr`` (paper: 0.01).
        init_scale: scale of the random Param logits.
        augment_shift: random translation of image cells in training batches, in pixels (0: none).
        val_size: validation grids held out of each task's training grids (see :meth:`hold_out`).
        eval_every: task steps between two validation scores of a task's restarts.
        policy: jump detection (:data:`DEFAULT_POLICY`).
        models: task -> compiled model (``ntpt_dist.compile_source``); the paper's tasks default to
            ``experiments/models`` (``registry.model_for_task``). Networks of the same name are one
            library network, shared by every task that declares it.
        device: torch device.

    Raises:
        NtptError: bad sizes.
    """

    def __init__(self, tasks: Sequence[str], restarts: int = 16, seed: int = 0, lr: float = 0.05,
                 net_lr_scale: float = 0.01, init_scale: float = 1.0, augment_shift: int = 2, val_size: int = 200,
                 eval_every: int = 20, policy: JumpPolicy = DEFAULT_POLICY, models: Optional[Mapping[str, Any]] = None,
                 device: Any = "cpu"):
        if restarts < 1 or val_size < 1 or eval_every < 1 or augment_shift < 0:
            raise NtptError(f"need restarts, val_size, eval_every >= 1 and augment_shift >= 0, got {restarts}, "
                            f"{val_size}, {eval_every}, {augment_shift}")
        self.tasks, self.restarts, self.seed = list(tasks), restarts, seed
        self.lr, self.net_lr = lr, lr * net_lr_scale
        self.init_scale, self.shift, self.val_size, self.eval_every = init_scale, augment_shift, val_size, eval_every
        self.policy, self.device = policy, torch.device(device)
        self.models = dict(models or {})
        for i, task in enumerate(self.tasks):
            if task not in self.models:  # a paper task: its model from the registry
                library = {} if i == 0 else {"net_0": None}  # the first task may introduce only one network
                self.models[task] = registry.load_model(registry.model_for_task(task, library))
        self.library: dict[str, StackedMLP] = {}
        self.library_opt: dict[str, torch.optim.Optimizer] = {}
        self.val: dict[str, Batch] = {}
        self.searches: dict[str, _Search] = {}
        self.programs: dict[str, _Program] = {}
        self.events: list[Event] = []
        self.step_count = 0
        self._gen = torch.Generator().manual_seed(restart_seed(seed, -1))  # augmentation draws
        self.declared = {task: set(self._lowered(task, 1).nets) for task in self.tasks}  # networks a task can call

    # ---- the Learner protocol

    def hold_out(self, task: str, train):
        """Keep the last ``val_size`` of a task's training grids for validation; return the rest to train on."""
        if len(train) <= self.val_size:
            raise NtptError(f"{task} has {len(train)} training grids; holding out {self.val_size} for validation "
                            "leaves none: pass more grids or a smaller val_size")
        low = self._lowered(task, 1)
        self.val[task] = low.batch(train.take(slice(len(train) - self.val_size, None)).batch())
        return train.take(slice(0, len(train) - self.val_size))

    def train_step(self, task: str, batch) -> float:
        """One step on a batch of ``task``: its restarts' search, or its program's library networks."""
        self.step_count += 1
        if task in self.programs:
            return self._train_library(task, batch)
        if task not in self.val:
            raise NtptError(f"{task} has no validation grids to judge its restarts; fix: call hold_out({task!r}, "
                            "train) first (run_lifelong does)")
        search = self._search(task)
        if not search.nets_ok:
            return float("nan")  # waits until the library holds all but one of its networks
        low = search.low
        data = self._augment(low, low.batch(batch.batch()))
        with torch.no_grad():
            data = _library_outputs(low, data, self.library, search.fixed)
        loss = low.run(data).loss
        search.opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        search.opt.step()
        search.steps += 1
        search.ticks += 1
        if search.ticks % self.eval_every == 0:
            self._judge(task, search)
        return float(loss.detach().mean())

    @torch.no_grad()
    def accuracy(self, task: str, data) -> float:
        """The task's program's discrete accuracy; a task still searching: its best restart's by validation."""
        if task in self.programs:
            prog = self.programs[task]
            return float(self._correct(prog.low, prog.low.batch(data.batch()), prog.probs, set())[0].double().mean())
        search = self._search(task)
        best = int(np.argmax([h[-1] if h else 0.0 for h in search.history]))
        low, probs = self._single(search, best, search.new)
        return float(self._correct(low, low.batch(data.batch()), probs, set())[0].double().mean())

    # ---- introspection

    def shared_networks(self) -> dict[str, StackedMLP]:
        """The library networks (one copy each)."""
        return dict(self.library)

    def found(self) -> dict[str, Event]:
        """Task -> the event of its program being found."""
        return {e.task: e for e in self.events}

    def program(self, task: str):
        """The task's program (a ``Program``, with the library networks it calls), or None while it searches."""
        prog = self.programs.get(task)
        if prog is None:
            return None
        params = {name: p[0].argmax(-1).tolist() for name, p in prog.probs.items()}
        nets = {name: net.state(0) for name, net in prog.low.nets.items()}
        return self.models[task].program(params, nets)

    # ---- internals

    def _lowered(self, task: str, restarts: int, nets: Optional[dict] = None) -> Lowered:
        return Lowered(self.models[task].flat, restarts, self.device, nets=nets)

    def _augment(self, low: Lowered, batch: Batch) -> Batch:
        if not self.shift:
            return batch
        k = self.shift
        return shifted(batch, low.flat, k, lambda n: torch.randint(-k, k + 1, (2, batch.lead, n), generator=self._gen))

    def _search(self, task: str) -> _Search:
        search = self.searches.get(task)
        called = self.declared[task]
        if search is not None and not (search.new & set(self.library)):
            return search
        # first batch, or a network this search trained per restart has joined the library: start afresh
        low = self._lowered(task, self.restarts)
        fixed = called & set(self.library)
        new = called - fixed
        groups = [{"params": list(low.logits.values()), "lr": self.lr}]
        new_tensors = [t for name in sorted(new) for _, t, _ in low.nets[name].tensors()]
        if new_tensors:
            groups.append({"params": new_tensors, "lr": self.net_lr})
        search = _Search(low, fixed, new, torch.optim.Adam(groups), [0] * self.restarts,
                         [[] for _ in range(self.restarts)], np.zeros(self.restarts, dtype=np.int64),
                         search.drawn if search else 0)
        for slot in range(self.restarts):
            self._draw(task, search, slot)
        self.searches[task] = search
        return search

    @torch.no_grad()
    def _draw(self, task: str, search: _Search, slot: int) -> None:
        """Fresh Params (and fresh new-network weights) for one restart, from the task's next seed."""
        index = search.drawn
        search.drawn += 1
        seed = restart_seed(self.seed, 1000 * self.tasks.index(task) + index)
        gen = torch.Generator().manual_seed(seed)
        for name in sorted(search.low.logits):
            logits = search.low.logits[name]
            logits[slot] = _gumbel_logits(logits.shape[1:], gen, self.init_scale)
        for name in sorted(search.new):
            search.low.nets[name].init_slot(slot, gen)
        for group in search.opt.param_groups:  # Adam's moments of the slot start from zero again
            for t in group["params"]:
                state = search.opt.state.get(t)
                if state:
                    state["exp_avg"][slot].zero_()
                    state["exp_avg_sq"][slot].zero_()
        search.seeds[slot], search.history[slot], search.steps[slot] = seed, [], 0

    @torch.no_grad()
    def _correct(self, low: Lowered, batch: Batch, probs: dict, fixed: set[str], chunk: int = 500) -> torch.Tensor:
        """``[R, B]`` bool: each restart's discrete program is right on each instance."""
        out = []
        for start in range(0, batch.size, chunk):
            part = _library_outputs(low, batch.slice(start, start + chunk), self.library, fixed)
            out.append(low.run(part, param_probs=probs, hard_nets=True).correct)
        return torch.cat(out, 1)

    def _judge(self, task: str, search: _Search) -> None:
        """Score every restart on validation; promote a converged one, re-draw the hopeless ones."""
        low = search.low
        probs = {name: _onehot(logits) for name, logits in low.logits.items()}
        acc = self._correct(low, self.val[task], probs, search.fixed).double().mean(1).numpy()
        converged = []
        for slot in range(self.restarts):
            search.history[slot].append(float(acc[slot]))
            decision = self.policy.decide(search.history[slot], int(search.steps[slot]))
            if decision == CONVERGED:
                converged.append(slot)
            elif decision != CONTINUE:
                self._draw(task, search, slot)
        if converged:
            best = max(converged, key=lambda slot: acc[slot])
            self._promote(task, search, best, float(acc[best]))

    def _promote(self, task: str, search: _Search, slot: int, val_acc: float) -> None:
        low = search.low
        probs = {name: _onehot(logits[slot : slot + 1].detach()) for name, logits in low.logits.items()}
        calls = set(called_networks(low.flat, {name: p[0].argmax(-1).numpy() for name, p in probs.items()}))
        adopted = sorted(calls & search.new)
        for name in adopted:  # the network joins the library and goes on training where it stood
            net = StackedMLP(low.nets[name].fn, 1, self.device)
            net.load_slot(0, low.nets[name].state(slot))
            opt = torch.optim.Adam([t for _, t, _ in net.tensors()], lr=self.net_lr)
            for (_, mine, _), (_, theirs, _) in zip(net.tensors(), low.nets[name].tensors()):
                state = search.opt.state.get(theirs)
                if state:
                    opt.state[mine] = {"step": state["step"].clone(), **{k: state[k][slot : slot + 1].clone()
                                                                         for k in ("exp_avg", "exp_avg_sq")}}
            self.library[name], self.library_opt[name] = net, opt
        prog, _ = self._single(search, slot, set())
        self.programs[task] = _Program(prog, probs, calls)
        self.events.append(Event(task, self.step_count, search.drawn, val_acc, adopted))
        del self.searches[task]

    @torch.no_grad()
    def _single(self, search: _Search, slot: int, own: set[str]) -> tuple[Lowered, dict[str, torch.Tensor]]:
        """Restart ``slot`` of a search alone: one restart over the library networks, plus copies of
        the networks ``own`` as that restart has them; and its one-hot Params."""
        low = search.low
        nets = {name: net for name, net in self.library.items() if name in low.nets}
        for name in own:
            nets[name] = StackedMLP(low.nets[name].fn, 1, self.device)
            nets[name].load_slot(0, low.nets[name].state(slot))
        single = Lowered(low.flat, 1, self.device, nets=nets)
        return single, {name: _onehot(logits[slot : slot + 1].detach()) for name, logits in low.logits.items()}

    def _train_library(self, task: str, batch) -> float:
        prog = self.programs[task]
        low = prog.low
        loss = low.run(self._augment(low, low.batch(batch.batch())), param_probs=prog.probs).loss
        opts = [self.library_opt[name] for name in sorted(prog.calls)]
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        for opt in opts:
            opt.step()
        return float(loss.detach().mean())


class LockstepLearner:
    """R lifelong NTPT learners in lock step, each training its networks from every task (the first design).

    Kept to reproduce the forgetting it shows (docs/results.md, scripts/diagnose_forgetting.py);
    :class:`NtptLearner` replaces it.

    Args:
        tasks: the tasks of the lifetime, first task first.
        restarts: independent lifetimes trained at once (accuracy is their mean).
        seed: restart ``k`` uses ``restart_seed(seed, k)`` for its Params and networks.
        lr: Adam learning rate of the Params.
        net_lr_scale: the networks' learning rate relative to ``lr`` (paper: 0.01).
        init_scale: scale of the random Param logits.
        device: torch device.
    """

    def __init__(self, tasks: Sequence[str], restarts: int = 4, seed: int = 0, lr: float = 0.05,
                 net_lr_scale: float = 0.01, init_scale: float = 1.0, device: Any = "cpu"):
        self.tasks, self.restarts = list(tasks), restarts
        self.models = {}
        for i, task in enumerate(self.tasks):
            library = {} if i == 0 else {"net_0": None}  # the first task may introduce only one network
            self.models[task] = registry.load_model(registry.model_for_task(task, library))
        gens = [torch.Generator().manual_seed(restart_seed(seed, k)) for k in range(restarts)]
        self.nets: dict[str, StackedMLP] = {}
        for model in self.models.values():
            for name, fn in sorted(model.flat.learns.items()):
                if name not in self.nets:
                    self.nets[name] = net = StackedMLP(fn, restarts, device)
                    for k, gen in enumerate(gens):
                        net.init_slot(k, gen)
        self.lowered = {t: Lowered(m.flat, restarts, device, nets=self.nets) for t, m in self.models.items()}
        with torch.no_grad():
            for task in self.tasks:
                for name in sorted(self.lowered[task].logits):
                    logits = self.lowered[task].logits[name]
                    for k, gen in enumerate(gens):
                        u = torch.rand(logits.shape[1:], generator=gen).clamp(1e-12, 1 - 1e-12)
                        logits[k] = init_scale * torch.log(-torch.log(u))
        self.param_opt = {t: torch.optim.Adam(list(low.logits.values()), lr=lr) for t, low in self.lowered.items()}
        net_tensors = [t for net in self.nets.values() for _, t, _ in net.tensors()]
        self.net_opt = torch.optim.Adam(net_tensors, lr=lr * net_lr_scale)

    def shared_networks(self) -> dict[str, StackedMLP]:
        """The library networks, all restart copies."""
        return dict(self.nets)

    def train_step(self, task: str, batch) -> float:
        """One Adam step on the task's Params and on the networks it calls."""
        low = self.lowered[task]
        loss = low.run(low.batch(batch.batch())).loss
        self.param_opt[task].zero_grad(set_to_none=True)
        self.net_opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.param_opt[task].step()
        self.net_opt.step()  # networks without a gradient (not called by this task) are left as they are
        return float(loss.detach().mean())

    @torch.no_grad()
    def accuracy_per_restart(self, task: str, data, chunk: int = 500) -> np.ndarray:
        """Discrete program accuracy of every restart on ``data``: ``[R]``."""
        low = self.lowered[task]
        onehot = {name: F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
                  for name, logits in low.logits.items()}
        batch = low.batch(data.batch())
        correct = torch.zeros(self.restarts, dtype=torch.float64)
        for start in range(0, batch.size, chunk):
            fwd = low.run(batch.slice(start, start + chunk), param_probs=onehot, hard_nets=True)
            correct += fwd.correct.sum(1).double()
        return (correct / max(batch.size, 1)).numpy()

    def accuracy(self, task: str, data) -> float:
        """Mean over restarts of the discrete program's accuracy (the paper's averaged curves)."""
        return float(self.accuracy_per_restart(task, data).mean())

    def program(self, task: str, restart: int = 0):
        """The learned program of one task in one restart, with the shared networks."""
        low = self.lowered[task]
        params = {name: logits[restart].argmax(-1).tolist() for name, logits in low.logits.items()}
        nets = {name: net.state(restart) for name, net in low.nets.items()}
        return self.models[task].program(params, nets)

    def listing(self, task: str, restart: int = 0) -> str:
        return self.program(task, restart).listing()


def best_restart(learner: LockstepLearner, tasks_data: dict, tasks: Optional[Sequence[str]] = None) -> int:
    """The restart whose programs score best on average over ``tasks`` (their test data)."""
    tasks = list(tasks or learner.tasks)
    scores = np.mean([learner.accuracy_per_restart(t, tasks_data[t][1]) for t in tasks], axis=0)
    return int(np.argmax(scores))
