"""The @Runtime sublanguage: same tables as Python on every shipped model, hostile bodies rejected unrun, bounds."""

from __future__ import annotations

import ast
import itertools
import textwrap
from pathlib import Path

import numpy as np
import pytest
from ntpt_dist.interpreter import runtime_eval
from ntpt_dist.interpreter.errors import NtptError, SourceError
from ntpt_dist.interpreter.model import compile_source
from ntpt_dist.interpreter.parse import parse
from ntpt_dist.interpreter.program import Program

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = {  # every model file in the repository, with hypers that compile it
    "experiments/models/add2x2.py": {},
    "experiments/models/add2x2_first.py": {},
    "experiments/models/apply2x2.py": {},
    "experiments/models/math.py": {"N": 2},
    "experiments/models/math_symbolic.py": {"N": 2},
    "experiments/models/maze.py": {"T": 45, "W": 5, "H": 3},
    "experiments/models/sign.py": {},
    "tests/interpreter/models/circuit.py": {},
    "tests/interpreter/models/maze_int.py": {"T": 10, "W": 3, "H": 2},
    "tests/interpreter/models/turing.py": {"tapeLength": 5, "numTimesteps": 6},
}

# Bodies in the styles TerpreT models use (one-liners, zero arguments, int(a and b), chained tests) and
# the rest of the sublanguage (locals, loops with break/continue, op=, shifts, bit operators, builtins).
FEATURES = '''\
M = 5
B = 2

@Runtime([], M)
def zero(): return 0

@Runtime([B, B], B)
def both(a, b): return int(a and b)

@Runtime([B, B], B)
def either(a, b): return int(a or b)

@Runtime([B], B)
def negate(a): return int(not a)

@Runtime([B, B], B)
def differ(a, b): return a ^ b

@Runtime([M, M + 1], B)
def is_null(p, top): return 1 if (p == 0 or p >= top) else 0

@Runtime([M, M, M], B)
def between(a, b, c):
    return 0 < a <= b < c

@Runtime([M, M], M)
def spread(a, b):
    """A docstring is allowed."""
    low = min(a, b)
    high = max(a, b, 1)
    return abs(high - low) % M

@Runtime([M], M)
def count_down(n):
    total = 0
    for i in range(n, 0, -1):
        if i == 3:
            continue
        total += i
        if total > 6:
            break
    return total % M

@Runtime([M, 3], M)
def shifty(a, s):
    if s == 0:
        return (a << 2) % M
    elif s == 1:
        return (a >> 1) | (a & 1)
    else:
        return (-a) % M if a else ~a + 2 ** 2

@Runtime([M], M)
def shadow(M):
    return +M if bool(M) else int(True)
'''


def old_exec_tables(source: str, ir) -> dict[str, np.ndarray]:
    """The tables the former compiler built by exec'ing each @Runtime def (trusted, in-repo sources only)."""
    builtins = {"min": min, "max": max, "abs": abs, "range": range, "len": len, "int": int, "bool": bool}
    tables = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.FunctionDef) and node.name in ir.runtimes):
            continue
        plain = ast.FunctionDef(node.name, node.args, node.body, [], None, None)
        namespace = {"__builtins__": builtins, **ir.constants}
        exec(compile(ast.fix_missing_locations(ast.Module([ast.copy_location(plain, node)], [])), "<trusted>", "exec"),
             namespace)
        sizes = ir.runtimes[node.name].arg_sizes
        table = np.zeros(sizes, dtype=np.int64)
        for args in itertools.product(*(range(k) for k in sizes)):
            table[args] = int(namespace[node.name](*args))
        tables[node.name] = table
    return tables


def test_every_model_file_is_listed():
    found = {str(p.relative_to(ROOT)) for folder in ("experiments/models", "tests/interpreter/models")
             for p in (ROOT / folder).glob("*.py") if p.name != "__init__.py"}
    assert found == set(SHIPPED)


NO_RUNTIMES = {"experiments/models/sign.py"}  # one network and nothing else


@pytest.mark.parametrize("path", sorted(set(SHIPPED) - NO_RUNTIMES))
def test_shipped_models_tabulate_as_python_did(path):
    source = (ROOT / path).read_text()
    ir = parse(source, path, SHIPPED[path])
    expected = old_exec_tables(source, ir)
    assert ir.runtimes and set(expected) == set(ir.runtimes)
    for name, fn in ir.runtimes.items():
        assert fn.table.dtype == np.int64
        np.testing.assert_array_equal(fn.table, expected[name], err_msg=f"{path}: {name}")


def test_every_construct_of_the_sublanguage_tabulates_as_python_does():
    ir = parse(FEATURES, "features.py")
    expected = old_exec_tables(FEATURES, ir)
    assert len(ir.runtimes) == 11
    for name, fn in ir.runtimes.items():
        np.testing.assert_array_equal(fn.table, expected[name], err_msg=name)
    assert ir.runtimes["zero"].table.shape == () and int(ir.runtimes["zero"].table) == 0
    assert ir.runtimes["count_down"].table.tolist() == [0, 1, 3, 3, 2]  # n = 4: 4 + 2 + 1 = 7 > 6 breaks; 7 % 5


# ------------------------------------------------------------------- hostile bodies


def runtime(body: str, args: str = "a", sizes: str = "[2]", head: str = "") -> str:
    return f"{head}@Runtime({sizes}, 2)\ndef f({args}):\n" + textwrap.indent(textwrap.dedent(body), "    ")


ESCAPE = '''\
classes = ().__class__.__base__.__subclasses__()
for c in classes:
    if c.__name__ == "catch_warnings":
        c()._module.__builtins__["open"]("{mark}", "w").write("ran")
return 0
'''

HOSTILE = {  # body -> words of the error; most would write the mark file if they ran as Python
    "subclasses escape": (ESCAPE, "attribute access"),
    "__import__": ('os = __import__("os")\nreturn os.system("touch {mark}")', "'__import__' cannot be called"),
    "open": ('return open("{mark}", "w")', "'open' cannot be called"),
    "getattr": ('g = getattr(__builtins__, "open")\nreturn g("{mark}", "w")', "'getattr' cannot be called"),
    "eval": ('return eval("open(\'{mark}\', \'w\')")', "'eval' cannot be called"),
    "exec statement": ('exec("open(\'{mark}\', \'w\')")\nreturn 0', "an expression on its own does nothing"),
    "lambda": ('g = lambda: open("{mark}", "w")\nreturn g()', "lambdas"),
    "dunder name": ('b = __builtins__\nreturn 0', "the name '__builtins__' is not allowed"),
    "attribute": ('return a.__class__.__name__', "attribute access"),
    "import": ('import os\nos.system("touch {mark}")\nreturn 0', "imports"),
    "subscript": ('x = globals()["open"]\nreturn x("{mark}", "w")', "subscripts"),
    "comprehension": ('x = [open("{mark}", "w") for i in range(1)]\nreturn 0', "comprehensions"),
    "nested def": ('def g():\n    open("{mark}", "w")\nreturn 0', "nested functions"),
    "class": ('class C:\n    x = open("{mark}", "w")\nreturn 0', "classes"),
    "try": ('try:\n    open("{mark}", "w")\nexcept Exception:\n    pass\nreturn 0', "`try` blocks"),
    "with": ('with open("{mark}", "w") as h:\n    pass\nreturn 0', "`with` blocks"),
    "string literal": ('return "{mark}"', "is not an integer"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_body_is_rejected_and_never_runs(name, tmp_path):
    mark = tmp_path / "ran"
    body, words = HOSTILE[name]
    with pytest.raises(SourceError) as info:
        parse(runtime(body.format(mark=mark)), "hostile.py")
    assert words in info.value.message
    assert info.value.span.line >= 3 and info.value.fix  # in the body, with a fix
    assert not mark.exists()


def test_the_escape_is_real_under_the_former_exec(tmp_path):
    """Control for the test above: exec with a builtins whitelist does run the escape."""
    mark = tmp_path / "ran"
    source = "def f(a):\n" + textwrap.indent(ESCAPE.format(mark=mark), "    ")
    namespace = {"__builtins__": {"min": min, "max": max, "abs": abs, "range": range, "int": int, "bool": bool}}
    exec(source, namespace)
    namespace["f"](0)
    assert mark.read_text() == "ran"


def test_the_escape_points_at_the_first_attribute(tmp_path):
    with pytest.raises(SourceError) as info:
        parse(runtime(ESCAPE.format(mark=tmp_path / "ran")), "hostile.py")
    err = info.value
    assert (err.span.line, err.span.col) == (3, 14)  # `().__class__...` after `classes = ` (0-based col)
    assert str(err).startswith("hostile.py:3:15: error: in @Runtime 'f': not allowed in a @Runtime body: attribute")


HOSTILE_MODEL = "x = Input(2)\np = Param(2)\ny = Output(2)\n{runtime}y.set_to(f(x))\n"


@pytest.mark.parametrize("entry", ["compile_source", "Program.from_dict"])
def test_a_hostile_model_or_stored_program_raises_and_runs_nothing(entry, tmp_path):
    mark = tmp_path / "ran"
    source = HOSTILE_MODEL.format(runtime=runtime(ESCAPE.format(mark=mark)))
    with pytest.raises(NtptError):
        if entry == "compile_source":
            compile_source(source)
        else:
            Program.from_dict({"source": source, "filename": "stored.py", "hypers": {}, "params": {"p": 0},
                               "networks": {}, "meta": {}, "listing": None})
    assert not mark.exists()


ELSEWHERE = {  # the other places of a model that could hold code: none is evaluated as Python either
    "statement": "x = Input(2)\nopen({mark!r}, 'w')\n",
    "constant": "N = len(open({mark!r}, 'w').name)\n",
    "declaration size": "x = Input(len(open({mark!r}, 'w').name))\n",
    "Inline body": "x = Input(2)\n@Inline()\ndef h(a):\n    open({mark!r}, 'w')\nh(x)\n",
    "Learn decorator": "@Learn([open({mark!r}, 'w')], 2, hid_sizes=[2])\ndef g(a):\n    pass\n",
    "Runtime decorator": "@Runtime([len(open({mark!r}, 'w').name)], 2)\ndef f(a):\n    return 0\n",
    "import": "import os\nos.system('touch {mark}')\n",
}


@pytest.mark.parametrize("name", sorted(ELSEWHERE))
def test_code_elsewhere_in_a_model_is_rejected_and_never_runs(name, tmp_path):
    mark = tmp_path / "ran"
    with pytest.raises(SourceError):
        compile_source(ELSEWHERE[name].format(mark=str(mark)), filename="hostile.py")
    assert not mark.exists()


# ------------------------------------------------------------------- bounds and clear errors

BOUNDED = {  # source -> (line, words): each a SourceError, never a raw exception or a hang
    "power tower": (runtime("return 10 ** 10 ** 10"), 3, "computes 10 ** 10000000000, beyond ±2**64"),
    "huge range": (runtime("for i in range(10 ** 18):\n    pass\nreturn 0"), 4, "runs more than 100,000 steps"),
    "huge product": (runtime("x = 2 ** 40\nreturn x * x % 2"), 4, "beyond ±2**64"),
    "huge shift": (runtime("return 1 << 100"), 3, "computes 1 << 100, beyond ±2**64"),
    "negative exponent": (runtime("return 2 ** -1"), 3, "a negative exponent gives a fraction"),
    "negative shift": (runtime("return 1 >> -a - 1"), 3, "raised ValueError: negative shift count"),
    "range step zero": (runtime("for i in range(0, 2, 0):\n    pass\nreturn 0"), 3, "range() step must not be zero"),
    "huge literal": (runtime("return 99999999999999999999999 % 2"), 3, "exceeds ±2**64"),
    "huge constant": (runtime("return N % 2", head="N = 10 ** 30\n"), 1, "beyond the ±2**64 allowed for constants"),
    "deep expression": (runtime("return " + " + ".join(["a"] * 150) + " - a * 149"), 3, "nests more than 100 deep"),
    "duplicate parameter": (runtime("return a", args="a, a", sizes="[2, 2]"), 2, "parameter 'a' is declared twice"),
    "default value": (runtime("return a", args="a=1"), 2, "parameters must be plain names"),
    "annotation": (runtime("return a", args="a: int"), 2, "has an annotation"),
    "break outside a loop": (runtime("break"), 3, "`break` outside a `for` loop"),
    "bare return": (runtime("return"), 3, "a bare `return` gives no value"),
    "while": (runtime("while a:\n    a = a - 1\nreturn a"), 3, "`while` loops"),
    "range as a value": (runtime("r = range(3)\nreturn 0"), 3, "range(...) may only be the iterable"),
    "for over a name": (runtime("for i in a:\n    pass\nreturn 0"), 3, "must iterate over range"),
    "for else": (runtime("for i in range(2):\n    pass\nelse:\n    pass\nreturn 0"), 6, "`for ... else`"),
    "one-argument min": (runtime("return min(a)"), 3, "min() takes at least 2 arguments"),
    "keyword argument": (runtime("return int(a, base=2)"), 3, "plain positional arguments"),
    "is comparison": (runtime("return a is a"), 3, "comparison Is is not supported"),
    "unpacking": (runtime("x, y = 1, 2\nreturn x"), 3, "only `name = expression`"),
    "local before assignment": (runtime("if a:\n    x = 1\nreturn x"), 5, "reads the local variable 'x' before"),
    "huge table": ("@Runtime([10 ** 400], 2)\ndef f(a):\n    return 0\n", 1, "beyond the ±2**64 allowed"),
    "wide table": ("@Runtime([2 ** 40, 2 ** 40], 2)\ndef f(a, b):\n    return 0\n", 1, "more than the 65,536 allowed"),
}


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_bounds_and_misuse_are_clear_source_errors(name):
    source, line, words = BOUNDED[name]
    with pytest.raises(SourceError) as info:
        parse(source, "bounded.py")
    assert words in info.value.message, info.value.message
    assert info.value.span.line == line, str(info.value)


def test_a_runtime_failure_names_the_call_and_its_line():
    source = runtime("if a == 1:\n    y = 1 // (a - 1)\nreturn 0")
    with pytest.raises(SourceError) as info:
        parse(source, "m.py")
    err = info.value
    assert err.message == "@Runtime 'f(1)' raised ZeroDivisionError: integer division or modulo by zero"
    assert (err.span.line, err.span.col) == (4, 8) and "make the function total" in err.fix


def test_the_whole_table_has_a_step_budget(monkeypatch):
    monkeypatch.setattr(runtime_eval, "MAX_STEPS_PER_TABLE", 1000)
    source = runtime("for i in range(10):\n    pass\nreturn 0", sizes="[100]")
    with pytest.raises(SourceError) as info:
        parse(source, "m.py")
    assert "the table of @Runtime 'f' needs more than 1,000 steps in all" in info.value.message


def test_one_call_may_use_many_steps_within_its_limit():
    ir = parse(runtime("t = 0\nfor i in range(30000):\n    t = (t + i) % 2\nreturn t", sizes="[1]"), "m.py")
    assert ir.runtimes["f"].table.tolist() == [sum(range(30000)) % 2]
