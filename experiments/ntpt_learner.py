"""NTPT as a lifelong learner: one program per task, one shared neural library.

Every task of the lifetime gets its own NTPT model (its own Params: the
task's source code) compiled from ``experiments/models``; all models share
the same ``net_0``/``net_1`` tensors, so training any task can improve the
networks every other task calls (reverse transfer), while a task that does
not call a network sends it no gradient. The networks learn 100x slower than
the Params (paper, section 6.1). The first task of the lifetime sees only
``net_0`` (the one-new-network rule of section 4.1).

R restarts are R independent lifetimes trained in lock step (the lowering's
restart dimension); accuracy is the mean over them of the *discrete* program's
accuracy (argmax Params and networks), as the paper reports its curves
averaged over restarts.

Example:
    >>> learner = NtptLearner(["ADD2x2:top", "APPLY2x2:top"], restarts=2)  # doctest: +SKIP
    >>> learner.train_step("ADD2x2:top", batch)                            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from ntpt_dist.interpreter.engine import restart_seed
from ntpt_dist.interpreter.lower import Lowered
from ntpt_dist.interpreter.nets import StackedMLP

from . import registry


class NtptLearner:
    """The :class:`~.baselines.Learner` protocol for NTPT models with a shared library.

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


def best_restart(learner: NtptLearner, tasks_data: dict, tasks: Optional[Sequence[str]] = None) -> int:
    """The restart whose programs score best on average over ``tasks`` (their test data)."""
    tasks = list(tasks or learner.tasks)
    scores = np.mean([learner.accuracy_per_restart(t, tasks_data[t][1]) for t in tasks], axis=0)
    return int(np.argmax(scores))
