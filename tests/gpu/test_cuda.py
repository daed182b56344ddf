"""ntpt-dist on CUDA: the lowering agrees with exact execution there, training finds programs there,
and one GPU is shared by four search actors.

Every test here is marked ``gpu`` and skips on a machine without CUDA, so ``make test`` (which
deselects them) and ``make test-all`` on a CPU machine stay green. ``scripts/device_check.sh``
runs them where a GPU is.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from ntpt_dist.interpreter.discrete import execute
from ntpt_dist.interpreter.lower import Lowered
from ntpt_dist.interpreter.model import compile_file, compile_source
from ntpt_dist.interpreter.program import Program

from ..interpreter.test_reference import random_batch, random_networks, random_params

# NTPT_GPU_TEST_DEVICE=cpu runs the same checks on the CPU (to check the tests themselves).
DEVICE = os.environ.get("NTPT_GPU_TEST_DEVICE", "cuda")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device"),
]

REPO = Path(__file__).resolve().parents[2]
MODELS = {  # model file -> hypers
    "circuit.py": {}, "maze_int.py": {"T": 10, "W": 3, "H": 2}, "turing.py": {"numTimesteps": 6, "tapeLength": 4},
}
# A Param picks how a learnt lookup network's output is used: training must find p = 1 and the network.
SOURCE = """
@Learn([4], 4, hid_sizes=[])
def digit(a):
    pass

@Runtime([4], 4)
def inc(a):
    return (a + 1) % 4

x = Input(4)
y = Output(4)
p = Param(2)
if p == 0:
    y.set_to(digit(x))
else:
    y.set_to(inc(digit(x)))
"""


@pytest.mark.parametrize("name", MODELS)
def test_one_hot_lowering_on_cuda_equals_exact_execution(name):
    """Relaxed execution with one-hot Params and argmax networks, on the device, is exact execution."""
    model = compile_file(REPO / "tests" / "interpreter" / "models" / name, MODELS[name])
    flat = model.flat
    rng = np.random.default_rng(0)
    restarts, n = 4, 16
    low = Lowered(flat, restarts=restarts, device=DEVICE, dtype=torch.float32)
    nets = [random_networks(flat, rng) for _ in range(restarts)]
    for name, stacked in low.nets.items():
        for r in range(restarts):
            stacked.load_slot(r, nets[r][name])
    params = [random_params(flat, rng) for _ in range(restarts)]
    onehot = {d.name: torch.tensor(np.stack([np.eye(d.size)[p[d.name]] for p in params]), dtype=torch.float32,
                                   device=DEVICE) for d in flat.params}
    batch = random_batch(flat, rng, n)
    outputs = {d.name: rng.integers(0, d.size, size=(n, *d.shape)) for d in flat.outputs}
    fwd = low.run(low.batch({**batch, **outputs}), param_probs=onehot, hard_nets=True)
    checked = 0
    for r in range(restarts):
        every = execute(flat, params[r], nets[r], batch, everything=True)
        for s in flat.statements:
            value = every[s.target.name][(slice(None), *s.target.index)]
            want = np.where(value[:, None] >= 0, np.eye(flat.decls[s.target.name].size)[np.maximum(value, 0)], 0.0)
            got = fwd.marginal(s.target)[r].detach().cpu().numpy()
            assert np.array_equal(got, want), (s.target, r)
            checked += 1
    assert checked == restarts * len(flat.statements)


def test_training_on_cuda_finds_a_program_that_fits():
    model = compile_source(SOURCE, filename="cuda_lookup.py")
    data = _data(256)
    result = model.train(data, restarts=8, steps=400, seed=0, device=DEVICE, lr=0.1)
    program = result.best_program()
    assert isinstance(program, Program)
    assert program.accuracy(data) == 1.0


def test_cuda_and_cpu_blocks_agree_on_the_first_steps():
    """The same restart seeds on CUDA and on the CPU follow the same losses (float32 rounding apart)."""
    from ntpt_dist.interpreter.engine import RestartBlock

    model = compile_source(SOURCE, filename="cuda_lookup.py")
    data = _data(32)

    losses = {}
    for device in ("cpu", DEVICE):
        block = RestartBlock(model, data, slots=4, device=device)
        for k in range(4):
            block.reset(k, 1000 + k)
        losses[device] = np.stack([block.step(1) for _ in range(20)])
    np.testing.assert_allclose(losses[DEVICE], losses["cpu"], rtol=1e-3, atol=1e-4)


def test_four_search_actors_share_one_gpu(monkeypatch):
    ray = pytest.importorskip("ray", reason="the search's Ray backend needs ray installed")
    from ntpt_dist.search import ray_backend

    import ntpt_dist

    seen = {"actors": 0, "gpu_free": None}
    wait = ray_backend.RayBackend.wait

    def watched(self, tickets, timeout):  # how many actors hold their share at once, and what is left
        out = wait(self, tickets, timeout)
        if len(self._actors) > seen["actors"]:
            seen["actors"] = len(self._actors)
            seen["gpu_free"] = ray.available_resources().get("GPU", 0.0)
        return out

    monkeypatch.setattr(ray_backend.RayBackend, "wait", watched)
    model = compile_source(SOURCE, filename="cuda_lookup.py")
    data = _data(256)
    gpus = 1 if DEVICE == "cuda" else 0
    ray_backend.init_ray(num_cpus=4, num_gpus=gpus)
    try:
        result = ntpt_dist.search(model, data, restarts=16, seed=0, actors=4, restarts_per_actor=4,
                                  gpus_per_actor=gpus / 4, cpus_per_actor=1, progress=False,
                                  config={"lr": 0.1}, device=DEVICE)
    finally:
        ray.shutdown()
    assert seen["actors"] == 4
    if gpus:
        assert seen["gpu_free"] == pytest.approx(0.0), "four actors at 0.25 GPU each should hold the whole GPU"
    assert result.best_program() is not None and result.best_program().accuracy(data) == 1.0


def _data(n: int) -> dict:
    """Instances of y = (x + 1) % 4 (the network may learn the identity or the shift itself)."""
    x = np.random.default_rng(1).integers(0, 4, size=n)
    return {"x": x, "y": (x + 1) % 4}
