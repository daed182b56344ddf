"""ntpt_dist.LibraryStore / best_program / load_library."""

from __future__ import annotations

import numpy as np
import pytest
from ntpt_dist.interpreter.errors import NtptError
from ntpt_dist.library_store import api
from ntpt_dist.library_store.memory import MemoryStore

import ntpt_dist

from .helpers import net, program, quality


def test_factory_picks_the_backend(tmp_path, monkeypatch):
    assert isinstance(api.LibraryStore("memory://"), MemoryStore)
    monkeypatch.setenv("NTPT_STORE_DIR", str(tmp_path / "store"))
    store = api.LibraryStore()
    assert store.uri == f"sqlite:///{tmp_path}/store/mlflow.db"
    assert (tmp_path / "store" / "artifacts").is_dir()  # explicit artifact folder, never ./mlruns
    assert ntpt_dist.LibraryStore is api.LibraryStore and ntpt_dist.best_program is api.best_program


def test_factory_takes_a_folder_as_an_embedded_store(tmp_path):
    store = api.LibraryStore(str(tmp_path / "store"))
    assert store.uri == f"sqlite:///{tmp_path}/store/mlflow.db"


def test_factory_rejects_an_unknown_scheme():
    with pytest.raises(NtptError, match=r"store URI starts with .* but got 'ftp://x'"):
        api.LibraryStore("ftp://x")


def test_best_program_carries_the_stored_numbers():
    store = MemoryStore()
    out = store.merge("MATH", program({"net_0": net(0.97)}), lambda t, lib: 0.97, test_acc=0.9, seed=11)
    prog = api.best_program("MATH", store)
    assert (prog.accuracy, prog.test_accuracy, prog.library_version) == (0.97, 0.9, {"net_0": 1})
    assert (prog.task, prog.version, prog.seed) == ("MATH", out.program.version, 11)
    assert "accuracy=0.9700" in repr(prog)
    with pytest.raises(NtptError, match="task 'ADD' has no champion program.*\\['MATH'\\]"):
        api.best_program("ADD", store)


def test_load_library_champion_and_pinned_versions():
    store = MemoryStore()
    for q in (0.2, 0.4):
        store.add_net_version("net_0", net(q))
    store.set_champion("net_0", 2)
    assert quality(api.load_library(store)["net_0"]) == pytest.approx(0.4)
    assert quality(api.load_library(store, {"net_0": 1})["net_0"]) == pytest.approx(0.2)
    assert api.load_library("memory://") == {}


def test_best_program_runs():
    store = MemoryStore()
    store.merge("T", program({}, p=0), lambda t, lib: 1.0)
    prog = api.best_program("T", store)
    x = np.array([2, 0, 1])
    np.testing.assert_array_equal(prog.run({"x": x})["y"], x)
    assert prog.evaluate({"x": x, "y": x}) == 1.0 and prog.params == {"p": 0}
