"""Purely neural baselines (paper section 5): the learner protocol and what the baselines share.

A *learner* is anything the lifelong runner can train one minibatch at a time
and evaluate per task (:class:`Learner`); the NTPT learner implements the
same two methods. The baselines themselves live in ``baselines_2x2.py``
(indep, PNN, MTNN-1, MTNN-2) and ``baselines_math.py`` (the MATH LSTM); this
module holds their common base class :class:`TorchLearner`, the
:class:`BaselineConfig` of sizes and rates, and small helpers.

Example:
    >>> from ntpt_dist.experiments.baselines_2x2 import MTNN
    >>> learner = MTNN(["ADD2x2:top"], depth="mtnn2", config=BaselineConfig(embed_hidden=(8,)))
    >>> isinstance(learner, Learner)
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Optional, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from ..interpreter.errors import NtptError
from ..interpreter.ir import LearnFn, TensorArg
from .tasks import M, TaskData

N_CLASSES = M + 1  # every task's answer is a register value 0..18
DIGIT_NET, OP_NET = "net_0", "net_1"
NET_CLASSES = {DIGIT_NET: 10, OP_NET: 4}  # the library networks' output sizes (paper section 4.1)


@runtime_checkable
class Learner(Protocol):
    """What the lifelong runner drives: one optimiser step on a batch, and test accuracy.

    Example:
        >>> class Constant:
        ...     def train_step(self, task, batch): return 0.0
        ...     def accuracy(self, task, data): return 0.5
        >>> isinstance(Constant(), Learner)
        True
    """

    def train_step(self, task: str, batch: TaskData) -> float:
        """One optimiser step on ``batch`` (instances of ``task``); returns the minibatch loss."""
        ...

    def accuracy(self, task: str, data: TaskData) -> float:
        """Fraction of ``data``'s instances whose output is predicted exactly."""
        ...


@dataclass(frozen=True)
class BaselineConfig:
    """Sizes and optimiser settings of a baseline (defaults: the paper's sizes).

    Attributes:
        image_shape: one image cell (28 x 28 MNIST-like cells).
        embed_hidden: hidden layers of the perceptual/embedding MLP (paper: 256, 256).
        embed_size: embedding width of a column's image net (paper: 10). MTNN's
            shared nets have the library sizes instead (net_0: 10, net_1: 4).
        head_hidden: hidden layers after the concatenation (paper: 3 x 128).
        lr: learning rate of the task-specific parts; ``None``: the learner's own
            tuned rate (``TorchLearner.default_lr``: indep and PNN 3e-3, MTNN 1e-2,
            chosen on validation grids, docs/baselines.md).
        perceptual_lr_scale: rate of shared perceptual networks relative to ``lr``
            (paper: 100x slower, 0.01); used by MTNN and the LSTM's nets.
        optimizer: "adam" or "rmsprop".
        eval_batch: instances per forward pass when measuring accuracy.
        device: torch device.
    """

    image_shape: tuple[int, ...] = (28, 28)
    embed_hidden: tuple[int, ...] = (256, 256)
    embed_size: int = 10
    head_hidden: tuple[int, ...] = (128, 128, 128)
    lr: Optional[float] = None
    perceptual_lr_scale: float = 0.01
    optimizer: str = "adam"
    eval_batch: int = 1000
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.optimizer not in ("adam", "rmsprop"):
            raise NtptError(f"optimizer must be 'adam' or 'rmsprop', got {self.optimizer!r}; fix: pick one of the two")
        if (self.lr is not None and self.lr <= 0) or self.perceptual_lr_scale < 0:
            raise NtptError(
                f"need lr > 0 and perceptual_lr_scale >= 0, got lr={self.lr}, perceptual_lr_scale={self.perceptual_lr_scale}"
            )
        if self.eval_batch < 1:
            raise NtptError(f"eval_batch must be >= 1, got {self.eval_batch}")

    @property
    def image_features(self) -> int:
        return int(np.prod(self.image_shape))


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """``Linear ReLU ... Linear`` through ``sizes`` (no activation after the last layer).

    Example:
        >>> mlp([4, 8, 3])
        Sequential(
          (0): Linear(in_features=4, out_features=8, bias=True)
          (1): ReLU()
          (2): Linear(in_features=8, out_features=3, bias=True)
        )
    """
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def scenario_of(task: str) -> str:
    """The scenario part of a task name: ``"ADD2x2:top" -> "ADD2x2"``.

    Example:
        >>> scenario_of("APPLY2x2:left"), scenario_of("MATH")
        ('APPLY2x2', 'MATH')
    """
    return task.partition(":")[0]


def library_signature(name: str, image_shape: Sequence[int], hidden: Sequence[int]) -> str:
    """The ``@Learn`` signature of a library network ``name`` (net_0 or net_1) with these sizes.

    Example:
        >>> library_signature("net_1", (28, 28), (256, 256))
        '(T28x28)->4|256-256'
    """
    return LearnFn(name, (TensorArg(tuple(image_shape)),), NET_CLASSES[name], tuple(hidden)).signature


def mlp_to_netstate(net: nn.Sequential, signature: str) -> dict:
    """An :func:`mlp` as a library NetState ``{"signature", "state": {"w0": [in, out], "b0", ...}}``.

    Example:
        >>> state = mlp_to_netstate(mlp([3, 2]), "sig")["state"]
        >>> state["w0"].shape, state["b0"].dtype
        ((3, 2), dtype('float32'))
    """
    linears = [m for m in net if isinstance(m, nn.Linear)]
    state = {}
    for i, lin in enumerate(linears):
        state[f"w{i}"] = lin.weight.detach().cpu().numpy().T.astype(np.float32).copy()
        state[f"b{i}"] = lin.bias.detach().cpu().numpy().astype(np.float32).copy()
    return {"signature": signature, "state": state}


def load_netstate(net: nn.Sequential, netstate: Mapping, name: str, signature: str) -> None:
    """Copy a library NetState into an :func:`mlp` of the same sizes.

    Raises:
        NtptError: the NetState's signature or a weight shape does not fit.

    Example:
        >>> a, b = mlp([3, 2]), mlp([3, 2])
        >>> load_netstate(b, mlp_to_netstate(a, "s"), "g", "s")
        >>> bool(torch.equal(a[0].weight, b[0].weight))
        True
    """
    if not isinstance(netstate, Mapping) or "state" not in netstate:
        raise NtptError(f"library network {name!r} must be a NetState dict with 'signature' and 'state', got {type(netstate).__name__}")
    found = netstate.get("signature", signature)
    if found != signature:
        raise NtptError(
            f"library network {name!r} has signature {found!r} but this baseline needs {signature!r}; "
            "fix: pass networks trained with the same image shape and hidden sizes, or change the config to match"
        )
    linears = [m for m in net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for i, lin in enumerate(linears):
            for key, param, shape in ((f"w{i}", lin.weight, (lin.in_features, lin.out_features)), (f"b{i}", lin.bias, (lin.out_features,))):
                if key not in netstate["state"]:
                    raise NtptError(f"library network {name!r} has no weight {key!r}; fix: its state needs w0, b0 .. w{len(linears) - 1}, b{len(linears) - 1}")
                value = np.asarray(netstate["state"][key], dtype=np.float32)
                if value.shape != shape:
                    raise NtptError(f"library network {name!r}: weight {key!r} has shape {value.shape}, expected {shape}")
                param.copy_(torch.from_numpy(value.T.copy() if key.startswith("w") else value))


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global generator seeded, restoring it afterwards (initialisation without side effects).

    Example:
        >>> with seeded(0):
        ...     a = torch.rand(1)
        >>> with seeded(0):
        ...     b = torch.rand(1)
        >>> bool(a == b)
        True
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class TorchLearner(nn.Module):
    """Base of the baselines: task bookkeeping, the optimiser, ``train_step``, ``accuracy`` and ``scores``.

    A subclass builds its modules in ``__init__`` (inside :func:`seeded`), then
    calls :meth:`_setup_optimizer` with its parameter groups, and implements
    ``forward(task, inputs) -> logits [n, 19]`` on tensors from :meth:`_tensors`.
    ``self.config`` is the config as run: a ``lr`` of ``None`` becomes the
    subclass's ``default_lr``.
    """

    default_lr: ClassVar[float] = 1e-3

    def __init__(self, tasks: Sequence[str], config: BaselineConfig, known_scenarios: Sequence[str]):
        super().__init__()
        self.tasks = list(tasks)
        self.config = config if config.lr is not None else dataclasses.replace(config, lr=self.default_lr)
        if not self.tasks:
            raise NtptError("a learner needs at least one task; fix: pass the lifetime's task names, e.g. ['ADD2x2:top']")
        if len(set(self.tasks)) != len(self.tasks):
            raise NtptError(f"task names must be distinct, got {self.tasks}")
        unknown = [t for t in self.tasks if scenario_of(t) not in known_scenarios]
        if unknown:
            raise NtptError(f"{type(self).__name__} handles {', '.join(known_scenarios)} tasks, got {unknown}; fix: drop them")
        self.optimizer: torch.optim.Optimizer | None = None

    # -- the Learner protocol --------------------------------------------------

    def train_step(self, task: str, batch: TaskData) -> float:
        """One optimiser step on ``batch`` (cross-entropy over the 19 answers); returns the loss.

        Raises:
            NtptError: unknown task, missing or misshapen inputs, empty batch.
        """
        assert self.optimizer is not None, "subclasses call _setup_optimizer"
        self._check_task(task)
        if len(batch) == 0:
            raise NtptError(f"train_step needs a non-empty batch of {task}, got 0 instances")
        self.train()
        inputs, target = self._tensors(task, batch)
        loss = nn.functional.cross_entropy(self.forward(task, inputs), target)
        self.optimizer.zero_grad(set_to_none=True)  # None grads: the optimiser leaves other tasks' parts alone
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def accuracy(self, task: str, data: TaskData) -> float:
        """Fraction of ``data``'s instances whose argmax answer equals ``result``.

        Raises:
            NtptError: unknown task, missing or misshapen inputs, empty data.
        """
        if len(data) == 0:
            raise NtptError(f"accuracy needs at least one instance of {task}, got 0")
        predicted = self.scores(task, data).argmax(axis=1)
        return float(np.mean(predicted == np.asarray(data.outputs["result"])))

    def scores(self, task: str, data: TaskData) -> np.ndarray:
        """Pre-softmax scores ``[n, 19]`` of every instance (evaluation mode, no gradients).

        Example:
            >>> from ntpt_dist.experiments.baselines_2x2 import Indep  # doctest: +SKIP
            >>> Indep(["ADD2x2:top"]).scores("ADD2x2:top", data).shape  # doctest: +SKIP
            (1000, 19)
        """
        self._check_task(task)
        self.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(data), self.config.eval_batch):
                chunk = data.take(slice(start, start + self.config.eval_batch))
                inputs, _ = self._tensors(task, chunk, need_target=False)
                out.append(self.forward(task, inputs).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, N_CLASSES), np.float32)

    # -- helpers for subclasses ------------------------------------------------

    def _setup_optimizer(self, groups: list[dict]) -> None:
        kind = torch.optim.Adam if self.config.optimizer == "adam" else torch.optim.RMSprop
        groups = [g for g in groups if g["params"]]
        self.optimizer = kind(groups, lr=self.config.lr)
        self.to(self.config.device)

    def _check_task(self, task: str) -> None:
        if task not in self.tasks:
            raise NtptError(f"{type(self).__name__} was built for tasks {self.tasks}, got {task!r}; fix: list it when constructing the learner")

    def _tensors(self, task: str, data: TaskData, need_target: bool = True) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Inputs as torch tensors on the device (subclasses add their own checks); the target ``result``."""
        inputs = {k: torch.as_tensor(np.asarray(v), device=self.config.device) for k, v in data.inputs.items()}
        target = None
        if need_target:
            if "result" not in data.outputs:
                raise NtptError(f"{task} data needs the output 'result', got outputs {sorted(data.outputs)}")
            target = torch.as_tensor(np.asarray(data.outputs["result"], dtype=np.int64), device=self.config.device)
            if target.numel() and (int(target.min()) < 0 or int(target.max()) >= N_CLASSES):
                raise NtptError(f"{task} results must lie in 0..{N_CLASSES - 1}, got {int(target.min())}..{int(target.max())}")
        return inputs, target

    def _images(self, task: str, inputs: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
        """Image input ``key`` as ``[n, cells, features]`` float32, checking the cell shape."""
        if key not in inputs:
            raise NtptError(f"{task} needs the image input {key!r}, got inputs {sorted(inputs)}")
        x = inputs[key]
        shape = tuple(self.config.image_shape)
        if x.dim() < 1 + len(shape) or tuple(x.shape[-len(shape):]) != shape:
            raise NtptError(f"{task} input {key!r} must end in cells of shape {shape}, got {tuple(x.shape)}; fix: set BaselineConfig(image_shape=...)")
        return x.reshape(x.shape[0], -1, self.config.image_features).float()
