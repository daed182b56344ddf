"""SlotOptimizer on its own: each slot is updated alone; a slot that is not updated keeps weights and moments."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ntpt_dist.interpreter.batch import RandomShift
from ntpt_dist.interpreter.engine import RestartBlock, train_transforms
from ntpt_dist.interpreter.optim import SlotOptimizer
from ntpt_dist.interpreter.train_config import TrainConfig


def stepped(optimizer: str, live: list[bool], loss: list[float], steps: int = 3):
    torch.manual_seed(0)
    w = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)  # slots along axis 0
    start = w.detach().clone()
    opt = SlotOptimizer([("param:w", w, 0)], [0.1], TrainConfig(optimizer=optimizer), slots=3, dtype=torch.float64)
    oks = []
    for t in range(steps):
        opt.zero_grad()
        (w ** 2).sum().backward()
        oks.append(opt.step(np.array(live), torch.tensor(loss, dtype=torch.float64), np.full(3, t), [None] * 3))
    return start, w.detach(), opt, oks


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_only_live_finite_slots_move(optimizer):
    start, end, opt, oks = stepped(optimizer, live=[True, False, True], loss=[1.0, 1.0, float("nan")])
    assert all(ok.tolist() == [True, False, False] for ok in oks)
    assert not torch.equal(start[0], end[0])
    assert torch.equal(start[1], end[1]) and torch.equal(start[2], end[2])  # empty / NaN: exactly unchanged
    assert (opt._v[0][1:] == 0).all() and (opt._v[0][0] > 0).all()  # and so are their moments


def test_a_slot_moves_the_same_alone_or_with_company():
    _, crowd, _, _ = stepped("adam", live=[True, True, True], loss=[1.0, 1.0, 1.0])
    _, alone, _, _ = stepped("adam", live=[True, False, False], loss=[1.0, 1.0, 1.0])
    assert torch.equal(crowd[0], alone[0])


def test_reset_zeroes_one_slots_moments():
    _, _, opt, _ = stepped("adam", live=[True, True, True], loss=[1.0, 1.0, 1.0])
    opt.reset(1)
    assert (opt._m[0][1] == 0).all() and (opt._v[0][1] == 0).all() and (opt._v[0][0] > 0).all()


def test_the_block_applies_the_transforms_its_config_asks_for():
    assert train_transforms(TrainConfig()) == []
    assert train_transforms(TrainConfig(augment_shift=2)) == [RandomShift(2)]
    from . import flatmodels as fm

    block = RestartBlock(fm.gates(), {"x": np.array([[0, 1]] * 4), "y": np.array([[1, 1]] * 4)}, slots=2,
                         config=TrainConfig(batch_size=2))
    assert block.transforms == [] and isinstance(block.optimizer, SlotOptimizer)
