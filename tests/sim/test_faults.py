"""Failures and checkpoints: exact accounting in every run, failure rate, Young/Daly interval."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laws.errors import InputError
from laws.forms import PowerLaw
from laws.lawset import LawSet, Shape, Transitions
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
                       accelerators=accelerators, switch_flops=switch_flops,
                       switch_seconds=switch_s, switch_penalty=penalty,
                       penalty_decay_flops=decay, faults=faults, max_compute=60.0)
    results = simulate(toy(), 1.0, [POLICIES[policy]], config, runs=2, seed=seed)
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
    config = SimConfig(noise=0.02, eval_every=0.02, eval_seconds=0.01, switch_seconds=0.2,
                       switch_flops=0.1, faults=faults)
    results = simulate(toy((3.0, 0.7)), 1.0, [POLICIES["switch"], "random"], config, runs=5)
    assert sum(run.failures for run in results.runs) > 10
    for run in results.runs:
        ledger = run.ledger
        parts = sum(ledger[f"{name}_flops"]
                    for name in ("useful", "eval", "checkpoint", "transition", "lost"))
        assert parts == pytest.approx(ledger["spent_flops"], rel=1e-9)


def test_failures_arrive_at_rate_accelerators_over_mtbf():
    mtbf_s, accelerators = 3.0, 2
    faults = FaultModel(mtbf_hours=mtbf_s / 3600, checkpoint_seconds=0.05)
    results = simulate(toy(), 1.0, ["static:b"],
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
    (run,) = simulate(toy(), 1.0, ["static:b"],
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
