"""Real ``RestartBlock``s on a hand-built model (no compiler in the loop).

``gates()`` (tests/interpreter/flatmodels.py) picks a gate per output; with
``y = [x0 OR x1, x0 XOR x1]`` its one correct program is ``g = [1, 2], c = 1``.
(A bare FlatModel is a supported input of the engine; test_ray.py also searches a compiled source.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ntpt_dist.interpreter.engine import RestartBlock, TrainConfig

from ..interpreter.flatmodels import gates

CORRECT = {"g": [1, 2], "c": 1}


class FlatModelShim:
    """The parts of ``Model`` that ``RestartBlock`` and ``Program`` use."""

    def __init__(self, flat: Any, name: str):
        self.flat, self.hypers, self.source, self.filename, self.listing = flat, {}, "", name, None


def gates_data(n: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, (n, 2))
    return {"x": x, "y": np.stack([x[:, 0] | x[:, 1], x[:, 0] ^ x[:, 1]], 1)}


class FlatBlockFactory:
    """``block_factory`` for ``BlockWorker``/``search`` building real blocks of a hand-built model."""

    def __init__(self, model: FlatModelShim):
        self.model = model

    def __call__(self, spec, data, slots, config, device, library):
        if isinstance(config, dict):
            config = TrainConfig(**config)
        return RestartBlock(self.model, data, slots=slots, config=config, device=device, library=library)


def gates_factory() -> FlatBlockFactory:
    return FlatBlockFactory(FlatModelShim(gates(), "gates"))
