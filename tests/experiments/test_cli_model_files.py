"""Bad input for a model file on the command line: one `error:` line and status 2, before any training."""

from __future__ import annotations

from pathlib import Path

import pytest

from ntpt_dist.cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures"
MODEL = str(FIXTURES / "mod_op.py")
DATA = str(FIXTURES / "mod_op_data.json")
HYPERS = str(FIXTURES / "mod_op_hypers.json")


@pytest.mark.parametrize("argv, says", [
    (["search", MODEL], "needs its data; fix: pass --data DATA.json"),
    (["train", MODEL, "--data", DATA, "--hypers", HYPERS, "--hypers-name", "n9"], "has no entry 'n9'"),
    (["train", MODEL, "--data", "missing.json", "--hypers", HYPERS], "data file 'missing.json' does not exist"),
    (["train", MODEL, "--data", DATA, "--hypers", HYPERS, "--train-size", "10"], "--train-size is for the paper"),
    (["search", MODEL, "--data", DATA, "--hypers", HYPERS, "--data-dir", "/x"], "--data-dir is for the paper"),
    (["train", "ADD2x2:top", "--data", DATA], "--data is for a model file"),
    (["search", "MATH", "--hypers", HYPERS], "--hypers is for a model file"),
    (["train", "SORT", "--data", DATA], "'SORT' is neither a model file nor one of the paper's tasks"),
    (["train", "nowhere/model.py", "--data", DATA], "cannot read model file"),
    (["search", MODEL, "--data", DATA, "--backend", "local", "--address", "auto"], "--backend local trains in this"),
])
def test_bad_model_file_input_is_one_error_line(capsys, tmp_path, argv, says):
    assert main(argv + (["--store", str(tmp_path)] if argv[0] == "search" else [])) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error:") and says in err[0], err


def test_a_model_needing_hypers_without_a_hypers_file_points_at_the_line(capsys):
    assert main(["train", MODEL, "--data", DATA]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "mod_op.py:5:5: hyper-parameter 'N' has no value" in err
    assert err.count("error:") == 1, err


def test_an_unknown_option_is_refused_before_any_data_is_read(capsys, tmp_path):
    assert main(["search", MODEL, "--data", "missing.json", "--option", "evall_every=10", "--store",
                 str(tmp_path)]) == 2
    assert "evall_every" in capsys.readouterr().err
