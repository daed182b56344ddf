"""Bad command-line input is one `error:` line and exit status 2, before any data is read or work starts."""

from __future__ import annotations

import socket
import time

import pytest

from ntpt_dist.cli import main


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err  # one line, no traceback, no usage block
    assert lines[0].startswith("error:") or ": error:" in lines[0], err
    return lines[0]


@pytest.mark.ray
def test_an_unreachable_cluster_address_fails_in_seconds_before_the_data_is_read(capsys, tmp_path):
    with socket.socket() as sock:  # bound, never listening: every connection is refused
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        start = time.monotonic()
        code = main(["search", "ADD2x2:top", "--address", address, "--restarts", "1", "--store", str(tmp_path),
                     "--data-dir", "/nonexistent"])  # the data would fail later: the address fails first
    assert code == 2 and time.monotonic() - start < 15
    assert f"no Ray cluster answers at {address}" in error_line(capsys)


@pytest.mark.parametrize("argv, says", [
    (["train", "MATH", "--option", "lr=abc"], "TrainConfig.lr must be a number, but got 'abc'"),
    (["search", "MATH", "--option", "batch_size=2.5"], "TrainConfig.batch_size must be an integer or None"),
    (["search", "MATH", "--option", "freeze_library=maybe"], "TrainConfig.freeze_library must be true or false"),
    (["train", "MATH", "--steps", "-5"], "argument --steps: must be >= 1, but got -5"),
    (["search", "MATH", "--steps", "-5"], "argument --steps: must be >= 1, but got -5"),
    (["search", "MATH", "--restarts", "0"], "argument --restarts: must be >= 1, but got 0"),
    (["train", "MATH", "--restarts", "0"], "argument --restarts: must be >= 1, but got 0"),
    (["search", "MATH", "--restarts-per-actor", "0"], "argument --restarts-per-actor: must be >= 1"),
    (["search", "MATH", "--actors", "0"], "argument --actors: must be >= 1"),
    (["search", "MATH", "--gpus-per-actor", "-1"], "argument --gpus-per-actor: must be >= 0"),
    (["search", "MATH", "--first-k", "0"], "argument --first-k: must be >= 1"),
    (["search", "MATH", "--steps", "many"], "argument --steps: expected an integer >= 1, but got 'many'"),
    (["train", "MATH", "--lr", "nan"], "argument --lr: must be >= 0, but got nan"),
    (["ui", "--port", "70000"], "argument --port: a port is 1-65535"),
])
def test_bad_arguments_are_one_line_and_status_2(capsys, argv, says):
    assert main(argv + ["--data-dir", "/nonexistent"] if argv[0] != "ui" else argv) == 2
    line = error_line(capsys)
    assert says in line and "--help" in line, line


def test_train_config_refuses_a_value_of_the_wrong_type():
    from ntpt_dist.interpreter.errors import NtptError
    from ntpt_dist.interpreter.train_config import TrainConfig, config_with

    for bad in ({"lr": "abc"}, {"batch_size": 2.5}, {"freeze_library": 1}, {"betas": (0.9,)}, {"eval_every": True}):
        with pytest.raises(NtptError, match=f"TrainConfig.{next(iter(bad))} must be .*fix: pass e.g."):
            config_with(**bad)
    import numpy as np  # what scripts compute is fine: numpy scalars, a list for a pair, None where optional

    config = TrainConfig(lr=np.float64(0.1), batch_size=np.int64(8), betas=[0.9, 0.99], clip_norm=None,
                         freeze_library=np.bool_(True))
    assert config.batch_size == 8 and config.freeze_library
