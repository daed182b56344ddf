"""Task names -> MLflow names and folders: injective, escaped, and a clear error for what cannot be stored."""

from __future__ import annotations

import os

import pytest
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.library_store.api import LibraryStore, best_program
from ntpt_dist.library_store.naming import MAX_ESCAPED, equals_filter, escape, program_model, task_folder, unescape

from .helpers import program

LOOKALIKES = ["A:B", "A/B", "A-B", "A_B", "A~3AB", "A.B", "it's", 'say "hi"', "back\\slash", "..", ".", "a b",
              "Ä ö", "emoji 🙂", "%41", "ntpt.program.A"]


def test_the_mapping_is_injective_reversible_and_safe_as_a_name_and_a_folder():
    escaped = [escape(task) for task in LOOKALIKES]
    assert len(set(escaped)) == len(LOOKALIKES)
    for task, name in zip(LOOKALIKES, escaped):
        assert unescape(name) == task
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-~"), name
        assert not name.startswith("."), name  # never '.', '..' or a hidden folder
        assert task_folder(task) == name


def test_the_paper_tasks_keep_their_registered_names():
    # stores written before the mapping was made injective register these names; they must still be found
    assert program_model("ADD2x2:top") == "ntpt.program.ADD2x2-top"
    assert program_model("APPLY2x2:left") == "ntpt.program.APPLY2x2-left"
    assert [program_model(t) for t in ("MATH", "MAZE")] == ["ntpt.program.MATH", "ntpt.program.MAZE"]


@pytest.mark.parametrize("task, rule", [
    ("x" * 300, "too long"), ("ä" * 40, "too long"), ("a\nb", "control character"), ("tab\there", "control character"),
    ("", "non-empty string"), (None, "non-empty string"), (7, "non-empty string"),
])
def test_what_cannot_be_stored_is_a_clear_error(task, rule):
    with pytest.raises(NtptError, match=rule) as error:
        program_model(task)
    assert "fix:" in str(error.value)


def test_the_longest_name_fits_and_one_more_character_does_not():
    assert program_model("x" * MAX_ESCAPED)
    with pytest.raises(NtptError, match="too long"):
        program_model("x" * (MAX_ESCAPED + 1))


def test_a_filter_value_cannot_close_its_quotes():
    assert equals_filter("name", "ntpt.program.A~27B") == "name = 'ntpt.program.A~27B'"
    for value in ("x' OR name LIKE '%", "back\\"):
        with pytest.raises(NtptError, match="cannot be searched for"):
            equals_filter("name", value)


@pytest.fixture
def store_dir(tmp_path):
    return tmp_path / "store"


def test_lookalike_tasks_keep_their_own_programs_on_both_read_paths(store_dir):
    store = LibraryStore(str(store_dir))
    for i, task in enumerate(LOOKALIKES):
        version = store.add_program(task, program({}, p=i % 3), val_acc=i / 100)
        store.set_program_champion(task, version)
    assert store.tasks() == sorted(LOOKALIKES)
    uri = f"sqlite:///{store_dir}/mlflow.db"
    for i, task in enumerate(LOOKALIKES):
        assert store.program_versions(task) == [1], task
        assert best_program(task, store).accuracy == i / 100, task  # the MLflow client
        assert best_program(task, uri).accuracy == i / 100, task  # the direct sqlite read
    # nothing was written outside the store's database and artifact folder ('..' once wrote beside mlflow.db)
    assert {entry for entry in os.listdir(store_dir) if not entry.startswith("mlflow.db")} == {"artifacts"}


def test_a_task_that_was_never_stored_is_not_found_under_a_lookalike(store_dir):
    store = LibraryStore(str(store_dir))
    store.set_program_champion("A:B", store.add_program("A:B", program({}), val_acc=0.5))
    for other in ("A/B", "A-B"):
        with pytest.raises(NtptError, match="has no champion program"):
            best_program(other, store)
        with pytest.raises(NtptError, match="has no champion program"):
            best_program(other, f"sqlite:///{store_dir}/mlflow.db")


def test_a_name_that_cannot_be_stored_fails_before_anything_is_written(store_dir):
    store = LibraryStore(str(store_dir))
    with pytest.raises(NtptError, match="too long"):
        store.start_search("x" * 300, {"restarts": 1})
    with pytest.raises(NtptError, match="too long"):
        store.add_program("x" * 300, program({}), val_acc=0.5)
    assert store.client.search_experiments(filter_string="name LIKE 'ntpt/%'") == []


def test_an_older_stores_lookalike_is_refused_not_returned(store_dir, monkeypatch):
    # releases before escaping registered 'A-B' as ntpt.program.A-B, which is now the name of 'A:B'
    from ntpt_dist.library_store import mlflow_store

    store = LibraryStore(str(store_dir))
    monkeypatch.setattr(mlflow_store, "program_model", lambda task: "ntpt.program." + task.replace(":", "-"))
    store.set_program_champion("A-B", store.add_program("A-B", program({}), val_acc=0.5))
    monkeypatch.undo()
    for where in (store, f"sqlite:///{store_dir}/mlflow.db"):
        with pytest.raises(NtptError, match=r"stored for task 'A-B', not 'A:B'.*rename .*'ntpt.program.A~2DB'"):
            best_program("A:B", where)


@pytest.mark.parametrize("task, rule", [("x" * 300, "too long"), ("a\nb", "control character"),
                                        (None, "non-empty string")])
def test_the_memory_store_refuses_the_names_the_mlflow_store_refuses(task, rule):
    from ntpt_dist.library_store.memory import MemoryStore

    store = MemoryStore()
    for write in (lambda: store.start_search(task, {"restarts": 1}),
                  lambda: store.add_program(task, program({}), val_acc=0.5),
                  lambda: store.program_versions(task)):
        with pytest.raises(NtptError, match=rule):
            write()
    assert store.tasks() == []


def test_a_series_name_cannot_close_its_filter_quotes(store_dir):
    store = LibraryStore(str(store_dir))
    with pytest.raises(NtptError, match="a series name is 1-100 letters"):  # the public rule
        store.log_evaluation("life' or tags.`ntpt.role` = 'store", {"A": 0.5})
    # and the filter itself, whatever its caller checked, is built by equals_filter
    with pytest.raises(NtptError, match="cannot be searched for in MLflow"):
        store._series_run("life' or tags.`ntpt.role` = 'store")
    assert store.log_evaluation("life-1", {"A": 0.5}).step == 1
