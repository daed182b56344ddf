"""Fused Adam is the elementwise Adam, slot by slot, and frozen slots stay exactly as they were."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ntpt_dist.interpreter.optim import SlotOptimizer
from ntpt_dist.interpreter.train_config import TrainConfig

SHAPES = [(6, 40, 8), (6, 8), (6, 3, 5)]  # slots along axis 0, as the block's networks and Params are


def _block(seed: int, fused: bool, config: TrainConfig):
    gen = torch.Generator().manual_seed(seed)
    tensors = [(f"{'param' if i == 2 else 'net'}:t{i}", torch.randn(*s, generator=gen).requires_grad_(), 0)
               for i, s in enumerate(SHAPES)]
    opt = SlotOptimizer(tensors, [0.05, 0.05, 0.2], config, slots=6)
    if not fused:
        opt.use_elementwise()
    return tensors, opt


def _grads(tensors, step: int) -> None:
    gen = torch.Generator().manual_seed(100 + step)
    for _, t, _ in tensors:
        t.grad = torch.randn(t.shape, generator=gen) * (3.0 if step % 2 else 0.1)  # clipped on odd steps
    tensors[0][1].grad[4, 0, 0] = float("nan")  # slot 4 diverges at every step


@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_fused_adam_equals_the_elementwise_update(noise):
    config = TrainConfig(grad_noise=noise, clip_norm=1.0)
    assert _block(0, True, config)[1]._fused == [True] * len(SHAPES), "this torch has no fused Adam: nothing checked"
    runs = {}
    for fused in (True, False):
        tensors, opt = _block(0, fused, config)
        before = [t.detach().clone() for _, t, _ in tensors]
        gens = [torch.Generator().manual_seed(k) for k in range(6)]
        live = np.array([True, True, False, True, True, True])  # slot 2 is empty
        for step in range(5):
            _grads(tensors, step)
            updated = opt.step(live, torch.zeros(6), np.full(6, step), gens)
            assert updated.tolist() == [True, True, False, True, False, True]
        runs[fused] = ([t.detach().clone() for _, t, _ in tensors], before, [m.clone() for m in opt._m])
    (after_f, before, m_f), (after_e, _, m_e) = runs[True], runs[False]
    for a, b, start in zip(after_f, after_e, before):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # float32 rounding of the two orders
        assert not torch.equal(a[0], start[0]), "slot 0 should have moved"
        for frozen in (2, 4):  # an empty and a diverged slot keep their weights exactly
            assert torch.equal(a[frozen], start[frozen]) and torch.equal(b[frozen], start[frozen])
    for a, b in zip(m_f, m_e):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
        assert torch.equal(a[2], torch.zeros_like(a[2])) and torch.equal(a[4], torch.zeros_like(a[4]))


def test_rmsprop_and_strided_slots_take_the_elementwise_path():
    tensors = [("net:w", torch.zeros(4, 3, requires_grad=True), 1)]  # slots along axis 1: strided views
    assert SlotOptimizer(tensors, [0.1], TrainConfig(), slots=3)._fused == [False]
    square = [("net:w", torch.zeros(3, 4, requires_grad=True), 0)]
    assert SlotOptimizer(square, [0.1], TrainConfig(optimizer="rmsprop"), slots=3)._fused == [False]
