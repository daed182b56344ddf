"""Lifelong runner: the schedule, run_lifelong end to end on synthetic tasks, figures, and main() on fake image sets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ntpt_dist.experiments import figures
from ntpt_dist.experiments.baselines import BaselineConfig
from ntpt_dist.experiments.lifelong import (
    PAPER_TASKS,
    PERIOD,
    LifelongResult,
    Schedule,
    main,
    make_learner,
    run_lifelong,
    summary,
)
from ntpt_dist.interpreter.errors import NtptError

from .synthetic import grid_task

torch.set_num_threads(1)
TINY = BaselineConfig(embed_hidden=(16,), head_hidden=(16,), lr=1e-2)


class Recorder:
    """A Learner that trains nothing: it records each batch's task and instance ids and reports accuracy 0.5."""

    def __init__(self):
        self.calls: list[tuple[str, np.ndarray]] = []

    def train_step(self, task, batch):
        self.calls.append((task, batch.ids["grid"][:, 0, 0] // 4))
        return 1.0

    def accuracy(self, task, data):
        return 0.5


@pytest.fixture(scope="module")
def tasks_data():
    return {t: (grid_task(t, 40, seed=k), grid_task(t, 16, seed=100 + k)) for k, t in enumerate(PAPER_TASKS)}


# --- schedule --------------------------------------------------------------------------


def test_schedule_probabilities_sum_to_one_and_move_through_the_tasks_in_order():
    schedule = Schedule()
    seen = np.linspace(0, schedule.total, 801)
    probs = np.array([schedule.probabilities(t) for t in seen])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    dominant = probs.argmax(axis=1)
    assert np.all(np.diff(dominant) >= 0) and sorted(set(dominant)) == list(range(8))
    for k in range(8):
        peak = schedule.probabilities((k + 0.5) * PERIOD)
        assert peak.argmax() == k and peak[k] > 0.75
    for k in range(5):  # three periods after its peak a task is practically never drawn
        assert schedule.probabilities((k + 3.5) * PERIOD)[k] < 1e-3
    assert schedule.total == 512_000


def test_scaled_schedule_is_the_same_curve_on_a_shorter_axis():
    schedule, short = Schedule(), Schedule().scaled(0.01)
    assert short.total == 5_120
    for t in (0, 1234, 40_000, 300_000, 511_999):
        np.testing.assert_allclose(short.probabilities(t * 0.01), schedule.probabilities(t), rtol=1e-9)
    with pytest.raises(NtptError, match="scale"):
        schedule.scaled(0)
    with pytest.raises(NtptError, match="period"):
        Schedule(("A",), period=-1)


# --- run_lifelong -----------------------------------------------------------------------


def test_run_lifelong_draws_batches_by_the_schedule_and_deals_training_grids_evenly(tasks_data):
    recorder = Recorder()
    result = run_lifelong(recorder, tasks_data, batch_size=10, eval_every=64_000, scale=0.01, seed=3)
    total = Schedule().scaled(0.01).total
    assert result.examples[0] == 0 and result.examples[-1] == total and np.all(np.diff(result.examples) > 0)
    assert len(result.examples) == 9  # at 0, after each of the 8 periods
    assert sum(sum(v) for v in result.presented.values()) == total == 10 * len(recorder.calls)
    position = {t: np.mean([i for i, (task, _) in enumerate(recorder.calls) if task == t]) for t in PAPER_TASKS}
    assert [position[t] for t in PAPER_TASKS] == sorted(position.values())  # tasks come in lifetime order
    for task in PAPER_TASKS:
        used = np.bincount(np.concatenate([ids for t, ids in recorder.calls if t == task]), minlength=40)
        assert used.max() - used.min() <= 1  # shuffled passes: every grid equally often
    again = Recorder()
    run_lifelong(again, tasks_data, batch_size=10, eval_every=64_000, scale=0.01, seed=3)
    assert [t for t, _ in again.calls] == [t for t, _ in recorder.calls]


def test_run_lifelong_trains_a_real_baseline_end_to_end(tasks_data):
    learner = make_learner("mtnn2", PAPER_TASKS, TINY, seed=0)
    lines = []
    result = run_lifelong(learner, tasks_data, batch_size=16, eval_every=128_000, scale=0.005, name="mtnn2", log=lines.append)
    assert result.learner == "mtnn2" and len(lines) == len(result.examples) == 5
    assert all(len(v) == 5 and all(0.0 <= a <= 1.0 for a in v) for v in result.accuracy.values())
    assert np.isnan(result.loss[0]) and all(np.isfinite(result.loss[1:]))
    assert set(result.final()) == set(PAPER_TASKS)
    back = LifelongResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert back.final() == result.final() and back.examples == result.examples and np.isnan(back.loss[0])


def test_run_lifelong_refuses_missing_or_empty_task_data(tasks_data):
    partial = {t: tasks_data[t] for t in PAPER_TASKS[:3]}
    with pytest.raises(NtptError, match="lacks"):
        run_lifelong(Recorder(), partial, scale=0.01)
    empty = {**tasks_data, "ADD2x2:top": (tasks_data["ADD2x2:top"][0].take(slice(0, 0)), tasks_data["ADD2x2:top"][1])}
    with pytest.raises(NtptError, match="no training"):
        run_lifelong(Recorder(), empty, scale=0.01)
    with pytest.raises(NtptError, match="unknown learner"):
        make_learner("lstm2x2", PAPER_TASKS)


# --- figures ----------------------------------------------------------------------------


def fake_result(name: str, final: float) -> LifelongResult:
    examples = [0, 2_560, 5_120]
    accuracy = {t: [0.05, final / 2, final] for t in PAPER_TASKS}
    presented = {t: [0, 320, 320] for t in PAPER_TASKS}
    schedule = Schedule().scaled(0.01)
    return LifelongResult(name, list(PAPER_TASKS), examples, accuracy, presented, [float("nan"), 2.0, 1.0],
                          {"tasks": list(schedule.tasks), "period": schedule.period, "width": schedule.width}, 0.01)


def test_accuracy_table_has_a_row_per_task_and_a_column_per_learner():
    table = figures.accuracy_table([fake_result("pnn", 0.36), fake_result("mtnn2", 0.6)]).splitlines()
    assert table[0] == "| scenario | task | PNN | MTNN-2 |"
    assert len(table) == 2 + 8
    assert table[2] == "| ADD2x2 | top | 36% | 60% |" and table[-1] == "| APPLY2x2 | right | 36% | 60% |"
    with pytest.raises(NtptError, match="at least one"):
        figures.accuracy_table([])


def test_plot_lifelong_writes_a_png(tmp_path):
    path = figures.plot_lifelong([fake_result("indep", 0.3), fake_result("mtnn1", 0.5)], tmp_path / "sub" / "fig.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_plot_fig6_draws_the_papers_three_panels_and_needs_the_ntpt_result(tmp_path):
    path = figures.plot_fig6([fake_result("ntpt", 0.9), fake_result("mtnn2", 0.5), fake_result("pnn", 0.4)], tmp_path / "fig6.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    with pytest.raises(NtptError, match="'ntpt' result"):
        figures.plot_fig6([fake_result("mtnn2", 0.5)], tmp_path / "no.png")


def test_summary_reports_final_peak_and_the_change_since_a_tasks_own_training():
    r = fake_result("ntpt", 0.9)
    r.accuracy["ADD2x2:top"] = [0.05, 0.95, 0.9]  # fell after its own training ended
    s = summary(r, "ntpt-dist lifelong ...")
    assert s["final"]["ADD2x2:top"] == 0.9 and s["peak"]["ADD2x2:top"] == 0.95
    assert s["own_training_ended_at"]["ADD2x2:top"] == 2_560  # the first of the 8 bumps ends early
    assert s["change_since_own_training"]["ADD2x2:top"] == pytest.approx(-0.05)
    assert s["own_training_ended_at"]["APPLY2x2:right"] == 5_120 and s["command"] == "ntpt-dist lifelong ..."


# --- main -------------------------------------------------------------------------------


def test_main_runs_a_short_lifetime_on_fake_images(fake_data, tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["--models", "mtnn2,pnn", "--scale", "0.001", "--eval-every", "256000", "--distinct", "12",
                   "--test-size", "6", "--batch-size", "16", "--out", str(out)])
    assert status == 0
    result = LifelongResult.from_dict(json.loads((out / "lifelong_pnn.json").read_text()))
    assert result.tasks == list(PAPER_TASKS) and result.examples[-1] == 512 and result.scale == 0.001
    assert (out / "lifelong.png").stat().st_size > 0
    table = (out / "lifelong.md").read_text()
    assert "MTNN-2" in table and "PNN" in table and table in capsys.readouterr().out + "\n"


def test_main_reports_a_bad_model_as_one_error_line(tmp_path, capsys):
    assert main(["--models", "mtnn3", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --models must list learners from ") and err.count("\n") == 1
    assert all(name in err for name in ("indep", "pnn", "mtnn1", "mtnn2", "'mtnn3'"))


# --- each baseline through a lifetime -----------------------------------------------------


@pytest.mark.parametrize("name", ["indep", "pnn", "mtnn1"])
def test_tiny_lifetime_runs_end_to_end_with_the_other_baselines(name, tasks_data):
    learner = make_learner(name, PAPER_TASKS, TINY, seed=0)
    result = run_lifelong(learner, tasks_data, batch_size=20, eval_every=256_000, scale=0.004, name=name)
    assert result.learner == name and len(result.examples) == 3
    assert all(0.0 <= a <= 1.0 for accs in result.accuracy.values() for a in accs)
    assert result.train_s > 0 and result.eval_s > 0


def test_a_baseline_improves_on_its_tasks_during_a_short_lifetime():
    tasks = ("ADD2x2:top", "ADD2x2:left")
    data = {t: (grid_task(t, 200, seed=k), grid_task(t, 200, seed=50 + k)) for k, t in enumerate(tasks)}
    config = BaselineConfig(embed_hidden=(32,), head_hidden=(32,), lr=1e-2, perceptual_lr_scale=1.0)
    result = run_lifelong(make_learner("mtnn2", tasks, config), data, Schedule(tasks, period=3_000), batch_size=25, eval_every=1_500)
    for t in tasks:
        assert result.accuracy[t][-1] > result.accuracy[t][0] + 0.3


@pytest.mark.parametrize("kwargs", [{"tasks": ()}, {"width": 0.0}])
def test_a_schedule_without_tasks_or_width_is_refused(kwargs):
    with pytest.raises(NtptError, match="a schedule needs tasks, period > 0 and width > 0"):
        Schedule(**kwargs)


def test_run_lifelong_refuses_an_empty_batch_size(tasks_data):
    with pytest.raises(NtptError, match="batch_size and eval_every must be >= 1, got batch_size=0"):
        run_lifelong(Recorder(), tasks_data, batch_size=0, scale=0.01)


def test_figures_main_combines_result_files(tmp_path, capsys):
    files = []
    for name, final in (("indep", 0.3), ("ntpt", 0.9)):
        files.append(tmp_path / f"lifelong_{name}.json")
        files[-1].write_text(json.dumps(fake_result(name, final).to_dict()))
    assert figures.main([str(f) for f in files] + ["--out", str(tmp_path / "fig")]) == 0
    assert "| ADD2x2 | left | 30% | 90% |" in (tmp_path / "fig" / "lifelong.md").read_text()
    assert (tmp_path / "fig" / "lifelong.png").is_file()
    (tmp_path / "bad.json").write_text("{}")
    assert figures.main([str(tmp_path / "bad.json")]) == 2
    assert capsys.readouterr().err.startswith("error: cannot read a LifelongResult from")


def test_main_sends_mode_store_to_the_store_lifetime_and_refuses_an_unknown_mode(monkeypatch, capsys):
    from ntpt_dist.experiments import lifelong, lifelong_store

    seen = {}
    monkeypatch.setattr(lifelong_store, "main", lambda argv, prog: seen.setdefault("argv", argv) and 0)
    assert lifelong.main(["--mode", "store", "--store", "/tmp/s", "--restarts", "2"]) == 0
    assert seen["argv"] == ["--store", "/tmp/s", "--restarts", "2"]
    assert lifelong.main(["--mode=tree"]) == 2
    assert "--mode must be one of schedule, store, got 'tree'" in capsys.readouterr().err
