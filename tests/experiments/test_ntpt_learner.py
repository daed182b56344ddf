"""The lifelong NTPT learner: restart selection per task, programs fixed once found, one shared library.

The tasks are tiny: three 6-pixel "images" whose class (0..2) lights pixel 2c; a task adds the
classes of two of the cells, which its Params choose, through the shared network ``net_0``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ntpt_dist.experiments.lifelong import Schedule, run_lifelong
from ntpt_dist.experiments.ntpt_learner import NtptLearner
from ntpt_dist.experiments.tasks import TaskData
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.interpreter.model import compile_source
from ntpt_dist.search.policy import JumpPolicy

SOURCE = """
from dummy import InputTensor, Learn, Output, Param, Runtime, Var

grid = InputTensor(6)[3]
result = Output(5)
a = Param(3)
b = Param(3)
da = Var(3)
db = Var(3)


@Learn([Tensor(6)], 3, hid_sizes=[16])
def net_0(img):
    pass


@Runtime([3, 3], 5)
def add(x, y):
    return x + y


with a as i:
    da.set_to(net_0(grid[i]))
with b as j:
    db.set_to(net_0(grid[j]))
result.set_to(add(da, db))
"""
TASKS = {"first": (0, 1), "second": (1, 2)}  # the cells each task adds
POLICY = JumpPolicy(delta=0.3, window=10, floor=0.7, refine_evals=1, budget_steps=300, stall_evals=None, solved=None)


def cells_task(name: str, n: int, seed: int) -> TaskData:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=(n, 3))
    grid = (rng.random((n, 3, 6)) * 0.2).astype(np.float32)
    np.put_along_axis(grid, 2 * labels[..., None], 1.0, axis=2)
    i, j = TASKS[name]
    return TaskData(name, "train", {"grid": grid}, {"result": labels[:, i] + labels[:, j]}, {"grid": labels}, {})


def learner(**kw) -> NtptLearner:
    model = compile_source(SOURCE, filename="<cells>")
    options = dict(restarts=4, seed=0, lr=0.1, net_lr_scale=0.1, val_size=50, eval_every=5, augment_shift=0,
                   policy=POLICY, models={t: model for t in TASKS})
    return NtptLearner(list(TASKS), **{**options, **kw})


@pytest.fixture(scope="module")
def lifetime():
    torch.manual_seed(0)
    data = {t: (cells_task(t, 250, seed=k), cells_task(t, 300, seed=50 + k)) for k, t in enumerate(TASKS)}
    ll = learner()
    result = run_lifelong(ll, data, Schedule(tuple(TASKS), period=10_000), batch_size=25, eval_every=2_000)
    return ll, data, result


def test_each_task_finds_its_program_by_a_jump_on_held_out_grids(lifetime):
    ll, data, result = lifetime
    found = ll.found()
    assert list(found) == list(TASKS)
    assert found["first"].adopted == ["net_0"] and found["second"].adopted == []  # net_0 joined once, then shared
    assert set(ll.shared_networks()) == {"net_0"}
    for task, cells in TASKS.items():
        assert found[task].val_acc >= POLICY.floor
        params = ll.program(task).params
        assert sorted([params["a"], params["b"]]) == list(cells)
        assert result.final()[task] >= 0.95, result.accuracy[task]
        assert ll.program(task).accuracy(data[task][1].batch()) == pytest.approx(result.final()[task])


def test_validation_grids_are_held_out_of_training():
    ll = learner(val_size=30)
    train = ll.hold_out("first", cells_task("first", 100, seed=1))
    assert len(train) == 70 and ll.val["first"].size == 30
    with pytest.raises(NtptError, match="leaves none"):
        ll.hold_out("first", cells_task("first", 30, seed=1))


def _weights(ll):
    return [t.detach().clone() for _, t, _ in ll.library["net_0"].tensors()]


def test_a_searching_task_leaves_the_library_as_it_is_and_a_found_program_trains_it():
    ll = learner()
    for task in TASKS:
        ll.hold_out(task, cells_task(task, 80, seed=3))
    ll.train_step("first", cells_task("first", 25, seed=5))
    ll._promote("first", ll.searches["first"], 0, 0.0)  # as if restart 0 had jumped
    assert list(ll.library) == ["net_0"]
    before = _weights(ll)
    ll.train_step("second", cells_task("second", 25, seed=4))  # a search with net_0 held fixed
    assert all(torch.equal(x, y) for x, y in zip(before, _weights(ll)))
    ll.train_step("first", cells_task("first", 25, seed=6))  # a found program trains the networks it calls
    assert not all(torch.equal(x, y) for x, y in zip(before, _weights(ll)))


def test_a_task_with_two_new_networks_waits_for_the_library():
    two = SOURCE.replace("@Runtime", "@Learn([Tensor(6)], 3, hid_sizes=[4])\ndef net_1(img):\n    pass\n\n\n@Runtime")
    two = two.replace("db.set_to(net_0(grid[j]))", "db.set_to(net_1(grid[j]))")
    models = {"first": compile_source(SOURCE, filename="<cells>"), "second": compile_source(two, filename="<two>")}
    ll = learner(models=models)
    ll.hold_out("second", cells_task("second", 80, seed=3))
    assert np.isnan(ll.train_step("second", cells_task("second", 25, seed=4)))  # net_0 and net_1 both new
    assert ll.searches["second"].ticks == 0


def test_restarts_that_do_not_jump_within_their_budget_are_redrawn():
    never = JumpPolicy(delta=0.99, window=2, floor=1.0, refine_evals=0, budget_steps=10, solved=None)
    ll = learner(restarts=2, policy=never)
    ll.hold_out("first", cells_task("first", 80, seed=3))
    seeds = list(ll._search("first").seeds)
    for _ in range(10):
        ll.train_step("first", cells_task("first", 25, seed=4))
    search = ll.searches["first"]
    assert search.drawn == 4 and not set(search.seeds) & set(seeds)  # both re-drawn once, from fresh seeds
