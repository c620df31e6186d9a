"""Policies against independent computations: greedy's partition, fixed fractions, random."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laws.errors import InputError
from laws.forms import PowerLaw
from laws.lawset import LawSet, Shape
from sim import SimConfig, simulate
from sim.policies import PlanningContext, greedy_partition, make_policy


def power_slope(params: dict, loss: float) -> float:
    """|dC/dE| of c + a C^-b, by hand: C = ((E-c)/a)^(-1/b), so |dC/dE| = C / (b (E - c))."""
    excess = loss - params["c"]
    return (excess / params["a"]) ** (-1.0 / params["b"]) / (params["b"] * excess)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0.5, 50.0), st.floats(0.1, 1.0), st.floats(0.0, 1.0)),
                min_size=2, max_size=4),
       st.floats(0.0, 1.0))
def test_greedy_owner_is_the_shape_of_least_inverse_slope(params, where):
    laws = LawSet("r", tuple(Shape(f"s{i}", {}, PowerLaw(a, b, c))
                             for i, (a, b, c) in enumerate(params)))
    floor = max(c for _, _, c in params)
    target, start = floor + 0.2, floor + 3.0
    boundaries, owners = greedy_partition(laws, target, start)
    loss = target + where * (start - target)
    slopes = [power_slope(s.law.params(), loss) for s in laws.shapes]
    chosen = next(o for b, o in zip(boundaries, owners, strict=True) if loss >= b)
    best = laws.shape(chosen).law.params()
    # Exact up to the partition's grid (4001 levels): the chosen slope is within 1% of the least.
    assert power_slope(best, loss) <= min(slopes) * 1.01


def test_greedy_follows_the_plans_greedy_schedule_without_noise(four, four_plan, target):
    (run,) = simulate(four, target, ["greedy"],
                      SimConfig(eval_every=four_plan["optimal"]["compute"] / 5000), runs=1,
                      plan=four_plan).runs
    switched = [d for _, kind, d in run.events if kind == "switch"]
    shapes = [step["shape"] for step in four_plan["greedy"]["schedule"]]
    assert switched == [f"{a}->{b}" for a, b in zip(shapes, shapes[1:], strict=False)]
    # Free transitions: greedy is optimal, so it matches the plan's optimum too.
    assert run.compute_to_target == pytest.approx(four_plan["optimal"]["compute"], rel=2e-3)


def two() -> LawSet:
    return LawSet("two", (Shape("a", {}, PowerLaw(1.0, 0.5, 1.0), throughput=1.0),
                          Shape("b", {}, PowerLaw(2.0, 1.0, 0.5), throughput=1.0)))


def test_fixed_switches_at_the_given_fraction_of_the_budget():
    dx = 1e-3
    (run,) = simulate(two(), 1.0, ["fixed:a@0,b@0.25"],
                      SimConfig(eval_every=dx, confirm=1, max_compute=8.0), runs=1).runs
    switch_flops = [flops for t, flops, _, _, shape in run.trajectory if shape == "b"][0]
    assert switch_flops == pytest.approx(0.25 * 8.0 + dx, abs=1.5 * dx)
    # On b from a's loss at C=2 (E = 1 + 2^-0.5), then to 1.0: C_b(1) - C_b(E).
    landing = 2.0 / (1.0 + 2 ** -0.5 - 0.5)
    assert run.compute_to_target == pytest.approx(2.0 + 4.0 - landing, abs=3 * dx)


def test_random_visits_every_shape_about_equally():
    (run,) = simulate(two(), 1.0, ["random"], SimConfig(eval_every=1e-3), runs=1, seed=4).runs
    shapes = [row[4] for row in run.trajectory]
    share = shapes.count("a") / len(shapes)
    assert len(shapes) > 400
    assert abs(share - 0.5) < 4 * np.sqrt(0.25 / len(shapes))


@pytest.mark.parametrize("spec", ["bogus", "static:nope", "fixed:a@0.5", "fixed:a@0,b@x",
                                  "planned:x", "fixed:a@0,b@1.5"])
def test_bad_policy_specs_are_input_errors(spec):
    with pytest.raises(InputError):
        make_policy(spec, PlanningContext(two(), 1.0))


@pytest.mark.parametrize("allowed", ["one-axis", (("p32", "p16"),)])
def test_runs_switch_only_where_the_law_set_allows(allowed):
    import dataclasses

    from laws.presets import load_preset

    demo = load_preset("demo")
    laws = dataclasses.replace(demo, transitions=dataclasses.replace(demo.transitions,
                                                                     allowed=allowed))
    results = simulate(laws, 2.1, ["greedy"], SimConfig(), runs=1, seed=0)
    (run,) = results.runs_of("greedy")
    switches = [detail for _, kind, detail in run.events if kind == "switch"]
    # Every demo shape differs from the others in its one axis, so one-axis allows all three.
    expected = ["p32->p16", "p16->p8"] if allowed == "one-axis" else ["p32->p16"]
    assert switches == expected
