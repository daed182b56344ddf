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
    for task in ("ADD2x2:top", "APPLY2x2:left", "MATH", "MAZE"):
        config_with(**registry.recipe(task))
    assert registry.recipe("MATH")["freeze_library"] is True
    assert registry.recipe("MAZE") == {}
