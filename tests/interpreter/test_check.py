"""Bad model sources: each must raise a SourceError pointing at the exact line and column.

Every case gives the source, the expected ``line:col`` (1-based, as printed)
and words the message must contain (the rule or the value found). Some of
these are caught by ``check``, the rest by ``parse`` or ``unroll``; the user
sees the same shape either way.
"""

from __future__ import annotations

import pytest
from ntpt_dist.interpreter.errors import NtptError, SourceError

from .conftest import FILENAME, source_error

HEAD = "x = Input(2)\nv = Var(3)[4]\nout = Output(2)\n"  # lines 1-3 of most cases

BAD = {
    "syntax error": ("x = Input(2\n", 1, 10, "invalid syntax"),
    "missing hyper": ("T = Hyper()\n", 1, 5, "hyper-parameter 'T' has no value"),
    "unknown name": (HEAD + "out.set_to(y)\n", 4, 12, "unknown name 'y'"),
    "unknown function": (HEAD + "out.set_to(f(x))\n", 4, 12, "'f' is not a @Runtime, @Learn or @Inline function"),
    "wrong arity": (HEAD + "@Runtime([2, 2], 2)\ndef f(a, b):\n    return a\nout.set_to(f(x))\n", 7, 12,
                    "'f' takes 2 argument(s), but got 1"),
    "argument range": (HEAD + "@Runtime([5], 2)\ndef f(a):\n    return 0\nv[0].set_to(0)\nout.set_to(f(v[0]))\n",
                       8, 14, "'v[0]' ranges over 0..2 but 0..4 is expected (argument 1 of 'f')"),
    "target range": (HEAD + "@Runtime([2], 3)\ndef f(a):\n    return a\nout.set_to(f(x))\n", 7, 12,
                     "'f' returns 0..2 but 0..1 is expected"),
    "variable range": (HEAD + "v[0].set_to(0)\nout.set_to(v[0])\n", 5, 12, "'v[0]' ranges over 0..2 but 0..1 is expected"),
    "index out of range": (HEAD + "for t in range(5):\n    v[t].set_to(0)\n", 5, 7,
                           "index 4 is out of range for 'v' (size 4)"),
    "wrong number of indices": (HEAD + "v[0, 1].set_to(0)\n", 4, 1, "'v' has 1 dimension(s) [4] but is indexed with 2"),
    "non-constant index": (HEAD + "v[x].set_to(0)\n", 4, 3, "an index of 'v' must be a compile-time constant"),
    "assign an Input": (HEAD + "x.set_to(1)\n", 4, 1, "'x' is an Input and cannot be assigned"),
    "assign a Param": ("p = Param(2)\n" + HEAD + "p.set_to(x)\n", 5, 1,
                       "'p' is a Param: it can only be fixed to a constant, outside any if/with"),
    "fix a Param inside a branch": ("p = Param(2)\n" + HEAD + "if x == 1:\n    p.set_to_constant(1)\n", 6, 5,
                                    "'p' is a Param: it can only be fixed to a constant, outside any if/with"),
    "fix a Param twice": ("p = Param(2)\n" + HEAD + "p.set_to_constant(1)\np.set_to_constant(1)\n", 6, 1,
                          "'p' is fixed twice: here and at model.py:5:1"),
    "fix a Param after reading it": ("p = Param(2)\n" + HEAD + "out.set_to(p)\np.set_to_constant(1)\n", 6, 1,
                                     "'p' is fixed after a statement read it (at model.py:5:12)"),
    "set_to_constant out of range": (HEAD + "v[0].set_to_constant(3)\n", 4, 22, "constant 3 is out of range for 'v[0]'"),
    "set_to constant out of range": (HEAD + "out.set_to(1 + 1)\n", 4, 12, "constant 2 is out of range 0..1"),
    "while": (HEAD + "while True:\n    pass\n", 4, 1, "`while` loops cannot be unrolled"),
    "lambda": (HEAD + "out.set_to(lambda: 1)\n", 4, 12, "lambda is not supported"),
    "def without decorator": (HEAD + "def f(a):\n    return a\n", 4, 1, "needs exactly one decorator"),
    "unknown method": (HEAD + "out.assign(1)\n", 4, 1, "unknown method '.assign()'"),
    "augmented assignment": (HEAD + "for t in range(2):\n    v[t] += 1\n", 5, 5, "augmented assignment"),
    "return outside function": (HEAD + "for t in range(2):\n    return 1\n", 5, 5, "`return` outside a function"),
    "tensor outside Learn": ("img = InputTensor(4)[2]\n" + HEAD + "out.set_to(img[0])\n", 5, 12,
                             "tensor 'img' can only be passed to a @Learn function"),
    "read before assignment": (HEAD + "out.set_to(0)\nv[1].set_to(v[0])\n", 5, 13, "'v[0]' is read before it is assigned"),
    "partially assigned read": (HEAD + "if x == 1:\n    v[0].set_to(1)\nv[1].set_to(v[0])\nout.set_to(0)\n", 6, 13,
                                "'v[0]' is read but is not assigned on every path"),
    "read on a path without value": (HEAD + "if x == 1:\n    v[0].set_to(1)\nelse:\n    v[1].set_to(v[0])\n", 7, 17,
                                     "'v[0]' is read on a path where it has no value"),
    "double assignment": (HEAD + "v[0].set_to(1)\nout.set_to(0)\nv[0].set_to(2)\n", 6, 1,
                          "'v[0]' is assigned twice on one path: here and at model.py:4:1"),
    "double assignment in a loop": (HEAD + "for t in range(2):\n    v[0].set_to(t)\n", 5, 5,
                                    "'v[0]' is assigned twice on one path: here and at model.py:5:5"),
    "overlapping ifs": (HEAD + "if x == 1:\n    v[0].set_to(1)\nif x != 0:\n    v[0].set_to(2)\n", 7, 5,
                        "assigned twice on one path: here and at model.py:5:5"),
    "Runtime result out of range": (HEAD + "@Runtime([2], 2)\ndef f(a):\n    return a + 1\n", 5, 1,
                                    "@Runtime 'f(1)' returned 2, outside its output range 0..1"),
    "Runtime raises": (HEAD + "@Runtime([2], 2)\ndef f(a):\n    return 1 // a\n", 6, 5,
                       "@Runtime 'f(0)' raised ZeroDivisionError"),
    "declared twice": (HEAD + "x = Var(2)\n", 4, 1, "'x' is declared twice"),
    "for over a list": (HEAD + "for t in [0, 1]:\n    v[t].set_to(0)\n", 4, 10, "for loops must iterate over range"),
    "condition on two variables": (HEAD + "v[0].set_to(0)\nif x == out:\n    v[1].set_to(0)\n", 5, 4,
                                   "a condition must compare a variable element with a constant"),
    "condition value out of range": (HEAD + "if x == 2:\n    v[0].set_to(0)\n", 4, 9, "'x' ranges over 0..1, so it is never 2"),
    "Inline recursion": (HEAD + "@Inline()\ndef h(a):\n    h(a)\nh(out)\n", 6, 5, "@Inline 'h' calls itself"),
    "import": ("import numpy\n", 1, 1, "imports are not supported"),
    "Learn body": ("@Learn([2], 2, hid_sizes=[4])\ndef net(a):\n    return a\n", 3, 5, "must be `pass`"),
    "float constant": (HEAD + "out.set_to(0.5)\n", 4, 12, "only integer constants are supported, got 0.5"),
    "output never assigned": (HEAD + "v[0].set_to(0)\n", 3, 1, "output 'out' is never assigned"),
    "loop variable hides a declaration": (HEAD + "for x in range(2):\n    v[x].set_to(0)\n", 4, 5,
                                          "the loop/with variable 'x' has the name of a module-level declaration"),
    "with on a tensor": ("img = InputTensor(4)[2]\n" + HEAD + "with img[0] as i:\n    out.set_to(i)\n", 5, 6,
                         "`with` needs a variable element"),
    "Learn tensor shape": ("img = InputTensor(4)[2]\n" + HEAD + "@Learn([Tensor(5)], 2, hid_sizes=[3])\ndef net(a):\n"
                           "    pass\nout.set_to(net(img[1]))\n", 8, 16, "tensor 'img' has shape [4] but 'net' expects"),
    "non-constant range bound": (HEAD + "for t in range(x):\n    v[t].set_to(0)\n", 4, 16,
                                 "a range() bound must be a compile-time constant"),
    "declaration inside a loop": (HEAD + "for t in range(2):\n    w = Var(2)\n", 5, 9,
                                  "Var(...) declared inside a statement"),
    "rebinding a declaration": (HEAD + "for t in range(2):\n    v = x\n", 5, 5,
                                "'v' is declared at module level and cannot be rebound"),
    "array Hyper": ("N = Hyper()[2]\n", 1, 5, "Hyper() cannot be an array"),
    "division in a constant": ("N = 5 / 2\n", 1, 5, "use // for integer division"),
    "Runtime returning no value": (HEAD + "@Runtime([2], 2)\ndef f(a):\n    if a == 1:\n        return 1\n", 5, 1,
                                   "@Runtime 'f(0)' returned None, not an integer in 0..1"),
    "Runtime true division": (HEAD + "@Runtime([2], 2)\ndef f(a):\n    return a / 2\n", 6, 12,
                              "operator / is not supported"),
    "Runtime attribute access": (HEAD + "@Runtime([2], 2)\ndef f(a):\n    return a.real\n", 6, 12,
                                 "not allowed in a @Runtime body: attribute access"),
    "Runtime unknown function": (HEAD + "@Runtime([2], 2)\ndef f(a):\n    return open(a)\n", 6, 12,
                                 "'open' cannot be called in a @Runtime body"),
    "Runtime duplicate parameter": (HEAD + "@Runtime([2, 2], 2)\ndef f(a, a):\n    return a\n", 5, 10,
                                    "parameter 'a' is declared twice"),
    "Runtime table too large": (HEAD + "@Runtime([5000, 5000, 5000], 2)\ndef f(a, b, c):\n    return 0\n", 4, 2,
                                "would need a table of 125,000,000,000 entries"),
    "unrolls too far": (HEAD + "for t in range(10 ** 9):\n    pass\n", 4, 10,
                        "the model unrolls to more than 250,000 units of work"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_source_points_at_line_and_column(name):
    source, line, col, words = BAD[name]
    err = source_error(source)
    assert isinstance(err, SourceError) and isinstance(err, NtptError)
    assert (err.span.line, err.span.col + 1) == (line, col), str(err)
    assert str(err).startswith(f"{FILENAME}:{line}:{col}: error: "), str(err)
    assert words in err.message, err.message


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_source_message_quotes_the_line_with_a_caret(name):
    source, line, col, _ = BAD[name]
    text = str(source_error(source)).splitlines()
    assert text[1] == "    " + source.splitlines()[line - 1]
    assert text[2].index("^") == 4 + col - 1


def test_most_errors_carry_a_fix():
    with_fix = [name for name in BAD if source_error(BAD[name][0]).fix]
    assert len(with_fix) >= 0.8 * len(BAD), sorted(set(BAD) - set(with_fix))


def test_at_least_twenty_kinds_of_bad_source():
    assert len(BAD) >= 20


def test_double_assignment_names_both_spans():
    err = source_error(HEAD + "v[0].set_to(1)\nout.set_to(0)\nv[0].set_to(2)\n")
    assert "model.py:4:1" in err.message and err.span.line == 6


def test_good_sources_pass_check_unchanged():
    from ntpt_dist.interpreter.check import check
    from ntpt_dist.interpreter.parse import parse

    ir = parse(HEAD + "out.set_to(x)\n", FILENAME)
    assert check(ir) is ir


@pytest.mark.parametrize("value", ["5", 2.5, True, None])
def test_a_hyper_must_be_an_integer(value):
    err = source_error("T = Hyper()\nx = Input(T)\n", {"T": value})
    assert (err.span.line, err.span.col) == (1, 4)
    assert f"hyper-parameter 'T' must be an integer, but got {value!r}" in err.message
