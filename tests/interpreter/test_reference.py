"""The plain-Python marginal evaluator: hand-checked per construct, and equal to
the discrete executor when Params and network outputs are one-hot.

The random-model generator at the bottom (``random_model`` and friends) is also
used by test_agreement.py.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from ntpt_dist.interpreter.discrete import execute
from ntpt_dist.interpreter.ir import (
    Assign,
    Atom,
    Call,
    Case,
    Const,
    Decl,
    Elem,
    FlatModel,
    LearnFn,
    RuntimeFn,
    Span,
    TensorArg,
    TensorDecl,
    TensorElem,
)
from ntpt_dist.interpreter.netfn import net_fn, random_netstate
from ntpt_dist.interpreter.reference import instance, marginals

SPAN = Span("rand.py", 1, 0, 1, 1)
TENSOR = TensorDecl("img", (3,), (2,), SPAN)


def random_model(rng: np.random.Generator, n_statements: int = 8) -> FlatModel:
    """A valid random FlatModel: inputs, Params (scalar and array), Vars, Outputs,
    Runtime and Learn calls (integer and tensor args, nested calls), if/with-like
    case splits on one or two elements, and partial (non-total) assignments."""
    decls: dict[str, Decl] = {}
    runtimes: dict[str, RuntimeFn] = {}
    learns: dict[str, LearnFn] = {}
    pool: list[tuple[Elem, int]] = []  # readable elements (assigned on every path) and their sizes

    def declare(name, kind, size, shape=()):
        decls[name] = Decl(name, kind, size, shape, SPAN)
        for index in itertools.product(*[range(k) for k in shape]):
            if kind in ("input", "param"):
                pool.append((Elem(name, index), size))

    declare("x0", "input", int(rng.integers(2, 4)))
    declare("x1", "input", 3, (2,))
    declare("p0", "param", int(rng.integers(2, 5)))
    declare("p1", "param", 3, (2,))

    def operand(depth):
        if depth < 1 and rng.random() < 0.25:
            return call(depth + 1)
        if rng.random() < 0.15:
            k = int(rng.integers(2, 4))
            return Const(int(rng.integers(0, k))), k
        e, k = pool[int(rng.integers(len(pool)))]
        return e, k

    def call(depth, out=None):
        out = out or int(rng.integers(2, 4))
        if rng.random() < 0.6:
            args = [operand(depth) for _ in range(int(rng.integers(1, 3)))]
            sizes = tuple(k for _, k in args)
            name = f"f{len(runtimes)}"
            runtimes[name] = RuntimeFn(name, sizes, out, rng.integers(0, out, size=sizes).astype(np.int64), SPAN)
            return Call(name, tuple(a for a, _ in args)), out
        e, k = operand(depth)
        use_tensor = rng.random() < 0.5
        name = f"g{k}{'t' if use_tensor else ''}{out}"
        spec = (k, TensorArg(TENSOR.elem_shape)) if use_tensor else (k,)
        learns.setdefault(name, LearnFn(name, spec, out, (4,), SPAN))
        args = (e, TensorElem("img", (int(rng.integers(2)),))) if use_tensor else (e,)
        return Call(name, args), out

    def expression(size):
        r = rng.random()
        same = [e for e, k in pool if k == size]
        if r < 0.15:
            return Const(int(rng.integers(size)))
        if r < 0.4 and same:
            return same[int(rng.integers(len(same)))]
        return call(0, size)[0]

    def splits():
        """Conditions of one Assign: a product of value groups of 0-2 distinct elements."""
        chosen = [pool[i] for i in rng.choice(len(pool), size=int(rng.integers(0, 3)), replace=False)]
        per_elem = []
        for e, k in chosen:
            values = rng.permutation(k).tolist()
            cuts = sorted(rng.choice(range(1, k), size=int(rng.integers(0, k)), replace=False).tolist()) if k > 1 else []
            groups = [values[a:b] for a, b in zip([0, *cuts], [*cuts, k])]
            per_elem.append([Atom(e, frozenset(int(v) for v in g)) for g in groups])
        return [tuple(c) for c in itertools.product(*per_elem)]

    statements = []
    for i in range(n_statements):
        size = int(rng.integers(2, 4))
        conds = splits()
        total = not (len(conds) > 1 and rng.random() < 0.3)
        if not total:
            conds.pop(int(rng.integers(len(conds))))
        name = f"v{i}"
        kind = "output" if (i >= n_statements - 2 or rng.random() < 0.3) else "var"
        cases = tuple(Case(c, expression(size), SPAN) for c in conds)
        decls[name] = Decl(name, kind, size, (), SPAN)
        statements.append(Assign(Elem(name), cases, total, SPAN))
        if total:
            pool.append((Elem(name), size))
    return FlatModel(decls, {"img": TENSOR}, runtimes, learns, tuple(statements), {}, "", "rand.py")


def random_batch(flat: FlatModel, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Random inputs for every Input and InputTensor of ``flat``."""
    batch: dict[str, np.ndarray] = {d.name: rng.integers(0, d.size, size=(n, *d.shape)) for d in flat.inputs}
    for t in flat.tensors.values():
        batch[t.name] = rng.standard_normal((n, *t.shape, *t.elem_shape)).astype(np.float32)
    return batch


def random_params(flat: FlatModel, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random integer Param values."""
    return {d.name: rng.integers(0, d.size, size=d.shape) for d in flat.params}


def random_param_probs(flat: FlatModel, rng: np.random.Generator, one_hot_of=None) -> dict[str, np.ndarray]:
    """Random Param distributions ``[*shape, K]`` (one-hot of ``one_hot_of`` values if given)."""
    out = {}
    for d in flat.params:
        if one_hot_of is not None:
            out[d.name] = np.eye(d.size)[np.asarray(one_hot_of[d.name])]
        else:
            logits = rng.standard_normal((*d.shape, d.size)) * 2
            p = np.exp(logits)
            out[d.name] = p / p.sum(-1, keepdims=True)
    return out


def random_networks(flat: FlatModel, rng: np.random.Generator) -> dict:
    """A random NetState for every @Learn function of ``flat``."""
    return {name: random_netstate(fn, rng, scale=2.0) for name, fn in flat.learns.items()}

# ------------------------------------------------------------------ tests


def close(a, b, tol=1e-12):
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


def flat_of(decls, statements, runtimes=(), learns=(), tensors=()):
    return FlatModel({d.name: d for d in decls}, {t.name: t for t in tensors}, {r.name: r for r in runtimes},
                     {fn.name: fn for fn in learns}, tuple(statements), {}, "", "m.py")


def d(name, kind, size, shape=()):
    return Decl(name, kind, size, shape, SPAN)


def test_runtime_marginal_is_the_sum_over_argument_tuples():
    xor = RuntimeFn("xor", (2, 2), 2, np.array([[0, 1], [1, 0]]), SPAN)
    flat = flat_of([d("a", "param", 2), d("b", "param", 2), d("y", "output", 2)],
                   [Assign(Elem("y"), (Case((), Call("xor", (Elem("a"), Elem("b")))),), True)], runtimes=[xor])
    mu = marginals(flat, {"a": [0.3, 0.7], "b": [0.9, 0.1]}, {}, {})
    p1 = 0.3 * 0.1 + 0.7 * 0.9
    assert close(mu[Elem("y")], [1 - p1, p1])


def test_runtime_with_const_argument_selects_a_slice():
    sub = RuntimeFn("sub", (3, 3), 3, np.array([[(a - b) % 3 for b in range(3)] for a in range(3)]), SPAN)
    flat = flat_of([d("a", "param", 3), d("y", "output", 3)],
                   [Assign(Elem("y"), (Case((), Call("sub", (Elem("a"), Const(1)))),), True)], runtimes=[sub])
    mu = marginals(flat, {"a": [0.2, 0.3, 0.5]}, {}, {})
    assert close(mu[Elem("y")], [0.3, 0.5, 0.2])


def test_if_mixture_and_multi_value_atoms_and_conjunctions():
    # if p == 0: y = x  elif p in {1, 2} and q == 1: y = 1  elif p in {1, 2} and q == 0: y = 0  (p == 3 missing)
    cases = (
        Case((Atom(Elem("p"), frozenset({0})),), Elem("x")),
        Case((Atom(Elem("p"), frozenset({1, 2})), Atom(Elem("q"), frozenset({1}))), Const(1)),
        Case((Atom(Elem("p"), frozenset({1, 2})), Atom(Elem("q"), frozenset({0}))), Const(0)),
    )
    flat = flat_of([d("x", "input", 2), d("p", "param", 4), d("q", "param", 2), d("y", "output", 2)],
                   [Assign(Elem("y"), cases, False)])
    p, q = [0.1, 0.2, 0.3, 0.4], [0.25, 0.75]
    mu = marginals(flat, {"p": p, "q": q}, {}, {"x": 1})
    assert close(mu[Elem("y")], [0.5 * 0.25, 0.1 + 0.5 * 0.75])
    assert abs(sum(mu[Elem("y")]) - 0.6) < 1e-12  # the missing case p == 3 leaves 0.4 without a value


def test_with_mixes_indexed_elements():
    # with p as i: y.set_to(x[i])
    flat = flat_of([d("x", "input", 4, (3,)), d("p", "param", 3), d("y", "output", 4)],
                   [Assign(Elem("y"), tuple(Case((Atom(Elem("p"), frozenset({i})),), Elem("x", (i,))) for i in range(3)), True)])
    mu = marginals(flat, {"p": np.array([0.5, 0.3, 0.2])}, {}, {"x": [3, 0, 3]})
    assert close(mu[Elem("y")], [0.3, 0.0, 0.0, 0.7])


def test_learn_call_feeds_marginals_and_flattened_tensor():
    g = LearnFn("g", (2, TensorArg((2, 2))), 3, (4,))
    net = random_netstate(g, np.random.default_rng(0), scale=2.0)
    flat = flat_of([d("p", "param", 2), d("y", "output", 3)],
                   [Assign(Elem("y"), (Case((), Call("g", (Elem("p"), TensorElem("img", (1,))))),), True)],
                   learns=[g], tensors=[TensorDecl("img", (2, 2), (2,), SPAN)])
    img = np.arange(8.0).reshape(2, 2, 2) / 8
    seen = []
    f = net_fn(g, net)
    mu = marginals(flat, {"p": [0.4, 0.6]}, {"g": lambda x: seen.append(x) or f(x)}, {"img": img})
    assert close(seen[0], [0.4, 0.6, 0.5, 0.625, 0.75, 0.875])
    st = net["state"]
    h = np.maximum(np.array(seen[0], np.float32) @ st["w0"] + st["b0"], 0) @ st["w1"] + st["b1"]
    want = np.exp(h - h.max()) / np.exp(h - h.max()).sum()
    assert close(mu[Elem("y")], want.tolist(), 1e-6)


@pytest.mark.parametrize("seed", range(12))
def test_random_models_sum_to_one_where_total(seed):
    rng = np.random.default_rng(seed)
    flat = random_model(rng)
    nets = {k: net_fn(flat.learns[k], v) for k, v in random_networks(flat, rng).items()}
    mu = marginals(flat, random_param_probs(flat, rng), nets, instance(random_batch(flat, rng, 1), 0))
    for s in flat.statements:
        total = sum(mu[s.target])
        assert math.isclose(total, 1.0, abs_tol=1e-9) if s.total else total <= 1.0 + 1e-9
        assert min(mu[s.target]) >= 0.0


@pytest.mark.parametrize("seed", range(25))
def test_one_hot_reference_equals_discrete_execution(seed):
    rng = np.random.default_rng(100 + seed)
    flat = random_model(rng, n_statements=10)
    params, networks = random_params(flat, rng), random_networks(flat, rng)
    batch = random_batch(flat, rng, 6)
    run = execute(flat, params, networks, batch, everything=True)
    probs = random_param_probs(flat, rng, one_hot_of=params)
    fns = {k: net_fn(flat.learns[k], v, one_hot=True) for k, v in networks.items()}
    for i in range(6):
        mu = marginals(flat, probs, fns, instance(batch, i))
        for s in flat.statements:
            value = int(run[s.target.name][i])
            size = flat.decls[s.target.name].size
            assert mu[s.target] == [1.0 if v == value else 0.0 for v in range(size)], (seed, i, s.target)


def test_generator_covers_every_construct():
    seen = set()
    for seed in range(25):
        flat = random_model(np.random.default_rng(100 + seed), n_statements=10)
        for s in flat.statements:
            seen.add("partial" if not s.total else "total")
            for c in s.cases:
                seen.add(f"atoms{len(c.cond)}")
                seen.update(_kinds(c.expr, flat))
    assert {"partial", "atoms0", "atoms1", "atoms2", "const", "elem", "runtime", "learn", "tensor", "nested"} <= seen


def _kinds(e, flat, depth=0):
    if isinstance(e, Const):
        return {"const"}
    if isinstance(e, Elem):
        return {"elem"}
    if isinstance(e, TensorElem):
        return {"tensor"}
    out = {"runtime" if e.fn in flat.runtimes else "learn"} | ({"nested"} if depth else set())
    for a in e.args:
        out |= _kinds(a, flat, depth + 1)
    return out

