"""Fine-tuning the networks of a found program with its Params held fixed.

The paper (section 6.2): once MATH's program is found, its networks keep
improving (net_0 rises to 97.5% digit accuracy). A search that holds the
library fixed (``TrainConfig.freeze_library``) finds the program cheaply;
:func:`tune_networks` then gives the winner that improvement.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Optional

from .engine import RestartBlock, TrainConfig, config_with, restart_seed
from .program import Program

__all__ = ["tune_networks"]


def tune_networks(program: Any, data: Mapping[str, Any], steps: int = 500, val_data: Optional[Mapping[str, Any]] = None,
                  eval_every: int = 50, seed: int = 0, device: Any = "cpu", config: Optional[TrainConfig] = None,
                  fixed: Iterable[str] = (), **options: Any) -> Any:
    """Train ``program``'s networks on ``data`` with its Params fixed.

    Every network but those named in ``fixed`` trains at ``lr * net_lr_scale`` (a
    library rate, ``freeze_library`` is ignored). The discrete program is validated
    every ``eval_every`` steps.

    Args:
        program: a ``Program`` with networks (e.g. a search's winner).
        data: training batch; ``val_data``: validation batch (default ``data``).
        fixed: networks held as they are (e.g. ``("net_1",)``: tune the digit reader alone).
        options: TrainConfig fields (``net_lr_scale``, ``batch_size``, ``augment_shift``, ...).

    Returns:
        the ``Program`` with the networks of the best validated checkpoint; the
        program itself when no checkpoint beats it.

    Example:
        >>> better = tune_networks(result.best_program(), data["train"], steps=300, val_data=data["val"])  # doctest: +SKIP
    """
    config = dataclasses.replace(config_with(config, **options), freeze_library=False)
    block = RestartBlock(program.model, data, slots=1, config=config, device=device, library=program.networks,
                         train_params=False, frozen=fixed)
    block.reset(0, restart_seed(seed, 0))
    block.set_params(0, program.params)
    val = data if val_data is None else val_data
    best, best_acc = program, program.accuracy(val)
    for _ in range(steps // eval_every):
        block.step(eval_every)
        if block.diverged[0]:
            break
        candidate = Program(program.model, program.params, block.networks(0))
        acc = candidate.accuracy(val)
        if acc > best_acc:
            best, best_acc = candidate, acc
    return best
