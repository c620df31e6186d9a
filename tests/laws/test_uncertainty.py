"""The plan's uncertainty against the search run sample by sample and against closed forms."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from laws.errors import InputError
from laws.forms import PowerLaw
from laws.io.lawfile import write_law_file
from laws.lawset import LawSet, MeasuredTransition, Shape, Transitions
from laws.search import PlanRequest, build_problem, plan, plan_for_problem
from laws.search.planfile import Plan, PlanUncertainty, RobustStep, Segment
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


def one_by_one(laws: LawSet, request: PlanRequest, point: Plan) -> list[Plan]:
    """The same question asked of every sample with the ordinary search (same start loss and
    levels; no robust choice: a sample has no samples of its own)."""
    plans = []
    for sample in laws.samples():
        asked = replace(request.for_other_laws(sample), start_loss=point.start_loss,
                        robust=None)
        plans.append(plan(sample, asked))
    return plans


@pytest.mark.parametrize("options", [{}, {"switch_flops": 3e8}, {"max_switches": 1}])
def test_savings_and_schedules_equal_the_search_run_on_each_sample(options):
    laws = sampled_laws()
    request = PlanRequest.for_laws(laws, TARGET, start_loss=START, levels=300, **options)
    point = plan(laws, request)
    report = point.uncertainty
    plans = one_by_one(laws, request, point)
    savings = [p.saving_vs_static for p in plans]
    # Each sample's own search lays its grid from its own lowest floor, the report uses the
    # point plan's grid for all: they differ by the grid's error, about 1e-7 of the compute.
    for key, q in (("p5", 5), ("p50", 50), ("p95", 95)):
        assert getattr(report.saving, key) == pytest.approx(
            np.percentile(savings, q, method="inverted_cdf"), abs=1e-6)
    orders = [" > ".join(s.shape for s in p.optimal.schedule) for p in plans]
    assert report.schedules == pytest.approx(
        {order: orders.count(order) / len(orders) for order in set(orders)})
    assert report.samples == 40


def test_with_free_transitions_the_saving_is_each_samples_closed_form_bound():
    """The saving per sample is 1 - C*/C_static (quadrature on the written-out laws), up to
    the grid's error, which shrinks quadratically with the spacing (3000 levels here)."""
    laws = sampled_laws(samples=15)
    request = PlanRequest.for_laws(laws, TARGET, start_loss=START, levels=3000)
    report = plan(laws, request).uncertainty
    exact = [closed_forms.free_saving(closed_forms.power_params(sample), START, TARGET)
             for sample in laws.samples()]
    for key, q in (("p50", 50), ("p5", 5)):
        assert getattr(report.saving, key) == pytest.approx(
            np.percentile(exact, q, method="inverted_cdf"), abs=2e-4)


def test_the_point_plan_is_followed_on_every_sample_at_closed_form_cost():
    laws = sampled_laws(samples=12)
    request = PlanRequest.for_laws(laws, TARGET, start_loss=START, levels=300,
                                   switch_flops=1e8)
    point = plan(laws, request)
    report = point.uncertainty
    static = point.static_best.shape
    savings, beats = [], []
    for sample in laws.samples():
        params = closed_forms.power_params(sample)
        cost, previous = 0.0, None
        for step in point.optimal.schedule:
            abc = params[step.shape]
            begin = 0.0 if previous is None else closed_forms.inverse(abc, step.loss_from)
            cost += closed_forms.inverse(abc, step.loss_to) - begin + (
                0.0 if previous is None else 1e8)
            previous = step.shape
        savings.append(1 - cost / closed_forms.inverse(params[static], TARGET))
        beats.append(cost < closed_forms.best_static(params, TARGET)[1])
    assert report.plan_saving.p50 == pytest.approx(
        np.percentile(savings, 50, method="inverted_cdf"), rel=1e-6)
    assert report.p_beats_static == pytest.approx(np.mean(beats))


def test_the_robust_route_is_at_least_as_good_at_its_percentile_as_the_point_route():
    laws = sampled_laws(samples=60, seed=3)
    request = PlanRequest.for_laws(laws, TARGET, start_loss=START, levels=300,
                                   switch_flops=3e8, robust=10)
    point = plan(laws, request)
    robust = point.uncertainty.robust
    problem = build_problem(laws, request)
    # The point route's own 10th percentile, from the per-sample plans' best static costs.
    plans = one_by_one(laws, request, point)
    best_static = np.array([p.static_best.cost for p in plans])
    followed = route_costs(problem, SampleLaws(laws), _legs(problem, point.optimal.schedule))
    point_saving = np.percentile(1 - followed / best_static, 10, method="inverted_cdf")
    assert robust.saving_at_quantile >= point_saving - 1e-12
    # The saving it reports is that of the schedule it names, followed on every sample.
    chosen = route_costs(problem, SampleLaws(laws), _legs(problem, robust.schedule))
    assert robust.saving_at_quantile == pytest.approx(
        np.percentile(1 - chosen / best_static, 10, method="inverted_cdf"), abs=1e-6)
    assert robust.point_cost_over_optimal >= -1e-12
    assert robust.quantile == 10


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


# Measured switches charged sample by sample: a small shape "s" that starts fast and stops high,
# a big one "b" that goes lower; loss = c + a C^-0.5, so C(E) = (a / (E - c))^2. Five joint
# samples jitter both a's; the transition's sample k goes with them.
SMALL = (2.0, (1.9, 2.0, 2.1, 2.05, 1.95), 1.0)  # a, a of each sample, c
BIG = (8.0, (8.3, 7.6, 8.0, 8.4, 7.8), 0.5)
SWITCH_TARGET, SWITCH_START = 1.1, 3.0
DELAYS = (5.0, 20.0, 40.0, 70.0, 100.0)  # constant-flops, FLOPs per sample; point 30
PENALTIES = ((0.05, 20.0), (0.2, 40.0), (0.1, 10.0), (0.3, 60.0), (0.15, 30.0))  # delta, tau


def switching_laws(transition: MeasuredTransition, throughputs=(None, None)) -> LawSet:
    shapes = tuple(Shape(name, {}, PowerLaw(a, 0.5, c), throughput=speed,
                         samples=tuple(PowerLaw(x, 0.5, c) for x in draws))
                   for name, (a, draws, c), speed in zip("sb", (SMALL, BIG), throughputs,
                                                           strict=True))
    return LawSet("switching", shapes, transitions=Transitions(measured=(transition,)))


def law_compute(abc: tuple[float, float], loss: float) -> float:
    """C(E) = (a / (E - c))^2 of one sample's law, +inf at or below its floor."""
    a, c = abc
    return (a / (loss - c)) ** 2 if loss > c else math.inf


def penalty_extra(abc: tuple[float, float], fired: float, end: float, delta: float,
                  tau: float) -> float:
    """FLOPs after a switch at ``fired`` onto the law ``abc`` until c + a / sqrt(C_B(fired) + x)
    + delta fired exp(-x / tau) reaches ``end``, minus the free switch's: by bisection."""
    a, c = abc
    landing = law_compute(abc, fired)

    def above(x: float) -> float:
        return c + a / math.sqrt(landing + x) + delta * fired * math.exp(-x / tau) - end

    low, high = 0.0, 1.0
    while above(high) > 0:
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if above(middle) > 0 else (low, middle)
    return (low + high) / 2 - (law_compute(abc, end) - landing)


def by_hand(schedule: tuple[Segment | RobustStep, ...], k: int, charge, speeds=(1.0, 1.0),
            seconds: float = 0.0) -> float:
    """What ``schedule`` costs on sample k: each leg's FLOPs on the sample's laws (the first
    from scratch) at its shape's speed, each switch ``charge(k, fired, end)`` FLOPs at the new
    shape's speed plus ``seconds``."""
    laws = {"s": (SMALL[1][k], SMALL[2]), "b": (BIG[1][k], BIG[2])}
    speed = dict(zip("sb", speeds, strict=True))
    cost, previous = 0.0, None
    for leg in schedule:
        law = laws[leg.shape]
        begin = 0.0 if previous is None else law_compute(law, leg.loss_from)
        cost += (law_compute(law, leg.loss_to) - begin) / speed[leg.shape]
        if previous is not None:
            cost += charge(k, previous.loss_to, leg.loss_to) / speed[leg.shape] + seconds
        previous = leg
    return cost


def statics(k: int, speeds=(1.0, 1.0)) -> dict[str, float]:
    return {name: law_compute((draws[k], c), SWITCH_TARGET) / speed
            for name, (_, draws, c), speed in zip("sb", (SMALL, BIG), speeds, strict=True)}


def assert_interval(report: PlanUncertainty, result: Plan, costs: list[float],
                    speeds=(1.0, 1.0)) -> None:
    """plan_saving's p5, p50, p95 over five samples are the 1st, 3rd and 5th smallest (the
    quantiles at or below which 5%, 50%, 95% of them lie); p_beats_static the share of
    samples where the route costs less than the sample's best static shape."""
    named = result.static_best.shape
    savings = sorted(1 - cost / statics(k, speeds)[named] for k, cost in enumerate(costs))
    saving = report.plan_saving
    assert [saving.p5, saving.p50, saving.p95] == pytest.approx(
        [savings[0], savings[2], savings[4]], rel=1e-9)
    beats = [cost < min(statics(k, speeds).values()) for k, cost in enumerate(costs)]
    assert report.p_beats_static == sum(beats) / len(beats)


@pytest.mark.parametrize("objective", ["flops", "seconds"])
def test_each_sample_charges_its_measured_switch_its_own_delay(objective):
    laws = switching_laws(MeasuredTransition("s", "b", "constant-flops", {"flops": 30.0},
                                             tuple((d,) for d in DELAYS)),
                          throughputs=(10.0, 4.0) if objective == "seconds" else (None, None))
    speeds, seconds = ((10.0, 4.0), 3.0) if objective == "seconds" else ((1.0, 1.0), 0.0)
    result = plan(laws, PlanRequest.for_laws(
        laws, SWITCH_TARGET, start_loss=SWITCH_START, levels=400, allowed=(("s", "b"),),
        objective=objective, switch_seconds=seconds, robust=20))
    schedule = result.optimal.schedule
    assert result.optimal.shapes == ("s", "b")
    costs = [by_hand(schedule, k, lambda k, fired, end: DELAYS[k], speeds, seconds)
             for k in range(5)]
    assert_interval(result.uncertainty, result, costs, speeds)
    # The two dearest delays lose to static, the others win: the point charge (30) said all win.
    assert result.uncertainty.p_beats_static == 0.6
    # The robust choice's saving at its 20th percentile is that of its own schedule, charged
    # the same way: the 1st smallest of five.
    robust = result.uncertainty.robust
    best = [min(statics(k, speeds).values()) for k in range(5)]
    chosen = sorted(1 - by_hand(robust.schedule, k, lambda k, fired, end: DELAYS[k], speeds,
                                seconds) / best[k] for k in range(5))
    assert robust.saving_at_quantile == pytest.approx(chosen[0], rel=1e-9)


def test_each_sample_charges_its_transient_penalty():
    laws = switching_laws(MeasuredTransition("s", "b", "transient-penalty",
                                             {"delta": 0.15, "tau_flops": 30.0}, PENALTIES))
    result = plan(laws, PlanRequest.for_laws(laws, SWITCH_TARGET, start_loss=SWITCH_START,
                                             levels=400, allowed=(("s", "b"),)))
    schedule = result.optimal.schedule
    assert result.optimal.shapes == ("s", "b")

    def charge(k: int, fired: float, end: float) -> float:
        return penalty_extra((BIG[1][k], BIG[2]), fired, end, *PENALTIES[k])

    assert_interval(result.uncertainty, result, [by_hand(schedule, k, charge)
                                                    for k in range(5)])


def test_a_transition_without_samples_charges_its_point_charge_on_every_sample():
    laws = switching_laws(MeasuredTransition("s", "b", "transient-penalty",
                                             {"delta": 0.15, "tau_flops": 30.0}))
    result = plan(laws, PlanRequest.for_laws(laws, SWITCH_TARGET, start_loss=SWITCH_START,
                                             levels=400, allowed=(("s", "b"),)))
    schedule = result.optimal.schedule
    (charged,) = result.measured_switches
    # The point charge: the penalty on the point law, by the bisection above.
    assert charged.flops == pytest.approx(penalty_extra(
        (BIG[0], BIG[2]), schedule[0].loss_to, SWITCH_TARGET, 0.15, 30.0), rel=1e-9)
    assert_interval(result.uncertainty, result, [
        by_hand(schedule, k, lambda k, fired, end: charged.flops) for k in range(5)])


def test_transition_samples_must_pair_with_the_law_samples():
    laws = switching_laws(MeasuredTransition("s", "b", "constant-flops", {"flops": 30.0},
                                             tuple((d,) for d in DELAYS[:3])))
    with pytest.raises(InputError, match="s -> b has 3 samples, the laws 5"):
        plan(laws, PlanRequest.for_laws(laws, SWITCH_TARGET, start_loss=SWITCH_START,
                                        levels=50, allowed=(("s", "b"),)))
