"""The torch lowering against the plain-Python oracle, the discrete executor and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ntpt_dist.interpreter import reference
from ntpt_dist.interpreter.discrete import execute
from ntpt_dist.interpreter.errors import DataError
from ntpt_dist.interpreter.ir import Elem
from ntpt_dist.interpreter.lower import Lowered
from ntpt_dist.interpreter.netfn import net_fn

from . import flatmodels as fm

torch.set_num_threads(1)


def randomize(low: Lowered, seed: int = 0, scale: float = 1.0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, t, _ in low.parameters():
            t.copy_(torch.randn(t.shape, generator=g, dtype=torch.float64) * scale)


def gates_data(rng, n=6):
    return {"x": rng.integers(0, 2, (n, 2)), "y": rng.integers(0, 2, (n, 2))}


def netmix_data(rng, n=5, dims=4):
    return {"k": rng.integers(0, 3, n), "img": rng.random((n, 3, dims)), "y": rng.integers(0, 4, n),
            "z": np.where(rng.random(n) < 0.3, -1, rng.integers(0, 2, n))}


def maze_data(rng, n=3, T=8, img=(4,)):
    return {"init_X": rng.integers(0, 5, n), "init_Y": rng.integers(0, 3, n),
            "img_grid": rng.random((n, 3, 5, *img)), "final_X": rng.integers(0, 5, n), "final_Y": rng.integers(0, 3, n),
            "path_len": rng.integers(0, 15, n), "is_halted_at_end": rng.integers(0, 2, n)}


CASES = {
    "gates": (fm.gates, gates_data),
    "netmix": (fm.netmix, netmix_data),
    "maze": (lambda: fm.maze(T=8, img=(4,), hid=(6,)), maze_data),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_marginals_match_reference_oracle(name):
    build, make = CASES[name]
    flat = build()
    data = make(np.random.default_rng(1))
    low = Lowered(flat, restarts=2, dtype=torch.float64)
    randomize(low, seed=3)
    fwd = low.run(low.batch(data))
    worst = 0.0
    for r in range(2):
        probs = {n: fwd.param_probs[n][r].detach().numpy() for n in low.logits}
        nets = {n: net_fn(flat.learns[n], net.state(r)) for n, net in low.nets.items()}
        for b in range(fwd.batch.size):
            for elem, m in reference.marginals(flat, probs, nets, reference.instance(data, b)).items():
                worst = max(worst, float(np.abs(fwd.marginal(elem)[r, b].detach().numpy() - np.array(m)).max()))
    assert worst < 1e-5  # the oracle's networks run in float32


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_hot_params_and_hard_nets_match_discrete_executor(name):
    build, make = CASES[name]
    flat = build()
    data = make(np.random.default_rng(2), n=8)
    low = Lowered(flat, restarts=3)
    randomize(low, seed=5)
    rng = np.random.default_rng(7)
    values = [{d.name: rng.integers(0, d.size, d.shape) for d in flat.params} for _ in range(3)]
    one_hot = {d.name: torch.stack([torch.nn.functional.one_hot(torch.as_tensor(v[d.name]), d.size) for v in values]).float()
               for d in flat.params}
    fwd = low.run(low.batch(data), param_probs=one_hot, hard_nets=True)
    for r in range(3):
        params = {k: np.asarray(v).tolist() for k, v in values[r].items()}
        exact = execute(flat, params, {n: net.state(r) for n, net in low.nets.items()}, data)
        for d in flat.outputs:
            marg = fwd.output(d.name)[r].detach().numpy()
            np.testing.assert_array_equal(marg.argmax(-1), exact[d.name])
            np.testing.assert_allclose(marg.max(-1), 1.0, atol=1e-5)  # one-hot, not just the right argmax


def finite_difference_check(low: Lowered, batch, n_coords: int = 6, h: float = 1e-6, seed: int = 0) -> float:
    """Largest relative error between backward and central differences of sum(loss) on random coordinates."""
    fwd = low.run(batch)
    fwd.loss.sum().backward()
    rng = np.random.default_rng(seed)
    worst = 0.0
    for key, t, _ in low.parameters():
        grad = t.grad.clone()
        flat_t = t.detach().view(-1)
        for j in rng.choice(flat_t.numel(), size=min(n_coords, flat_t.numel()), replace=False):
            old = flat_t[j].item()
            with torch.no_grad():
                flat_t[j] = old + h
                up = low.run(batch).loss.sum().item()
                flat_t[j] = old - h
                down = low.run(batch).loss.sum().item()
                flat_t[j] = old
            numeric = (up - down) / (2 * h)
            analytic = grad.view(-1)[j].item()
            err = abs(numeric - analytic) / max(1e-4, abs(numeric) + abs(analytic))
            assert err < 1e-4, f"{key}[{j}]: backward {analytic} vs finite difference {numeric}"
            worst = max(worst, err)
    return worst


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_match_finite_differences(name):
    # gates: @Runtime with 2 args under if/with; netmix: @Learn on a tensor, on integers, on both, in mixtures;
    # maze: everything over an unroll, with per-restart data rows.
    build, make = CASES[name]
    low = Lowered(build(), restarts=2, dtype=torch.float64)
    randomize(low, seed=11)
    batch = low.batch(make(np.random.default_rng(4)))
    if name == "maze":
        batch = batch.take(torch.tensor([[0, 1], [2, 0]]))
    finite_difference_check(low, batch)


def test_restarts_batched_equal_separate_runs():
    flat = fm.netmix()
    data = netmix_data(np.random.default_rng(0), n=7)
    big = Lowered(flat, restarts=3, dtype=torch.float64)
    randomize(big, seed=2)
    fwd = big.run(big.batch(data))
    fwd.loss.sum().backward()
    for r in range(3):
        one = Lowered(flat, restarts=1, dtype=torch.float64)
        with torch.no_grad():
            for (_, t_big, axis), (_, t_one, _) in zip(big.parameters(), one.parameters()):
                t_one.copy_(t_big.select(axis, r).unsqueeze(axis))
        f1 = one.run(one.batch(data))
        f1.loss.sum().backward()
        torch.testing.assert_close(f1.loss[0], fwd.loss[r])
        torch.testing.assert_close(f1.output("y")[0], fwd.output("y")[r])
        for (_, t_big, axis), (_, t_one, _) in zip(big.parameters(), one.parameters()):
            torch.testing.assert_close(t_one.grad.select(axis, 0), t_big.grad.select(axis, r))


def test_per_restart_rows_equal_shared_rows():
    flat = fm.netmix()
    low = Lowered(flat, restarts=2, dtype=torch.float64)
    randomize(low)
    shared = low.batch(netmix_data(np.random.default_rng(3), n=4))
    rows = torch.tensor([[3, 1], [0, 2]])
    taken = low.run(shared.take(rows))
    whole = low.run(shared)
    for r in range(2):
        torch.testing.assert_close(taken.output("y")[r], whole.output("y")[r, rows[r]])


def test_network_on_data_runs_once_per_forward(monkeypatch):
    flat = fm.maze(T=6, img=(4,), hid=(3,))
    low = Lowered(flat, restarts=2)
    randomize(low)
    calls = []
    original = low.nets["LOOK"].scores
    monkeypatch.setattr(low.nets["LOOK"], "scores", lambda x: calls.append(tuple(x.shape)) or original(x))
    low.run(low.batch(maze_data(np.random.default_rng(0), n=4)))
    assert calls == [(4 * 15, 4)]  # every cell of every instance, one shared GEMM input


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_fig1_maze_45_steps_is_finite(scale):
    flat = fm.maze(T=45, img=(6,), hid=(8,))
    low = Lowered(flat, restarts=3)
    randomize(low, seed=1, scale=scale)
    batch = low.batch(maze_data(np.random.default_rng(0), n=6, T=45, img=(6,)))
    fwd = low.run(batch.take(torch.tensor([[0, 1, 2], [3, 4, 5], [5, 0, 3]])))
    fwd.loss.sum().backward()
    assert torch.isfinite(fwd.loss).all()
    for key, t, _ in low.parameters():
        assert torch.isfinite(t.grad).all(), key
    mass = fwd.marginal(Elem("reg", (44,))).sum(-1)
    torch.testing.assert_close(mass, torch.ones_like(mass))


def test_bad_output_value_is_a_data_error():
    flat = fm.gates()
    low = Lowered(flat)
    with pytest.raises(DataError, match="output 'y' has value 2"):
        low.batch({"x": np.zeros((2, 2), int), "y": np.array([[0, 2], [1, 1]])})
