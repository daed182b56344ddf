"""parse: module-level constants, hypers, declarations, functions and spans."""

from __future__ import annotations

import ast
import textwrap

import numpy as np
import pytest
from ntpt_dist.interpreter.errors import SourceError
from ntpt_dist.interpreter.ir import TensorArg
from ntpt_dist.interpreter.module_ir import NotConstant, const_eval
from ntpt_dist.interpreter.parse import parse


def p(source: str, hypers=None):
    return parse(textwrap.dedent(source), "m.py", hypers or {})


def test_terpret_import_line_and_docstring_are_ignored():
    ir = p('''\
        """A model."""
        from dummy import Hyper, Param, Var, Runtime, Input, Output, Inline
        x = Input(2)
        ''')
    assert list(ir.decls) == ["x"] and ir.body == []


@pytest.mark.parametrize("expr, value", [
    ("5", 5), ("N + 3", 7), ("N * 2 - 1", 7), ("N // 3", 1), ("N % 3", 1), ("2 ** N", 16), ("-N", -4),
    ("(N + 1) * 2", 10), ("min(N, 3)", 3), ("max(N, 3, 9)", 9), ("N == 4", 1), ("N > 4 or N < 2", 0),
])
def test_constant_expressions(expr, value):
    ir = p(f"N = 4\nM = {expr}\n")
    assert ir.constants["M"] == value


def test_const_eval_refuses_names_it_does_not_know():
    with pytest.raises(NotConstant) as info:
        const_eval(ast.parse("a + 1", mode="eval").body, {})
    assert "'a' is not a constant" in info.value.why


def test_hyper_takes_its_value_and_extra_hypers_are_ignored():
    ir = p("T = Hyper()\nL = T + 1\n", {"T": 6, "unused": 3})
    assert ir.constants == {"T": 6, "L": 7}


def test_missing_hyper_says_how_to_pass_it():
    with pytest.raises(SourceError) as info:
        p("T = Hyper()\n")
    assert "'T'" in info.value.message and "hypers=" in info.value.fix


@pytest.mark.parametrize("decl, kind, size, shape", [
    ("Input(3)", "input", 3, ()), ("Input(3)[4]", "input", 3, (4,)), ("Output(N)[2, N]", "output", 5, (2, 5)),
    ("Param(2)[N - 1]", "param", 2, (4,)), ("Var(N + 1)[2][3]", None, None, None),
])
def test_declarations(decl, kind, size, shape):
    source = f"N = 5\nd = {decl}\n"
    if kind is None:  # Var(K)[2][3] is not a declaration form: sizes go in one subscript
        with pytest.raises(SourceError):
            p(source)
        return
    d = p(source).decls["d"]
    assert (d.kind, d.size, d.shape) == (kind, size, shape)


def test_input_tensor_declaration():
    t = p("H = 2\nW = 3\nimg = InputTensor(1, 8, 8)[H, W]\n").tensors["img"]
    assert t.elem_shape == (1, 8, 8) and t.shape == (2, 3)


def test_declaration_span_covers_the_whole_statement():
    source = "N = 2\nchoice  =  Param(N + 1)[ 3 ]   # trailing comment\n"
    ir = parse(source, "m.py")
    span = ir.decls["choice"].span
    line = source.splitlines()[span.line - 1]
    assert (span.line, span.end_line) == (2, 2)
    assert line[span.col:span.end_col] == "choice  =  Param(N + 1)[ 3 ]"


def test_runtime_table_uses_module_constants():
    ir = p('''\
        K = 4
        @Runtime([K, 2], K)
        def shift(a, d):
            if d == 1:
                return (a + 1) % K
            return a
        ''')
    fn = ir.runtimes["shift"]
    assert fn.arg_sizes == (4, 2) and fn.out_size == 4
    assert fn.table.tolist() == [[0, 1], [1, 2], [2, 3], [3, 0]]
    assert fn.table.dtype == np.int64 and not fn.table.flags.writeable


def test_runtime_bool_results_count_as_integers():
    fn = p("@Runtime([3], 2)\ndef pos(a):\n    return a > 0\n").runtimes["pos"]
    assert fn.table.tolist() == [0, 1, 1]


def test_runtime_failure_points_at_the_raising_line():
    with pytest.raises(SourceError) as info:
        p("@Runtime([2], 2)\ndef f(a):\n    if a == 1:\n        return 1 // (a - 1)\n    return 0\n")
    assert "'f(1)' raised ZeroDivisionError" in info.value.message
    assert (info.value.span.line, info.value.span.col) == (4, 8)


def test_runtime_unknown_name_is_rejected_before_any_call():
    # f(0) would return 0; the unknown name on the other path is still an error, at the name
    with pytest.raises(SourceError) as info:
        p("@Runtime([2], 2)\ndef f(a):\n    if a == 1:\n        return missing\n    return 0\n")
    assert "unknown name 'missing'" in info.value.message
    assert (info.value.span.line, info.value.span.col) == (4, 15)


def test_learn_signature():
    fn = p('''\
        @Learn([Tensor(1, 28, 28), 3], 10, hid_sizes=[256, 64])
        def net(img, k):
            pass
        ''').learns["net"]
    assert fn.args == (TensorArg((1, 28, 28)), 3) and fn.out_size == 10 and fn.hid_sizes == (256, 64)
    assert fn.in_features == 28 * 28 + 3


def test_inline_with_and_without_parentheses():
    ir = p("@Inline()\ndef a(x):\n    pass\n@Inline\ndef b(x):\n    pass\n")
    assert set(ir.inlines) == {"a", "b"}


def test_statements_keep_their_order_and_positions():
    ir = p('''\
        x = Input(2)
        y = Output(2)
        z = Var(2)
        z.set_to(x)
        y.set_to(z)
        ''')
    assert [s.lineno for s in ir.body] == [4, 5]
    assert ir.span(ir.body[1]).line == 5 and ir.span(ir.body[1]).col == 0


def test_declarations_may_follow_statements():
    ir = p("y = Output(2)\ny.set_to(x)\nx = Input(2)\n")
    assert set(ir.decls) == {"x", "y"} and len(ir.body) == 1


def test_source_and_filename_are_kept():
    ir = parse("x = Input(2)\n", "here.py")
    assert ir.source == "x = Input(2)\n" and ir.filename == "here.py"


def test_non_constant_module_assignment_is_refused():
    with pytest.raises(SourceError) as info:
        p("x = Input(2)\nN = x + 1\n")
    assert "neither a declaration nor a constant" in info.value.message and info.value.span.col == 4
