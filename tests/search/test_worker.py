"""BlockWorker without Ray, on the scripted fake block."""

import pytest
from ntpt_dist.search.policy import JumpPolicy
from ntpt_dist.search.worker import Assignment, BlockWorker, ModelSpec

from .fakes import fake_factory, jump_every_third, nan_for_seven

POLICY = JumpPolicy(delta=0.5, window=3, floor=0.8, refine_evals=2, budget_steps=300)
DATA = {"x": [0]}


def make_worker(slots=4, **fake):
    return BlockWorker(("src", {}), DATA, slots=slots, policy=POLICY, eval_every=25, name="w0",
                       block_factory=fake_factory(**fake))


def run_all(worker, rounds=200):
    records, crashes = [], []
    for _ in range(rounds):
        out = worker.run(seconds=0.0)
        records += out.records
        crashes += out.crashes
        if not out.in_flight:
            break
    return records, crashes


def test_every_assignment_finishes_with_the_scripted_outcome():
    w = make_worker(slots=4)
    w.assign([Assignment(i, seed=i) for i in range(10)])
    records, crashes = run_all(w)
    assert crashes == []
    by_index = {r.index: r for r in records}
    assert sorted(by_index) == list(range(10))
    for i, r in by_index.items():
        if i % 3 == 0:
            assert r.status == "converged", r
            jump = 100 + 25 * (i % 5)
            assert r.jump_step == jump
            assert r.steps == jump + 2 * 25  # refined for refine_evals evaluations
            assert r.program["fake_seed"] == i
            assert r.program_val_acc > 0.9
        else:
            assert r.status == "stopped" and r.reason == "budget"
            assert r.steps == 300 and r.program is None
        assert r.actor == "w0"
        assert r.trajectory[0][0] == 0  # evaluated before training
        assert [s for s, _ in r.trajectory] == list(range(0, r.steps + 1, 25))


def test_trajectory_does_not_depend_on_block_size_or_company():
    alone = make_worker(slots=1)
    alone.assign([Assignment(6, seed=6)])
    crowded = make_worker(slots=5)
    crowded.assign([Assignment(i, seed=i) for i in range(1, 12)])
    a = {r.index: r for r in run_all(alone)[0]}
    c = {r.index: r for r in run_all(crowded)[0]}
    assert a[6].trajectory == c[6].trajectory
    assert a[6].status == c[6].status == "converged"


def test_slots_are_refilled_so_the_block_stays_full():
    w = make_worker(slots=2)
    w.assign([Assignment(i, seed=i) for i in range(6)])
    out = w.run(seconds=0.0)
    block = w._main.block
    records, _ = run_all(w)
    assert len(list(out.records) + records) == 6
    # 150 + 225 + 4 * 300 = 1575 restart-steps = 63 rounds of 25 if run one by one;
    # two busy slots need half of that (+1 for the tail where one slot idles)
    assert block.step_calls <= 63 // 2 + 2
    busy, stepped = w.run(seconds=0.0).slot_steps
    assert stepped == 2 * 25 * block.step_calls
    assert busy == sum(r.steps for r in list(out.records) + records) < stepped


def test_nan_restart_is_diverged_and_does_not_poison_others():
    w = make_worker(slots=4, acc_fn=nan_for_seven)
    w.assign([Assignment(i, seed=s) for i, s in enumerate([7, 3, 14, 4])])
    records, crashes = run_all(w)
    status = {r.seed: r.status for r in records}
    assert status == {7: "diverged", 14: "diverged", 3: "converged", 4: "stopped"}
    assert crashes == []


def test_block_crash_reports_every_live_restart_and_solo_retries_isolate_the_culprit():
    def crash(seed, steps):
        return seed == 5 and steps >= 50

    w = make_worker(slots=3, crash_fn=crash)
    w.assign([Assignment(i, seed=s) for i, s in enumerate([5, 1, 2])])
    records, crashes = run_all(w)
    assert records == []
    assert sorted(c.seed for c in crashes) == [1, 2, 5]
    assert {c.scope for c in crashes} == {"block"}
    assert "scripted block failure" in crashes[0].error
    # retried alone, the innocent ones finish and the culprit crashes on its own
    w.assign([Assignment(c.index, c.seed, attempt=1, solo=True) for c in crashes])
    records, crashes = run_all(w)
    assert sorted(r.seed for r in records) == [1, 2]
    assert [(c.seed, c.scope, c.attempt) for c in crashes] == [(5, "restart", 1)]
    assert w.in_flight() == []


def test_reset_failure_is_attributed_to_its_restart_only():
    w = make_worker(slots=2, crash_fn=lambda seed, steps: seed == 9 and steps == -1)
    w.assign([Assignment(0, seed=9), Assignment(1, seed=3)])
    records, crashes = run_all(w)
    assert [c.index for c in crashes] == [0] and crashes[0].scope == "restart"
    assert [r.index for r in records] == [1]


def test_run_returns_after_its_time_slice():
    w = make_worker(slots=2, step_cost_s=0.001)
    w.assign([Assignment(i, seed=i) for i in range(4)])
    out = w.run(seconds=0.05)
    assert out.in_flight  # 25 ms per round: far from done after 50 ms
    assert set(out.in_flight) <= {0, 1, 2, 3}


def test_model_spec_of_accepts_models_pairs_and_text():
    class M:
        source, hypers, filename, listing = "s", {"N": 2}, "f.py", None

    assert ModelSpec.of(M()) == ModelSpec("s", {"N": 2}, "f.py")
    assert ModelSpec.of(("s", None)).hypers == {}
    assert ModelSpec.of("s").source == "s"


def test_model_spec_rejects_other_things():
    import pytest
    from ntpt_dist.interpreter.errors import NtptError

    with pytest.raises(NtptError, match="but got int"):
        ModelSpec.of(3)


def test_script_sanity():
    assert jump_every_third(3, 0) < 0.2 and jump_every_third(3, 1000) > 0.9


def test_a_jump_whose_argmax_program_fails_validation_is_not_a_convergence():
    w = make_worker(slots=3, program_acc_fn=lambda seed, steps: 0.1 if seed == 3 else 0.95)
    w.assign([Assignment(i, seed=i) for i in (0, 3)])
    by_index = {r.index: r for r in run_all(w)[0]}
    assert by_index[0].status == "converged" and by_index[0].program_val_acc > 0.9
    assert by_index[3].status == "stopped" and by_index[3].reason == "program"
    assert by_index[3].program is None and by_index[3].program_val_acc == pytest.approx(0.14)
