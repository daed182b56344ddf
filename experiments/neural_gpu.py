"""A Neural GPU (Kaiser & Sutskever 2016) for MATH tapes of symbols: the second baseline of Fig. 8(a).

The Neural GPU keeps a "mental image" ``s`` of shape ``[filters, height, width]``
(``width`` = the tape length) and applies a stack of convolutional GRUs to it
``width`` times; every cell sees its 3x3 neighbourhood each step, so after
``width`` steps the first cell, where the answer is read, has seen the whole tape.
One convolutional GRU is

    u = sigmoid(U' * s + B'),  r = sigmoid(U'' * s + B'')
    CGRU(s) = u . s + (1 - u) . tanh(U * (r . s) + B)

(``*`` a 3x3 convolution, ``.`` elementwise). The tape's symbols are embedded into
the first row of ``s_0`` (the other rows start at zero), as in the original; the
answer, one of 19 values, is a linear read of the first cell after the last step
(the original reads one output symbol per cell; MATH has one answer).

Size: the paper's baseline uses the authors' implementation with 512 filters
(43.8M parameters with its extra machinery). The defaults here (``filters=64``,
``height=4``, two CGRUs: 224k parameters) train on a CPU with one thread in
minutes; ``filters=512`` builds the paper's width (14.2M parameters in the two
CGRUs). Not reproduced from the original: its curriculum over lengths, gradient
noise, parameter-sharing relaxation and dropout.

Example:
    >>> gpu = NeuralGPU(filters=8, height=2)
    >>> gpu.parameter_count()
    3787
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..interpreter.errors import NtptError
from .baselines import N_CLASSES, BaselineConfig, TorchLearner, seeded
from .math_symbolic_data import N_SYMBOLS, symbol_tape


class ConvGRU(nn.Module):
    """One convolutional GRU over a ``[n, filters, height, width]`` state (kernel 3x3, same padding)."""

    def __init__(self, filters: int, kernel: int = 3):
        super().__init__()
        self.gates = nn.Conv2d(filters, 2 * filters, kernel, padding=kernel // 2)
        self.candidate = nn.Conv2d(filters, filters, kernel, padding=kernel // 2)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        u, r = torch.sigmoid(self.gates(s)).chunk(2, dim=1)
        return u * s + (1 - u) * torch.tanh(self.candidate(r * s))


class NeuralGPU(TorchLearner):
    """Symbols -> embedding in row 0 of the mental image -> ``width`` x (a stack of ConvGRUs) -> first cell -> 19 answers.

    Args:
        filters: channels of the mental image (the original: 512).
        height: rows of the mental image (the original: 4).
        layers: ConvGRUs applied per step (the original: 2).
        symbols: input alphabet size (MATH: 14, digits 0..9 and operators 10..13).
        config: the learning rate (default 1e-3) and optimiser; image sizes are not used.
        seed: initialisation seed.

    Raises:
        NtptError: a size < 1.

    Example:
        >>> import numpy as np
        >>> from ntpt_dist.experiments.math_symbolic_data import symbolic_math
        >>> NeuralGPU(filters=8, height=2).scores("MATH", symbolic_math(3, 5, seed=0)).shape
        (5, 19)
    """

    default_lr = 1e-3

    def __init__(self, filters: int = 64, height: int = 4, layers: int = 2, symbols: int = N_SYMBOLS,
                 config: BaselineConfig = BaselineConfig(), seed: int = 0):
        super().__init__(["MATH"], config, ("MATH",))
        if min(filters, height, layers, symbols) < 1:
            raise NtptError(f"a Neural GPU needs filters, height, layers and symbols >= 1, got {filters}, {height}, {layers}, {symbols}")
        self.filters, self.height, self.symbols = filters, height, symbols
        with seeded(seed):
            self.embed = nn.Embedding(symbols, filters)
            self.cells = nn.ModuleList([ConvGRU(filters) for _ in range(layers)])
            self.readout = nn.Linear(filters, N_CLASSES)
        self._setup_optimizer([{"params": list(self.parameters())}])

    def parameter_count(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, task: str, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        tape = symbol_tape(task, inputs, self.symbols)
        n, width = tape.shape
        s = torch.zeros(n, self.filters, self.height, width, device=tape.device)
        s[:, :, 0, :] = self.embed(tape).transpose(1, 2)
        for _ in range(width):
            for cell in self.cells:
                s = cell(s)
        return self.readout(s[:, :, 0, 0])
