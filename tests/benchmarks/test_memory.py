"""benchmarks/memory.py: the tensor accounting on a tiny maze, the fit, the process readings and the recorded JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ntpt_dist.interpreter.engine import RestartBlock, config_with, restart_seed  # noqa: E402
from ntpt_dist.interpreter.netfn import random_netstate  # noqa: E402

import benchmarks.memory as bm  # noqa: E402
from benchmarks.interpreter_throughput import random_data  # noqa: E402
from benchmarks.memory import fit_line, reset_peak, status_bytes, summarise, tensor_accounting  # noqa: E402
from tests.interpreter.flatmodels import maze  # noqa: E402

CELLS, IMG, BATCH = 4, 4, 3  # a 2x2 grid of 4-float "images", minibatches of 3


def tiny_block(slots: int, frozen: bool = False) -> RestartBlock:
    flat = maze(T=3, W=2, H=2, img=(IMG,), hid=(3,))
    data = random_data(flat, 8, np.random.default_rng(0))
    library = {"LOOK": random_netstate(flat.learns["LOOK"], np.random.default_rng(0))} if frozen else None
    block = RestartBlock(flat, data, slots=slots, config=config_with(batch_size=BATCH, freeze_library=frozen),
                         library=library)
    for k in range(slots):
        block.reset(k, restart_seed(0, k))
    return block


def test_accounting_counts_the_training_tensors_exactly():
    for slots in (2, 5):
        block = tiny_block(slots)
        acc = tensor_accounting(block)
        trained = sum(t.numel() * t.element_size() for _, t, _ in block.optimizer.tensors)
        assert acc["params_trained"] == acc["grads"] == trained
        assert acc["adam_moments"] == 2 * trained
        # per slot and instance: 2 Inputs and 4 Outputs (int64), the image grid (float32)
        assert acc["minibatch"] == slots * BATCH * (2 * 8 + 4 * 8 + CELLS * IMG * 4)
        assert acc["saved_activations"] > 0 and acc["params_fixed"] == 0
        assert acc["must_hold"] == sum(acc[k] for k in ("params_trained", "grads", "adam_moments", "minibatch",
                                                        "saved_activations"))
        assert block.steps.tolist() == [1] * slots  # it trained one step to count them


def test_saved_activations_grow_with_the_slots_and_leave_out_the_parameters():
    small, large = tensor_accounting(tiny_block(2)), tensor_accounting(tiny_block(8))
    assert large["saved_activations"] > 3 * small["saved_activations"]
    # the LOOK weights are saved by the matmuls: counted as parameters, not as activations
    assert large["saved_activations"] < large["must_hold"] - large["params_trained"] - large["grads"]


def test_a_frozen_library_is_held_but_not_trained():
    block = tiny_block(3, frozen=True)
    acc = tensor_accounting(block)
    one_copy = sum(t.untyped_storage().nbytes() for _, t, _ in block.lowered.nets["LOOK"].tensors())
    assert acc["params_fixed"] == one_copy  # held once for the block's 3 slots, not once per slot
    assert one_copy * 3 == sum(t.numel() * t.element_size() for _, t, _ in block.lowered.nets["LOOK"].tensors())
    assert acc["params_trained"] == sum(t.numel() * 4 for t in block.lowered.logits.values())


def test_fit_line_and_summary():
    assert fit_line([1, 8, 64], [110, 180, 740]) == {"fixed": 100.0, "per_slot": 10.0, "max_residual": 0.0}
    acc = lambda r: {k: r * 10 for k in ("params_trained", "grads", "adam_moments", "minibatch",  # noqa: E731
                                         "saved_activations", "params_fixed", "optimizer_buffers", "training_data")}
    rows = [{"restarts": r, "baseline": 1000, "peak_build": 1000 + 50 * r, "peak_train": 1000 + 70 * r,
             "peak_eval": 1100 + 75 * r, "accounting": {**acc(r), "must_hold": 50 * r},
             "evaluation": {"grads_held": 10 * r, "forward_values": 20 * r}} for r in (1, 2, 4)]
    s = summarise(rows, budget=1000 + 100 + 75 * 10)
    assert s["measured_bytes_per_slot"] == 75 and s["must_hold_bytes_per_slot"] == 50
    assert s["ratio_measured_over_must_hold"] == 1.5 and s["largest_r_in_budget_from_fit"] == 10
    assert s["ratio_measured_over_held"] == round(75 / (50 + 10 + 10), 3) and s["evaluation_holds_per_slot"]["forward_values"] == 20


def test_verify_closes_in_on_the_largest_r_in_the_budget(monkeypatch):
    peak = lambda r: 1000 + 10 * r + r * r // 100  # noqa: E731 - grows faster than the fit says: R = 900 is over
    monkeypatch.setattr(bm, "check_run", lambda name, slots, predicted, steps, budget: {
        "restarts": slots, "capped_by_free_memory": False, "measured_process_peak_bytes": peak(slots),
        "fits_budget": peak(slots) <= budget})
    summary = {"baseline_bytes": 1000, "measured_fixed_bytes": 0, "measured_bytes_per_slot": 10,
               "largest_r_in_budget_from_fit": 900,
               "rows": [{"restarts": 64, "peak_eval": peak(64), "load_peak": 0, "baseline": 0}]}
    runs = bm.verify("x", summary, budget=10_000, steps=1, runs_max=3)
    assert [r["restarts"] for r in runs] == [900, 487, 560]  # over, then interpolated twice
    assert [r["fits_budget"] for r in runs] == [False, True, True]  # the true largest is 572


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")
def test_reset_peak_brings_the_high_water_mark_down():
    big = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB, touched
    del big
    assert status_bytes("VmHWM") - status_bytes("VmRSS") > 32 << 20
    rss = reset_peak()
    assert status_bytes("VmHWM") < rss + (16 << 20)


def test_the_recorded_json_has_its_keys():
    out = json.loads((ROOT / "docs" / "memory.json").read_text())
    assert out["command"].startswith("python benchmarks/memory.py")
    for name in ("maze", "math_frozen"):
        w = out["workloads"][name]
        for key in ("measured_bytes_per_slot", "measured_fixed_bytes", "must_hold_bytes_per_slot",
                    "must_hold_breakdown_per_slot", "ratio_measured_over_must_hold", "largest_r_in_budget_from_fit",
                    "largest_r_verified", "smallest_r_measured_over_budget", "per_slot_secants", "at_r64", "rows"):
            assert key in w, (name, key)
        assert sorted({r["restarts"] for r in w["rows"]}) == [1, 8, 16, 32, 64]
        best = w["largest_r_verified"]
        assert best["fits_budget"] and best["measured_process_peak_bytes"] <= out["budget_bytes"]
        assert best["measured_process_peak_bytes"] > w["at_r64"]["process_peak_bytes"]
