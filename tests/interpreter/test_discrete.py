"""Exact integer execution, one construct at a time, on hand-built FlatModels."""

from __future__ import annotations

import numpy as np
import pytest
from ntpt_dist.interpreter import discrete
from ntpt_dist.interpreter.discrete import execute
from ntpt_dist.interpreter.errors import DataError, NtptError, SourceError
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
from ntpt_dist.interpreter.netfn import random_netstate

SPAN = Span("m.py", 3, 4, 3, 20)
SOURCE = "a\nb\n    y.set_to(add(x, z))\n"


def decl(name: str, kind: str, size: int, shape: tuple[int, ...] = ()) -> Decl:
    return Decl(name, kind, size, shape, Span("m.py", 1, 0, 1, 5))


def model(decls, statements, runtimes=(), learns=(), tensors=()) -> FlatModel:
    return FlatModel(
        decls={d.name: d for d in decls},
        tensors={t.name: t for t in tensors},
        runtimes={r.name: r for r in runtimes},
        learns={fn.name: fn for fn in learns},
        statements=tuple(statements),
        constants={},
        source=SOURCE,
        filename="m.py",
    )


def atom(name: str, *values: int, index: tuple[int, ...] = ()) -> Atom:
    return Atom(Elem(name, index), frozenset(values))


def table(fn, *sizes: int) -> np.ndarray:
    return np.array([[fn(a, b) for b in range(sizes[1])] for a in range(sizes[0])], dtype=np.int64)


ADD = RuntimeFn("add", (3, 3), 3, table(lambda a, b: (a + b) % 3, 3, 3))


def test_const_and_copy():
    flat = model(
        [decl("x", "input", 3), decl("y", "output", 3), decl("z", "output", 3)],
        [Assign(Elem("y"), (Case((), Elem("x")),), True), Assign(Elem("z"), (Case((), Const(2)),), True)],
    )
    out = execute(flat, {}, {}, {"x": np.array([2, 0, 1])})
    assert out["y"].tolist() == [2, 0, 1]
    assert out["z"].tolist() == [2, 2, 2]
    assert out["y"].dtype == np.int64


def test_runtime_call_and_nested_call():
    flat = model(
        [decl("x", "input", 3, (2,)), decl("y", "output", 3), decl("w", "output", 3)],
        [
            Assign(Elem("y"), (Case((), Call("add", (Elem("x", (0,)), Elem("x", (1,))))),), True),
            Assign(Elem("w"), (Case((), Call("add", (Call("add", (Elem("x", (0,)), Const(1))), Elem("y")))),), True),
        ],
        runtimes=[ADD],
    )
    x = np.array([[0, 0], [1, 2], [2, 2], [1, 1]])
    out = execute(flat, {}, {}, {"x": x})
    y = [(a + b) % 3 for a, b in x.tolist()]
    assert out["y"].tolist() == y
    assert out["w"].tolist() == [((a + 1) % 3 + yy) % 3 for (a, _), yy in zip(x.tolist(), y)]


def test_if_elif_else_cases_on_param_and_input():
    # if p == 0: y = x  elif p == 1: y = 2  else (p in {2, 3}): if x in {0, 1}: y = 1 else y = 0
    cases = (
        Case((atom("p", 0),), Elem("x")),
        Case((atom("p", 1),), Const(2)),
        Case((atom("p", 2, 3), atom("x", 0, 1)), Const(1)),
        Case((atom("p", 2, 3), atom("x", 2)), Const(0)),
    )
    flat = model([decl("x", "input", 3), decl("p", "param", 4), decl("y", "output", 3)], [Assign(Elem("y"), cases, True)])
    x = np.array([0, 1, 2])
    assert execute(flat, {"p": 0}, {}, {"x": x})["y"].tolist() == [0, 1, 2]
    assert execute(flat, {"p": 1}, {}, {"x": x})["y"].tolist() == [2, 2, 2]
    assert execute(flat, {"p": 3}, {}, {"x": x})["y"].tolist() == [1, 1, 0]


def test_with_indexes_array_by_value():
    # with p[t] as i: y[t].set_to(x[i])  -- one case per value of p[t]
    stmts = [
        Assign(Elem("y", (t,)), tuple(Case((atom("p", i, index=(t,)),), Elem("x", (i,))) for i in range(3)), True)
        for t in range(2)
    ]
    flat = model([decl("x", "input", 5, (3,)), decl("p", "param", 3, (2,)), decl("y", "output", 5, (2,))], stmts)
    x = np.array([[4, 3, 2], [0, 1, 2]])
    out = execute(flat, {"p": [2, 0]}, {}, {"x": x})
    assert out["y"].tolist() == [[2, 4], [2, 0]]


def test_partial_assignment_gives_minus_one_and_guarded_read_is_fine():
    # if x == 1: v = 2   (no else);  if x == 1: y = v else: y = 0
    flat = model(
        [decl("x", "input", 2), decl("v", "var", 3), decl("y", "output", 3), decl("o", "output", 3)],
        [
            Assign(Elem("v"), (Case((atom("x", 1),), Const(2)),), False),
            Assign(Elem("y"), (Case((atom("x", 1),), Elem("v")), Case((atom("x", 0),), Const(0))), True),
            Assign(Elem("o"), (Case((atom("x", 1),), Const(1)),), False),
        ],
    )
    out = execute(flat, {}, {}, {"x": np.array([0, 1])}, everything=True)
    assert out["v"].tolist() == [-1, 2]
    assert out["y"].tolist() == [0, 2]
    assert out["o"].tolist() == [-1, 1]


def test_reading_an_unassigned_element_names_it():
    flat = model(
        [decl("x", "input", 3), decl("z", "var", 3), decl("y", "output", 3)],
        [
            Assign(Elem("z"), (Case((atom("x", 0),), Const(1)),), False),
            Assign(Elem("y"), (Case((), Call("add", (Elem("x"), Elem("z"))), SPAN),), True, SPAN),
        ],
        runtimes=[ADD],
    )
    assert execute(flat, {}, {}, {"x": np.array([0, 0])})["y"].tolist() == [1, 1]
    with pytest.raises(SourceError) as e:
        execute(flat, {}, {}, {"x": np.array([0, 2])})
    assert "instance 1 reads z" in str(e.value) and "m.py:3:5" in str(e.value)


def test_reading_unassigned_element_in_a_condition_names_it():
    flat = model(
        [decl("x", "input", 3), decl("z", "var", 3), decl("y", "output", 3)],
        [
            Assign(Elem("z"), (Case((atom("x", 0),), Const(1)),), False),
            # if x == 0: if z == 1: y = 2   -- fine;  if x == 1 and z == 1 reads z where it has no value
            Assign(Elem("y"), (Case((atom("x", 0), atom("z", 1)), Const(2)), Case((atom("x", 1), atom("z", 1)), Const(0))), False),
        ],
    )
    assert execute(flat, {}, {}, {"x": np.array([0, 2])})["y"].tolist() == [2, -1]
    with pytest.raises(NtptError, match="reads z"):
        execute(flat, {}, {}, {"x": np.array([0, 1])})


def mlp_by_hand(net, x):
    st = net["state"]
    h = np.maximum(x @ st["w0"] + st["b0"], 0)
    return (h @ st["w1"] + st["b1"]).argmax(axis=1)


def test_learn_call_on_integer_and_tensor_args():
    g = LearnFn("g", (3, TensorArg((2, 2))), 4, (5,))
    rng = np.random.default_rng(0)
    net = random_netstate(g, rng, scale=3.0)
    flat = model(
        [decl("x", "input", 3), decl("y", "output", 4, (2,))],
        [Assign(Elem("y", (j,)), (Case((), Call("g", (Elem("x"), TensorElem("img", (j,))))),), True) for j in range(2)],
        learns=[g],
        tensors=[TensorDecl("img", (2, 2), (2,), SPAN)],
    )
    x = rng.integers(0, 3, size=50)
    img = rng.standard_normal((50, 2, 2, 2)).astype(np.float32)
    out = execute(flat, {}, {"g": net}, {"x": x, "img": img})
    for j in range(2):
        feats = np.concatenate([np.eye(3)[x], img[:, j].reshape(50, 4)], axis=1)
        assert out["y"][:, j].tolist() == mlp_by_hand(net, feats).tolist()
    assert len(set(out["y"].ravel().tolist())) > 1  # the check above is not vacuous


def test_each_distinct_call_runs_once(monkeypatch):
    g = LearnFn("g", (TensorArg((3,)),), 2, ())
    net = random_netstate(g, np.random.default_rng(1))
    call = Call("g", (TensorElem("img", (0,)),))
    flat = model(
        [decl("p", "param", 2, (3,)), decl("y", "output", 2, (3,))],
        [Assign(Elem("y", (t,)), (Case((atom("p", 0, index=(t,)),), call), Case((atom("p", 1, index=(t,)),), Const(1))), True)
         for t in range(3)],
        learns=[g],
        tensors=[TensorDecl("img", (3,), (1,), SPAN)],
    )
    calls = []
    real = discrete.mlp_scores
    monkeypatch.setattr(discrete, "mlp_scores", lambda st, x: calls.append(x.shape) or real(st, x))
    out = execute(flat, {"p": [0, 1, 0]}, {"g": net}, {"img": np.ones((4, 1, 3))})
    assert calls == [(4, 3)]
    assert out["y"][:, 1].tolist() == [1, 1, 1, 1]


def test_inputs_accept_torch_tensors():
    torch = pytest.importorskip("torch")
    flat = model([decl("x", "input", 3), decl("y", "output", 3)], [Assign(Elem("y"), (Case((), Elem("x")),), True)])
    assert execute(flat, {}, {}, {"x": torch.tensor([2, 1])})["y"].tolist() == [2, 1]


# ------------------------------------------------------------------ errors

COPY = model([decl("x", "input", 3, (2,)), decl("y", "output", 3)], [Assign(Elem("y"), (Case((), Elem("x", (1,))),), True)])


def test_missing_input_is_a_data_error():
    with pytest.raises(DataError, match="input 'x'.*missing"):
        execute(COPY, {}, {}, {"y": np.zeros(3, int)})


def test_out_of_range_input_names_input_value_and_instance():
    with pytest.raises(DataError) as e:
        execute(COPY, {}, {}, {"x": np.array([[0, 1], [2, 3]])})
    msg = str(e.value)
    assert "'x'" in msg and "value 3" in msg and "instance 1" in msg and "0..2" in msg


def test_negative_input_and_wrong_shape_and_float_input():
    with pytest.raises(DataError, match="value -1"):
        execute(COPY, {}, {}, {"x": np.array([[0, -1]])})
    with pytest.raises(DataError, match=r"shape \(2,\)"):
        execute(COPY, {}, {}, {"x": np.array([0, 1])})
    with pytest.raises(DataError, match="integers"):
        execute(COPY, {}, {}, {"x": np.array([[0.5, 1.0]])})


def test_batch_sizes_must_agree():
    flat = model([decl("x", "input", 3), decl("z", "input", 3), decl("y", "output", 3)], [Assign(Elem("y"), (Case((), Elem("x")),), True)])
    with pytest.raises(DataError, match="batch size"):
        execute(flat, {}, {}, {"x": np.zeros(2, int), "z": np.zeros(3, int)})


def test_missing_tensor_and_bad_tensor_shape():
    flat = model([decl("y", "output", 2)], [Assign(Elem("y"), (Case((), Const(0)),), True)], tensors=[TensorDecl("img", (2,), (1,), SPAN)])
    with pytest.raises(DataError, match="tensor input 'img'.*missing"):
        execute(flat, {}, {}, {})
    with pytest.raises(DataError, match=r"expected \(3, 1, 2\)"):
        execute(flat, {}, {}, {"img": np.zeros((3, 2))})


def test_param_errors():
    flat = model([decl("p", "param", 3, (2,)), decl("y", "output", 3)], [Assign(Elem("y"), (Case((), Elem("p", (0,))),), True)])
    with pytest.raises(NtptError, match="no value given for Param 'p'"):
        execute(flat, {}, {}, {})
    with pytest.raises(NtptError, match=r"Param 'p'\[1\] has value 3"):
        execute(flat, {"p": [0, 3]}, {}, {})
    with pytest.raises(NtptError, match="shape"):
        execute(flat, {"p": 1}, {}, {})


def test_network_errors():
    g = LearnFn("g", (2,), 2, (3,))
    flat = model([decl("x", "input", 2), decl("y", "output", 2)], [Assign(Elem("y"), (Case((), Call("g", (Elem("x"),))),), True)], learns=[g])
    with pytest.raises(NtptError, match="no network given.*'g'"):
        execute(flat, {}, {}, {"x": np.zeros(1, int)})
    other = random_netstate(LearnFn("g", (2,), 2, (4,)), np.random.default_rng(0))
    with pytest.raises(NtptError, match="signature"):
        execute(flat, {}, {"g": other}, {"x": np.zeros(1, int)})
    bad = random_netstate(g, np.random.default_rng(0))
    bad = {"signature": g.signature, "state": {**bad["state"], "w1": np.zeros((3, 5))}}
    with pytest.raises(NtptError, match="'w1' has shape"):
        execute(flat, {}, {"g": bad}, {"x": np.zeros(1, int)})


def test_network_runs_only_on_instances_whose_path_reaches_it(monkeypatch):
    g = LearnFn("g", (TensorArg((3,)),), 2, ())
    net = random_netstate(g, np.random.default_rng(2))
    call = Call("g", (TensorElem("img", (0,)),))
    flat = model(
        [decl("x", "input", 2, (2,)), decl("y", "output", 2, (2,))],
        [Assign(Elem("y", (t,)), (Case((atom("x", 0, index=(t,)),), call), Case((atom("x", 1, index=(t,)),), Const(1))), True)
         for t in range(2)],
        learns=[g],
        tensors=[TensorDecl("img", (3,), (1,), SPAN)],
    )
    rows = []
    real = discrete.mlp_scores
    monkeypatch.setattr(discrete, "mlp_scores", lambda st, x: rows.append(len(x)) or real(st, x))
    img = np.random.default_rng(3).standard_normal((5, 1, 3)).astype(np.float32)
    x = np.array([[0, 1], [1, 1], [1, 0], [0, 0], [1, 1]])
    out = execute(flat, {}, {"g": net}, {"x": x, "img": img})
    assert rows == [2, 1]  # instances 0 and 3 at t=0, then only instance 2 is new at t=1
    want = real(net["state"], img[:, 0]).argmax(1)
    assert out["y"].tolist() == [[want[0], 1], [1, 1], [1, want[2]], [want[3], want[3]], [1, 1]]
