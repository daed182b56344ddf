"""Model.train is the search's in-process backend: same restarts, same records, same winner.

And every option a user passes to the search is honoured or refused by name.
"""

from __future__ import annotations

import pytest
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.interpreter.model import compile_file
from ntpt_dist.search.driver import search
from ntpt_dist.search.policy import JumpPolicy
from ntpt_dist.search.records import RestartStatus

from ..interpreter.conftest import one_thread  # noqa: F401 - the fixture
from ..interpreter.fixture_data import MODELS, circuit_data
from .fakes import fake_factory

pytestmark = pytest.mark.usefixtures("one_thread")  # training here runs on one torch thread


def half_adder() -> dict:
    full = circuit_data()
    a, b = full["a"], full["b"]
    return {"a": a, "b": b, "carry_in": full["carry_in"], "total": a ^ b, "carry_out": a & b}


def test_model_train_and_a_local_search_give_the_same_restarts_and_winner():
    model = compile_file(MODELS / "circuit.py")
    data = half_adder()
    options = {"lr": 0.1, "batch_size": None, "optimizer": "rmsprop"}
    policy = JumpPolicy(floor=0.9, budget_steps=150, solved=None)  # 3 of these 6 restarts find the program
    trained = model.train(data, restarts=6, seed=0, policy=policy, **options)
    searched = search(model, data, restarts=6, seed=0, backend="local", restarts_per_actor=6, actors=1,
                      policy=policy, config=options, progress=False)
    assert sorted(trained.records) == sorted(searched.records) == list(range(6))
    statuses = {r.status for r in trained.records.values()}
    assert RestartStatus.CONVERGED in statuses and len(statuses) > 1, statuses  # both outcomes are compared
    for k, mine in trained.records.items():
        theirs = searched.records[k]
        for name in ("seed", "status", "reason", "steps", "jump_step", "trajectory", "program_val_acc"):
            assert getattr(mine, name) == getattr(theirs, name), (k, name)
        assert (mine.program is None) == (theirs.program is None)
        if mine.program is not None:
            assert mine.program["params"] == theirs.program["params"]
    assert trained.winner is not None and trained.winner.index == searched.winner.index
    assert trained.counts == searched.counts
    assert trained.best_program().params == searched.best_program().params
    assert trained.best_program().accuracy(data) == 1.0


def fake_search(**kw):
    kw.setdefault("block_factory", fake_factory())
    return search(("src", {}), {"x": [0]}, restarts=3, seed=7, backend="local", restarts_per_actor=3, actors=1,
                  policy=JumpPolicy(delta=0.5, window=3, floor=0.8, refine_evals=2, budget_steps=100),
                  progress=False, slice_s=0.0, **kw)


def test_the_configs_eval_every_is_honoured():
    for config in ({"eval_every": 10}, None):
        result = fake_search(config=config)
        every = 10 if config else 25  # TrainConfig's default, the search's too
        for r in result.records.values():
            assert [s for s, _ in r.trajectory] == list(range(0, r.steps + 1, every)), (config, r.trajectory)
    argument = fake_search(eval_every=20)
    assert all(s % 20 == 0 for r in argument.records.values() for s, _ in r.trajectory)


class NoWorkers:
    """A backend that fails the test if the driver uses it."""

    def __getattr__(self, name):
        raise AssertionError(f"the driver used its backend ({name}) for options it should have refused")


@pytest.mark.parametrize("kwargs, message", [
    ({"config": {"eval_every": 10}, "eval_every": 20}, "eval_every=20 contradicts the config's eval_every=10"),
    ({"config": {"learning_rate": 0.1}}, r"unknown training option\(s\) \['learning_rate'\]"),
    ({"config": {"lr": "fast"}}, "TrainConfig.lr must be a number"),
    ({"config": "lr=0.1"}, "config must be a TrainConfig or a dict of its fields, but got str"),
    ({"seed": -1}, "seed must be an integer >= 0, but got seed=-1"),
    ({"policy": {"delta": 0.3}}, "policy must be a JumpPolicy, but got dict"),
])
def test_options_that_would_be_ignored_or_fail_late_are_refused_by_name(kwargs, message):
    args = {"restarts": 2, "backend": NoWorkers(), "progress": False, "block_factory": fake_factory(), **kwargs}
    with pytest.raises(NtptError, match=message):
        search(("src", {}), {"x": [0]}, **args)
