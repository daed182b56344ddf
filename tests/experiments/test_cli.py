"""The ``ntpt-dist`` command line: training options and task recipes (no training here)."""

from __future__ import annotations

import pytest
from ntpt_dist.experiments import registry
from ntpt_dist.interpreter.engine import config_with

from ntpt_dist.cli import build_parser, main


def test_option_values_are_typed_and_repeatable():
    args = build_parser().parse_args(
        ["search", "MATH", "--option", "init_scale=3.0", "--option", "freeze_library=true", "--option", "batch_size=8",
         "--option", "optimizer=rmsprop"])
    assert dict(args.option) == {"init_scale": 3.0, "freeze_library": True, "batch_size": 8, "optimizer": "rmsprop"}


def test_a_malformed_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["train", "MATH", "--option", "init_scale"])
    assert exit_.value.code == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_an_unknown_training_option_names_itself(capsys):
    assert main(["train", "MATH", "--option", "temprature=2", "--restarts", "1", "--steps", "1",
                 "--data-dir", "/nonexistent"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "temprature" in err and "init_scale" in err  # and the known fields


def test_recipes_are_valid_train_configs():
    for task in ("ADD2x2:top", "APPLY2x2:left", "MATH", "SIGN", "MAZE"):
        config_with(**registry.recipe(task))
    assert registry.recipe("MATH")["freeze_library"] is True
    assert registry.recipe("MAZE")["freeze_library"] is True  # LOOK comes from SIGN


def test_version_and_python_dash_m(capsys):
    from ntpt_dist import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"ntpt-dist {__version__}"
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "ntpt_dist", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"ntpt-dist {__version__}", done.stderr


def _subparsers(parser):
    import argparse

    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_option_has_help_with_its_default():
    parser = build_parser()
    missing = []
    for name, sub in {"": parser, **_subparsers(parser)}.items():
        formatter = sub._get_formatter()
        for action in sub._actions:
            if not action.option_strings or action.dest in ("help", "version"):
                continue
            text = formatter._get_help_string(action) % {"default": action.default}
            if not action.help or "default" not in text:
                missing.append(f"{name} {action.option_strings[0]}")
    assert not missing, f"options without help or a stated default: {missing}"
    search_help = _subparsers(parser)["search"].format_help()
    assert "(default: 100)" in search_help and "<batch>.<variable>" in search_help and "default_rng(0)" in search_help


def test_the_cli_reaches_experiments_only_through_the_paper_task_adapter():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "ntpt_dist"
    for module in ("cli.py", "commands.py"):
        tree = ast.parse((root / module).read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        names += [f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names]
        assert names, module  # the walk sees the imports
        assert not [n for n in names if "experiments" in n.split(".")], (module, names)
        assert "ntpt_dist.paper_tasks" in names or module == "cli.py"


@pytest.mark.parametrize("command", [["show", "mod_op"], ["library"], ["ui", "--port", "5999"]])
def test_read_only_commands_never_create_a_store_at_a_mistyped_path(capsys, tmp_path, command):
    typo = tmp_path / "stroe"
    assert main([*command, "--store", str(typo)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no store at") and "--store" in err[0], err
    assert not typo.exists()
    uri = f"sqlite:///{tmp_path}/other/mlflow.db"
    assert main([*command, "--store", uri]) == 2
    assert not (tmp_path / "other").exists()
