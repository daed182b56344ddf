"""A user's own model, end to end on the command line: search -> show -> library -> best_program, and train.

The models and data are the small non-perceptual fixtures in ``tests/fixtures/``;
searches run in-process (``--backend local``) into one sqlite store per module.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

import ntpt_dist
from ntpt_dist.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
LOCAL = ["--backend", "local", "--restarts", "4", "--restarts-per-actor", "4", "--steps", "200"]


def fixture(name: str) -> str:
    return str(FIXTURES / name)


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def searched(store_dir):
    """``ntpt-dist search mod_op.py --data ... --hypers ...`` into the module's store; its stdout."""
    capture = pytest.MonkeyPatch()
    out = io.StringIO()
    capture.setattr(sys, "stdout", out)
    try:
        code = main(["search", fixture("mod_op.py"), "--data", fixture("mod_op_data.json"), "--hypers",
                     fixture("mod_op_hypers.json"), "--store", store_dir, *LOCAL])
    finally:
        capture.undo()
    assert code == 0, out.getvalue()
    return out.getvalue()


def test_search_a_model_file_then_show_and_best_program(searched, store_dir, capsys):
    assert "op = 0  # Param(4)" in searched and "validation accuracy 1.0000   test accuracy 1.0000" in searched
    assert "merge: no library network updated" in searched and "default_rng(0)" in searched
    assert main(["show", "mod_op", "--store", store_dir]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("mod_op: champion program") and "op = 0  # Param(4)" in shown and "accuracy: 1.0" in shown
    program = ntpt_dist.best_program("mod_op", store=ntpt_dist.LibraryStore(store_dir))  # no hand-written merge
    assert program.params == {"op": 0} and program.hypers == {"N": 5} and program.test_accuracy == 1.0
    assert program.run({"x1": [3, 4], "x2": [4, 4]})["y"].tolist() == [2, 3]


def test_library_lists_the_task(searched, store_dir, capsys):
    assert main(["library", "--store", store_dir]) == 0
    out = capsys.readouterr().out
    assert "no networks in the library" in out and "mod_op v1: validation 1.0000  test 1.0000" in out
    assert "mod_op: no library network updated" in out


def test_train_a_model_file(capsys):
    assert main(["train", fixture("mod_op.py"), "--data", fixture("mod_op_data.json"), "--hypers",
                 fixture("mod_op_hypers.json"), "--restarts", "4", "--steps", "60", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("best program for mod_op (4 restarts x 60 steps") and "op = 0  # Param(4)" in out
    assert "test accuracy 1.0000" in out
