"""Bad input gives a clear NtptError quickly: never a raw exception, never a hang.

A fixed-seed fuzz over mutants of the shipped models (token and character
mutations, a few trained one step on tiny data) and the known bad inputs an
earlier, longer fuzz found (deep or long expressions, huge integers, huge
ranges and declarations, huge hypers, models with nothing to train). The
longer run is ``scripts/fuzz_models.py``; its figures are in docs/language.md.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest
from ntpt_dist.interpreter.errors import NtptError, SourceError
from ntpt_dist.interpreter.model import compile_source

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fuzz_models.py"
LIMIT_S = 10.0  # per mutant (the slowest takes under 1 s alone; the CPUs are shared)


def _fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_models", module)  # dataclasses look their module up
    spec.loader.exec_module(module)  # the fuzzer script itself, not a model
    return module


fuzz = _fuzz()


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here trains on one torch thread."""


def test_mutants_and_known_bad_inputs_fail_only_with_ntpt_errors_in_time():
    start = time.perf_counter()
    out = fuzz.run(mutants=300, seed=0, limit_s=LIMIT_S, train_every=5)
    report = out.report()
    assert out.raw_exceptions == 0 and out.hangs == 0, report["examples"]
    assert out.mutants == 300 + len(fuzz.KNOWN_BAD) + 2
    assert out.compiled >= 20 and out.trained >= 3, report  # the fuzz reaches training, not only the parser
    assert out.ntpt_errors >= len(fuzz.KNOWN_BAD), report
    assert time.perf_counter() - start < 60


def test_the_tally_counts_a_raw_exception_and_a_hang(monkeypatch):
    """The fuzzer itself can fail: a non-NtptError and a run past the limit are counted."""
    import ntpt_dist.interpreter.model as model_module

    def broken(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(model_module, "compile_source", broken)
    out = fuzz.Outcome()
    fuzz.try_one("broken compiler", "x = Input(2)\n", {}, False, LIMIT_S, out)
    assert out.raw_exceptions == 1 and out.examples[0]["error"].startswith("RecursionError"), out.report()
    with fuzz.time_limit(0.05):
        pass
    with pytest.raises(fuzz._TimeUp):
        with fuzz.time_limit(0.05):
            while True:
                pass


SLOW: set[str] = set()  # none now: the unroll budget charges a wide `with` before branching


@pytest.mark.parametrize("name", [k[0] for k in fuzz.KNOWN_BAD if not k[3] and isinstance(k[1], str) and k[0] not in SLOW])
def test_each_known_bad_source_points_at_a_line(name):
    source, hypers = next((k[1], k[2]) for k in fuzz.KNOWN_BAD if k[0] == name)
    start = time.perf_counter()
    with pytest.raises(SourceError) as info:
        compile_source(source, hypers, filename="bad.py")
    assert time.perf_counter() - start < LIMIT_S
    err = info.value
    assert err.span.file == "bad.py" and 1 <= err.span.line <= max(1, source.count("\n")), str(err)
    assert len(str(err)) < 2000, "a message never spells out a huge integer or a whole huge line"


@pytest.mark.parametrize("source", [
    "x = Input(2)\ny = Output(2)\ny.set_to(x)\n",
    "x = Input(2)\ny = Output(2)\np = Param(2)\np.set_to_constant(1)\nwith p as v:\n    y.set_to(v)\n",
])
def test_a_model_with_nothing_to_train_says_so(source):
    model = compile_source(source)
    with pytest.raises(NtptError, match="nothing to train"):
        model.train({"x": [0, 1], "y": [0, 1]}, restarts=1, steps=1, batch_size=None, polish_edits=0)


@pytest.mark.parametrize("name, line, words", [
    ("long sum", 1, "too long or nests too deeply to parse"),
    ("long sum in a declaration", 1, "nests more than 100 deep"),
    ("deep parentheses", 1, "invalid syntax: too many nested parentheses"),
    ("many unary minus", 1, "too long or nests too deeply to parse"),
    ("5000-digit negative size", 1, "13288-bit integer, beyond the ±2**64"),
    ("tower of powers", 1, "9 ** 387420489 is beyond the ±2**64"),
    ("negative power", 1, "negative exponent"),
    ("range 2**64", 6, "more than 250,000 units of work"),
    ("range step 0", 6, "step of range() must not be 0"),
    ("70-dimension Var", 1, "70 dimensions, more than the 8 allowed"),
    ("million-element Var", 1, "hold over 10,000,000 values (elements x range)"),
    ("huge hid_sizes", 1, "weights (layers [10, 60000, 60000, 10])"),
    ("huge tensor", 1, "3,600,000,000 elements"),
    ("huge hyper", 2, "the array size of 'x' is 1,000,000,000, more than the 1,000,000 allowed"),
    ("hyper beyond 2**64", 1, "hyper-parameter 'T' is 1180591620717411303424, beyond"),
    ("wide with", 2, "the range of Var 's' is 1,000,000,000, more than the 65,536 allowed"),
    ("wide with, within range", 4, "more than 250,000 units of work"),
    ("arguments nesting through @Inline", 113, "the argument of @Inline 'g34' nests more than 100 deep"),
])
def test_known_bad_sources_name_the_rule(name, line, words):
    source, hypers = next((k[1], k[2]) for k in fuzz.KNOWN_BAD if k[0] == name)
    with pytest.raises(SourceError) as info:
        compile_source(source, hypers, filename="bad.py")
    assert info.value.span.line == line and words in info.value.message, str(info.value)


def test_a_long_line_is_quoted_as_a_window_with_the_caret_under_the_offending_text():
    source = "N = max(" + "1, " * 200 + "undefined_name, " + "1, " * 200 + "1)\n"
    with pytest.raises(SourceError) as info:
        compile_source(source, filename="long.py")
    _, quoted, caret = str(info.value).splitlines()[:3]
    start = caret.index("^")
    assert len(quoted) < 200 and quoted.startswith("    ...") and quoted.endswith("...")
    assert quoted[start:start + len("undefined_name")] == "undefined_name", (quoted, caret)
