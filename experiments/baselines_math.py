"""The MATH baseline of paper section 5.2: library perception feeding a stacked LSTM.

Each symbol of the tape (digit, operator, digit, ...) goes through both
library networks, ``net_0`` (10 digit classes) and ``net_1`` (4 operators);
their softmax outputs (the class distributions NTPT programs consume) are
concatenated into a 14-d embedding and fed, one symbol per step, to a stacked
LSTM; a linear layer classifies the final answer 0..18 from the last hidden
state of the top layer. The paper's best LSTM has 3 layers of 1024 with
dropout between layers; the defaults here keep 3 layers but 128 units so the
model trains on a CPU (set ``hidden=1024`` for the paper's size).

With ``symbols=14`` the tape holds symbols instead of images (Fig. 8(a)'s
non-perceptual MATH, ``math_symbolic_data.py``): each is fed as a one-hot vector
and there are no perceptual nets.

The nets start from a given library (``{name: NetState}``, docs/design.md;
e.g. NTPT's networks after the 2x2 tasks, or :meth:`MTNN.library`) or at
random, and learn ``perceptual_lr_scale`` times slower than the LSTM.

Example:
    >>> lstm = LSTMBaseline(hidden=16, layers=1, config=BaselineConfig(embed_hidden=(8,)))
    >>> lstm.tasks
    ['MATH']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Optional

import numpy as np
import torch
from torch import nn

from ..interpreter.errors import NtptError
from .baselines import (
    N_CLASSES,
    NET_CLASSES,
    BaselineConfig,
    TorchLearner,
    library_signature,
    load_netstate,
    mlp,
    seeded,
)
from .math_symbolic_data import symbol_tape
from .tasks import TaskData


class LSTMBaseline(TorchLearner):
    """Per symbol: [softmax net_0, softmax net_1] -> stacked LSTM -> last hidden state -> 19 answers.

    Args:
        library: optional ``{"net_0": NetState, "net_1": NetState}`` to start the
            perceptual nets from (both or either; the rest start at random). Their
            signatures must match ``config.image_shape`` and ``config.embed_hidden``.
        hidden: LSTM units per layer (paper: 1024).
        layers: stacked LSTM layers (paper: 3).
        dropout: dropout between LSTM layers (only with ``layers > 1``).
        config: sizes and rates (``head_hidden`` and ``embed_size`` are not used).
        seed: initialisation seed.
        symbols: if set, the tape holds integer symbols ``0..symbols-1`` read as one-hot
            vectors (no perceptual nets, no library); ``None``: images.

    Raises:
        NtptError: bad sizes, an unknown library network or a NetState that does not fit,
            a library with ``symbols``.

    Example:
        >>> from ntpt_dist.experiments.baselines_2x2 import MTNN
        >>> small = BaselineConfig(embed_hidden=(8,))
        >>> lib = MTNN(["ADD2x2:top"], config=small).library()
        >>> lstm = LSTMBaseline(lib, hidden=16, layers=2, config=small)
        >>> bool(torch.equal(lstm.perceptual["net_0"][0].bias, torch.from_numpy(lib["net_0"]["state"]["b0"])))
        True
    """

    def __init__(
        self,
        library: Optional[Mapping[str, Mapping]] = None,
        hidden: int = 128,
        layers: int = 3,
        dropout: float = 0.2,
        config: BaselineConfig = BaselineConfig(),
        seed: int = 0,
        symbols: Optional[int] = None,
    ):
        super().__init__(["MATH"], config, ("MATH",))
        if symbols is not None and (symbols < 1 or library):
            raise NtptError(f"a symbolic LSTM needs symbols >= 1 and no library, got symbols={symbols}, library={sorted(library or {})}")
        self.symbols = symbols
        if hidden < 1 or layers < 1 or not 0.0 <= dropout < 1.0:
            raise NtptError(f"LSTM needs hidden >= 1, layers >= 1 and 0 <= dropout < 1, got hidden={hidden}, layers={layers}, dropout={dropout}")
        library = dict(library or {})
        unknown = sorted(set(library) - set(NET_CLASSES))
        if unknown:
            raise NtptError(f"the MATH LSTM reads with {sorted(NET_CLASSES)}, got library networks {unknown}; fix: drop them")
        with seeded(seed):
            self.perceptual = nn.ModuleDict(
                {} if symbols else {name: mlp([config.image_features, *config.embed_hidden, k]) for name, k in NET_CLASSES.items()}
            )
            self.lstm = nn.LSTM(symbols or sum(NET_CLASSES.values()), hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0, batch_first=True)
            self.readout = nn.Linear(hidden, N_CLASSES)
        for name, netstate in library.items():
            load_netstate(self.perceptual[name], netstate, name, library_signature(name, config.image_shape, config.embed_hidden))
        if config.perceptual_lr_scale == 0:  # held fixed: no gradients through the image nets at all
            self.perceptual.requires_grad_(False)
        self._setup_optimizer([
            {"params": list(self.perceptual.parameters()), "lr": self.config.lr * config.perceptual_lr_scale},
            {"params": list(self.lstm.parameters()) + list(self.readout.parameters())},
        ])

    def forward(self, task: str, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        embedded = self._one_hot(task, inputs) if self.symbols else self._perceived(task, inputs)
        states, _ = self.lstm(embedded)
        return self.readout(states[:, -1])

    def _perceived(self, task: str, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        tape = self._images(task, inputs, "tape")  # [n, symbols, features]
        if tape.shape[1] < 1:
            raise NtptError(f"{task} input 'tape' needs at least one symbol, got shape {tuple(tape.shape)}")
        return torch.cat([torch.softmax(net(tape), dim=-1) for net in self.perceptual.values()], dim=-1)

    def _one_hot(self, task: str, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.one_hot(symbol_tape(task, inputs, self.symbols), self.symbols).float()


def train_lstm(
    lstm: TorchLearner, train_sets: Mapping[int, TaskData], steps: int, batch_size: int = 50, seed: int = 0,
    every: int = 0, callback: Optional[Callable[[int, list[float]], None]] = None,
) -> list[float]:
    """Train on MATH tapes of several lengths (the paper's 5-digit LSTM sees 1..5 digits); returns the losses.

    Each step draws a tape length uniformly among ``train_sets`` (one TaskData per
    number of digits, since a batch holds tapes of one length), then a random batch of it.
    Any MATH learner trains this way (the LSTM, :class:`~.neural_gpu.NeuralGPU`); with
    ``every > 0``, ``callback(step, losses)`` runs after every ``every`` steps (learning curves).

    Raises:
        NtptError: no training sets, an empty one, or ``steps``/``batch_size`` < 1.

    Example:
        >>> sets = {d: make_task("MATH", "train", 4000, 0, digits=d) for d in (1, 2, 3, 4, 5)}  # doctest: +SKIP
        >>> losses = train_lstm(LSTMBaseline(library), sets, steps=10_000)  # doctest: +SKIP
    """
    if not train_sets or any(len(d) == 0 for d in train_sets.values()):
        raise NtptError(f"train_lstm needs non-empty MATH sets keyed by digits, got sizes { {k: len(v) for k, v in train_sets.items()} }")
    if steps < 1 or batch_size < 1:
        raise NtptError(f"steps and batch_size must be >= 1, got steps={steps}, batch_size={batch_size}")
    rng = np.random.default_rng(seed)
    lengths = sorted(train_sets)
    losses = []
    for _ in range(steps):
        data = train_sets[lengths[rng.integers(len(lengths))]]
        losses.append(lstm.train_step("MATH", data.take(rng.integers(0, len(data), size=min(batch_size, len(data))))))
        if callback is not None and every > 0 and len(losses) % every == 0:
            callback(len(losses), losses)
    return losses


def accuracy_by_length(lstm: TorchLearner, test_sets: Mapping[int, TaskData]) -> dict[int, float]:
    """Test accuracy per number of digits (the curve of the paper's Fig. 8).

    Example:
        >>> accuracy_by_length(lstm, {d: make_task("MATH", "test", 1000, 0, digits=d) for d in (1, 2, 4, 8, 16)})  # doctest: +SKIP
        {1: 0.97, 2: 0.9, 4: 0.71, 8: 0.42, 16: 0.18}
    """
    return {digits: lstm.accuracy("MATH", data) for digits, data in sorted(test_sets.items())}
