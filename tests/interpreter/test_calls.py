"""called_networks: the networks a fixed program's Outputs depend on, checked against exact execution."""

from __future__ import annotations

import numpy as np
import pytest
from ntpt_dist.interpreter.calls import called_networks
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.interpreter.model import compile_source
from ntpt_dist.interpreter.netfn import random_netstate
from ntpt_dist.interpreter.program import Program

# Every line calls both networks; Params route one reading (or none) to the output, and the
# data-dependent branch on d reads f's value only through a condition.
SOURCE = """\
@Learn([4], 4, hid_sizes=[5])
def f(a):
    pass

@Learn([4], 4, hid_sizes=[5])
def g(a):
    pass

@Learn([4], 2, hid_sizes=[])
def h(a):
    pass

x = Input(4)
choice = Param(3)
gate = Param(2)
y = Output(4)
d = Var(4)
e = Var(4)
k = Var(2)
d.set_to(f(x))
e.set_to(g(x))
k.set_to(h(x))
if choice == 0:
    y.set_to(d)
elif choice == 1:
    y.set_to(e)
else:
    if gate == 0:
        if d == 0:
            y.set_to_constant(1)
        else:
            y.set_to(x)
    else:
        y.set_to(x)
"""

EXPECTED = {(0, 0): {"f"}, (0, 1): {"f"}, (1, 0): {"g"}, (1, 1): {"g"}, (2, 0): {"f"}, (2, 1): set()}


@pytest.fixture(scope="module")
def model():
    return compile_source(SOURCE, filename="calls.py")


@pytest.mark.parametrize("params", sorted(EXPECTED))
def test_only_networks_the_params_route_to_an_output(model, params):
    choice, gate = params
    assert called_networks(model.flat, {"choice": choice, "gate": gate}) == EXPECTED[params]
    prog = Program(model, {"choice": choice, "gate": gate}, _nets(model, 0))
    assert prog.called_networks() == EXPECTED[params]


@pytest.mark.parametrize("params", sorted(EXPECTED))
def test_networks_not_called_never_change_the_outputs(model, params):
    """The oracle: exact execution with every uncalled network replaced gives the same outputs."""
    choice, gate = params
    x = np.arange(4).repeat(8)
    prog = Program(model, {"choice": choice, "gate": gate}, _nets(model, 0))
    called = prog.called_networks()
    for seed in range(1, 6):
        other = {n: s if n in called else _nets(model, seed)[n] for n, s in prog.networks.items()}
        assert np.array_equal(Program(model, prog.params, other).run({"x": x})["y"], prog.run({"x": x})["y"])
    changed = any(
        not np.array_equal(Program(model, prog.params, {**prog.networks, n: _nets(model, seed)[n]}).run({"x": x})["y"],
                           prog.run({"x": x})["y"])
        for n in called for seed in range(1, 6)
    )
    assert changed or not called  # a called network's weights do reach the output


def test_bad_params_are_an_error(model):
    with pytest.raises(NtptError, match="Param 'choice'"):
        called_networks(model.flat, {"choice": 7, "gate": 0})


def _nets(model, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {name: random_netstate(fn, rng, scale=3.0) for name, fn in sorted(model.flat.learns.items())}
