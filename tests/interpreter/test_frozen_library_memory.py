"""Frozen library networks held once per block, and the kept-gradient layer under saved-tensor hooks."""

from __future__ import annotations

import numpy as np
import torch
from ntpt_dist.interpreter.engine import RestartBlock, TrainConfig, restart_seed
from ntpt_dist.interpreter.lower import Lowered
from ntpt_dist.interpreter.netfn import random_netstate

from . import flatmodels as fm
from .test_engine import IMAGES
from .test_lower import netmix_data

torch.set_num_threads(1)

# The frozen-library run of _train_frozen computed with every slot holding its own copy of
# every frozen network (commit 85e848a), as float.hex of the float32 values.
BEFORE = {
    "loss": ["0x1.0bf5dc0000000p+1", "0x1.8a51de0000000p+0", "0x1.8831220000000p+0"],
    "val_loss": ["0x1.2ba46c0000000p+1", "0x1.2cd9a80000000p+1", "0x1.30873a0000000p+1"],
    "acc": [0.1875, 0.1875, 0.125],
    "params": [{"p": 0, "q": 1}] * 3,
    "logits": {"p": ["0x1.80761e0000000p+0", "-0x1.3b2cee0000000p+0", "0x1.a02bfc0000000p-2",
                     "0x1.330f8e0000000p+0", "-0x1.ec033e0000000p+0", "-0x1.dbaba40000000p-1",
                     "0x1.a1d4720000000p+1", "-0x1.19c5300000000p-1", "-0x1.62d46c0000000p+1"],
               "q": ["-0x1.bf847c0000000p-2", "0x1.c1e0e80000000p-1", "-0x1.b7ead80000000p-3",
                     "0x1.f5a0ac0000000p-1", "-0x1.8f545a0000000p+0", "0x1.23ec960000000p-1"]},
}


def _library(flat):
    return {n: random_netstate(fn, np.random.default_rng(i + 1), scale=2.0)
            for i, (n, fn) in enumerate(sorted(flat.learns.items()))}


def _train_frozen():
    """netmix with all three networks frozen: ``look`` on data (cached), ``both`` and ``pair`` on computed values."""
    flat = fm.netmix()
    data = netmix_data(np.random.default_rng(0), n=24)
    library = _library(flat)
    block = RestartBlock(flat, data, slots=3, config=TrainConfig(batch_size=5, freeze_library=True, lr=0.3),
                         library=library)
    for slot in range(3):
        block.reset(slot, restart_seed(0, slot))
    block.step(6)
    block.reset(1, restart_seed(0, 7))  # reset skips the frozen networks: the others must still read them
    losses = block.step(4)
    return block, library, losses


def _hex(values) -> list[float]:
    return [float.fromhex(x) for x in values]


def test_frozen_networks_are_one_copy_and_train_as_before():
    block, library, losses = _train_frozen()
    val = block.batch(netmix_data(np.random.default_rng(3), n=16))
    assert block.frozen == {"look", "pair", "both"}
    for name, net in block.lowered.nets.items():
        for key, t, _ in net.tensors():
            assert t.shape[0] == 3 and not t.requires_grad
            assert t.untyped_storage().nbytes() == t[0].numel() * t.element_size()  # one copy, not 3
            for slot in range(3):
                assert block.networks(slot)[name]["state"][key].tolist() == library[name]["state"][key].tolist()
    # the same numbers as with a copy per slot (recorded before the change; float32 values)
    np.testing.assert_allclose(losses, _hex(BEFORE["loss"]), rtol=1e-6)
    np.testing.assert_allclose(block.lowered.run(val).loss.detach().numpy(), _hex(BEFORE["val_loss"]), rtol=1e-6)
    assert block.accuracy(val).tolist() == BEFORE["acc"]
    assert [block.params(s) for s in range(3)] == BEFORE["params"]
    for name, logits in block.lowered.logits.items():
        np.testing.assert_allclose(logits.detach().reshape(-1).numpy(), _hex(BEFORE["logits"][name]), rtol=1e-6)


def test_one_copy_computes_bit_for_bit_what_a_copy_per_slot_computes():
    flat = fm.netmix()
    library = _library(flat)
    one, per_slot = (Lowered(flat, restarts=3, single_copy=names) for names in (set(library), ()))
    assert all(net.single_copy for net in one.nets.values()) and not any(n.single_copy for n in per_slot.nets.values())
    for name, net in library.items():
        one.nets[name].load_slot(0, net)
        for slot in range(3):
            per_slot.nets[name].load_slot(slot, net)
    gen = torch.Generator().manual_seed(0)
    for low in (one, per_slot):
        for logits in low.logits.values():
            logits.data.copy_(torch.randn(logits.shape, generator=gen.manual_seed(1)))
    shared = one.batch(netmix_data(np.random.default_rng(4), n=9))
    rows = torch.tensor([[0, 3, 5], [8, 1, 1], [2, 2, 7]])
    for batch in (shared, shared.take(rows), one.frozen_outputs(shared, set(library))):
        a, b = one.run(batch), per_slot.run(batch)
        assert torch.equal(a.loss, b.loss) and torch.equal(a.output("y"), b.output("y"))
    # gradients through the frozen networks reach the Params alike
    grads = []
    for low in (one, per_slot):
        low.run(shared.take(rows)).loss.sum().backward()
        grads.append([t.grad.clone() for _, t in sorted(low.logits.items())])
    assert all(torch.equal(x, y) for x, y in zip(*grads))


def test_program_of_a_frozen_block_carries_the_library_networks():
    from ntpt_dist import compile_source

    model = compile_source(IMAGES, filename="images.py")
    rng = np.random.default_rng(0)
    data = {"img": rng.random((12, 2, 1, 6, 6), dtype=np.float32), "y": rng.integers(0, 2, 12)}
    library = {"look": random_netstate(model.flat.learns["look"], np.random.default_rng(2))}
    block = RestartBlock(model, data, slots=4, config=TrainConfig(batch_size=4, freeze_library=True), library=library)
    for slot in range(4):
        block.reset(slot, restart_seed(1, slot))
    block.step(3)
    block.set_params(2, {"p": 1})
    program = block.program(2)
    assert program.params == {"p": 1}
    assert program.networks["look"]["state"]["w0"].tolist() == library["look"]["state"]["w0"].tolist()
    relaxed = block.accuracy(data)[2]  # one-hot Params: the relaxed model is the program
    assert abs(program.accuracy(data) - relaxed) < 1e-9


def _one_step_of_kept_gradients(hooks: bool) -> list[torch.Tensor]:
    flat = fm.netmix()
    data = netmix_data(np.random.default_rng(0), n=24)
    block = RestartBlock(flat, data, slots=3, config=TrainConfig(batch_size=5, lr=0.1), reuse_memory=True)
    for net in block.lowered.nets.values():
        net.keep_grad_memory(min_bytes=0)  # every weight through the kept-gradient layer
    for slot in range(3):
        block.reset(slot, restart_seed(0, slot))
    before = [t.detach().clone() for _, t, _ in block.lowered.parameters()]
    if hooks:
        with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
            block.step(1)
    else:
        block.step(1)
    after = [t.detach().clone() for _, t, _ in block.lowered.parameters()]
    keys = [key for key, _, _ in block.lowered.parameters()]
    moved = [key for key, a, b in zip(keys, before, after) if not torch.equal(a, b)]
    assert {"net:look:w0", "net:pair:w0", "net:both:w0"} <= set(moved)
    return after


def test_kept_gradient_layer_trains_its_weight_under_saved_tensors_hooks():
    plain, hooked = _one_step_of_kept_gradients(False), _one_step_of_kept_gradients(True)
    assert all(torch.equal(a, b) for a, b in zip(plain, hooked))
