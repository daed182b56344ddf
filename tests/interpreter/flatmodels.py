"""Hand-built FlatModels (what ``unroll`` produces) for lowering and engine tests.

They let the lowering and the engine be tested without the front end. Each
builder documents the NTPT source it stands for.
"""

from __future__ import annotations

import itertools

import numpy as np
from ntpt_dist.interpreter.ir import (
    NO_SPAN,
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
    TensorArg,
    TensorDecl,
    TensorElem,
)


def decl(name: str, kind: str, size: int, *shape: int) -> Decl:
    return Decl(name, kind, size, tuple(shape), NO_SPAN)


def runtime(name: str, arg_sizes: tuple[int, ...], out: int, f) -> RuntimeFn:
    table = np.zeros(arg_sizes, dtype=np.int64)
    for args in itertools.product(*[range(k) for k in arg_sizes]):
        table[args] = f(*args)
    return RuntimeFn(name, tuple(arg_sizes), out, table)


def at(elem: Elem, *values: int) -> Atom:
    return Atom(elem, frozenset(values))


def E(name: str, *index: int) -> Elem:
    return Elem(name, tuple(index))


def gates(n_in: int = 2) -> FlatModel:
    """Choose a gate per output from data (``g = Param(3)[2]``)::

        x = Input(2)[2]; y = Output(2)[2]; g = Param(3)[2]; c = Param(2)
        for j in range(2):
            if g[j] == 0: y[j].set_to(AND(x[0], x[1]))
            elif g[j] == 1: y[j].set_to(OR(x[0], x[c]))     # with c as k: ... x[k]
            else: y[j].set_to(XOR(x[0], x[1]))
    """
    rts = {
        "AND": runtime("AND", (2, 2), 2, lambda a, b: a & b),
        "OR": runtime("OR", (2, 2), 2, lambda a, b: a | b),
        "XOR": runtime("XOR", (2, 2), 2, lambda a, b: a ^ b),
    }
    decls = {d.name: d for d in [decl("x", "input", 2, 2), decl("y", "output", 2, 2), decl("g", "param", 3, 2),
                                 decl("c", "param", 2)]}
    stmts = []
    for j in range(2):
        cases = [Case((at(E("g", j), 0),), Call("AND", (E("x", 0), E("x", 1))))]
        cases += [Case((at(E("g", j), 1), at(E("c"), k)), Call("OR", (E("x", 0), E("x", k)))) for k in range(2)]
        cases += [Case((at(E("g", j), 2),), Call("XOR", (E("x", 0), E("x", 1))))]
        stmts.append(Assign(E("y", j), tuple(cases), True))
    return FlatModel(decls, {}, rts, {}, tuple(stmts), {})


def netmix(dims: int = 4) -> FlatModel:
    """Networks on tensor cells, on integers and on both, inside ``with``/``if`` mixtures::

        img = InputTensor(dims)[3]; k = Input(3); p = Param(3); q = Param(2)
        v = Var(4); w = Var(4); y = Output(4); z = Output(2)
        @Learn([Tensor(dims)], 4, hid_sizes=[5]) def look(a)
        @Learn([4, 3], 2, hid_sizes=[]) def pair(a, b)
        @Learn([Tensor(dims), 4], 4, hid_sizes=[3]) def both(a, b)
        with p as i: v.set_to(look(img[i]))
        if q == 0: w.set_to(INC(v)) else: w.set_to(both(img[k], v))   # with k as j: ... img[j]
        y.set_to(w)
        z.set_to(pair(w, k))
    """
    decls = {d.name: d for d in [decl("k", "input", 3), decl("p", "param", 3), decl("q", "param", 2),
                                 decl("v", "var", 4), decl("w", "var", 4), decl("y", "output", 4),
                                 decl("z", "output", 2)]}
    tensors = {"img": TensorDecl("img", (dims,), (3,), NO_SPAN)}
    learns = {
        "look": LearnFn("look", (TensorArg((dims,)),), 4, (5,)),
        "pair": LearnFn("pair", (4, 3), 2, ()),
        "both": LearnFn("both", (TensorArg((dims,)), 4), 4, (3,)),
    }
    rts = {"INC": runtime("INC", (4,), 4, lambda a: (a + 1) % 4)}
    stmts = [
        Assign(E("v"), tuple(Case((at(E("p"), i),), Call("look", (TensorElem("img", (i,)),))) for i in range(3)), True),
        Assign(E("w"), (Case((at(E("q"), 0),), Call("INC", (E("v"),))),)
               + tuple(Case((at(E("q"), 1), at(E("k"), j)), Call("both", (TensorElem("img", (j,)), E("v"))))
                       for j in range(3)), True),
        Assign(E("y"), (Case((), E("w")),), True),
        Assign(E("z"), (Case((), Call("pair", (E("w"), E("k")))),), True),
    ]
    return FlatModel(decls, tensors, rts, learns, tuple(stmts), {})


def maze(T: int = 45, W: int = 5, H: int = 3, img: tuple[int, ...] = (3, 32, 32), hid: tuple[int, ...] = (256, 256),
         max_int: int = 15, n_instr: int = 3) -> FlatModel:
    """Fig. 1 of the paper (experiments/models/maze.py), unrolled by hand."""
    decls = [decl("init_X", "input", W), decl("init_Y", "input", H), decl("final_X", "output", W),
             decl("final_Y", "output", H), decl("path_len", "output", max_int), decl("is_halted_at_end", "output", 2),
             decl("instr", "param", 4, n_instr), decl("goto", "param", n_instr, n_instr),
             decl("X", "var", W, T), decl("Y", "var", H, T), decl("dir", "var", 5, T), decl("reg", "var", max_int, T),
             decl("instr_ptr", "var", n_instr, T), decl("is_halted", "var", 2, T)]
    rts = {
        "INC": runtime("INC", (max_int,), max_int, lambda a: (a + 1) % max_int),
        "DEC": runtime("DEC", (max_int,), max_int, lambda a: (a - 1) % max_int),
        "MOVE_X": runtime("MOVE_X", (W, 5), W, lambda x, d: (x + 1) % W if d == 1 else (x - 1) % W if d == 3 else x),
        "MOVE_Y": runtime("MOVE_Y", (H, 5), H, lambda y, d: (y - 1) % H if d == 2 else (y + 1) % H if d == 4 else y),
        "eq_zero": runtime("eq_zero", (5,), 2, lambda d: 1 if d == 0 else 0),
    }
    learns = {"LOOK": LearnFn("LOOK", (TensorArg(img),), 5, hid)}
    tensors = {"img_grid": TensorDecl("img_grid", img, (H, W), NO_SPAN)}
    s = [Assign(E("X", 0), (Case((), E("init_X")),), True), Assign(E("Y", 0), (Case((), E("init_Y")),), True),
         Assign(E("dir", 0), (Case((), Const(1)),), True), Assign(E("reg", 0), (Case((), Const(0)),), True),
         Assign(E("instr_ptr", 0), (Case((), Const(0)),), True)]
    for t in range(T - 1):
        h1, h0 = at(E("is_halted", t), 1), at(E("is_halted", t), 0)
        s.append(Assign(E("is_halted", t), (Case((), Call("eq_zero", (E("dir", t),))),), True))

        reg, x_, y_, d_ = E("reg", t), E("X", t), E("Y", t), E("dir", t)
        look = [((at(x_, x), at(y_, y)), Call("LOOK", (TensorElem("img_grid", (y, x)),))) for x in range(W) for y in range(H)]
        options = {
            "reg": [((0,), Call("INC", (reg,))), ((1,), Call("DEC", (reg,))), ((2, 3), reg)],
            "X": [((2,), Call("MOVE_X", (x_, d_))), ((0, 1, 3), x_)],
            "Y": [((2,), Call("MOVE_Y", (y_, d_))), ((0, 1, 3), y_)],
            "dir": [((3,), look), ((0, 1, 2), d_)],
        }
        for var, opts in options.items():
            cases = [Case((h1,), E(var, t))]
            for i in range(n_instr):
                guard = (h0, at(E("instr_ptr", t), i))
                for values, expr in opts:
                    inner = expr if isinstance(expr, list) else [((), expr)]
                    cases += [Case((*guard, at(E("instr", i), *values), *c), e) for c, e in inner]
            s.append(Assign(E(var, t + 1), tuple(cases), True))
        s.append(Assign(E("instr_ptr", t + 1), (Case((h1,), E("instr_ptr", t)),)
                        + tuple(Case((h0, at(E("instr_ptr", t), i)), E("goto", i)) for i in range(n_instr)), True))
    s += [Assign(E("final_X"), (Case((), E("X", T - 1)),), True), Assign(E("final_Y"), (Case((), E("Y", T - 1)),), True),
          Assign(E("path_len"), (Case((), E("reg", T - 1)),), True),
          Assign(E("is_halted_at_end"), (Case((), E("is_halted", T - 2)),), True)]
    return FlatModel({d.name: d for d in decls}, tensors, rts, learns, tuple(s),
                     {"max_int": max_int, "n_instr": n_instr, "T": T, "W": W, "H": H})
