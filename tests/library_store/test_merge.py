"""The pure merge gate: decisions and the numbers behind them."""

from __future__ import annotations

import json

import pytest
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.library_store.merge import merge


def lib(**qualities):
    return {name: {"signature": "s", "state": q} for name, q in qualities.items()}


def table(**accs):
    """evaluate(task, library) from {task: f(quality of 'net')}."""
    calls = []

    def evaluate(task, library):
        calls.append((task, library.get("net", {}).get("state")))
        return accs[task](library["net"]["state"]) if "net" in library else 0.5

    evaluate.calls = calls
    return evaluate


def test_new_networks_are_added_without_a_comparison():
    evaluate = table(B=lambda q: q)
    d = merge("B", lib(net=0.7), evaluate, champion={}, earlier_tasks=["A"])
    assert d.accepted and d.added == ["net"] and d.updated == []
    assert d.new_task == {"before": 0.7, "after": 0.7} and d.earlier == {}
    assert evaluate.calls == [("B", 0.7)]  # earlier tasks cannot call a network they never had


def test_accepts_improvement_and_records_reverse_transfer():
    d = merge("B", lib(net=0.9), table(A=lambda q: q, B=lambda q: q), champion=lib(net=0.6), earlier_tasks=["A", "B"])
    assert d.accepted and d.updated == ["net"] and "accepted" in d.reason
    assert d.new_task == {"before": 0.6, "after": 0.9}
    assert d.earlier["A"]["delta"] == pytest.approx(0.3) and d.reverse_transfer == {"A": pytest.approx(0.3)}
    assert "B" not in d.earlier  # the task itself is not an earlier task
    assert d.val_acc == 0.9


def test_rejects_a_regression_beyond_epsilon_with_numbers():
    evaluate = table(A=lambda q: q, B=lambda q: 1 - q)
    d = merge("B", lib(net=0.3), evaluate, epsilon=0.05, champion=lib(net=0.8), earlier_tasks=["A"])
    assert not d.accepted and d.regressions == ["A"]
    assert "0.8000 -> 0.3000" in d.reason and "epsilon=0.05" in d.reason
    assert d.val_acc == pytest.approx(0.2)  # stored against the champion
    json.dumps(d.to_dict())  # what the store records must be JSON


def test_epsilon_is_the_largest_tolerated_drop():
    evaluate = table(A=lambda q: 1 - q / 10, B=lambda q: q)  # A drops by 0.1 * (new - old)
    within = merge("B", lib(net=0.5), evaluate, epsilon=0.021, champion=lib(net=0.3), earlier_tasks=["A"])
    beyond = merge("B", lib(net=0.5), evaluate, epsilon=0.019, champion=lib(net=0.3), earlier_tasks=["A"])
    assert within.accepted and not beyond.accepted


def test_rejects_when_the_new_task_does_not_improve():
    d = merge("B", lib(net=0.6), table(B=lambda q: 0.75), champion=lib(net=0.5))
    assert not d.accepted and "does not improve" in d.reason and "0.7500 -> 0.7500" in d.reason


@pytest.mark.parametrize("epsilon", [-0.1, float("nan")])
def test_bad_epsilon(epsilon):
    with pytest.raises(NtptError, match="epsilon must be >= 0"):
        merge("B", lib(net=1), table(B=lambda q: q), epsilon)


def test_evaluate_must_return_an_accuracy():
    with pytest.raises(NtptError, match=r"evaluate\('B', library\).*\[0, 1\].*42"):
        merge("B", lib(net=1), table(B=lambda q: 42))
