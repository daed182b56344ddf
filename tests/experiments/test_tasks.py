"""Task generators: the arithmetic and maze oracles by hand, tasks on fake image sets, and leaks on the real data."""

from __future__ import annotations

import numpy as np
import pytest
from ntpt_dist.experiments import maze_tasks
from ntpt_dist.experiments.maze_tasks import EAST, HALT, NORTH, SOUTH, WEST, maze_walk
from ntpt_dist.experiments.tasks import DIVIDE, MINUS, PLUS, TIMES, TaskData, apply_op, make_task, task_names
from ntpt_dist.interpreter.errors import NtptError

# --- apply_op ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, op, b, expected",
    [
        (3, PLUS, 4, 7),
        (9, PLUS, 15, 5),  # 24 mod 19
        (18, PLUS, 1, 0),
        (5, MINUS, 2, 3),
        (2, MINUS, 5, 16),  # -3 mod 19
        (0, MINUS, 18, 1),
        (7, TIMES, 3, 2),  # 21 mod 19
        (18, TIMES, 18, 1),  # 324 = 17 * 19 + 1
        (7, DIVIDE, 2, 3),  # integer division
        (2, DIVIDE, 7, 0),
        (4, DIVIDE, 0, 18),  # division by zero gives M
        (0, DIVIDE, 0, 18),
    ],
)
def test_apply_op_by_hand(a, op, b, expected):
    assert apply_op(a, op, b) == expected
    assert isinstance(apply_op(a, op, b), int)


def test_apply_op_on_arrays_matches_it_on_ints():
    a, op, b = np.meshgrid(np.arange(19), np.arange(4), np.arange(19), indexing="ij")
    table = apply_op(a, op, b)
    assert table.dtype == np.int64 and table.shape == (19, 4, 19)
    assert table.min() >= 0 and table.max() <= 18
    for x, o, y in [(0, 3, 0), (17, 1, 18), (12, 2, 11), (13, 3, 4), (6, 0, 13)]:
        assert table[x, o, y] == apply_op(x, o, y)


# --- maze_walk ---------------------------------------------------------------------


def test_maze_walk_follows_signs_wraps_and_counts_moves():
    signs = np.array(
        [
            [EAST, EAST, SOUTH, WEST, NORTH],
            [HALT, WEST, WEST, NORTH, EAST],
            [SOUTH, NORTH, HALT, NORTH, NORTH],
        ]
    )
    assert maze_walk(signs, 4, 1, 14) == (0, 1, 1, True)  # east wraps from x=4 to x=0, onto the stop sign
    assert maze_walk(signs, 4, 0, 14) == (0, 1, 3, True)  # north wraps to y=2, north, east-wrap, stop
    # (0,2) south-wraps to (0,0), then (1,0) (2,0) (2,1) (1,1) (0,1): stop
    assert maze_walk(signs, 0, 2, 14) == (0, 1, 6, True)
    assert maze_walk(signs, 3, 2, 14) == (0, 1, 6, True)  # (3,1) (3,0) (2,0) (2,1) (1,1) (0,1)
    assert maze_walk(signs, 3, 2, 3) == (2, 0, 3, False)  # out of moves at (2,0)
    assert maze_walk(signs, 2, 2, 14) == (2, 2, 0, True)  # starts on a stop sign
    assert maze_walk(np.array([[EAST, WEST]]), 0, 0, 5) == (1, 0, 5, False)  # a loop never halts


def test_maze_walk_counts_path_len_modulo_15():
    signs = np.full((1, 20), EAST)
    signs[0, 16] = HALT
    assert maze_walk(signs, 0, 0, 30) == (16, 0, 1, True)  # 16 moves, register mod 15


def test_max_moves_matches_the_t_step_loop():
    assert maze_tasks.max_moves_for(45, 5, 3) == 14
    assert maze_tasks.max_moves_for(12, 5, 3) == 3  # halt after m moves is seen at step 3m + 1 <= T - 2
    assert maze_tasks.max_moves_for(45, 2, 2) == 3  # 4 cells: at most 3 moves through distinct cells


def test_random_mazes_halt_along_distinct_cells():
    rng = np.random.default_rng(3)
    signs, xs, ys, moves = maze_tasks.random_mazes(rng, 300, 5, 3, 14)
    assert signs.shape == (300, 3, 5) and signs.min() >= 0 and signs.max() <= 4
    assert set(moves.tolist()) == set(range(15))
    for grid, x, y, m in zip(signs, xs, ys, moves):
        visited = [(int(x), int(y))]
        while grid[visited[-1][1], visited[-1][0]] != HALT:
            visited.append(maze_tasks.step(*visited[-1], int(grid[visited[-1][1], visited[-1][0]]), 5, 3))
        assert len(visited) == m + 1 == len(set(visited))
    again = maze_tasks.random_mazes(np.random.default_rng(3), 300, 5, 3, 14)
    assert all(np.array_equal(u, v) for u, v in zip((signs, xs, ys, moves), again))


# --- tasks on fake image sets (fast, no data files) --------------------------------


def test_task_names_cover_the_paper():
    assert len(task_names()) == 11 and len(set(task_names())) == 11
    assert {"ADD2x2:top", "ADD2x2:right", "APPLY2x2:left", "APPLY2x2:bottom", "MATH", "SIGN", "MAZE"} <= set(task_names())


@pytest.mark.parametrize(
    "name, images, ints, outputs",
    [
        ("ADD2x2:top", {"grid": (2, 2, 28, 28)}, {}, {"result"}),
        ("APPLY2x2:right", {"grid": (2, 2, 28, 28)}, {"aux": (3,)}, {"result"}),
        ("MATH", {"tape": (3, 28, 28)}, {}, {"result"}),
        ("SIGN", {"img": (3, 32, 32)}, {}, {"dir"}),
        ("MAZE", {"img_grid": (3, 5, 3, 32, 32)}, {"init_X": (), "init_Y": ()}, {"final_X", "final_Y", "path_len", "is_halted_at_end"}),
    ],
)
def test_shapes_and_dtypes(fake_data, name, images, ints, outputs):
    task = make_task(name, "train", 7, seed=0)
    assert isinstance(task, TaskData) and len(task) == 7 and (task.name, task.split) == (name, "train")
    assert set(task.inputs) == set(images) | set(ints) and set(task.outputs) == outputs
    for key, shape in images.items():
        assert task.inputs[key].shape == (7,) + shape and task.inputs[key].dtype == np.float32
        assert task.labels[key].shape == task.ids[key].shape == (7,) + shape[: len(shape) - (3 if name in ("SIGN", "MAZE") else 2)]
    for key, shape in ints.items():
        assert task.inputs[key].shape == (7,) + shape and task.inputs[key].dtype == np.int64
    assert all(v.dtype == np.int64 and v.shape == (7,) for v in task.outputs.values())
    assert set(task.batch()) == set(task.inputs) | set(task.outputs)


def _cell_ids(images: np.ndarray) -> np.ndarray:
    """The fake sets paint each image with id / 10000: read the ids back from pixels."""
    return np.rint(images.reshape(images.shape[: images.ndim - 2] + (-1,))[..., 0] * 10_000).astype(np.int64)


def test_add2x2_sums_the_named_row_or_column(fake_data):
    fake_data(mnist=[9])  # every image is a 9
    assert set(make_task("ADD2x2:top", "val", 5, seed=0).outputs["result"].tolist()) == {18}
    fake_data()
    for side, cells in {"top": [(0, 0), (0, 1)], "left": [(0, 0), (1, 0)], "bottom": [(1, 0), (1, 1)], "right": [(0, 1), (1, 1)]}.items():
        task = make_task(f"ADD2x2:{side}", "train", 50, seed=1)
        digits = task.labels["grid"]
        expected = [int(d[cells[0]] + d[cells[1]]) for d in digits]
        assert task.outputs["result"].tolist() == expected
        assert np.array_equal(_cell_ids(task.inputs["grid"]), task.ids["grid"])  # images, labels and ids line up


def test_apply2x2_applies_the_operators_in_reading_order(fake_data):
    fake_data(operators=[DIVIDE])
    task = make_task("APPLY2x2:left", "train", 40, seed=0)
    for (d1, d2, d3), result in zip(task.inputs["aux"], task.outputs["result"]):
        first = 18 if d2 == 0 else d1 // d2
        assert result == (18 if d3 == 0 else first // d3)
    fake_data()
    task = make_task("APPLY2x2:bottom", "test", 60, seed=0)
    assert task.inputs["aux"].min() >= 0 and task.inputs["aux"].max() <= 9
    for aux, ops, result in zip(task.inputs["aux"], task.labels["grid"], task.outputs["result"]):
        assert result == apply_op(apply_op(aux[0], ops[1, 0], aux[1]), ops[1, 1], aux[2])


def test_math_evaluates_left_to_right_modulo_19(fake_data):
    fake_data(mnist=[7], operators=[MINUS])
    task = make_task("MATH", "test", 3, seed=0, digits=3)
    assert task.labels["tape"].tolist() == [[7, 11, 7, 11, 7]] * 3
    assert task.outputs["result"].tolist() == [12] * 3  # 7 - 7 - 7 = -7 = 12 (mod 19)
    fake_data(mnist=[9, 5], operators=[TIMES])
    task = make_task("MATH", "train", 20, seed=0, digits=4)
    for tape, result in zip(task.labels["tape"], task.outputs["result"]):
        assert result == (tape[0] * tape[2] * tape[4] * tape[6]) % 19  # no precedence issue with one operator
    one = make_task("MATH", "train", 4, seed=0, digits=1)
    assert one.inputs["tape"].shape == (4, 1, 28, 28) and np.array_equal(one.outputs["result"], one.labels["tape"][:, 0])


def test_maze_outputs_are_the_walk_on_the_sign_labels(fake_data):
    task = make_task("MAZE", "train", 100, seed=0)
    assert np.all(task.outputs["is_halted_at_end"] == 1) and task.outputs["path_len"].max() <= 14
    for i in range(100):
        walk = maze_walk(task.labels["img_grid"][i], task.inputs["init_X"][i], task.inputs["init_Y"][i], 14)
        assert walk == (task.outputs["final_X"][i], task.outputs["final_Y"][i], task.outputs["path_len"][i], True)
    assert np.array_equal(_cell_ids(task.inputs["img_grid"].reshape(100, 3, 5, 3, -1)), task.ids["img_grid"])
    small = make_task("MAZE", "val", 10, seed=0, W=3, H=2, T=12)
    assert small.inputs["img_grid"].shape == (10, 2, 3, 3, 32, 32) and small.outputs["path_len"].max() <= 3


def test_same_seed_same_data_other_seed_or_split_other_data(fake_data):
    for name in ("ADD2x2:left", "APPLY2x2:top", "MATH", "MAZE"):
        a, b = make_task(name, "train", 30, seed=5), make_task(name, "train", 30, seed=5)
        c = make_task(name, "train", 30, seed=6)
        for key in a.inputs:
            assert np.array_equal(a.inputs[key], b.inputs[key])
        key = next(iter(a.ids))
        assert np.array_equal(a.ids[key], b.ids[key]) and not np.array_equal(a.ids[key], c.ids[key])
        test = make_task(name, "test", 30, seed=5)
        assert not set(test.ids[key].ravel().tolist()) & set(a.ids[key].ravel().tolist())  # fake ids differ by split


def test_distinct_draws_n_instances_from_that_many_different_grids(fake_data):
    task = make_task("ADD2x2:top", "train", 500, seed=0, distinct=20)
    assert len(task) == 500
    grids, counts = np.unique(task.ids["grid"].reshape(500, -1), axis=0, return_counts=True)
    assert len(grids) == 20 and set(counts.tolist()) == {25}  # each distinct grid equally often
    apply = make_task("APPLY2x2:top", "train", 100, seed=0, distinct=100)
    assert len(np.unique(np.concatenate([apply.ids["grid"].reshape(100, -1), apply.inputs["aux"]], 1), axis=0)) == 100
    fake_data(mnist=[3])  # one image: only one distinct 1-digit tape exists
    with pytest.raises(NtptError, match="could not build 2 distinct MATH instances"):
        make_task("MATH", "train", 5, seed=0, distinct=2, digits=1)


def test_take_selects_instances(fake_data):
    task = make_task("APPLY2x2:right", "train", 10, seed=0)
    part = task.take(np.array([3, 1]))
    assert len(part) == 2 and np.array_equal(part.inputs["aux"], task.inputs["aux"][[3, 1]])
    assert np.array_equal(part.labels["grid"], task.labels["grid"][[3, 1]])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "ADD2x2:middle"}, "unknown task 'ADD2x2:middle'.*did you mean"),
        ({"split": "dev"}, "split must be one of train, val, test, got 'dev'"),
        ({"n": -1}, "n must be a non-negative int, got -1"),
        ({"seed": -1}, "seed must be a non-negative int, got -1"),
        ({"distinct": 0}, "distinct must be a positive int or None, got 0"),
        ({"digits": 3}, r"ADD2x2:top takes the sizes none, got \['digits'\]"),
        ({"name": "MATH", "digits": 0}, "MATH needs digits >= 1"),
        ({"name": "MAZE", "T": 2}, "MAZE needs W >= 1, H >= 1 and T >= 3"),
    ],
)
def test_bad_arguments_say_what_is_wrong(fake_data, kwargs, message):
    args = {"name": "ADD2x2:top", "split": "train", "n": 3, "seed": 0, **kwargs}
    with pytest.raises(NtptError, match=message):
        make_task(**args)


# --- the real data: no image of a test grid was seen in training -------------------


@pytest.mark.parametrize("name", ["ADD2x2:top", "APPLY2x2:left", "MATH", "MAZE"])
def test_no_train_test_leak_by_image_identity(real_data_dir, name):
    train = make_task(name, "train", 300, seed=0, data_dir=real_data_dir)
    test = make_task(name, "test", 300, seed=0, data_dir=real_data_dir)
    key = next(iter(train.ids))
    for kind in ((lambda lab: lab < 10), (lambda lab: lab >= 10)) if name == "MATH" else ((lambda lab: lab >= 0),):
        seen = set(train.ids[key][kind(train.labels[key])].tolist())
        assert seen and not seen & set(test.ids[key][kind(test.labels[key])].tolist())


def test_real_math_test_sets_for_long_tapes(real_data_dir):
    task = make_task("MATH", "test", 50, seed=0, data_dir=real_data_dir, digits=16)
    assert task.inputs["tape"].shape == (50, 31, 28, 28)
    labels = task.labels["tape"]
    assert (labels[:, 0::2] < 10).all() and (labels[:, 1::2] >= 10).all()
    for tape, result in zip(labels, task.outputs["result"]):
        value = int(tape[0])
        for k in range(1, 16):
            value = apply_op(value, int(tape[2 * k - 1]) - 10, int(tape[2 * k]))
        assert result == value


def test_sign_labels_are_the_image_classes_drawn_evenly(fake_data):
    task = make_task("SIGN", "train", 500, seed=0)
    assert np.array_equal(task.outputs["dir"], task.labels["img"])  # the answer is the sign's own class
    counts = np.bincount(task.outputs["dir"], minlength=5)
    assert counts.min() > 60  # each of the 5 classes about 100 times, the stop sign included
