"""Failures and checkpoints: exact accounting in every run, failure rate, Young/Daly interval."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laws.errors import InputError
from laws.forms import PowerLaw
from laws.lawset import LawSet, Shape, Transitions
from laws.search import PlanRequest
from sim import FaultModel, SimConfig, simulate
from sim.policies import Scheduled

SPEED = 1.5  # FLOP/s of one accelerator, the same for both shapes (see the FLOPs-clock check)


def toy(throughputs=(SPEED, SPEED)) -> LawSet:
    # a: C = 1/(E-1)^2, b: C = 2/(E-0.5); to loss 1.0 by a then b: 4 + (4 - 2) FLOPs.
    return LawSet("toy", (Shape("a", {}, PowerLaw(a=1.0, b=0.5, c=1.0), throughput=throughputs[0]),
                          Shape("b", {}, PowerLaw(a=2.0, b=1.0, c=0.5), throughput=throughputs[1])),
                  transitions=Transitions())


POLICIES = {"switch": Scheduled("switch", [("a", 1.5), ("b", 1.0)]), "static": "static:b",
            "random": "random"}


@settings(max_examples=40, deadline=None)
@given(
    mtbf_s=st.floats(0.3, 40.0),
    repair_s=st.floats(0.0, 5.0),
    ckpt_s=st.floats(0.0, 0.5),
    interval_s=st.one_of(st.none(), st.floats(0.0, 3.0)),
    eval_s=st.floats(0.0, 0.05),
    switch_s=st.floats(0.0, 0.3),
    switch_flops=st.floats(0.0, 0.3),
    penalty=st.floats(0.0, 0.05),
    decay=st.one_of(st.none(), st.floats(0.1, 2.0)),
    noise=st.floats(0.0, 0.05),
    accelerators=st.integers(1, 3),
    policy=st.sampled_from(sorted(POLICIES)),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_second_and_flop_is_accounted_for(mtbf_s, repair_s, ckpt_s, interval_s, eval_s,
                                                switch_s, switch_flops, penalty, decay, noise,
                                                accelerators, policy, seed):
    faults = FaultModel(mtbf_hours=mtbf_s / 3600, repair_hours=repair_s / 3600,
                        checkpoint_seconds=ckpt_s, interval_seconds=interval_s)
    dx = 0.02
    config = SimConfig(noise=noise, eval_every=dx, eval_seconds=eval_s, confirm=2,
                       accelerators=accelerators, penalty_decay_flops=decay, faults=faults,
                       max_compute=60.0)
    request = PlanRequest.for_laws(toy(), 1.0, switch_flops=switch_flops,
                                   switch_seconds=switch_s, switch_penalty=penalty)
    results = simulate(toy(), request, [POLICIES[policy]], config, runs=2, seed=seed)
    for run in results.runs:
        ledger = run.ledger
        for unit in ("seconds", "flops"):
            parts = sum(ledger[f"{name}_{unit}"]
                        for name in ("useful", "eval", "checkpoint", "transition", "lost"))
            assert parts == pytest.approx(ledger[f"spent_{unit}"], rel=1e-9, abs=1e-12)
        # Independent of the ledger: the simulation clock, and work = speed x busy time.
        stop = run.events[-1][0]
        assert ledger["spent_seconds"] + ledger["repair_seconds"] == pytest.approx(stop, rel=1e-9)
        assert ledger["spent_flops"] == pytest.approx(SPEED * accelerators
                                                      * ledger["spent_seconds"], rel=1e-9)
        failures = sum(1 for _, kind, _ in run.events if kind == "failure")
        assert failures == run.failures
        assert ledger["repair_seconds"] == pytest.approx(failures * repair_s, rel=1e-9)
        assert (ledger["lost_flops"] > 0) == (failures > 0)
        chunks = ledger["useful_flops"] / dx  # useful work is whole surviving chunks
        assert chunks == pytest.approx(round(chunks), abs=1e-6)
        if run.reached:
            assert run.compute_to_target <= ledger["spent_flops"] * (1 + 1e-12)


def test_category_sums_hold_with_unequal_throughputs():
    faults = FaultModel(mtbf_hours=2 / 3600, repair_hours=0.5 / 3600, checkpoint_seconds=0.1)
    config = SimConfig(noise=0.02, eval_every=0.02, eval_seconds=0.01, faults=faults)
    laws = toy((3.0, 0.7))
    request = PlanRequest.for_laws(laws, 1.0, switch_seconds=0.2, switch_flops=0.1)
    results = simulate(laws, request, [POLICIES["switch"], "random"], config, runs=5)
    assert sum(run.failures for run in results.runs) > 10
    for run in results.runs:
        ledger = run.ledger
        parts = sum(ledger[f"{name}_flops"]
                    for name in ("useful", "eval", "checkpoint", "transition", "lost"))
        assert parts == pytest.approx(ledger["spent_flops"], rel=1e-9)


def test_failures_arrive_at_rate_accelerators_over_mtbf():
    mtbf_s, accelerators = 3.0, 2
    faults = FaultModel(mtbf_hours=mtbf_s / 3600, checkpoint_seconds=0.05)
    results = simulate(toy(), PlanRequest.for_laws(toy(), 1.0), ["static:b"],
                       SimConfig(eval_every=0.02, faults=faults, accelerators=accelerators),
                       runs=150, seed=11)
    busy = sum(run.ledger["spent_seconds"] for run in results.runs)
    expected = busy * accelerators / mtbf_s  # Poisson mean over all busy time
    observed = sum(run.failures for run in results.runs)
    assert expected > 100
    assert abs(observed - expected) < 4 * math.sqrt(expected)


def test_young_daly_interval_and_checkpoint_spacing():
    faults = FaultModel(mtbf_hours=1000.0, checkpoint_seconds=0.04)
    assert faults.checkpoint_interval(4) == pytest.approx(math.sqrt(2 * 0.04 * 1000 * 3600 / 4))
    spaced = FaultModel(mtbf_hours=1e6, checkpoint_seconds=0.04, interval_seconds=0.5)
    (run,) = simulate(toy(), PlanRequest.for_laws(toy(), 1.0), ["static:b"],
                      SimConfig(eval_every=0.01, faults=spaced), runs=1).runs
    times = [t for t, kind, _ in run.events if kind == "checkpoint"]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    chunk = 0.01 / SPEED
    assert run.failures == 0 and len(times) > 3
    assert all(0.5 <= gap <= 0.5 + chunk + 0.04 + 1e-9 for gap in gaps)
    assert run.ledger["checkpoint_seconds"] == pytest.approx(0.04 * len(times))


@pytest.mark.parametrize("kwargs, message", [
    ({"mtbf_hours": -1.0}, "--mtbf"),
    ({"mtbf_hours": 0.0}, "--mtbf"),
    ({"mtbf_hours": 1.0, "repair_hours": -0.5}, "--repair"),
    ({"mtbf_hours": 1.0, "checkpoint_seconds": -2.0}, "--ckpt-cost"),
])
def test_bad_fault_settings_are_input_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        FaultModel(**kwargs)


def restarts(run) -> list[float]:
    return [t for t, kind, _ in run.events if kind == "restart"]


def test_a_run_that_fails_faster_than_it_evaluates_stops_at_its_time_limit():
    """`shapeshift simulate --preset demo --target 2.0 --runs 1 --mtbf 0.001 --max-hours 1`
    (issue 17): a chunk takes minutes, a failure comes every 3.6 s of work, so no chunk ever
    completes; the run must stop at the first restart past the hour, not reached."""
    from laws.presets import load_preset

    demo = load_preset("demo")
    # Best static compute to 2.0 by hand, C = (a / (E - c))^(1/b); a chunk is a thousandth.
    best = min((s.law.a / (2.0 - s.law.c)) ** (1 / s.law.b) for s in demo.shapes
               if s.law.c < 2.0)
    assert min(best / 1000 / s.throughput for s in demo.shapes) > 60  # >> 3.6 s between failures
    config = SimConfig(max_hours=1, faults=FaultModel(mtbf_hours=0.001))
    request = PlanRequest.for_laws(demo, 2.0)
    results = simulate(demo, request, ["planned", "static"], config, runs=1, seed=0)
    for run in results.runs:
        assert not run.reached and run.compute_to_target is None
        assert run.events[-1][1] == "budget" and run.evaluations == 0
        times = restarts(run)
        assert times[-2] < 3600.0 <= times[-1] == run.events[-1][0]
        expected = 3600.0 / 3.6  # failures in an hour of work (repair takes no time here)
        assert abs(run.failures - 1 - expected) < 4 * math.sqrt(expected)
        assert run.ledger["lost_flops"] == pytest.approx(run.ledger["spent_flops"], rel=1e-12)


def test_a_run_that_fails_faster_than_it_evaluates_stops_at_its_compute_budget():
    # A chunk takes 1 / 1.5 s of work, failures come every 0.01 s: nothing ever completes.
    faults = FaultModel(mtbf_hours=0.01 / 3600)
    (run,) = simulate(toy(), PlanRequest.for_laws(toy(), 1.0), ["static:b"],
                      SimConfig(eval_every=1.0, max_compute=3.0, faults=faults), runs=1).runs
    assert not run.reached and run.events[-1][1] == "budget" and run.evaluations == 0
    # Without repair, work is the clock: it stops at the first failure past 3 FLOPs / 1.5 FLOP/s.
    times = restarts(run)
    assert SPEED * times[-2] < 3.0 <= SPEED * times[-1]
    assert run.ledger["spent_flops"] == pytest.approx(SPEED * times[-1], rel=1e-9)


def test_repair_does_not_age_the_failure_clock():
    mtbf_s, repair_s = 3.0, 30.0
    faults = FaultModel(mtbf_hours=mtbf_s / 3600, repair_hours=repair_s / 3600,
                        checkpoint_seconds=0.05)
    request = PlanRequest.for_laws(toy(), 1.0)
    results = simulate(toy(), request, ["static:b"], SimConfig(eval_every=0.02, faults=faults),
                       runs=100, seed=3)
    busy = sum(run.ledger["spent_seconds"] for run in results.runs)
    expected = busy / mtbf_s  # Poisson mean over working time only
    observed = sum(run.failures for run in results.runs)
    assert expected > 100
    assert abs(observed - expected) < 4 * math.sqrt(expected)
    assert sum(run.ledger["repair_seconds"] for run in results.runs) > 5 * busy


def test_a_failure_keeps_the_evaluations_before_it_and_restarts_from_the_checkpoint():
    """One segment to the target (the policy is never consulted: long stretches) and no
    checkpoint after the start, so every failure sends the run back to zero compute. Between a
    (re)start at r and the next failure at f exactly floor((f - r) / chunk) evaluations
    happened, the k-th at r + k chunk with the loss of b after k dx, 0.5 + 2 / (k dx)."""
    dx, chunk = 0.02, 0.02 / SPEED
    faults = FaultModel(mtbf_hours=1.0 / 3600, interval_seconds=1e9)  # 2.7 s to the target
    config = SimConfig(eval_every=dx, confirm=1, faults=faults)
    request = PlanRequest.for_laws(toy(), 1.0)
    (run,) = simulate(toy(), request, [Scheduled("b-only", [("b", 1.0)])], config, runs=1,
                      seed=4).runs
    failures = [t for t, kind, _ in run.events if kind == "failure"]
    assert run.reached and len(failures) >= 2
    rows = run.trajectory
    assert len(rows) == run.evaluations
    starts = [0.0, *restarts(run)]
    for start, failure in zip(starts, [*failures, math.inf], strict=True):
        kept = [row for row in rows if start <= row[0] < failure]
        if failure < math.inf:
            assert len(kept) == math.floor((failure - start) / chunk)
        for k, (time, _, true_loss, observed, shape) in enumerate(kept, start=1):
            assert time == pytest.approx(start + k * chunk, rel=1e-9)
            assert true_loss == observed == pytest.approx(0.5 + 2.0 / (k * dx), rel=1e-9)
            assert shape == "b"
    assert sum(len([r for r in rows if s <= r[0] < f])
               for s, f in zip(starts, [*failures, math.inf], strict=True)) == len(rows)


def _one_shape_setup(mtbf_hours: float | None = None, eval_every: float | None = None):
    from sim.setup import make_setup

    # C = (2 / (E - 1))^2 at 1 FLOP/s: the best static compute to loss 2 is 4 FLOPs, so the
    # budget is 40 FLOPs (40 s of work) and evaluations come every 4 / 1000 FLOPs (4 ms).
    laws = LawSet("one", (Shape("a", {}, PowerLaw(a=2.0, b=0.5, c=1.0), throughput=1.0),))
    faults = None if mtbf_hours is None else FaultModel(mtbf_hours)
    return make_setup(laws, None, PlanRequest.for_laws(laws, 2.0),
                      SimConfig(eval_every=eval_every, faults=faults))


def test_failures_faster_than_any_evaluation_are_refused_up_front():
    """A run restarts an evaluation of c = 4 ms at each failure (rate r): expm1(r c) failures
    per evaluation, 1000 evaluations to the target; within the budget, 40 s x r failures.
    Both pass 10,000 when expm1(r c) > 10, i.e. the MTBF is below 4 ms / ln 11."""
    from sim.setup import MAX_FAILURES

    assert MAX_FAILURES == 10_000
    shortest = 0.004 / math.log(11.0) / 3600.0  # hours
    assert 40.0 / (shortest * 3600.0) > MAX_FAILURES  # the budget does not end it earlier
    _one_shape_setup(mtbf_hours=shortest * 1.01)
    with pytest.raises(InputError, match=r"--mtbf .* would fail about 1\.0\de\+04 times"):
        _one_shape_setup(mtbf_hours=shortest * 0.99)
    with pytest.raises(InputError, match="would fail"):
        _one_shape_setup(mtbf_hours=2.27e-125)


def test_a_max_hours_bounds_the_failures_of_a_short_mtbf():
    """On b, evaluations of 0.01 / 1.5 s against a run MTBF of 1.8 ms: about 40 failures
    each, 400 to the target; about 15,000 within the compute budget (40 FLOPs, 26.7 s);
    with an hour's thousandth, 2,000 before the deadline: the run ends there."""
    request, faults = PlanRequest.for_laws(toy(), 1.0), FaultModel(mtbf_hours=5e-7)
    with pytest.raises(InputError, match="would fail"):
        simulate(toy(), request, ["static:b"], SimConfig(eval_every=0.01, faults=faults), runs=1)
    result = simulate(toy(), request, ["static:b"],
                      SimConfig(eval_every=0.01, max_hours=1e-3, faults=faults), runs=1)
    (run,) = result.runs
    assert not run.reached and 1500 < run.failures < 2500


def test_more_evaluations_than_the_cap_within_the_budget_are_refused():
    from sim.setup import MAX_EVALUATIONS

    finest = 40.0 / MAX_EVALUATIONS  # FLOPs between evaluations: 40 FLOPs of budget
    assert _one_shape_setup(eval_every=finest * 1.01).eval_every == finest * 1.01
    with pytest.raises(InputError, match=r"--eval-every .*\(at most 1,000,000\)"):
        _one_shape_setup(eval_every=finest * 0.99)


@pytest.mark.parametrize(("options", "message"), [
    ({"mtbf_hours": 1.797e308}, "--mtbf must be a positive number of hours, finite in seconds"),
    ({"mtbf_hours": 1.0, "interval_seconds": math.inf}, "--ckpt-interval must be a finite"),
])
def test_fault_settings_beyond_float_range_are_refused(options, message):
    with pytest.raises(InputError, match=message):
        FaultModel(**options)
