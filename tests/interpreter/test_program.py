"""Program: source with learned values, run/accuracy (also with other hypers), dict round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ntpt_dist.interpreter.errors import DataError, NtptError
from ntpt_dist.interpreter.ir import Assign, Atom, Call, Case, Decl, Elem, FlatModel, LearnFn, RuntimeFn, Span
from ntpt_dist.interpreter.netfn import random_netstate
from ntpt_dist.interpreter.program import Program

# A model whose text and FlatModel are written by hand, so Program is tested without
# the front end: y[t] = add(x[t], shift) if mode == 0 else x[t] (T and K are hypers).
SOURCE = """\
T = Hyper()
K = Hyper()
x = Input(3)[T]
shift = Param(3)
mode = Param(K)
table = Param(2)[2, 3]
y = Output(3)[T]
"""


def span_of(line: int, text: str) -> Span:
    return Span("shift.py", line, 0, line, len(text))


class StubModel:
    """The parts of ``model.Model`` Program uses."""

    def __init__(self, hypers, listing=None):
        self.hypers = dict(hypers)
        self.listing = listing
        self.flat = build_flat(self.hypers["T"], self.hypers["K"])

    source = SOURCE
    filename = "shift.py"

    def with_hypers(self, hypers):
        return StubModel({**self.hypers, **hypers}, self.listing)


ADD = RuntimeFn("add", (3, 3), 3, np.array([[(a + b) % 3 for b in range(3)] for a in range(3)]))


def build_flat(T: int, K: int) -> FlatModel:
    lines = SOURCE.splitlines()
    decls = {
        "x": Decl("x", "input", 3, (T,), span_of(3, lines[2])),
        "shift": Decl("shift", "param", 3, (), span_of(4, lines[3])),
        "mode": Decl("mode", "param", K, (), span_of(5, lines[4])),
        "table": Decl("table", "param", 2, (2, 3), span_of(6, lines[5])),
        "y": Decl("y", "output", 3, (T,), span_of(7, lines[6])),
    }
    stmts = tuple(
        Assign(
            Elem("y", (t,)),
            (
                Case((Atom(Elem("mode"), frozenset({0})),), Call("add", (Elem("x", (t,)), Elem("shift")))),
                Case((Atom(Elem("mode"), frozenset(range(1, K))),), Elem("x", (t,))),
            ),
            True,
        )
        for t in range(T)
    )
    return FlatModel(decls, {}, {"add": ADD}, {}, stmts, {"T": T, "K": K}, SOURCE, "shift.py")


PARAMS = {"shift": 2, "mode": 0, "table": [[0, 1, 1], [1, 0, 0]]}


def program(**kw) -> Program:
    return Program(StubModel({"T": 2, "K": 2}, **kw), PARAMS)


def test_params_are_plain_ints_and_nested_lists():
    prog = Program(StubModel({"T": 2, "K": 2}), {**PARAMS, "shift": np.int64(2), "table": np.array(PARAMS["table"])})
    assert prog.params == PARAMS
    assert type(prog.params["shift"]) is int and type(prog.params["table"][0][0]) is int


def test_source_replaces_each_param_declaration():
    assert program().source == SOURCE.replace("shift = Param(3)", "shift = 2  # Param(3)").replace(
        "mode = Param(K)", "mode = 0  # Param(2)"
    ).replace("table = Param(2)[2, 3]", "table = [[0, 1, 1], [1, 0, 0]]  # Param(2)[2, 3]")


def test_listing_uses_the_models_printer_else_source():
    assert program().listing() == program().source
    assert program(listing=lambda p: f"shift by {p.params['shift']}").listing() == "shift by 2"


def test_run_and_with_longer_tape():
    prog = program()
    x = np.array([[0, 1], [2, 2]])
    assert prog.run({"x": x})["y"].tolist() == [[2, 0], [1, 1]]
    x4 = np.array([[0, 1, 2, 0]])
    assert prog.run({"x": x4}, hypers={"T": 4})["y"].tolist() == [[2, 0, 1, 2]]
    # the hypers-specific model is compiled once and reused
    assert len(prog._models) == 1 and prog.run({"x": x4}, hypers={"T": 4})["y"].shape == (1, 4)


def test_hypers_that_change_a_param_shape_are_rejected_naming_it():
    with pytest.raises(NtptError, match=r"Param 'mode' becomes Param\(3\)"):
        program().run({"x": np.zeros((1, 2), int)}, hypers={"K": 3})


def test_accuracy_counts_instances_with_every_observed_output_exact():
    prog = program()
    x = np.array([[0, 1], [2, 2], [1, 1], [0, 0]])
    # predictions: [2, 0], [1, 1], [0, 0], [2, 2]
    y = np.array([[2, 0], [1, 0], [-1, 0], [-1, -1]])
    assert prog.accuracy({"x": x, "y": y}) == 0.75
    assert prog.accuracy({"x": x[:2], "y": np.array([[2, 0], [1, 1]])}) == 1.0


def test_accuracy_data_errors():
    prog = program()
    with pytest.raises(DataError, match="none of the model's outputs"):
        prog.accuracy({"x": np.zeros((2, 2), int)})
    with pytest.raises(DataError, match="output 'y' has shape"):
        prog.accuracy({"x": np.zeros((2, 2), int), "y": np.zeros((2, 3), int)})
    with pytest.raises(DataError, match="value 3"):
        prog.run({"x": np.array([[3, 0]])})


def test_bad_params_are_rejected():
    model = StubModel({"T": 2, "K": 2})
    with pytest.raises(NtptError, match="no value given for Param 'table'"):
        Program(model, {"shift": 1, "mode": 0})
    with pytest.raises(NtptError, match="Param 'mode' has value 2"):
        Program(model, {**PARAMS, "mode": 2})


def test_to_dict_is_json_able_and_copies():
    prog = program()
    prog.meta["accuracy"] = 0.5
    d = prog.to_dict()
    assert set(d) == {"source", "filename", "hypers", "params", "networks", "meta", "listing"}
    assert json.loads(json.dumps(d)) == d
    d["params"]["table"][0][0] = 1
    d["meta"]["accuracy"] = 1.0
    assert prog.params["table"][0][0] == 0 and prog.meta["accuracy"] == 0.5


def test_networks_are_checked_and_copied():
    g = LearnFn("g", (3,), 3, (4,))
    model = StubModel({"T": 2, "K": 2})
    model.flat = FlatModel({**model.flat.decls}, {}, model.flat.runtimes, {"g": g}, model.flat.statements, {}, SOURCE)
    net = random_netstate(g, np.random.default_rng(0))
    prog = Program(model, PARAMS, {"g": net})
    net["state"]["w0"][0, 0] = 123.0
    assert prog.networks["g"]["state"]["w0"][0, 0] != 123.0
    d = prog.to_dict()
    d["networks"]["g"]["state"]["w0"][0, 0] = 7.0
    assert prog.networks["g"]["state"]["w0"][0, 0] != 7.0
    with pytest.raises(NtptError, match="signature"):
        Program(model, PARAMS, {"g": random_netstate(LearnFn("g", (3,), 3, (5,)), np.random.default_rng(0))})


def test_from_dict_reports_missing_keys():
    with pytest.raises(NtptError, match=r"lacks \['params'\]"):
        Program.from_dict({"source": "", "filename": "", "hypers": {}, "networks": {}})


# ------------------------------------------------------------------ with the real front end

COMPILED = """\
T = Hyper()
K = Hyper()

@Runtime([3, 3], 3)
def add(a, b):
    return (a + b) % 3

@Learn([3], 3, hid_sizes=[4])
def guess(a):
    pass

x = Input(3)[T]
shift = Param(3)
mode = Param(K)
y = Output(3)[T]
z = Output(3)

for t in range(T):
    if mode == 0:
        y[t].set_to(add(x[t], shift))
    else:
        y[t].set_to(x[t])
z.set_to(guess(x[0]))
"""


def compiled_program():
    compile_source = pytest.importorskip("ntpt_dist.interpreter.model").compile_source
    model = compile_source(COMPILED, {"T": 2, "K": 2}, filename="shift.py")
    fn = model.flat.learns["guess"]
    return Program(model, {"shift": 1, "mode": 0}, {"guess": random_netstate(fn, np.random.default_rng(5), scale=3.0)})


def test_compiled_source_run_and_longer_tape():
    prog = compiled_program()
    assert "shift = 1  # Param(3)\n" in prog.source and "mode = 0  # Param(2)\n" in prog.source
    assert "Param(" not in prog.source.replace("# Param(", "")
    x = np.array([[0, 2], [1, 1]])
    assert prog.run({"x": x})["y"].tolist() == [[1, 0], [2, 2]]
    assert prog.run({"x": np.array([[0, 1, 2, 0]])}, hypers={"T": 4})["y"].tolist() == [[1, 2, 0, 1]]
    with pytest.raises(NtptError, match="Param 'mode'"):
        prog.run({"x": x}, hypers={"K": 3})


def test_compiled_round_trip_is_exact_through_json_and_back():
    prog = compiled_program()
    prog.meta.update(accuracy=0.75, library_version=3)
    d = prog.to_dict()
    back = Program.from_dict(d)
    d2 = back.to_dict()
    assert {k: v for k, v in d.items() if k != "networks"} == {k: v for k, v in d2.items() if k != "networks"}
    for key, arr in d["networks"]["guess"]["state"].items():
        assert d2["networks"]["guess"]["state"][key].dtype == np.float32
        assert np.array_equal(arr, d2["networks"]["guess"]["state"][key])
    assert d2["networks"]["guess"]["signature"] == d["networks"]["guess"]["signature"]
    x = np.random.default_rng(0).integers(0, 3, size=(20, 2))
    assert all(np.array_equal(prog.run({"x": x})[k], back.run({"x": x})[k]) for k in ("y", "z"))
    assert back.source == prog.source and back.meta == {"accuracy": 0.75, "library_version": 3}


def test_intended_fixture_programs_are_exact_also_on_longer_runs():
    """The fixture models' documented solutions, as Programs, fit independent ground truth,
    and the Turing machine and maze programs generalise to a longer tape / more steps."""
    compile_file = pytest.importorskip("ntpt_dist.interpreter.model").compile_file
    from .fixture_data import INTENDED, MODELS, circuit_data, maze_data, turing_data

    rng = np.random.default_rng(0)
    circuit = Program(compile_file(MODELS / "circuit.py"), INTENDED["circuit"])
    assert circuit.accuracy(circuit_data()) == 1.0
    turing = Program(compile_file(MODELS / "turing.py", {"tapeLength": 3, "numTimesteps": 4}), INTENDED["turing"])
    assert turing.accuracy(turing_data(rng, 20, 3)) == 1.0
    assert turing.accuracy(turing_data(rng, 20, 8), hypers={"tapeLength": 8, "numTimesteps": 9}) == 1.0
    maze = Program(compile_file(MODELS / "maze_int.py", {"T": 10, "W": 3, "H": 2}), INTENDED["maze_int"])
    assert maze.accuracy(maze_data(rng, 20, 10, 3, 2)) == 1.0
    assert maze.accuracy(maze_data(rng, 20, 30, 4, 3), hypers={"T": 30, "W": 4, "H": 3}) == 1.0
    wrong = Program(turing.model, {**INTENDED["turing"], "write": [[0, 0, 0], [0, 1, 2]]})
    assert wrong.accuracy(turing_data(rng, 20, 3)) < 1.0


def test_accuracy_refuses_the_outputs_that_training_refuses():
    from ntpt_dist.interpreter.model import compile_source

    model = compile_source("x = Input(2)\np = Param(2)\ny = Output(2)\nif p == 0:\n    y.set_to(x)\nelse:\n    y.set_to_constant(1)\n")
    prog = model.program({"p": 0})
    x = np.array([0, 1])
    bad = [
        ({"x": x, "y": np.array([7, 1])}, "output 'y' has value 7.*0..1"),
        ({"x": x, "y": np.array([0.5, 1.0])}, "output 'y'.*dtype float64, expected ints"),
        ({"x": x, "y": np.array([np.nan, 1.0])}, "output 'y'.*dtype float64, expected ints"),
        ({"x": x, "y": np.array([-1, -1])}, r"observes no output: every element of \['y'\] is -1"),
        ({"x": np.zeros(0, int), "y": np.zeros(0, int)}, "is empty: its arrays have 0 instances"),
        (None, "must be a dict name -> array, got NoneType"),
    ]
    for data, message in bad:
        with pytest.raises(DataError, match=message):
            prog.accuracy(data)
        with pytest.raises(DataError, match=message):
            model.train(data, restarts=2, steps=2)
    with pytest.raises(DataError, match="must be a dict name -> array, got NoneType"):
        prog.run(None)
    assert prog.accuracy({"x": x, "y": np.array([0, -1])}) == 1.0  # one observed element is enough


def test_from_dict_refuses_fields_of_the_wrong_type_with_the_field_named():
    from ntpt_dist.interpreter.model import compile_source

    good = compile_source("p = Param(2)\n").program({"p": 1}).to_dict()
    for key, value, message in [
        ("source", 42, "'source' must be a str, but it is int"),
        ("source", b"p = Param(2)\n", "'source' must be a str, but it is bytes"),
        ("hypers", [1], "'hypers' must be a dict, but it is list"),
        ("params", None, "'params' must be a dict, but it is NoneType"),
        ("networks", {"f": "weights"}, "network 'f' must be a NetState"),
    ]:
        with pytest.raises(NtptError, match=message):
            Program.from_dict({**good, key: value})
    assert Program.from_dict(good).params == {"p": 1}
