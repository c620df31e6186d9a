"""Monte Carlo: the same bytes whatever the workers, common random numbers, summaries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from laws.search import PlanRequest, plan
from sim import FaultModel, SimConfig, simulate

CONFIG = SimConfig(noise=0.02, eval_seconds=30.0,
                   faults=FaultModel(mtbf_hours=10.0, repair_hours=0.5, checkpoint_seconds=60.0))


@pytest.fixture(scope="module")
def switching(four, target):
    """The four shapes' search with a minute per switch, which the runs pay."""
    return PlanRequest.for_laws(four, target, switch_seconds=60.0)


@pytest.fixture(scope="module")
def four_plan(four, switching):
    return plan(four, switching)


def as_bytes(results) -> bytes:
    return (json.dumps(results.to_dict(), sort_keys=True) + results.trajectories_csv()
            + results.runs_csv()).encode()


def test_same_seed_gives_identical_bytes_with_one_and_two_workers(
        four, four_plan, target, switching):
    kwargs = dict(runs=7, seed=42, plan=four_plan)
    one = simulate(four, switching, ["planned", "static", "greedy"], CONFIG, workers=1, **kwargs)
    two = simulate(four, switching, ["planned", "static", "greedy"], CONFIG, workers=2, **kwargs)
    assert as_bytes(one) == as_bytes(two)
    assert sum(run.failures for run in one.runs) > 0  # the faults path is exercised
    other = simulate(four, switching, ["planned", "static", "greedy"], CONFIG, workers=1, runs=7,
                     seed=43, plan=four_plan)
    assert as_bytes(other) != as_bytes(one)


def test_policies_with_the_same_seed_share_their_random_streams(
        four, four_plan, target, switching):
    # Two identical static policies under different names see the same noise and failures.
    from sim.policies import Static

    twin = Static("w512")
    twin.name = "twin"
    results = simulate(four, switching, ["static:w512", twin], CONFIG, runs=3, seed=5,
                       plan=four_plan)
    for a, b in zip(results.runs_of("static:w512"), results.runs_of("twin"), strict=True):
        assert a.trajectory == b.trajectory and a.ledger == b.ledger
    firsts = {run.trajectory[0][3] for run in results.runs_of("twin")}
    assert len(firsts) == 3  # but replications differ


def test_summary_matches_numpy_over_the_runs(four, four_plan, target, switching):
    results = simulate(four, switching, ["planned", "static"], CONFIG, runs=9, seed=1,
                       plan=four_plan)
    summary = results.summary()
    for policy in results.policies:
        values = np.array([run.compute_to_target for run in results.runs_of(policy)
                           if run.reached])
        stats = summary[policy]["compute_to_target"]
        assert stats["mean"] == pytest.approx(values.mean())
        # Under 20 runs, 1/n >= 5% and (n-1)/n < 95%: the empirical 5th and 95th
        # percentiles are the smallest and the largest run.
        assert values.size < 20
        assert stats["p5"] == values.min() and stats["p95"] == values.max()
    assert results.baseline["source"] == "simulated"
    baseline = summary["static:w512"]["compute_to_target"]["mean"]
    planned = summary["planned"]["compute_to_target"]["mean"]
    assert summary["planned"]["saving_vs_static"] == pytest.approx(1 - planned / baseline)
    assert summary["planned"]["saving_kept"] == pytest.approx(
        (1 - planned / baseline) / four_plan.saving_vs_static)


def test_trajectories_csv_has_one_row_per_evaluation(four, four_plan, target, switching):
    results = simulate(four, switching, ["planned"], CONFIG, runs=2, plan=four_plan)
    lines = results.trajectories_csv().splitlines()
    assert lines[0].split(",")[:3] == ["policy", "replication", "job"]
    assert len(lines) - 1 == sum(run.evaluations for run in results.runs)
