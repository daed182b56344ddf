"""Reused step memory (``RestartBlock(reuse_memory=True)``) changes no number, bit for bit."""

from __future__ import annotations

import numpy as np
import torch
from ntpt_dist.interpreter.batch import Batch
from ntpt_dist.interpreter.engine import RestartBlock, TrainConfig, restart_seed
from ntpt_dist.interpreter.ir import LearnFn
from ntpt_dist.interpreter.nets import StackedMLP

from .flatmodels import maze


def _maze_data(flat, n: int = 24) -> dict:
    rng = np.random.default_rng(0)
    data = {d.name: rng.integers(0, d.size, (n, *d.shape)) for d in flat.decls.values() if d.kind in ("input", "output")}
    data["img_grid"] = rng.random((n, *flat.tensors["img_grid"].shape, *flat.tensors["img_grid"].elem_shape),
                                  dtype=np.float32)
    return data


def _block(flat, data, reuse: bool, slots: int = 3) -> RestartBlock:
    block = RestartBlock(flat, data, slots=slots, config=TrainConfig(batch_size=5), reuse_memory=reuse)
    if reuse:  # the kept-gradient path for every weight, however small
        for net in block.lowered.nets.values():
            net.keep_grad_memory(min_bytes=0)
    for k in range(slots):
        block.reset(k, restart_seed(3, k))
    return block


def test_reused_memory_trains_bit_for_bit_like_fresh_memory():
    flat = maze(T=4, W=3, H=2, img=(2, 4, 4), hid=(8, 6), max_int=5)
    data = _maze_data(flat)
    fresh, kept = _block(flat, data, reuse=False), _block(flat, data, reuse=True)
    assert kept._take_buffers is not None and fresh._take_buffers is None
    for _ in range(4):
        np.testing.assert_array_equal(fresh.step(1), kept.step(1))
    for (key, a, _), (_, b, _) in zip(fresh.lowered.parameters(), kept.lowered.parameters()):
        assert torch.equal(a, b), key
    assert fresh.params(1) == kept.params(1)
    assert kept._take_buffers  # the minibatch lives in the kept buffers
    assert all(buf is not None for net in kept.lowered.nets.values() for buf in net.grad_buffers)


def test_take_writes_into_the_buffers_it_is_given():
    batch = Batch({"x": torch.arange(6).reshape(1, 6)}, {"im": torch.rand(1, 6, 2, 3)}, {}, 6)
    rows = torch.tensor([[5, 0], [2, 2]])
    buffers: dict = {}
    first = batch.take(rows, buffers)
    ptr = buffers[("tensors", "im")].data_ptr()
    second = batch.take(torch.tensor([[1, 3], [4, 0]]), buffers)
    assert second.tensors["im"].data_ptr() == ptr  # the same memory, written again
    assert first.tensors["im"].data_ptr() == ptr  # (so the previous minibatch is spent)
    plain = batch.take(torch.tensor([[1, 3], [4, 0]]))
    assert torch.equal(second.tensors["im"], plain.tensors["im"]) and torch.equal(second.inputs["x"], plain.inputs["x"])
    assert second.tensors["im"].shape == (2, 2, 2, 3)


def test_kept_gradients_equal_autograd_and_accumulate():
    net = StackedMLP(_fn(), restarts=2)
    ref = StackedMLP(_fn(), restarts=2)
    gen = torch.Generator().manual_seed(0)
    for r in range(2):
        net.init_slot(r, gen)
    with torch.no_grad():
        for (_, a, _), (_, b, _) in zip(ref.tensors(), net.tensors()):
            a.copy_(b)
    net.keep_grad_memory(min_bytes=0)
    x = torch.rand(2, 7, 3, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    for _ in range(2):  # no zero_grad in between: the second backward adds to the first
        net.scores(x).square().sum().backward()
        ref.scores(x_ref).square().sum().backward()
    for (key, a, _), (_, b, _) in zip(ref.tensors(), net.tensors()):
        assert torch.equal(a.grad, b.grad), key
    assert torch.equal(x.grad, x_ref.grad)
    assert net.weights[0].grad.data_ptr() == net.grad_buffers[0].data_ptr()
    with torch.no_grad():  # evaluation: shared rows, no graph
        assert torch.equal(net.scores(torch.ones(4, 3)), ref.scores(torch.ones(4, 3)))


def _fn() -> LearnFn:
    return LearnFn("g", (3,), 2, (4,))
