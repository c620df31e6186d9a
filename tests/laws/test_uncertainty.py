"""The plan's uncertainty against the search run sample by sample and against closed forms."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from laws.errors import InputError
from laws.forms import PowerLaw
from laws.io.lawfile import write_law_file
from laws.lawset import LawSet, Shape
from laws.search import PlanRequest, build_problem, plan, plan_for_problem
from laws.search.uncertainty import SampleLaws, _legs, route_costs
from tests import closed_forms

TARGET = 1.45
START = 6.0


def sampled_laws(samples: int = 40, seed: int = 0) -> LawSet:
    """Three crossing power laws (the simulator tests' four-shape family, a_i = 6300 * 3^i,
    b 0.3, floors 2.2, 1.7, 1.35) with jointly drawn samples: a and c jittered by a few %."""
    rng = np.random.default_rng(seed)
    shapes = []
    for i, floor in enumerate((2.2, 1.7, 1.35)):
        a = 6300.0 * 3**i
        draws = [PowerLaw(a * float(np.exp(rng.normal(0, 0.1))), 0.3,
                          floor * float(np.exp(rng.normal(0, 0.01))))
                 for _ in range(samples)]
        shapes.append(Shape(f"w{64 * 2**i}", {"width": 64 * 2**i}, PowerLaw(a, 0.3, floor),
                            samples=tuple(draws)))
    return LawSet("sampled", tuple(shapes))


def one_by_one(laws: LawSet, request: PlanRequest, point: dict) -> list[dict]:
    """The same question asked of every sample with the ordinary search (same start loss and
    levels; no robust choice: a sample has no samples of its own)."""
    plans = []
    for sample in laws.samples():
        asked = replace(request.for_other_laws(sample), start_loss=point["start_loss"],
                        robust=None)
        plans.append(plan(sample, asked))
    return plans


@pytest.mark.parametrize("options", [{}, {"switch_flops": 3e8}, {"max_switches": 1}])
def test_savings_and_schedules_equal_the_search_run_on_each_sample(options):
    laws = sampled_laws()
    request = PlanRequest.for_laws(laws, TARGET, start_loss=START, levels=300, **options)
    point = plan(laws, request)
    report = point["uncertainty"]
    plans = one_by_one(laws, request, point)
    savings = [p["saving_vs_static"] for p in plans]
    # Each sample's own search lays its grid from its own lowest floor, the report uses the
    # point plan's grid for all: they differ by the grid's error, about 1e-7 of the compute.
    for key, q in (("p5", 5), ("p50", 50), ("p95", 95)):
        assert report["saving"][key] == pytest.approx(
            np.percentile(savings, q, method="inverted_cdf"), abs=1e-6)
    orders = [" > ".join(s["shape"] for s in p["optimal"]["schedule"]) for p in plans]
    assert report["schedules"] == pytest.approx(
        {order: orders.count(order) / len(orders) for order in set(orders)})
    assert report["samples"] == 40


def test_with_free_transitions_the_saving_is_each_samples_closed_form_bound():
    """The saving per sample is 1 - C*/C_static (quadrature on the written-out laws), up to
    the grid's error, which shrinks quadratically with the spacing (3000 levels here)."""
    laws = sampled_laws(samples=15)
    request = PlanRequest.for_laws(laws, TARGET, start_loss=START, levels=3000)
    report = plan(laws, request)["uncertainty"]
    exact = [closed_forms.free_saving(closed_forms.power_params(sample), START, TARGET)
             for sample in laws.samples()]
    for key, q in (("p50", 50), ("p5", 5)):
        assert report["saving"][key] == pytest.approx(
            np.percentile(exact, q, method="inverted_cdf"), abs=2e-4)


def test_the_point_plan_is_followed_on_every_sample_at_closed_form_cost():
    laws = sampled_laws(samples=12)
    request = PlanRequest.for_laws(laws, TARGET, start_loss=START, levels=300,
                                   switch_flops=1e8)
    point = plan(laws, request)
    report = point["uncertainty"]
    static = point["static_best"]["shape"]
    savings, beats = [], []
    for sample in laws.samples():
        params = closed_forms.power_params(sample)
        cost, previous = 0.0, None
        for step in point["optimal"]["schedule"]:
            abc = params[step["shape"]]
            begin = 0.0 if previous is None else closed_forms.inverse(abc, step["loss_from"])
            cost += closed_forms.inverse(abc, step["loss_to"]) - begin + (
                0.0 if previous is None else 1e8)
            previous = step["shape"]
        savings.append(1 - cost / closed_forms.inverse(params[static], TARGET))
        beats.append(cost < closed_forms.best_static(params, TARGET)[1])
    assert report["plan_saving"]["p50"] == pytest.approx(
        np.percentile(savings, 50, method="inverted_cdf"), rel=1e-6)
    assert report["p_beats_static"] == pytest.approx(np.mean(beats))


def test_the_robust_route_is_at_least_as_good_at_its_percentile_as_the_point_route():
    laws = sampled_laws(samples=60, seed=3)
    request = PlanRequest.for_laws(laws, TARGET, start_loss=START, levels=300,
                                   switch_flops=3e8, robust=10)
    point = plan(laws, request)
    robust = point["uncertainty"]["robust"]
    problem = build_problem(laws, request)
    # The point route's own 10th percentile, from the per-sample plans' best static costs.
    plans = one_by_one(laws, request, point)
    best_static = np.array([p["static_best"]["cost"] for p in plans])
    followed = route_costs(problem, SampleLaws(laws), _legs(problem, point["optimal"]["schedule"]))
    point_saving = np.percentile(1 - followed / best_static, 10, method="inverted_cdf")
    assert robust["saving_at_quantile"] >= point_saving - 1e-12
    # The saving it reports is that of the schedule it names, followed on every sample.
    chosen = route_costs(problem, SampleLaws(laws), _legs(problem, robust["schedule"]))
    assert robust["saving_at_quantile"] == pytest.approx(
        np.percentile(1 - chosen / best_static, 10, method="inverted_cdf"), abs=1e-6)
    assert robust["point_cost_over_optimal"] >= -1e-12
    assert robust["quantile"] == 10


def test_search_prints_the_interval_and_json_carries_it(tmp_path):
    path = tmp_path / "sampled.json"
    write_law_file(sampled_laws(), path)
    runner = CliRunner()
    args = ["search", str(path), "--target", str(TARGET), "--start-loss", str(START),
            "--levels", "300"]
    text = runner.invoke(main, args)
    assert text.exit_code == 0, text.output
    assert "fit uncertainty (40 bootstrap samples, 90% intervals): optimal saving" in text.output
    data = json.loads(runner.invoke(main, [*args, "--json"]).output)["uncertainty"]
    assert set(data) >= {"saving", "p_beats_static", "samples", "schedules"}
    assert set(data["saving"]) == {"p5", "p50", "p95"} and data["level"] == 0.9


def test_robust_needs_samples():
    laws = replace(sampled_laws(), shapes=tuple(replace(s, samples=())
                                                for s in sampled_laws().shapes))
    problem = build_problem(laws, PlanRequest.for_laws(laws, TARGET, robust=10))
    with pytest.raises(InputError, match="carries no bootstrap samples"):
        plan_for_problem(laws, problem)
    with pytest.raises(InputError, match="--robust must be a percentile"):
        PlanRequest.for_laws(laws, TARGET, robust=100)
