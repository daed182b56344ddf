"""JumpPolicy, winner and StopRule on synthetic trajectories."""

import random

import pytest
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.search.policy import Decision, JumpPolicy, StopReason, StopRule, winner
from ntpt_dist.search.records import RestartRecord

P = JumpPolicy(delta=0.3, window=4, floor=0.7, refine_evals=2, budget_steps=1000, stall_evals=None)


def test_clean_jump_is_found_at_the_first_high_evaluation():
    history = [0.1, 0.12, 0.11, 0.5, 0.9, 0.93, 0.95]
    assert P.jumped(history) == 4
    assert P.decide(history[:5], steps=250) == "continue"  # refining
    assert P.decide(history[:7], steps=350) == "converged"


def test_no_jump_runs_to_the_budget():
    history = [0.1 + 0.001 * i for i in range(20)]
    assert P.jumped(history) is None
    assert P.decide(history, steps=999) == "continue"
    assert P.decide(history, steps=1000) == "stop:budget"
    assert P.should_stop(history, steps=1000) == "budget" and P.should_stop(history, steps=10) is None


def test_noise_below_delta_is_not_a_jump():
    rng = random.Random(0)
    history = [0.55 + rng.uniform(-0.1, 0.1) for _ in range(200)]  # swings of up to 0.2 < delta
    assert P.jumped(history) is None


def test_noise_above_the_floor_but_slow_rise_is_not_a_jump():
    history = [0.4 + 0.05 * i for i in range(12)]  # +0.05 per eval: 0.2 per window of 4
    assert P.jumped(history) is None


def test_late_jump_after_long_plateau_is_found_and_refined_past_the_budget():
    history = [0.2] * 60 + [0.85, 0.9, 0.92]
    assert P.jumped(history) == 60
    # the budget does not cut a converging restart short
    assert P.decide(history[:61], steps=5000) == "continue"
    assert P.decide(history, steps=5100) == "converged"


def test_plateau_stops_only_when_stall_detection_is_on():
    history = [0.1, 0.3, 0.35] + [0.35] * 10
    assert P.decide(history, steps=100) == "continue"
    stall = JumpPolicy(delta=0.3, window=4, floor=0.7, stall_evals=5, budget_steps=1000)
    assert stall.decide(history, steps=100) == "stop:stalled"
    assert stall.decide(history[:7], steps=100) == "continue"  # only 4 flat evaluations


def test_high_start_is_not_a_jump_but_a_rise_below_floor_is_not_either():
    assert P.jumped([0.9, 0.9, 0.9]) is None
    assert P.decide([0.9] * 40, steps=1000) == "stop:budget"
    assert P.jumped([0.1, 0.2, 0.6]) is None  # rise of 0.5 but ends below floor 0.7


def test_rise_outside_the_window_does_not_count():
    history = [0.1, 0.5, 0.55, 0.6, 0.65, 0.72]  # 0.1 is five evaluations before 0.72
    assert P.jumped(history) is None
    assert JumpPolicy(delta=0.3, window=5, floor=0.7).jumped(history) == 5


def test_refine_zero_converges_at_the_jump():
    p = JumpPolicy(delta=0.3, window=2, floor=0.7, refine_evals=0)
    assert p.decide([0.1, 0.8], steps=20) == "converged"


def test_winner_prefers_accuracy_then_earlier_jump_then_lower_index():
    recs = [RestartRecord(k, 100 + k, status, program_val_acc=acc, jump_step=jump) for k, status, acc, jump in [
        (0, "converged", 0.9, 500), (1, "converged", 0.95, 900), (2, "converged", 0.95, 300),
        (3, "converged", 0.95, 300), (4, "stopped", None, None),
    ]]
    assert winner(recs).index == 2
    assert winner(list(reversed(recs))).index == 2
    assert winner(recs[4:]) is None
    assert winner([]) is None


def test_stop_rule():
    assert StopRule().reason(100, 5, 1e9) is None
    assert StopRule(first_k=2).reason(10, 1, 1.0) is None
    assert StopRule(first_k=2).reason(10, 2, 1.0) is StopReason.FIRST_K == "first_k"
    assert StopRule(wall_clock_s=10).reason(1, 0, 10.5) is StopReason.WALL_CLOCK


def test_decisions_are_enums_that_read_as_their_strings():
    assert P.decide([0.1], steps=1000) is Decision.STOP_BUDGET and Decision.STOP_BUDGET.reason == "budget"
    assert P.decide([0.1], steps=10) is Decision.CONTINUE and Decision.CONTINUE.reason is None
    assert f"{Decision.CONVERGED}" == str(Decision.CONVERGED) == "converged" == Decision.CONVERGED
    assert f"{StopReason.DONE}" == "done"


@pytest.mark.parametrize("kwargs", [{"delta": 0}, {"window": 0}, {"floor": 1.5}, {"stall_evals": 0}])
def test_bad_settings_raise_with_the_value(kwargs):
    with pytest.raises(NtptError, match=str(list(kwargs.values())[0])):
        JumpPolicy(**kwargs)
    with pytest.raises(NtptError, match="first_k"):
        StopRule(first_k=0)


def test_a_perfect_score_counts_as_found_without_a_jump():
    assert P.found([1.0, 1.0, 1.0]) == 0 and P.jumped([1.0, 1.0, 1.0]) is None
    assert P.decide([1.0, 1.0], steps=50) == "continue"  # still refining
    assert P.decide([1.0, 1.0, 1.0], steps=75) == "converged"
    assert P.found([0.1, 0.2, 0.9, 1.0]) == 2  # the jump came first
    off = JumpPolicy(delta=0.3, window=4, floor=0.7, refine_evals=2, budget_steps=1000, solved=None)
    assert off.found([1.0, 1.0]) is None
