"""The paper's task names as one adapter over the pipeline: name -> (model, data splits, recipe)."""

from __future__ import annotations

import pytest
from ntpt_dist.interpreter.errors import NtptError

from ntpt_dist import paper_tasks


def test_task_names_and_model_files_are_told_apart():
    assert all(paper_tasks.is_paper_task(n) for n in ("ADD2x2:top", "APPLY2x2:left", "MATH", "MAZE"))
    assert not any(paper_tasks.is_paper_task(n) for n in ("model.py", "SORT", "MATH.py"))


def test_a_first_add2x2_task_trains_net_0_alone_with_its_recipe(fake_data):
    task = paper_tasks.paper_task("ADD2x2:top", None, sizes={"train": 6, "val": 4, "test": 5})
    assert task.name == "ADD2x2:top" and task.model.filename.endswith("add2x2_first.py")
    assert set(task.model.flat.learns) == {"net_0"}
    assert {k: len(next(iter(v.values()))) for k, v in task.data.items()} == {"train": 6, "val": 4, "test": 5}
    assert task.recipe == {"augment_shift": 2, "batch_size": 128, "freeze_library": True}
    assert task.extra is None and "4 generated 'val' instances" == task.val_from


def test_a_task_that_would_add_two_new_networks_is_refused(fake_data):
    with pytest.raises(NtptError, match="one-new-network rule"):
        paper_tasks.paper_task("APPLY2x2:top", None, sizes={"train": 2, "val": 2, "test": 2})


def test_math_reports_accuracy_per_number_of_digits(fake_data):
    library = {"net_0": None, "net_1": None}  # MATH starts from the 2x2 tasks' networks (only the names count here)
    task = paper_tasks.paper_task("MATH", library, sizes={"train": 2, "val": 2, "test": 2})
    assert task.extra is not None and task.recipe["init_scale"] == 3.0 and task.model.hypers == {"N": 2}


def test_the_experiments_keep_their_name_for_the_paper_pipeline():
    from ntpt_dist.experiments import pipeline

    assert pipeline.search_and_merge is paper_tasks.search_and_merge and pipeline.demo is paper_tasks.demo
