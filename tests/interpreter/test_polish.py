"""Discrete local search: the vectorised scorer is exact execution, and it climbs to a program."""

from __future__ import annotations

import numpy as np
import torch
from ntpt_dist.experiments.registry import load_model
from ntpt_dist.interpreter.netfn import random_netstate
from ntpt_dist.interpreter.polish import _Scorer, local_search

torch.set_num_threads(1)

HALF_ADDER = """
from dummy import Input, Output, Param, Runtime
x = Input(2)[2]
y = Output(2)[2]
gate = Param(3)[2]

@Runtime([2, 2, 3], 2)
def apply(a, b, g):
    return (a & b) if g == 0 else (a | b) if g == 1 else (a ^ b)

for j in range(2):
    y[j].set_to(apply(x[0], x[1], gate[j]))
"""


def test_scores_of_many_candidates_equal_each_programs_exact_accuracy():
    model = load_model("math", N=2)  # networks on tape cells, runtimes, loops unrolled
    rng = np.random.default_rng(0)
    nets = {name: random_netstate(fn, rng) for name, fn in model.flat.learns.items()}
    n = 12
    data = {"tape": rng.random((n, 3, 28, 28), dtype=np.float32)}
    candidates = [{d.name: rng.integers(0, d.size, d.shape) for d in model.flat.params} for _ in range(9)]
    # targets: what candidate 0 computes on 8 of the instances, random on the others
    ran = model.program({k: v.tolist() for k, v in candidates[0].items()}, nets).run(data)["result"]
    data["result"] = np.where(np.arange(n) < 8, ran, rng.integers(0, 19, n))
    got = _Scorer(model, nets, data, chunk=4)(candidates)
    want = [model.program({k: v.tolist() for k, v in c.items()}, nets).accuracy(data) for c in candidates]
    np.testing.assert_allclose(got, want)
    assert len(set(want)) > 1  # the candidates really differ


def test_local_search_climbs_two_changes_to_the_program():
    from ntpt_dist import compile_source

    model = compile_source(HALF_ADDER, filename="half_adder.py")
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    data = {"x": x, "y": np.stack([x[:, 0] & x[:, 1], x[:, 0] ^ x[:, 1]], 1)}
    start = model.program({"gate": [1, 1]})  # both gates wrong
    found, acc = local_search(start, data, max_edits=2, rounds=1)
    assert (found.params, acc) == ({"gate": [0, 2]}, 1.0)
    stuck, acc = local_search(start, data, max_edits=1, rounds=1)  # one round of single changes: half way
    assert acc == 0.75 and stuck.params["gate"] != [0, 2]


def test_a_large_neighbourhood_is_sampled_not_enumerated():
    from ntpt_dist.interpreter.polish import _neighbours

    edits = [(("p", (i,)), 1) for i in range(300)]  # 300 single changes: 44850 pairs
    combos = list(_neighbours(edits, 2, limit=1000, rng=np.random.default_rng(0)))
    assert sum(len(c) == 1 for c in combos) == 300 and 0 < sum(len(c) == 2 for c in combos) <= 1000
