"""A single run against closed forms: static and planned compute, time, switch semantics."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from laws.forms import PowerLaw
from laws.lawset import LawSet, Shape, Transitions
from sim import SimConfig, simulate
from sim.policies import Scheduled


def power_inverse(params: dict, loss: float) -> float:
    """C(E) = ((E - c) / a)^(-1/b), written out here rather than taken from laws.forms."""
    return ((loss - params["c"]) / params["a"]) ** (-1.0 / params["b"])


def only(results):
    (run,) = results.runs
    return run


def test_static_compute_and_time_equal_the_closed_form_for_every_shape(four, four_plan, target):
    dx = four_plan["optimal"]["compute"] / 10_000
    for shape in four.shapes:
        params = shape.law.params()
        if params["c"] >= target:
            continue
        expected = power_inverse(params, target)
        run = only(simulate(four, target, [f"static:{shape.name}"],
                            SimConfig(eval_every=dx), runs=1, plan=four_plan))
        assert run.reached and run.switches == 0
        assert expected <= run.compute_to_target <= expected * 1.001
        assert four_plan["static"][shape.name] == pytest.approx(expected, rel=1e-9)
        assert run.time_to_target == pytest.approx(expected / shape.throughput, rel=1e-3)


def test_planned_without_noise_faults_or_transition_costs_matches_the_plan(four, four_plan,
                                                                         target):
    optimal = four_plan["optimal"]
    run = only(simulate(four, target, ["planned"],
                        SimConfig(eval_every=optimal["compute"] / 10_000), runs=1,
                        plan=four_plan))
    assert run.reached and run.switches == optimal["switches"] == 3
    assert run.compute_to_target == pytest.approx(optimal["compute"], rel=1e-3)
    seconds = sum(step["compute"] / four.shape(step["shape"]).throughput
                  for step in optimal["schedule"])
    assert run.time_to_target == pytest.approx(seconds, rel=1e-3)
    switched = [detail for _, kind, detail in run.events if kind == "switch"]
    shapes = [step["shape"] for step in optimal["schedule"]]
    assert switched == [f"{a}->{b}" for a, b in zip(shapes, shapes[1:], strict=False)]
    assert run.ledger["useful_flops"] == pytest.approx(run.ledger["spent_flops"], rel=1e-12)


def two_shapes(**transitions) -> LawSet:
    return LawSet("two", (Shape("a", {}, PowerLaw(a=1.0, b=0.5, c=1.0), throughput=2.0),
                          Shape("b", {}, PowerLaw(a=2.0, b=1.0, c=0.5), throughput=1.0)),
                  transitions=Transitions(**transitions))


def switch_once(laws: LawSet, config: SimConfig):
    """a until the loss is 1.5, then b to 1.0."""
    policy = Scheduled("a-then-b", [("a", 1.5), ("b", 1.0)])
    return only(simulate(laws, 1.0, [policy], config, runs=1))


def test_a_switch_preserves_the_loss_and_charges_its_costs():
    # a: C = 1/(E-1)^2 -> 4 at 1.5; b: C = 2/(E-0.5) -> landing at E=1.5+0.1: 2/1.1, target 4.
    laws = two_shapes(flops=0.5, seconds=3.0, loss_penalty=0.1)
    dx = 1e-4
    run = switch_once(laws, SimConfig(eval_every=dx, confirm=1))
    trained = 4.0 + (4.0 - 2.0 / 1.1)
    transition_flops = 0.5 + 3.0 * 1.0  # FLOPs plus seconds x throughput of b
    assert run.ledger["transition_flops"] == pytest.approx(transition_flops, rel=1e-12)
    assert run.ledger["useful_flops"] == pytest.approx(trained, abs=3 * dx)
    assert run.compute_to_target == pytest.approx(trained + transition_flops, abs=3 * dx)
    seconds = 4.0 / 2.0 + (3.0 + 0.5 / 1.0) + (4.0 - 2.0 / 1.1) / 1.0
    assert run.time_to_target == pytest.approx(seconds, abs=3 * dx)


def test_a_decaying_penalty_lifts_the_loss_then_fades():
    laws = two_shapes(loss_penalty=0.2)
    dx, decay = 1e-3, 0.5
    run = switch_once(laws, SimConfig(eval_every=dx, confirm=1, penalty_decay_flops=decay))
    rows = [row for row in run.trajectory if row[4] == "b"]
    first_loss = rows[0][2]
    switch_loss = [row for row in run.trajectory if row[4] == "a"][-1][2]
    landing = 2.0 / (switch_loss - 0.5)
    assert first_loss == pytest.approx(0.5 + 2.0 / (landing + dx) + 0.2 * (1 - dx / decay),
                                       rel=1e-9)
    # Once the penalty has faded, the run is where free training would have put it.
    assert run.ledger["useful_flops"] == pytest.approx(4.0 + 4.0 - landing, abs=3 * dx + 0.01)
    late = rows[int(decay / dx) + 5]
    assert late[2] == pytest.approx(0.5 + 2.0 / (landing + (int(decay / dx) + 6) * dx), rel=1e-9)


def test_noise_is_relative_gaussian_with_the_given_sigma():
    laws = two_shapes()
    run = only(simulate(laws, 1.0, ["static:b"], SimConfig(eval_every=1e-3, noise=0.05),
                        runs=1, seed=3))
    ratios = [observed / true - 1.0 for _, _, true, observed, _ in run.trajectory]
    n = len(ratios)
    mean = sum(ratios) / n
    sd = math.sqrt(sum((r - mean) ** 2 for r in ratios) / (n - 1))
    assert n > 1000
    assert abs(mean) < 4 * 0.05 / math.sqrt(n)
    assert sd == pytest.approx(0.05, rel=4 / math.sqrt(2 * n))


def test_confirmation_costs_evaluations_but_not_compute_to_target():
    laws = two_shapes()
    one, three = (only(simulate(laws, 1.0, ["static:b"], SimConfig(eval_every=1e-3, confirm=k),
                                runs=1)) for k in (1, 3))
    assert one.compute_to_target == three.compute_to_target
    assert three.evaluations == one.evaluations + 2
    assert three.ledger["spent_flops"] == pytest.approx(one.ledger["spent_flops"] + 2e-3)


def with_b(law: PowerLaw) -> LawSet:
    """The two shapes with b's law replaced: a truth that differs from the planning laws."""
    laws = two_shapes()
    return replace(laws, name="truth",
                   shapes=(laws.shapes[0], replace(laws.shapes[1], law=law)))


def test_an_unreachable_truth_stops_at_the_compute_budget():
    truth = with_b(PowerLaw(a=2.0, b=1.0, c=1.1))
    run = only(simulate(two_shapes(), 1.0, ["static:b"],
                        SimConfig(eval_every=1e-2, max_compute=5.0), runs=1, truth=truth))
    assert not run.reached and run.compute_to_target is None
    assert 5.0 <= run.ledger["spent_flops"] < 5.0 + 1e-2 + 1e-9
    assert run.events[-1][1] == "budget"


def test_a_misfit_truth_moves_the_static_cost_to_the_truth_inverse():
    truth = with_b(PowerLaw(a=3.0, b=1.0, c=0.5))
    run = only(simulate(two_shapes(), 1.0, ["static:b"], SimConfig(eval_every=1e-4, confirm=1),
                        runs=1, truth=truth))
    assert run.compute_to_target == pytest.approx(power_inverse({"a": 3.0, "b": 1.0, "c": 0.5},
                                                                1.0), abs=2e-4)


def test_a_hardware_spec_sets_time_by_peak_times_utilisation():
    from sim import Hardware

    hardware = Hardware(peak_flops=10.0, utilisation={"b": 0.25})
    run = only(simulate(two_shapes(), 1.0, ["static:b"],
                        SimConfig(eval_every=1e-3, confirm=1, hardware=hardware,
                                  accelerators=2), runs=1))
    # C_b(1) = 4 FLOPs at 10 x 0.25 FLOP/s per accelerator on 2 accelerators.
    assert run.time_to_target == pytest.approx(4.0 / (10.0 * 0.25 * 2), abs=1e-3)
    assert run.accelerator_hours == pytest.approx(2 * run.time_to_target / 3600)
