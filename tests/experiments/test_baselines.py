"""Baselines: shapes, learning a trivially learnable task, PNN freezing, MTNN sharing, the LSTM's library start, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ntpt_dist.experiments.baselines import BaselineConfig, Learner, library_signature, mlp, mlp_to_netstate
from ntpt_dist.experiments.baselines_2x2 import MTNN, PNN, Indep
from ntpt_dist.experiments.baselines_math import LSTMBaseline, accuracy_by_length, train_lstm
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.interpreter.netfn import mlp_scores

from .synthetic import grid_task, math_task

torch.set_num_threads(1)
TINY = BaselineConfig(embed_hidden=(32,), head_hidden=(32, 32), lr=1e-2)
TASKS = ["ADD2x2:top", "ADD2x2:left", "APPLY2x2:top"]
BUILDERS = {
    "indep": lambda tasks, config=TINY, seed=0: Indep(tasks, config=config, seed=seed),
    "pnn": lambda tasks, config=TINY, seed=0: PNN(tasks, config=config, seed=seed),
    "mtnn1": lambda tasks, config=TINY, seed=0: MTNN(tasks, depth="mtnn1", config=config, seed=seed),
    "mtnn2": lambda tasks, config=TINY, seed=0: MTNN(tasks, depth="mtnn2", config=config, seed=seed),
}


def params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def train(learner, task: str, steps: int, seed: int = 0, batch: int = 32) -> list[float]:
    data = grid_task(task, steps * batch, seed)
    return [learner.train_step(task, data.take(slice(i * batch, (i + 1) * batch))) for i in range(steps)]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_scores_have_one_row_of_19_per_instance_for_every_task(name):
    learner = BUILDERS[name](TASKS)
    assert isinstance(learner, Learner)
    for task in TASKS:
        data = grid_task(task, 5, seed=1)
        assert learner.scores(task, data).shape == (5, 19)
        assert 0.0 <= learner.accuracy(task, data) <= 1.0


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("task", ["ADD2x2:left", "APPLY2x2:top"])
def test_each_baseline_learns_a_trivially_learnable_task(name, task):
    learner = BUILDERS[name](["ADD2x2:top", task] if task != "ADD2x2:top" else [task])
    test = grid_task(task, 300, seed=99)
    before = learner.accuracy(task, test)
    losses = train(learner, task, steps=250)
    after = learner.accuracy(task, test)
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    assert after > 0.9 and after > before + 0.4


def test_same_seed_same_learner_and_different_seed_different():
    a, b, c = (BUILDERS["pnn"](TASKS, seed=s) for s in (3, 3, 4))
    data = grid_task("ADD2x2:left", 8, seed=0)
    assert np.array_equal(a.scores("ADD2x2:left", data), b.scores("ADD2x2:left", data))
    assert not np.allclose(a.scores("ADD2x2:left", data), c.scores("ADD2x2:left", data))


def test_pnn_training_a_later_task_leaves_earlier_columns_unchanged():
    pnn = BUILDERS["pnn"](TASKS)
    train(pnn, "ADD2x2:top", steps=5)
    column0, column1 = params(pnn.columns[0]), params(pnn.columns[1])
    train(pnn, "ADD2x2:left", steps=5)
    assert all(torch.equal(v, dict(pnn.columns[0].named_parameters())[k]) for k, v in column0.items())
    changed = [k for k, v in column1.items() if not torch.equal(v, dict(pnn.columns[1].named_parameters())[k])]
    assert any(k.startswith("laterals.") for k in changed) and any(k.startswith("layers.") for k in changed)


def test_pnn_laterals_start_damped_by_a_learned_scale():
    pnn = BUILDERS["pnn"](TASKS)
    scales = pnn.columns[2].lateral_scales
    assert sorted(scales) == sorted(pnn.columns[2].laterals) and len(pnn.columns[0].lateral_scales) == 0
    assert all(a.item() == pytest.approx(0.01) for a in scales.values())
    learned = {id(p) for g in pnn.optimizer.param_groups for p in g["params"]}
    assert all(id(a) in learned for a in scales.values())
    train(pnn, "APPLY2x2:top", steps=5)
    assert all(a.item() != pytest.approx(0.01) for a in scales.values())  # the scales learn
    unscaled = PNN(TASKS, config=TINY, lateral_scale=None)
    damped = PNN(TASKS, config=TINY)  # same seed: same weights, only the laterals' factor differs
    data = grid_task("APPLY2x2:top", 8, seed=0)
    moved = {}
    for name, learner in (("unscaled", unscaled), ("damped", damped)):
        before = learner.scores("APPLY2x2:top", data)
        with torch.no_grad():
            learner.columns[0].layers[0].weight.mul_(2.0)
        moved[name] = float(np.abs(learner.scores("APPLY2x2:top", data) - before).max())
    assert len(unscaled.columns[2].lateral_scales) == 0
    assert 0 < moved["damped"] < 0.1 * moved["unscaled"]


def test_pnn_later_column_reads_earlier_columns_through_laterals():
    pnn = BUILDERS["pnn"](TASKS)
    data = grid_task("APPLY2x2:top", 8, seed=0)
    before = pnn.scores("APPLY2x2:top", data)
    with torch.no_grad():
        pnn.columns[0].layers[0].weight.mul_(2.0)  # an earlier column's change reaches the later one
    assert not np.allclose(before, pnn.scores("APPLY2x2:top", data))
    assert sorted({k.split("_")[1] for k in pnn.columns[2].laterals}) == ["0", "1"]
    assert len(pnn.columns[0].laterals) == 0


def test_indep_columns_share_nothing():
    indep = BUILDERS["indep"](TASKS)
    data = grid_task("ADD2x2:top", 8, seed=0)
    before = indep.scores("ADD2x2:top", data)
    train(indep, "ADD2x2:left", steps=5)
    assert np.array_equal(before, indep.scores("ADD2x2:top", data))


def test_mtnn_shares_net_0_across_digit_tasks_and_keeps_net_1_for_operators():
    mtnn = BUILDERS["mtnn1"](TASKS)
    assert [mtnn.nets_for(t) for t in TASKS] == [("net_0",), ("net_0",), ("net_1",)]
    data = grid_task("ADD2x2:top", 8, seed=0)
    before, nets = mtnn.scores("ADD2x2:top", data), params(mtnn.perceptual)
    top_head = params(mtnn.heads[0])
    train(mtnn, "ADD2x2:left", steps=5)
    after = params(mtnn.perceptual)
    assert not torch.equal(nets["net_0.0.weight"], after["net_0.0.weight"])  # the shared digit net moved ...
    assert all(torch.equal(nets[k], after[k]) for k in nets if k.startswith("net_1."))  # ... the operator net did not
    assert all(torch.equal(v, dict(mtnn.heads[0].named_parameters())[k]) for k, v in top_head.items())
    assert not np.allclose(before, mtnn.scores("ADD2x2:top", data))  # so the other digit task's answers changed


def test_mtnn_shared_routing_lets_operator_tasks_change_the_digit_net():
    mtnn = MTNN(TASKS, depth="mtnn1", config=TINY, routing="shared")
    assert [mtnn.nets_for(t) for t in TASKS] == [("net_0",), ("net_0", "net_1"), ("net_0", "net_1")]
    assert [head[0].in_features for head in mtnn.heads] == [40, 56, 56 + 30]
    data = grid_task("ADD2x2:top", 8, seed=0)
    before, nets = mtnn.scores("ADD2x2:top", data), params(mtnn.perceptual)
    train(mtnn, "APPLY2x2:top", steps=5)
    after = params(mtnn.perceptual)
    assert all(not torch.equal(nets[k], after[k]) for k in ("net_0.0.weight", "net_1.0.weight"))
    assert not np.allclose(before, mtnn.scores("ADD2x2:top", data))  # the first task's answers moved: room to forget
    with pytest.raises(NtptError, match="routing"):
        MTNN(TASKS, routing="both", config=TINY)


def test_mtnn_perceptual_nets_learn_100x_slower():
    mtnn = BUILDERS["mtnn1"](TASKS)
    lrs = [group["lr"] for group in mtnn.optimizer.param_groups]
    assert lrs == pytest.approx([TINY.lr * 0.01, TINY.lr])
    perceptual = {id(p) for p in mtnn.perceptual.parameters()}
    assert {id(p) for p in mtnn.optimizer.param_groups[0]["params"]} == perceptual


def test_each_baseline_runs_at_its_tuned_rate_unless_one_is_given():
    small = BaselineConfig(embed_hidden=(8,), head_hidden=(8,))
    assert small.lr is None  # None: the learner's own tuned rate (docs/baselines.md)
    built = {name: BUILDERS[name](TASKS, config=small) for name in BUILDERS}
    expected = {"indep": [3e-3], "pnn": [3e-3], "mtnn1": [1e-4, 1e-2], "mtnn2": [1e-4, 1e-2]}
    for name, learner in built.items():
        assert [g["lr"] for g in learner.optimizer.param_groups] == pytest.approx(expected[name]), name
    assert {name: learner.config.lr for name, learner in built.items()} == pytest.approx(
        {"indep": 3e-3, "pnn": 3e-3, "mtnn1": 1e-2, "mtnn2": 1e-2})  # the config as run
    given = BaselineConfig(embed_hidden=(8,), head_hidden=(8,), lr=5e-4)
    assert [g["lr"] for g in BUILDERS["mtnn2"](TASKS, config=given).optimizer.param_groups] == pytest.approx([5e-6, 5e-4])
    assert [g["lr"] for g in BUILDERS["pnn"](TASKS, config=given).optimizer.param_groups] == pytest.approx([5e-4])
    assert LSTMBaseline(hidden=4, layers=1, config=small).config.lr == pytest.approx(1e-3)


@pytest.mark.parametrize("embedding", ["softmax", "linear"])
def test_mtnn_heads_read_the_shared_nets_class_distributions(embedding):
    mtnn = MTNN(TASKS, depth="mtnn2", config=TINY, embedding=embedding)
    seen = {}
    for task, head in zip(TASKS, mtnn.heads):
        head[0].register_forward_pre_hook(lambda module, args, task=task: seen.__setitem__(task, args[0].detach()))
        mtnn.scores(task, grid_task(task, 6, seed=2))
    digits = seen["ADD2x2:top"].reshape(6, 4, 10)
    operators = seen["APPLY2x2:top"][:, :16].reshape(6, 4, 4)  # then the 30 one-hot aux features
    for cells in (digits, operators):
        sums = cells.sum(-1)
        if embedding == "softmax":
            assert bool((cells >= 0).all()) and torch.allclose(sums, torch.ones_like(sums), atol=1e-5)
        else:
            assert not torch.allclose(sums, torch.ones_like(sums), atol=1e-2)
    assert MTNN(TASKS, config=TINY).embedding == "softmax"
    with pytest.raises(NtptError, match="embedding"):
        MTNN(TASKS, config=TINY, embedding="tanh")


def test_mtnn2_heads_are_one_hidden_layer_for_add_and_three_for_apply():
    config = BaselineConfig(embed_hidden=(8,))
    depth = {
        d: [sum(isinstance(m, torch.nn.Linear) for m in head) - 1 for head in MTNN(TASKS, depth=d, config=config).heads]
        for d in ("mtnn1", "mtnn2")
    }
    assert depth == {"mtnn1": [3, 3, 3], "mtnn2": [1, 1, 3]}


def test_mtnn_library_runs_like_the_interpreters_mlp():
    mtnn = BUILDERS["mtnn2"](TASKS)
    library = mtnn.library()
    assert library["net_0"]["signature"] == library_signature("net_0", (28, 28), (32,)) == "(T28x28)->10|32"
    images = grid_task("ADD2x2:top", 3, seed=0).inputs["grid"].reshape(-1, 784)
    expected = mtnn.perceptual["net_0"](torch.from_numpy(images)).detach().numpy()
    np.testing.assert_allclose(mlp_scores(library["net_0"]["state"], images), expected, rtol=1e-5, atol=1e-5)


def test_lstm_starts_from_the_given_library_and_refuses_a_misfit():
    config = BaselineConfig(embed_hidden=(8,))
    library = MTNN(["ADD2x2:top"], config=config, seed=5).library()
    lstm = LSTMBaseline(library, hidden=8, layers=2, config=config)
    for name, net in lstm.perceptual.items():
        np.testing.assert_array_equal(mlp_to_netstate(net, "")["state"]["w1"], library[name]["state"]["w1"])
    wrong = {"net_0": mlp_to_netstate(mlp([784, 9, 10]), library_signature("net_0", (28, 28), (9,)))}
    with pytest.raises(NtptError, match="signature"):
        LSTMBaseline(wrong, config=config)
    wrong["net_0"]["signature"] = library["net_0"]["signature"]
    with pytest.raises(NtptError, match="shape"):
        LSTMBaseline(wrong, config=config)
    with pytest.raises(NtptError, match="net_2"):
        LSTMBaseline({"net_2": library["net_0"]}, config=config)


def band_reader() -> dict:
    """A hand-made net_0 NetState that reads the synthetic band images: class c <- mean of rows 4c..4c+3."""
    w0 = np.zeros((28, 28, 10), np.float32)
    for c in range(7):
        w0[4 * c : 4 * c + 4, :, c] = 1 / 112
    state = {"w0": w0.reshape(784, 10), "b0": np.zeros(10, np.float32), "w1": 20 * np.eye(10, dtype=np.float32), "b1": np.zeros(10, np.float32)}
    return {"signature": library_signature("net_0", (28, 28), (10,)), "state": state}


def test_lstm_reads_tapes_of_any_length_and_learns_a_sum_from_a_library():
    stacked = LSTMBaseline(hidden=16, layers=3, dropout=0.5, config=BaselineConfig(embed_hidden=(32,)))
    for digits in (1, 3):
        assert stacked.scores("MATH", math_task(4, seed=0, digits=digits)).shape == (4, 19)
    # one layer learns within a test's budget (stacks need longer); net_0 starts as a working digit reader
    lstm = LSTMBaseline({"net_0": band_reader()}, hidden=32, layers=1, config=BaselineConfig(embed_hidden=(10,), lr=3e-3))
    train_sets = {d: math_task(2000, seed=d, digits=d) for d in (1, 2)}
    losses = train_lstm(lstm, train_sets, steps=400, batch_size=32)
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    accuracy = accuracy_by_length(lstm, {d: math_task(300, seed=10 + d, digits=d) for d in (2, 1)})
    assert list(accuracy) == [1, 2] and min(accuracy.values()) > 0.9
    with pytest.raises(NtptError, match="non-empty"):
        train_lstm(lstm, {}, steps=1)


def test_user_errors_name_the_rule_and_the_fix():
    indep = BUILDERS["indep"](["ADD2x2:top", "APPLY2x2:top"])
    apply = grid_task("APPLY2x2:top", 4, seed=0)
    with pytest.raises(NtptError, match="built for tasks"):
        indep.accuracy("ADD2x2:left", grid_task("ADD2x2:left", 4, seed=0))
    with pytest.raises(NtptError, match="'aux'"):
        indep.accuracy("APPLY2x2:top", apply.__class__("APPLY2x2:top", "test", {"grid": apply.inputs["grid"]}, apply.outputs, {}, {}))
    bad = apply.__class__("APPLY2x2:top", "test", {**apply.inputs, "aux": apply.inputs["aux"] + 10}, apply.outputs, {}, {})
    with pytest.raises(NtptError, match=r"0\.\.9"):
        indep.train_step("APPLY2x2:top", bad)
    small = apply.__class__("APPLY2x2:top", "test", {**apply.inputs, "grid": apply.inputs["grid"][..., :14]}, apply.outputs, {}, {})
    with pytest.raises(NtptError, match="image_shape"):
        indep.accuracy("APPLY2x2:top", small)
    with pytest.raises(NtptError, match="at least one"):
        indep.accuracy("APPLY2x2:top", apply.take(slice(0, 0)))
    with pytest.raises(NtptError, match="handles"):
        Indep(["MATH"], config=TINY)
    with pytest.raises(NtptError, match="optimizer"):
        BaselineConfig(optimizer="sgd")
    with pytest.raises(NtptError, match="depth"):
        MTNN(["ADD2x2:top"], depth="mtnn3", config=TINY)
