"""Cross-checks of the torch lowering against the two oracles.

* soft: the plain-Python reference marginals == ``Lowered.run`` marginals (and
  loss) to 1e-5 on random Param distributions and random networks, per restart;
* hard: ``Lowered.run`` with one-hot Params and one-hot network outputs ==
  ``Program.run`` (exact integer execution) on random programs.

Models: random FlatModels covering every construct (test_reference.py), the
hand-built ones of flatmodels.py, and the fixture/experiment model sources
when the front end can compile them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from ntpt_dist.interpreter.discrete import execute
from ntpt_dist.interpreter.ir import Elem, FlatModel
from ntpt_dist.interpreter.lower import EPS, Lowered
from ntpt_dist.interpreter.netfn import net_fn
from ntpt_dist.interpreter.program import Program
from ntpt_dist.interpreter.reference import instance, marginals

from . import flatmodels
from .test_reference import random_batch, random_model, random_networks, random_param_probs, random_params

TOL = 1e-5
MODELS_DIR = Path(__file__).parent / "models"


def random_targets(flat: FlatModel, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Random observed outputs, about a quarter of them don't care (-1), at least one observed."""
    out, drawn = {}, {}
    for d in flat.outputs:
        y = drawn[d.name] = rng.integers(0, d.size, size=(n, *d.shape))
        out[d.name] = np.where(rng.random(y.shape) < 0.25, -1, y)
    if out and all((v == -1).all() for v in out.values()):  # data that observes nothing is refused
        first = flat.outputs[0].name
        out[first].flat[0] = drawn[first].flat[0]
    return out


def load_networks(low: Lowered, nets: list[dict]) -> None:
    for name, stacked in low.nets.items():
        for r, per_restart in enumerate(nets):
            stacked.load_slot(r, per_restart[name])


def expected_marginals(flat: FlatModel) -> int:
    """How many marginals the reference gives per instance: every Input and Param element and every
    assigned element (counted from the model, not from what a comparison loop visited)."""
    elems = {Elem(d.name, tuple(index)) for d in flat.inputs + flat.params for index in np.ndindex(*d.shape)}
    return len(elems | {s.target for s in flat.statements})


def checked_soft_agreement(flat: FlatModel, rng: np.random.Generator, restarts: int = 2, n: int = 3, **kw) -> None:
    """:func:`soft_agreement`, which must compare every element of every restart and instance."""
    compared = soft_agreement(flat, rng, restarts=restarts, n=n, **kw)
    assert compared == restarts * n * expected_marginals(flat) > 0, (compared, restarts, n, expected_marginals(flat))


def soft_agreement(flat: FlatModel, rng: np.random.Generator, restarts: int = 2, n: int = 3,
                   dtype: torch.dtype = torch.float64, tol: float = TOL) -> int:
    """Reference marginals and NLL == lowered ones for every element, restart and instance.

    Returns the number of marginals compared (so callers can assert it is not vacuous).
    """
    low = Lowered(flat, restarts=restarts, dtype=dtype)
    nets = [random_networks(flat, rng) for _ in range(restarts)]
    load_networks(low, nets)
    probs = [random_param_probs(flat, rng) for _ in range(restarts)]
    stacked = {d.name: torch.tensor(np.stack([p[d.name] for p in probs]), dtype=dtype) for d in flat.params}
    batch = {**random_batch(flat, rng, n), **random_targets(flat, rng, n)}
    fwd = low.run(low.batch(batch), param_probs=stacked)
    compared = 0
    for r in range(restarts):
        fns = {k: net_fn(flat.learns[k], v) for k, v in nets[r].items()}
        nll = 0.0
        for i in range(n):
            row = instance(batch, i)
            mu = marginals(flat, probs[r], fns, row)
            for elem, want in mu.items():
                got = fwd.marginal(elem)[r, i].tolist()
                assert np.allclose(got, want, atol=tol, rtol=0), (elem, r, i, got, want)
                compared += 1
            for d in flat.outputs:
                target = np.asarray(row[d.name])
                for index in np.ndindex(*d.shape):
                    if target[index] >= 0:
                        nll -= math.log(mu[Elem(d.name, tuple(index))][int(target[index])] + EPS)
        loss = float(fwd.loss[r].detach())
        assert abs(loss - nll / n) <= tol * max(1.0, abs(loss)), (r, loss, nll / n)
    return compared


class _FlatModel:
    """The minimum of ``model.Model`` Program needs, for hand-built FlatModels."""

    def __init__(self, flat: FlatModel):
        self.flat, self.hypers, self.listing = flat, {}, None
        self.source, self.filename = flat.source, flat.filename


def hard_agreement(model, rng: np.random.Generator, restarts: int = 3, n: int = 8) -> int:
    """One-hot Params + argmax'd networks in the lowering == Program.run, element by element.

    Returns the number of (restart, instance) rows whose every observed output
    matched, so callers can check that accuracy agrees too.
    """
    flat = model.flat
    low = Lowered(flat, restarts=restarts, dtype=torch.float32)
    nets = [random_networks(flat, rng) for _ in range(restarts)]
    load_networks(low, nets)
    params = [random_params(flat, rng) for _ in range(restarts)]
    onehot = {d.name: torch.tensor(np.stack([np.eye(d.size)[p[d.name]] for p in params]), dtype=torch.float32)
              for d in flat.params}
    batch = random_batch(flat, rng, n)
    outputs = {d.name: rng.integers(0, d.size, size=(n, *d.shape)) for d in flat.outputs}
    fwd = low.run(low.batch({**batch, **outputs}), param_probs=onehot, hard_nets=True)
    agree = 0
    for r in range(restarts):
        prog = Program(model, params[r], nets[r])
        ran = prog.run(batch)
        every = execute(flat, params[r], nets[r], batch, everything=True)
        for s in flat.statements:
            value = every[s.target.name][(slice(None), *s.target.index)]
            want = np.where(value[:, None] >= 0, np.eye(flat.decls[s.target.name].size)[np.maximum(value, 0)], 0.0)
            got = fwd.marginal(s.target)[r].numpy()
            assert np.array_equal(got, want), (s.target, r, got, value)
        for d in flat.outputs:
            assert np.array_equal(ran[d.name], every[d.name])
        # accuracy agrees wherever every output has a value (an unassigned output is -1 in Program.run)
        assigned = np.ones(n, dtype=bool)
        for d in flat.outputs:
            assigned &= (ran[d.name] >= 0).reshape(n, -1).all(1)
        prog_correct = np.ones(n, dtype=bool)
        for d in flat.outputs:
            prog_correct &= (ran[d.name] == outputs[d.name]).reshape(n, -1).all(1)
        assert np.array_equal(fwd.correct[r].numpy()[assigned], prog_correct[assigned])
        agree += int(prog_correct.sum())
    return agree


# ------------------------------------------------------------------ random models


@pytest.mark.parametrize("seed", range(15))
def test_reference_equals_lowering_on_random_models(seed):
    rng = np.random.default_rng(1000 + seed)
    checked_soft_agreement(random_model(rng, n_statements=8), rng)


@pytest.mark.parametrize("seed", range(4))
def test_reference_equals_lowering_in_float32(seed):
    rng = np.random.default_rng(2000 + seed)
    checked_soft_agreement(random_model(rng, n_statements=8), rng, dtype=torch.float32)


@pytest.mark.parametrize("seed", range(15))
def test_one_hot_lowering_equals_program_run_on_random_programs(seed):
    rng = np.random.default_rng(3000 + seed)
    hard_agreement(_FlatModel(random_model(rng, n_statements=10)), rng)


# ------------------------------------------------------------------ hand-built models


HAND_BUILT = {
    "gates": lambda: flatmodels.gates(),
    "netmix": lambda: flatmodels.netmix(),
    "maze": lambda: flatmodels.maze(T=6, W=3, H=2, img=(4,), hid=(5,), max_int=5),
}


@pytest.mark.parametrize("name", sorted(HAND_BUILT))
def test_reference_equals_lowering_on_hand_built_models(name):
    checked_soft_agreement(HAND_BUILT[name](), np.random.default_rng(7), n=3)


@pytest.mark.parametrize("name", sorted(HAND_BUILT))
def test_one_hot_lowering_equals_program_run_on_hand_built_models(name):
    hard_agreement(_FlatModel(HAND_BUILT[name]()), np.random.default_rng(8), n=16)


def test_long_maze_unroll_agrees_in_float32():
    flat = flatmodels.maze(T=25, W=3, H=2, img=(4,), hid=(5,), max_int=15)
    checked_soft_agreement(flat, np.random.default_rng(9), restarts=2, n=2, dtype=torch.float32)


# ------------------------------------------------------------------ compiled models


def _compiled_fixtures():
    """(id, source path, hypers) of fixture models small enough for the plain-Python oracle."""
    small = {"T": 4, "W": 3, "H": 2, "numTimesteps": 4, "tapeLength": 3}
    return [(p.stem, p, small) for p in sorted(MODELS_DIR.glob("*.py")) if not p.name.startswith("_")]


@pytest.mark.parametrize("fixture", _compiled_fixtures(), ids=lambda f: f[0])
def test_fixture_models_agree(fixture):
    compile_file = pytest.importorskip("ntpt_dist.interpreter.model").compile_file
    _, path, hypers = fixture
    model = compile_file(path, hypers)
    checked_soft_agreement(model.flat, np.random.default_rng(11), restarts=2, n=2)
    hard_agreement(model, np.random.default_rng(12), restarts=2, n=8)


EXPERIMENT_HYPERS = {"math": {"N": 2}, "math_symbolic": {"N": 2}, "maze": {"T": 5, "W": 3, "H": 2}}


def _experiment_models():
    try:
        from ntpt_dist.experiments.registry import model_names
    except ImportError:
        return []
    return model_names()


@pytest.mark.parametrize("name", _experiment_models())
def test_experiment_models_agree(name):
    pytest.importorskip("ntpt_dist.interpreter.unroll")
    from ntpt_dist.experiments.registry import load_model

    model = load_model(name, **EXPERIMENT_HYPERS.get(name, {}))
    hard_agreement(model, np.random.default_rng(21), restarts=2, n=4)
    checked_soft_agreement(model.flat, np.random.default_rng(22), restarts=1, n=1)
