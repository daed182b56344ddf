"""RestartBlock and train(): independence of restarts, NaN isolation, and solving small problems."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from ntpt_dist.interpreter.discrete import execute
from ntpt_dist.interpreter.engine import RestartBlock, TrainConfig, config_with, restart_seed
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.interpreter.netfn import random_netstate

from . import flatmodels as fm
from .test_lower import netmix_data

torch.set_num_threads(1)


def gates_task(rng, n):
    x = rng.integers(0, 2, (n, 2))
    return {"x": x, "y": np.stack([x[:, 0] ^ x[:, 1], x[:, 0] | x[:, 1]], 1)}


def slot_state(block: RestartBlock, slot: int) -> list[torch.Tensor]:
    return [t.detach().select(axis, slot).clone() for _, t, axis in block.lowered.parameters()]


def test_restart_seed_is_stable_across_processes_and_distinct():
    code = "from ntpt_dist.interpreter.engine import restart_seed; print(restart_seed(7, 3))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert int(other) == restart_seed(7, 3)
    seeds = {restart_seed(s, k) for s in range(3) for k in range(50)}
    assert len(seeds) == 150 and all(0 <= x < 2**63 for x in seeds)


def test_restart_trajectory_does_not_depend_on_slot_or_block():
    flat = fm.netmix()
    data = netmix_data(np.random.default_rng(0), n=24)
    library = {"look": random_netstate(flat.learns["look"], np.random.default_rng(1))}
    cfg = TrainConfig(batch_size=5, grad_noise=0.3, entropy_bonus=0.1, optimizer="adam")
    seed = restart_seed(0, 5)
    alone = RestartBlock(flat, data, slots=1, config=cfg, library=library)
    alone.reset(0, seed)
    alone.step(6)
    crowd = RestartBlock(flat, data, slots=5, config=cfg, library=library)
    for slot in range(5):
        crowd.reset(slot, restart_seed(1, slot))
    crowd.step(2)  # the others are ahead: slot 3 restarts now
    crowd.reset(3, seed)
    crowd.step(6)
    assert crowd.steps.tolist() == [8, 8, 8, 6, 8]
    for a, b in zip(slot_state(alone, 0), slot_state(crowd, 3)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_library_networks_start_every_restart():
    flat = fm.netmix()
    net = random_netstate(flat.learns["look"], np.random.default_rng(2))
    block = RestartBlock(flat, netmix_data(np.random.default_rng(0)), slots=2, library={"look": net})
    block.reset(0, 1)
    block.reset(1, 2)
    for slot in range(2):
        for key, value in block.networks(slot)["look"]["state"].items():
            np.testing.assert_array_equal(value, net["state"][key])
    assert not np.array_equal(block.networks(0)["pair"]["state"]["w0"], block.networks(1)["pair"]["state"]["w0"])


def test_nan_in_one_slot_freezes_it_and_leaves_the_others_alone():
    flat = fm.netmix()
    data = netmix_data(np.random.default_rng(0), n=16)
    cfg = TrainConfig(batch_size=4)
    blocks = [RestartBlock(flat, data, slots=3, config=cfg) for _ in range(2)]
    for block in blocks:
        for slot in range(3):
            block.reset(slot, restart_seed(0, slot))
    with torch.no_grad():
        blocks[1].lowered.logits["p"][1, 0] = float("nan")
    before = slot_state(blocks[1], 1)
    losses = [block.step(3) for block in blocks]
    assert blocks[1].diverged.tolist() == [False, True, False]
    assert np.isnan(losses[1][1]) and np.isfinite(losses[1][[0, 2]]).all()
    assert blocks[1].steps.tolist() == [3, 0, 3]
    for slot in (0, 2):
        for a, b in zip(slot_state(blocks[0], slot), slot_state(blocks[1], slot)):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(before, slot_state(blocks[1], 1)):
        torch.testing.assert_close(a, b, equal_nan=True)  # frozen


def test_reset_gives_a_fresh_optimizer_state():
    flat = fm.gates()
    data = gates_task(np.random.default_rng(0), 32)
    used = RestartBlock(flat, data, slots=1, config=TrainConfig(optimizer="adam", batch_size=8))
    used.reset(0, 11)
    used.step(5)
    used.reset(0, 12)
    used.step(4)
    fresh = RestartBlock(flat, data, slots=1, config=TrainConfig(optimizer="adam", batch_size=8))
    fresh.reset(0, 12)
    fresh.step(4)
    for a, b in zip(slot_state(used, 0), slot_state(fresh, 0)):
        torch.testing.assert_close(a, b)


def trained(flat, data, restarts, steps, seed, **options):
    """A block of ``restarts`` restarts of ``flat`` trained ``steps`` steps."""
    block = RestartBlock(flat, data, slots=restarts, config=TrainConfig(**options))
    for k in range(restarts):
        block.reset(k, restart_seed(seed, k))
    block.step(steps)
    return block


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_a_block_finds_the_gates_program(optimizer):
    rng = np.random.default_rng(0)
    block = trained(fm.gates(), gates_task(rng, 64), restarts=4, steps=150, seed=0, optimizer=optimizer, lr=0.1)
    acc = block.accuracy(gates_task(rng, 32))
    best = int(acc.argmax())
    assert acc[best] == 1.0 and block.steps.tolist() == [150] * 4
    held_out = gates_task(np.random.default_rng(9), 32)
    predicted = execute(fm.gates(), block.params(best), {}, held_out)["y"]
    np.testing.assert_array_equal(predicted, held_out["y"])


def test_a_block_learns_a_network_and_the_program_around_it():
    # y = INC(look(img[1])): the program must pick p = 1, q = 0 and LOOK must learn which class a cell shows.
    flat = fm.netmix()

    def task(rng, n):
        cls = rng.integers(0, 4, (n, 3))
        img = np.eye(4)[cls] + 0.1 * rng.random((n, 3, 4))
        return {"k": rng.integers(0, 3, n), "img": img, "y": (cls[:, 1] + 1) % 4}

    rng = np.random.default_rng(0)
    block = trained(flat, task(rng, 128), restarts=4, steps=300, seed=1, lr=0.05, optimizer="rmsprop",
                    new_net_lr_scale=1.0, batch_size=16)
    acc = block.accuracy(task(rng, 64))
    best = int(acc.argmax())
    assert acc[best] == 1.0
    held_out = task(np.random.default_rng(5), 64)
    predicted = execute(flat, block.params(best), block.networks(best), held_out)["y"]
    assert (predicted == held_out["y"]).mean() == 1.0


def test_bad_options_are_user_errors():
    with pytest.raises(NtptError, match="optimizer must be"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(NtptError, match="unknown training option"):
        config_with(learning_rate=0.1)
    block = RestartBlock(fm.gates(), gates_task(np.random.default_rng(0), 4), slots=2)
    with pytest.raises(NtptError, match="slot 2 is out of range"):
        block.reset(2, 0)


IMAGES = """
from dummy import InputTensor, Learn, Output, Param
img = InputTensor(1, 6, 6)[2]
y = Output(2)
p = Param(2)

@Learn([Tensor(1, 6, 6)], 2, hid_sizes=[4])
def look(a):
    pass

with p as i:
    y.set_to(look(img[i]))
"""


def test_augment_shift_moves_training_images_per_restart_and_reproducibly():
    from ntpt_dist import compile_source

    model = compile_source(IMAGES, filename="images.py")
    rng = np.random.default_rng(0)
    images = np.zeros((8, 2, 1, 6, 6), dtype=np.float32)
    images[:, :, 0, 2:4, 2:4] = 1.0  # a 2x2 blob in the middle: any shift of <= 2 keeps it whole
    data = {"img": images, "y": rng.integers(0, 2, 8)}
    cfg = TrainConfig(batch_size=4, augment_shift=2)
    block = RestartBlock(model, data, slots=3, config=cfg)
    for slot in range(3):
        block.reset(slot, restart_seed(0, slot))
    moved = block._minibatch(np.ones(3, dtype=bool)).tensors["img"]  # [3, 4, 2, 1, 6, 6]
    assert moved.shape == (3, 4, 2, 1, 6, 6)
    assert torch.all(moved.sum((-1, -2, -3)) == 4)  # the blob is moved, never cut or blurred
    corners = moved.reshape(-1, 36).argmax(-1)  # first lit pixel of each image
    assert len(set(corners.tolist())) > 1  # different offsets per instance
    # the same restart draws the same shifts in another block and slot
    other = RestartBlock(model, data, slots=2, config=cfg)
    other.reset(0, restart_seed(5, 0))
    other.reset(1, restart_seed(0, 2))
    again = other._minibatch(np.ones(2, dtype=bool)).tensors["img"]
    torch.testing.assert_close(again[1], moved[2])
    with pytest.raises(NtptError, match="augment_shift"):
        TrainConfig(augment_shift=-1)


def test_frozen_library_networks_are_computed_once_and_train_like_a_zero_rate():
    flat = fm.netmix()
    data = netmix_data(np.random.default_rng(0), n=24)
    library = {"look": random_netstate(flat.learns["look"], np.random.default_rng(1))}
    runs = {}
    for frozen in (False, True):
        # no clipping: a zero-rate network still counts in the clipped gradient norm, a frozen one does not
        cfg = TrainConfig(batch_size=5, freeze_library=frozen, net_lr_scale=0.0, clip_norm=None)
        block = RestartBlock(flat, data, slots=3, config=cfg, library=library)
        for slot in range(3):
            block.reset(slot, restart_seed(0, slot))
        losses = block.step(8)
        runs[frozen] = (losses, block.accuracy(data), slot_state(block, 1), block)
    (loss_a, acc_a, state_a, _), (loss_b, acc_b, state_b, frozen_block) = runs[False], runs[True]
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-5)
    np.testing.assert_allclose(acc_a, acc_b)
    for a, b in zip(state_a, state_b):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert frozen_block.frozen == {"look"} and len(frozen_block.data.cached) == 1  # look(img[i]) only
    assert all(not t.requires_grad for _, t, _ in frozen_block.lowered.nets["look"].tensors())
    assert frozen_block.networks(2)["look"]["state"]["w0"].tolist() == library["look"]["state"]["w0"].tolist()


def _row_images(cells: list[int], n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs of faint 6x6 images and labels; in ``cells``, a bright top row (label 1) or bottom row (0)."""
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, n)
    images = rng.random((n, 2, 1, 6, 6), dtype=np.float32) * 0.1
    for cell in cells:
        images[np.arange(n), cell, 0, np.where(label == 1, 0, 4)] += 1.0
    return images, label


def test_tune_networks_improves_a_fixed_programs_network_and_keeps_its_params():
    from ntpt_dist.interpreter.tune import tune_networks

    from ntpt_dist import compile_source

    model = compile_source(IMAGES, filename="images.py")
    images, label = _row_images(cells=[1])
    data = {"img": images, "y": label}
    start = model.program({"p": 1}, {"look": random_netstate(model.flat.learns["look"], np.random.default_rng(3))})
    tuned = tune_networks(start, data, steps=200, eval_every=25, lr=0.05, net_lr_scale=0.4, batch_size=16)
    assert tuned.params == {"p": 1}
    assert start.accuracy(data) < 0.9 <= tuned.accuracy(data)


TWO_NETS = """
from dummy import InputTensor, Learn, Output, Param
img = InputTensor(1, 6, 6)[2]
y = Output(2)
z = Output(2)

@Learn([Tensor(1, 6, 6)], 2, hid_sizes=[4])
def look(a):
    pass

@Learn([Tensor(1, 6, 6)], 2, hid_sizes=[4])
def peek(a):
    pass

y.set_to(look(img[0]))
z.set_to(peek(img[1]))
"""


def test_tune_networks_holds_the_networks_named_fixed_and_trains_the_others():
    from ntpt_dist.interpreter.tune import tune_networks

    from ntpt_dist import compile_source

    model = compile_source(TWO_NETS, filename="two_nets.py")
    images, label = _row_images(cells=[0, 1])
    data = {"img": images, "y": label, "z": label}
    nets = {name: random_netstate(model.flat.learns[name], np.random.default_rng(k)) for k, name in enumerate(("look", "peek"))}
    start = model.program({}, nets)
    tuned = tune_networks(start, data, steps=200, eval_every=25, lr=0.05, net_lr_scale=0.4, batch_size=16, fixed=("peek",))
    assert tuned is not start  # a checkpoint beat the start: look learned
    for key, value in nets["peek"]["state"].items():
        np.testing.assert_array_equal(tuned.networks["peek"]["state"][key], value)
    assert any(not np.array_equal(tuned.networks["look"]["state"][k], v) for k, v in nets["look"]["state"].items())
    with pytest.raises(NtptError, match="not library networks"):
        tune_networks(start, data, steps=25, fixed=("glance",))
