"""A stored Program's listing is a name looked up in a fixed registry: nothing a store says is imported."""

from __future__ import annotations

import os
import sys

import pytest
from ntpt_dist.experiments import listings
from ntpt_dist.experiments.registry import load_model
from ntpt_dist.interpreter.model import compile_source
from ntpt_dist.interpreter.program import Program, listing_registry

TINY = "p = Param(3)\ny = Output(3)\ny.set_to(p)\n"


def stored(listing) -> dict:
    return {"source": TINY, "filename": "tiny.py", "hypers": {}, "params": {"p": 2}, "networks": {}, "meta": {},
            "listing": listing}


def test_the_registry_holds_the_projects_printers():
    assert listing_registry() == {"listing_2x2": listings.listing_2x2, "listing_math": listings.listing_math,
                                  "listing_maze": listings.listing_maze}


def test_a_registered_listing_is_stored_by_name_and_comes_back():
    model = load_model("math")
    params = {d.name: [0] * d.shape[0] if d.shape else 0 for d in model.flat.params}
    d = Program(model, params).to_dict()
    assert d["listing"] == "listing_math"
    back = Program.from_dict(d)
    assert back.model.listing is listings.listing_math and back.listing().startswith("L0: ")


@pytest.mark.parametrize("ref, printer", [
    ("ntpt_dist.experiments.listings:listing_2x2", "listing_2x2"),  # as older stores recorded them
    ("ntpt_dist.experiments.listings:listing_maze", "listing_maze"),
    ("listing_math", "listing_math"),
])
def test_known_names_resolve_also_in_the_older_form(ref, printer):
    assert Program.from_dict(stored(ref)).model.listing is listing_registry()[printer]


def test_other_listings_are_stored_as_the_default():
    model = compile_source(TINY, listing=lambda p: "custom")
    assert Program(model, {"p": 1}).to_dict()["listing"] is None
    assert Program(compile_source(TINY), {"p": 1}).to_dict()["listing"] is None


@pytest.mark.parametrize("ref", [None, "", "os:system", "listing_2x2:x", "ntpt_dist.experiments.listings:_net",
                                 "ntpt_dist.experiments.listings:MOVES", 7, ["os", "system"]])
def test_unknown_names_fall_back_to_the_source(ref, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    prog = Program.from_dict(stored(ref))
    assert prog.model.listing is None and prog.listing() == prog.source == "p = 2  # Param(3)\ny = Output(3)\ny.set_to(p)\n"
    assert calls == []


def test_a_module_named_by_a_store_is_never_imported(tmp_path, monkeypatch):
    mark = tmp_path / "imported"
    (tmp_path / "planted_listing.py").write_text(f"open({str(mark)!r}, 'w').close()\ndef show(p):\n    return 'x'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    prog = Program.from_dict(stored("planted_listing:show"))
    assert prog.listing() == prog.source
    assert "planted_listing" not in sys.modules and not mark.exists()
