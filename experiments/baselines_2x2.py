"""The 2x2 baselines of paper section 5.1 (Fig. 5 a-c): indep, PNN, MTNN-1 and MTNN-2.

All are built from the paper's *column*: each of the 4 grid cells goes
through an embedding MLP (784-256-256-10, ReLU, weights shared across the
cells), the 4 embeddings are concatenated (plus the one-hot ``aux`` integers,
3 x 10, for APPLY2x2) and a head MLP (3 hidden layers of 128, ReLU) gives the
19 answer scores.

- :class:`Indep`: one column per task, nothing shared.
- :class:`PNN`: progressive networks (Rusu et al. 2016). Column k gets linear
  lateral connections from the layer inputs of every earlier column j < k,
  ``h_i^k = f(W_i^k h_{i-1}^k + sum_j a_i^{k:j} U_i^{k:j} h_{i-1}^j)``, at every layer
  except the first (its input, the image, is the same for all columns);
  ``a`` is the learned scalar of Rusu et al.'s adapters, started small (0.01).
  Columns are created up front in lifetime order; a training step on task k
  updates column k only (earlier columns run without gradients, i.e. frozen),
  exactly as the paper states for its interleaved schedule.
- :class:`MTNN`: shared perceptual networks ``net_0`` (10 outputs) and
  ``net_1`` (4 outputs) plus a task-specific head. MTNN-1: every head has 3
  hidden layers; MTNN-2: 1 hidden layer for ADD2x2, 3 for APPLY2x2. The
  perceptual nets learn ``perceptual_lr_scale`` (0.01) times slower. Which
  nets a task reads (``routing``): "fixed" (default) -- net_0 for the digit
  tasks (ADD2x2), net_1 for the operator tasks (APPLY2x2), the specialisation
  the paper encourages, imposed; "shared" -- NTPT's symmetry breaking (paper
  section 4.1): the lifetime's first task reads net_0 only, every later task
  reads both (their outputs concatenated per cell), so operator tasks can
  also change net_0.

A column's embeddings are its image MLP's linear outputs; MTNN's shared nets
are the library networks of paper section 4.1, classifiers ending in a
softmax, and the heads read those class distributions (``embedding="softmax"``,
the default; "linear" drops the softmax). :meth:`MTNN.library` exports the
perceptual nets as library NetStates (the same MLP form as NTPT's ``@Learn``
networks).

Learning rates (``BaselineConfig.lr=None``: each learner's ``default_lr``) were
tuned on validation grids held out of the training grids (docs/baselines.md):
indep and PNN 3e-3, MTNN 1e-2 (its shared nets 100x slower, 1e-4).

Example:
    >>> learner = PNN(["ADD2x2:top", "ADD2x2:left"], config=BaselineConfig(embed_hidden=(8,), head_hidden=(8,)))
    >>> [type(c).__name__ for c in learner.columns]
    ['Column', 'Column']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

import torch
from torch import nn

from ..interpreter.errors import NtptError
from .baselines import (
    DIGIT_NET,
    N_CLASSES,
    NET_CLASSES,
    OP_NET,
    BaselineConfig,
    TorchLearner,
    library_signature,
    mlp,
    mlp_to_netstate,
    scenario_of,
    seeded,
)

CELLS = 4  # the 2x2 grid
AUX = {"APPLY2x2": (3, 10)}  # scenario -> (integers, classes) of the one-hot auxiliary input
SCENARIOS = ("ADD2x2", "APPLY2x2")
MTNN_NETS = {"ADD2x2": DIGIT_NET, "APPLY2x2": OP_NET}  # routing "fixed"
MTNN_DEPTHS = ("mtnn1", "mtnn2")
MTNN_ROUTINGS = ("fixed", "shared")
MTNN_EMBEDDINGS = ("linear", "softmax")


def aux_features(task: str) -> int:
    """Width of a task's one-hot auxiliary input (0 without one).

    Example:
        >>> aux_features("APPLY2x2:top"), aux_features("ADD2x2:top")
        (30, 0)
    """
    count, classes = AUX.get(scenario_of(task), (0, 0))
    return count * classes


class _GridLearner(TorchLearner):
    """A TorchLearner on 2x2 tasks: turns ``grid`` and ``aux`` into cell features and one-hot vectors."""

    def __init__(self, tasks: Sequence[str], config: BaselineConfig):
        super().__init__(tasks, config, SCENARIOS)

    def _grid(self, task: str, inputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        images = self._images(task, inputs, "grid")
        if images.shape[1] != CELLS:
            raise NtptError(f"{task} input 'grid' must hold {CELLS} cells (2 x 2), got {images.shape[1]}")
        if scenario_of(task) not in AUX:
            return images, None
        count, classes = AUX[scenario_of(task)]
        if "aux" not in inputs:
            raise NtptError(f"{task} needs the integer input 'aux' [n, {count}], got inputs {sorted(inputs)}")
        aux = inputs["aux"].long()
        if aux.dim() != 2 or aux.shape[1] != count:
            raise NtptError(f"{task} input 'aux' must have shape [n, {count}], got {tuple(aux.shape)}")
        if aux.numel() and (int(aux.min()) < 0 or int(aux.max()) >= classes):
            raise NtptError(f"{task} input 'aux' must lie in 0..{classes - 1}, got {int(aux.min())}..{int(aux.max())}")
        return images, nn.functional.one_hot(aux, classes).reshape(len(aux), -1).float()


class Column(nn.Module):
    """One column: per-cell embedding layers, then head layers on the concatenation; optional lateral inputs.

    Layer ``i`` (embedding layers first, then head layers) receives, besides
    its own input, ``a_i^{j} U_i^{j}(input_i of earlier column j)`` for every
    earlier column j, when ``earlier_sizes`` lists those columns' layer input
    sizes. ``a_i^{j}`` is a learned scalar starting at ``lateral_scale``
    (Rusu et al. 2016's adapter scale, "initialized by a random small value");
    ``None``: no scale (``a = 1``, fixed).
    """

    def __init__(self, config: BaselineConfig, aux: int, earlier_sizes: Sequence[Sequence[int]] = (),
                 lateral_scale: Optional[float] = None):
        super().__init__()
        embed = [config.image_features, *config.embed_hidden, config.embed_size]
        head = [CELLS * config.embed_size + aux, *config.head_hidden, N_CLASSES]
        self.n_embed = len(embed) - 1
        self.aux = aux
        sizes = list(zip(embed[:-1], embed[1:])) + list(zip(head[:-1], head[1:]))
        self.layers = nn.ModuleList(nn.Linear(d_in, d_out) for d_in, d_out in sizes)
        self.input_sizes = [d_in for d_in, _ in sizes]
        self.laterals = nn.ModuleDict()
        self.lateral_scales = nn.ParameterDict()
        for j, theirs in enumerate(earlier_sizes):
            for i in range(1, len(sizes)):  # layer 0 sees the image, identical in every column
                self.laterals[f"{i}_{j}"] = nn.Linear(theirs[i], sizes[i][1], bias=False)
                if lateral_scale is not None:
                    self.lateral_scales[f"{i}_{j}"] = nn.Parameter(torch.tensor(float(lateral_scale)))

    def forward(self, images: torch.Tensor, aux: Optional[torch.Tensor], earlier: Sequence[list[torch.Tensor]] = ()) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Scores ``[n, 19]`` and every layer's input (for later columns' laterals).

        ``aux`` is fed where this column has an aux input (zeros if the task has
        none); ``earlier[j]`` are the layer inputs of earlier column j on the same batch.
        """
        x = images
        inputs = []
        for i, layer in enumerate(self.layers):
            if i == self.n_embed:
                x = x.reshape(x.shape[0], -1)  # concatenate the 4 cell embeddings
                if self.aux:
                    fed = aux if aux is not None and aux.shape[1] == self.aux else x.new_zeros(x.shape[0], self.aux)
                    x = torch.cat([x, fed], dim=1)
            inputs.append(x)
            pre = layer(x)
            if i > 0:
                for j, theirs in enumerate(earlier):
                    lateral = self.laterals[f"{i}_{j}"](theirs[i])
                    scale = self.lateral_scales[f"{i}_{j}"] if f"{i}_{j}" in self.lateral_scales else None
                    pre = pre + (lateral if scale is None else scale * lateral)
            linear_out = i == self.n_embed - 1 or i == len(self.layers) - 1  # the embedding and the scores
            x = pre if linear_out else torch.relu(pre)
        return x, inputs


class Indep(_GridLearner):
    """One independent column per task (Fig. 5a): no transfer at all.

    Example:
        >>> Indep(["ADD2x2:top", "APPLY2x2:top"], config=BaselineConfig(embed_hidden=(8,))).columns[1].aux
        30
    """

    default_lr = 3e-3  # validation mean over the 8 tasks 0.257 against 0.204 at 1e-3 (full lifetime)

    def __init__(self, tasks: Sequence[str], config: BaselineConfig = BaselineConfig(), seed: int = 0):
        super().__init__(tasks, config)
        config = self.config
        with seeded(seed):
            self.columns = nn.ModuleList(Column(config, aux_features(t)) for t in self.tasks)
        self._setup_optimizer([{"params": list(self.columns.parameters())}])

    def forward(self, task: str, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        images, aux = self._grid(task, inputs)
        return self.columns[self.tasks.index(task)](images, aux)[0]


class PNN(_GridLearner):
    """Progressive neural network (Fig. 5b): one column per task with laterals from earlier columns, which stay frozen.

    Column order is the order of ``tasks`` (the lifetime's order).
    ``lateral_scale``: the starting value of every lateral's learned scalar
    (Rusu et al. 2016's adapter scale, "initialized by a random small value";
    default 0.01: without it, on validation grids, the APPLY2x2 columns fell
    to 11%, below the majority answer); ``None``: unscaled laterals.

    Example:
        >>> pnn = PNN(["ADD2x2:top", "ADD2x2:left"], config=BaselineConfig(embed_hidden=(8,), head_hidden=(8,)))
        >>> sorted(pnn.columns[1].laterals)
        ['1_0', '2_0', '3_0']
    """

    default_lr = Indep.default_lr  # the same columns: indep's tuned rate

    def __init__(self, tasks: Sequence[str], config: BaselineConfig = BaselineConfig(), seed: int = 0,
                 lateral_scale: Optional[float] = 0.01):
        super().__init__(tasks, config)
        config = self.config
        columns: list[Column] = []
        with seeded(seed):
            for task in self.tasks:
                columns.append(Column(config, aux_features(task), [c.input_sizes for c in columns], lateral_scale))
        self.columns = nn.ModuleList(columns)
        self._setup_optimizer([{"params": list(self.columns.parameters())}])

    def forward(self, task: str, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        images, aux = self._grid(task, inputs)
        k = self.tasks.index(task)
        earlier: list[list[torch.Tensor]] = []
        with torch.no_grad():  # earlier columns are frozen: no gradient reaches them
            for column in self.columns[:k]:
                earlier.append(column(images, aux, earlier)[1])
        return self.columns[k](images, aux, earlier)[0]


class MTNN(_GridLearner):
    """Multitask network (Fig. 5c): shared perceptual nets net_0 / net_1 and a head per task.

    Args:
        tasks: the lifetime's task names.
        depth: "mtnn1" (every head has ``config.head_hidden``) or "mtnn2"
            (ADD2x2 heads keep only the first hidden layer, the paper's tuned choice).
        config: sizes and rates; ``perceptual_lr_scale`` slows the shared nets.
        seed: initialisation seed.
        routing: "fixed" (net_0 for ADD2x2, net_1 for APPLY2x2) or "shared"
            (first task net_0 only, later tasks both nets; module docstring).
        embedding: what the heads read of each net: "softmax" (its class
            distribution, as the library nets of section 4.1 give) or "linear" (its scores).

    Example:
        >>> m = MTNN(["ADD2x2:top", "APPLY2x2:top"], depth="mtnn2", config=BaselineConfig(embed_hidden=(8,)))
        >>> sorted(m.library()), m.library()["net_1"]["signature"]
        (['net_0', 'net_1'], '(T28x28)->4|8')
    """

    default_lr = 1e-2  # validation mean 0.250 against 0.177 at 1e-3 (MTNN-2; shared nets at 1e-4)

    def __init__(
        self, tasks: Sequence[str], depth: str = "mtnn1", config: BaselineConfig = BaselineConfig(), seed: int = 0, routing: str = "fixed",
        embedding: str = "softmax",
    ):
        if depth not in MTNN_DEPTHS:
            raise NtptError(f"MTNN depth must be one of {MTNN_DEPTHS}, got {depth!r}")
        if routing not in MTNN_ROUTINGS:
            raise NtptError(f"MTNN routing must be one of {MTNN_ROUTINGS}, got {routing!r}")
        if embedding not in MTNN_EMBEDDINGS:
            raise NtptError(f"MTNN embedding must be one of {MTNN_EMBEDDINGS}, got {embedding!r}")
        super().__init__(tasks, config)
        self.depth, self.routing, self.embedding = depth, routing, embedding
        with seeded(seed):
            self.perceptual = nn.ModuleDict(
                {name: mlp([config.image_features, *config.embed_hidden, k]) for name, k in NET_CLASSES.items()}
            )
            self.heads = nn.ModuleList(
                mlp([CELLS * sum(NET_CLASSES[n] for n in self.nets_for(t)) + aux_features(t), *self.head_hidden(t), N_CLASSES])
                for t in self.tasks
            )
        self._setup_optimizer([
            {"params": list(self.perceptual.parameters()), "lr": self.config.lr * config.perceptual_lr_scale},
            {"params": list(self.heads.parameters())},
        ])

    def head_hidden(self, task: str) -> tuple[int, ...]:
        """Hidden layer sizes of ``task``'s head (MTNN-2: one layer for ADD2x2).

        Example:
            >>> m = MTNN(["ADD2x2:top"], depth="mtnn2", config=BaselineConfig(embed_hidden=(8,)))
            >>> m.head_hidden("ADD2x2:top")
            (128,)
        """
        hidden = tuple(self.config.head_hidden)
        return hidden[:1] if self.depth == "mtnn2" and scenario_of(task) == "ADD2x2" else hidden

    def nets_for(self, task: str) -> tuple[str, ...]:
        """The shared perceptual nets a task reads its cells with (their outputs are concatenated).

        Example:
            >>> MTNN(["APPLY2x2:left"], config=BaselineConfig(embed_hidden=(8,))).nets_for("APPLY2x2:left")
            ('net_1',)
            >>> MTNN(["ADD2x2:top", "APPLY2x2:left"], config=BaselineConfig(embed_hidden=(8,)), routing="shared").nets_for("APPLY2x2:left")
            ('net_0', 'net_1')
        """
        if self.routing == "fixed":
            return (MTNN_NETS[scenario_of(task)],)
        return (DIGIT_NET,) if task == self.tasks[0] else (DIGIT_NET, OP_NET)

    def forward(self, task: str, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        images, aux = self._grid(task, inputs)
        nets = [self.perceptual[n](images) for n in self.nets_for(task)]
        if self.embedding == "softmax":
            nets = [torch.softmax(x, dim=-1) for x in nets]
        embedded = torch.cat(nets, dim=-1).reshape(images.shape[0], -1)
        features = embedded if aux is None else torch.cat([embedded, aux], dim=1)
        return self.heads[self.tasks.index(task)](features)

    def library(self) -> dict[str, dict]:
        """The shared nets as a library ``{name: NetState}`` (e.g. to start the MATH LSTM from).

        Example:
            >>> m = MTNN(["ADD2x2:top"], config=BaselineConfig(embed_hidden=(8,)))
            >>> m.library()["net_0"]["state"]["w0"].shape
            (784, 8)
        """
        return {
            name: mlp_to_netstate(net, library_signature(name, self.config.image_shape, self.config.embed_hidden))
            for name, net in self.perceptual.items()
        }
