"""benchmarks/vs_tune.py: the Ray Tune trial on the scripted fake block, and the figures it prints."""

import json
import sys
from pathlib import Path

import pytest
from ntpt_dist.interpreter.engine import restart_seed
from ntpt_dist.search.policy import JumpPolicy

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import vs_tune  # noqa: E402
from tests.search.fakes import fake_factory  # noqa: E402

POLICY = JumpPolicy(delta=0.5, window=3, floor=0.8, refine_evals=2, budget_steps=300)


def run_trial(k: int) -> list[dict]:
    reports: list[dict] = []
    vs_tune.tune_trial({"restart": k, "seed": 0}, spec=("src", {}), data={"x": [0]}, val_data={"x": [0]},
                       library=None, train={}, policy=POLICY, eval_every=25, block_factory=fake_factory(),
                       report=reports.append)
    return reports


@pytest.mark.parametrize("k", range(6))
def test_a_trial_reports_every_round_and_ends_as_its_restart_does(k):
    reports = run_trial(k)
    jumps = restart_seed(0, k) % 3 == 0  # the fake's script: these seeds jump, the others reach the budget
    final = reports[-1]
    assert final["done"] and final["restart"] == k
    assert final["status"] == ("converged" if jumps else "stopped")
    assert final["restart_steps"] <= 300 and (jumps or final["restart_steps"] == 300)
    assert [r["steps"] for r in reports] == [25 * (i + 1) for i in range(len(reports))]  # one report a round
    assert all(0.0 <= r["val_acc"] <= 1.0 for r in reports)
    assert not any(r.get("done") for r in reports[:-1])
    json.dumps(final)  # Tune stores it as JSON


def test_steady_rate_needs_three_waves():
    assert vs_tune.steady_rate([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2) == 60.0
    assert vs_tune.steady_rate([1.0, 2.0, 3.0, 4.0, 5.0], 2) is None


def test_summary_and_comparison_keys():
    def judge(status, params, seed):
        return status == "converged" and params == {"p": 1}

    search = {0: ("converged", {"p": 1}, 110.0), 1: ("stopped", None, 105.0), 2: ("converged", {"p": 2}, 104.0)}
    tune = {0: ("converged", {"p": 1}, 160.0), 1: ("stopped", None, 130.0), 2: ("stopped", None, 190.0)}
    s = vs_tune.summary(search, t0_unix=100.0, wall_s=12.0, concurrent=1, seed=0, judge=judge)
    t = vs_tune.summary(tune, t0_unix=100.0, wall_s=90.0, concurrent=1, seed=0, judge=judge)
    assert s["correct"] == [0] and s["first_correct_s"] == 10.0 and s["restarts_per_min"] == 15.0
    assert t["first_correct_s"] == 60.0 and t["restarts_per_min"] == 2.0
    out = vs_tune.compare([s, s], t, search, tune)
    assert out["restarts_per_min_ratio"] == 7.5
    assert out["first_program_speedup"] == 6.0
    assert out["same_status_per_restart"] == "2/3"
    assert out["restarts_per_min_ratio_steady"] == vs_tune.ratio(s["restarts_per_min_steady"],
                                                                  t["restarts_per_min_steady"])


@pytest.mark.slow
@pytest.mark.ray
def test_quick_run_prints_both_tools_figures():
    out = vs_tune.main(["--quick"])
    assert {"restarts_per_min_ratio", "restarts_per_min_ratio_steady", "first_program_speedup", "search_runs",
            "tune", "command", "sizes"} <= set(out)
    assert out["restarts_per_min_ratio"] > 0 and out["same_status_per_restart"] == "4/4"


@pytest.mark.slow  # the judge generates MATH tapes of 2 and 9 digits: ~10 s
def test_the_judge_takes_the_recorded_math_program_and_refuses_a_swapped_one():
    from tests.experiments.test_math_exact import RECORD, params_from_listing

    params = params_from_listing(json.loads(RECORD.read_text())["stages"]["MATH"]["listing"])
    assert vs_tune.is_correct("converged", params, seed=0)  # lists, as Tune's JSON gives them back
    assert not vs_tune.is_correct("stopped", params, seed=0)
    swapped = {**params, "arg2": params["arg3"], "arg3": params["arg2"]}  # digit op accumulator
    assert not vs_tune.is_correct("converged", swapped, seed=0)
