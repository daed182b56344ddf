"""The street-sign maze by the library route: LOOK learned on SIGN, then only the maze's program searched."""

from pathlib import Path

import numpy as np
import pytest
from ntpt_dist.experiments import maze_tasks, registry
from ntpt_dist.experiments.tasks import make_task
from ntpt_dist.interpreter.model import compile_file
from ntpt_dist.interpreter.program import Program

MAZE_INT = Path(__file__).resolve().parents[1] / "interpreter" / "models" / "maze_int.py"

FIG1_LOOP = [0, 2, 3]  # INC, MOVE, LOOK in some order


def test_run_program_is_the_compiled_maze_with_exact_signs():
    # the equivalence check of found programs (maze_tasks.run_program) against the compiler's semantics
    T, W, H = 10, 3, 2
    model = compile_file(MAZE_INT, {"T": T, "W": W, "H": H})
    rng = np.random.default_rng(0)
    signs, xs, ys, _ = maze_tasks.random_mazes(rng, 20, W, H, maze_tasks.max_moves_for(T, W, H))
    signs[:5] = rng.integers(0, 5, size=(5, H, W))  # and grids whose walks need not halt
    for _ in range(25):
        params = {"instr": rng.integers(0, 4, 3).tolist(), "goto": rng.integers(0, 3, 3).tolist()}
        out = Program(model, params).run({"sign_grid": signs, "init_X": xs, "init_Y": ys})
        for i in range(len(signs)):
            walk = maze_tasks.run_program(params["instr"], params["goto"], signs[i], xs[i], ys[i], T)
            got = (out["final_X"][i], out["final_Y"][i], out["path_len"][i], out["is_halted_at_end"][i])
            assert got == (walk.x, walk.y, walk.path_len, int(walk.halted)), (params, i)


@pytest.fixture(scope="module")
def look(real_data_dir):
    """LOOK from a short SIGN training on real street signs."""
    sign = registry.load_model("sign")
    train = make_task("SIGN", "train", 2000, seed=0, data_dir=real_data_dir).batch()
    val = make_task("SIGN", "val", 300, seed=0, data_dir=real_data_dir).batch()
    program = sign.train(train, val_data=val, restarts=1, steps=400, seed=0, batch_size=64).best_program()
    test = make_task("SIGN", "test", 500, seed=0, data_dir=real_data_dir).batch()
    assert program.accuracy(test) > 0.9
    return program


def test_a_small_maze_search_with_the_library_look_finds_the_fig1_loop(look, real_data_dir):
    sizes = {"T": 9, "W": 3, "H": 2}  # paths of up to 2 moves
    train = make_task("MAZE", "train", 200, seed=0, data_dir=real_data_dir, **sizes).batch()
    val = make_task("MAZE", "val", 100, seed=0, data_dir=real_data_dir, **sizes).batch()
    maze = registry.load_model("maze", **sizes)
    result = maze.train(train, val_data=val, restarts=4, steps=300, seed=0, library=look.networks,
                        **registry.recipe("MAZE"))
    program = result.best_program()
    assert sorted(program.params["instr"]) == FIG1_LOOP
    assert program.networks["LOOK"]["state"].keys() == look.networks["LOOK"]["state"].keys()
    for key, weights in look.networks["LOOK"]["state"].items():  # held fixed: the library's LOOK, unchanged
        assert np.array_equal(program.networks["LOOK"]["state"][key], weights)
    # the same program walks longer paths on a larger maze, exactly but for LOOK's misreadings
    bigger = {"T": 30, "W": 5, "H": 3}
    test = make_task("MAZE", "test", 100, seed=0, data_dir=real_data_dir, **bigger).batch()
    assert program.accuracy(test, hypers=bigger) > 0.6


def test_the_correctness_check_takes_the_fig1_loops_and_nothing_else():
    from ntpt_dist.experiments.maze_library import check_mazes, is_fig1_loop

    mazes = check_mazes(seed=0, n=50)
    assert is_fig1_loop({"instr": [3, 2, 0], "goto": [1, 2, 0]}, mazes)  # LOOK, MOVE, INC
    assert is_fig1_loop({"instr": [3, 0, 2], "goto": [1, 2, 0]}, mazes)  # LOOK, INC, MOVE counts the same moves
    assert not is_fig1_loop({"instr": [2, 0, 3], "goto": [1, 2, 0]}, mazes)  # moves east before the first LOOK
    assert not is_fig1_loop({"instr": [3, 2, 1], "goto": [1, 2, 0]}, mazes)  # DEC: the path length counts down
