"""``ntpt-dist generalisation`` (Fig. 8): its options, its one-line errors, and its JSON end to end in a tiny setting."""

from __future__ import annotations

import json

import pytest
import torch
from ntpt_dist.experiments import generalisation

from ntpt_dist.cli import main

torch.set_num_threads(1)

# Part a in seconds: 1..3 digits, a 1 x 8 LSTM and a 4-filter Neural GPU, 4 steps each.
TINY_A = ["--part", "a", "--max-digits", "3", "--train-digits", "2", "--train-n", "50", "--test-n", "30",
          "--probe-n", "10", "--lstm-steps", "4", "--lstm-hidden", "8", "--lstm-layers", "1", "--gpu-steps", "4",
          "--gpu-filters", "4", "--gpu-height", "1", "--eval-every", "2"]


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err  # one line, no traceback
    return lines[0]


def test_the_parser_takes_the_runners_options_with_their_defaults():
    args = generalisation.parser("ntpt-dist generalisation").parse_args(
        ["--part", "b", "--models", "ntpt,lstm5", "--lstm-steps", "7", "--library-add-steps", "9", "--lr", "3e-3"])
    assert (args.part, args.models, args.lstm_steps, args.library_add_steps, args.lr) == ("b", "ntpt,lstm5", 7, 9, 3e-3)
    defaults = generalisation.parser().parse_args([])
    assert (defaults.max_digits, defaults.test_n, defaults.seed, defaults.library) == (16, 1000, 0, None)
    assert defaults.library_apply_steps == 1500 and defaults.out is None


def test_help_lists_the_options_with_their_defaults(capsys):
    assert main(["generalisation", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ntpt-dist generalisation")
    for text in ("--part {a,b}", "--out JSON", "--figure PNG", "(default: 16)", "(default: 20000)", "--library-add-steps"):
        assert text in out, text
    assert main(["--help"]) == 0 and "generalisation" in capsys.readouterr().out


@pytest.mark.parametrize("argv, says", [
    (["--part", "c"], "argument --part: invalid choice: 'c'"),
    (["--part", "a", "--lstm-steps", "-3"], "argument --lstm-steps: must be >= 1, but got -3"),
    (["--part", "a", "--test-n", "many"], "argument --test-n: expected an integer >= 1, but got 'many'"),
    (["--part", "b", "--perceptual-lr-scale", "-1"], "argument --perceptual-lr-scale: must be >= 0"),
    (["--part", "a", "--no-such-option"], "unrecognized arguments: --no-such-option"),
    ([], "needs --part a or --part b"),
    (["--part", "a", "--models", "lstm5"], "--models of part a are ntpt,lstm,neural_gpu, but got 'lstm5'"),
    (["--part", "b", "--models", ","], "--models of part b are ntpt,lstm2,lstm5"),
    (["--part", "a", "--combine", "x.json"], "--combine merges finished runs"),
    (["--combine", "/nonexistent/run.json"], "--combine cannot read /nonexistent/run.json"),
])
def test_bad_options_are_one_error_line_and_status_2(capsys, argv, says):
    assert main(["generalisation", *argv]) == 2
    assert says in error_line(capsys)


def test_an_output_path_that_cannot_be_written_fails_before_any_work(capsys, tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("")
    assert main(["generalisation", *TINY_A, "--out", str(a_file / "a.json")]) == 2
    line = error_line(capsys)
    assert f"--out {a_file / 'a.json'} cannot be written" in line and "fix:" in line
    assert main(["generalisation", *TINY_A, "--figure", str(tmp_path)]) == 2
    assert f"--figure {tmp_path} is a folder" in error_line(capsys)
    assert not list(tmp_path.glob("*.json"))


def run_part_a(tmp_path, name: str, capsys) -> dict:
    out = tmp_path / name / "a.json"  # a folder that does not exist yet is made
    assert main(["generalisation", *TINY_A, "--out", str(out), "--figure", str(tmp_path / name / "a.png")]) == 0
    printed = json.loads(capsys.readouterr().out)
    result = json.loads(out.read_text())
    assert printed == result
    return result


def test_part_a_end_to_end_writes_the_documented_json_and_a_second_run_repeats_it(tmp_path, capsys):
    first = run_part_a(tmp_path, "one", capsys)
    assert sorted(first["symbolic"]) == ["lstm", "neural_gpu", "ntpt"]
    for model, acc in first["symbolic"].items():
        assert list(acc) == ["1", "2", "3"], model
        assert all(isinstance(a, float) and 0.0 <= a <= 1.0 for a in acc.values()), (model, acc)
    assert set(first["symbolic"]["ntpt"].values()) == {1.0}  # the recorded program is exact at every length
    assert first["command"] == "ntpt-dist generalisation " + " ".join(
        [*TINY_A, "--out", str(tmp_path / "one" / "a.json"), "--figure", str(tmp_path / "one" / "a.png")])
    assert first["part"] == "a" and first["max_digits"] == 3 and first["seed"] == 0
    assert (tmp_path / "one" / "a.png").stat().st_size > 1000

    second = run_part_a(tmp_path, "two", capsys)
    assert second["symbolic"] == first["symbolic"]
    losses = [[point["loss"] for point in run["models"][m]["curve"]] for run in (first, second) for m in ("lstm", "neural_gpu")]
    assert losses[:2] == losses[2:]


def fake_train_task(calls: list):
    """A stand-in for ``runner.train_task``: ADD2x2 gives a random net_0, APPLY2x2 a random net_1."""
    from types import SimpleNamespace

    from ntpt_dist.experiments.baselines_2x2 import MTNN

    nets = {k: dict(v) for k, v in MTNN(["ADD2x2:top", "APPLY2x2:top"]).library().items()}

    def train_task(task, restarts, steps, **kwargs):
        calls.append((task, restarts, steps))
        name = "net_0" if task.startswith("ADD") else "net_1"
        return SimpleNamespace(program=SimpleNamespace(networks={name: nets[name]}), test_accuracy=0.5)

    return train_task


def test_part_b_builds_the_2x2_library_when_its_cache_is_missing_and_says_so(tmp_path, capsys, fake_data, monkeypatch):
    from ntpt_dist.experiments import runner

    calls: list = []
    monkeypatch.setattr(runner, "train_task", fake_train_task(calls))
    cache, out = tmp_path / "cache" / "library.npz", tmp_path / "b.json"
    argv = ["generalisation", "--part", "b", "--models", "ntpt", "--library", str(cache), "--max-digits", "2",
            "--test-n", "5", "--ntpt-tune-steps", "0", "--library-add-steps", "11", "--library-apply-steps", "7",
            "--out", str(out)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"no 2x2 library at {cache}: training it here" in err and "4 restarts x 11 steps" in err
    assert calls == [("ADD2x2:top", 4, 11), ("APPLY2x2:top", 8, 7)] and cache.is_file()
    result = json.loads(out.read_text())
    assert result["library"].startswith("trained here") and list(result["perceptual"]["ntpt"]) == ["1", "2"]

    assert main(argv) == 0  # the second run reads the cache it left
    assert len(calls) == 2 and f"2x2 library from cache {cache}" in capsys.readouterr().err


def test_the_default_library_cache_depends_on_the_seed_and_a_non_default_budget():
    assert str(generalisation.default_library_cache(0)) == "runs/fig8/library_seed0.npz"
    assert str(generalisation.default_library_cache(3, 40, 15)) == "runs/fig8/library_seed3_add40_apply15.npz"


def test_the_module_entry_point_reports_bad_input_the_same_way(capsys):
    assert generalisation.main(["--part", "a", "--models", "gru"]) == 2
    assert "--models of part a are" in error_line(capsys)
