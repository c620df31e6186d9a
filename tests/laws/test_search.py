"""The search against independent computations: quadrature, networkx, brute force, scipy."""

from __future__ import annotations

import itertools
from itertools import pairwise
from unittest import mock

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize, minimize_scalar

from laws.errors import InputError
from laws.forms import PowerLaw
from laws.io.source import law_set_digest
from laws.lawset import LawSet, Shape
from laws.presets import load_preset
from laws.search import (
    PlanRequest,
    Problem,
    build_problem,
    greedy_route,
    plan,
    solve,
    solve_layers,
    solve_networkx,
    solve_sparse,
    solvers,
)
from laws.search.grid import default_start_loss
from laws.search.planfile import LawsRecord
from laws.search.solvers import route_cost
from tests import closed_forms

TARGET = 2.0


def power_params(laws: LawSet) -> list[tuple[float, float, float]]:
    """The (a, b, c) of every shape, in the law set's order (by index, for permutations)."""
    return list(closed_forms.power_params(laws).values())


@pytest.fixture(scope="module")
def demo():
    return load_preset("demo")


def test_free_transitions_match_the_quadrature_lower_bound(demo):
    result = plan(demo, PlanRequest.for_laws(demo, TARGET))
    exact = closed_forms.free_lower_bound(closed_forms.power_params(demo), result.start_loss,
                                          TARGET)
    assert result.optimal.cost == pytest.approx(exact, rel=1e-4)
    assert result.lower_bound == pytest.approx(exact, rel=1e-9)
    assert result.greedy.cost == pytest.approx(result.optimal.cost, rel=1e-12)
    # The paper's rule, from the written-out derivative: with free transitions it is optimal.
    owners, _ = closed_forms.greedy_order(closed_forms.power_params(demo), result.start_loss,
                                          TARGET)
    assert [s.shape for s in result.optimal.schedule] == owners


def test_halving_the_grid_spacing_shrinks_the_gap_about_fourfold(demo):
    """The gap is 1/2 |g_Q' - g_P'| d^2 per crossing, d its distance to the nearest level.

    d depends on where a crossing falls between levels, so the gap is averaged over many grids;
    2L - 1 levels halve the spacing of L levels exactly.
    """
    def mean_gap(level_counts):
        gaps = []
        for levels in level_counts:
            result = plan(demo, PlanRequest.for_laws(demo, TARGET, levels=levels,
                                                     start_loss=6.0))
            gaps.append(result.optimal.cost - result.lower_bound)
        return np.mean(gaps)

    coarse = range(101, 161, 2)
    ratio = mean_gap(coarse) / mean_gap([2 * n - 1 for n in coarse])
    assert 3.2 < ratio < 4.8


def random_problem(seed: int) -> Problem:
    """A small graph with random costs, floors, allowed switches, penalties and limits."""
    rng = np.random.default_rng(seed)
    shapes, levels = int(rng.integers(1, 4)), int(rng.integers(2, 6))
    compute = np.cumsum(rng.uniform(0.1, 3.0, (shapes, levels)), axis=1)
    for s in range(shapes):  # some shapes hit their floor before the target
        if rng.random() < 0.3:
            compute[s, rng.integers(1, levels):] = np.inf
    switch = np.where(rng.random((shapes, shapes)) < 0.7,
                      rng.choice([0.0, 0.4, 1.5], (shapes, shapes)), np.inf)
    np.fill_diagonal(switch, np.inf)
    landing = np.arange(levels)
    if rng.random() < 0.5:
        landing = np.maximum.accumulate(np.maximum(landing - rng.integers(0, 3, levels), 0))
    limit = None if rng.random() < 0.5 else int(rng.integers(0, 3))
    return Problem(tuple("abc"[:shapes]), np.linspace(3.0, 1.0, levels), compute,
                   rng.uniform(0.5, 2.0, shapes), switch, landing, 0.0, limit)


def brute_force(problem: Problem) -> float:
    """Every schedule, enumerated: depth-first over train and switch moves, no repeated state."""
    start, train = problem.start_cost, problem.train_cost
    levels = problem.grid.size
    limit = problem.max_switches
    best = np.inf

    def walk(s, i, switches, cost, seen):
        nonlocal best
        if i == levels - 1:
            best = min(best, cost)
        if i < levels - 1 and np.isfinite(train[s, i]):
            walk(s, i + 1, switches, cost + train[s, i], seen)
        if i == levels - 1 or (limit is not None and switches == limit):
            return
        for q in range(len(start)):
            j = int(problem.landing[i])
            state = (q, j, switches + 1 if limit is not None else 0)
            if np.isfinite(problem.switch_cost[s, q]) and np.isfinite(problem.compute[q, j]) \
                    and state not in seen:
                walk(q, j, switches + 1, cost + problem.switch_cost[s, q], seen | {state})

    for s in range(len(start)):
        if np.isfinite(start[s]):
            walk(s, 0, 0, start[s], {(s, 0, 0)})
    return best


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1))
@example(25294)  # one other shape, closed where the switch would land: no self-switch route
def test_fast_solvers_networkx_and_brute_force_agree(seed):
    problem = random_problem(seed)
    expected = brute_force(problem)
    routes = [solve(problem), solve_sparse(problem), solve_networkx(problem)]
    if not problem.penalised:
        routes.append(solve_layers(problem))
    for route in routes:
        if np.isfinite(expected):
            assert route.cost == pytest.approx(expected, rel=1e-12, abs=1e-12)
            assert route_cost(problem, route.legs) == pytest.approx(route.cost, rel=1e-12)
            assert problem.max_switches is None or route.switches <= problem.max_switches
        else:
            assert route.cost == np.inf


def long_problem(seed: int) -> Problem:
    """No penalty, up to 40 levels: switches priced by the new shape between all pairs (free
    ones included, so chains of switches on one level tie) or random, with or without a limit."""
    rng = np.random.default_rng(seed)
    shapes, levels = int(rng.integers(1, 5)), int(rng.integers(2, 41))
    compute = np.cumsum(rng.choice([0.5, 1.0, 2.0, 3.0], (shapes, levels)), axis=1)
    for s in range(shapes):
        if rng.random() < 0.3:
            compute[s, rng.integers(1, levels):] = np.inf
    if rng.random() < 0.6:
        switch = np.broadcast_to(rng.choice([0.0, 0.5, 2.0], shapes), (shapes, shapes)).copy()
    else:
        switch = np.where(rng.random((shapes, shapes)) < 0.7,
                          rng.choice([0.0, 0.5, 2.0], (shapes, shapes)), np.inf)
    np.fill_diagonal(switch, np.inf)
    limit = None if rng.random() < 0.5 else int(rng.integers(0, 4))
    return Problem(tuple("abcd"[:shapes]), np.linspace(3.0, 1.0, levels), compute,
                   np.ones(shapes), switch, np.arange(levels), 0.0, limit)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 2, 3, 7]))
def test_layered_solver_across_blocks_matches_networkx(seed, block):
    """Blocks of a few levels put switches on block edges; whole-number costs make ties."""
    problem = long_problem(seed)
    expected = solve_networkx(problem)
    with mock.patch.object(solvers, "_BLOCK", block):
        route = solve_layers(problem)
    assert route.cost == pytest.approx(expected.cost, rel=1e-12, abs=1e-12)
    if np.isfinite(expected.cost):
        assert route_cost(problem, route.legs) == pytest.approx(route.cost, rel=1e-12)
        assert problem.max_switches is None or route.switches <= problem.max_switches
        assert all(np.isfinite(problem.switch_cost[a[0], b[0]])
                   for a, b in pairwise(route.legs))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_greedy_is_a_route_of_the_graph_and_never_beats_the_optimum(seed):
    problem = random_problem(seed)
    greedy = greedy_route(problem)
    if np.isfinite(greedy.cost):
        assert route_cost(problem, greedy.legs) == pytest.approx(greedy.cost, rel=1e-12)
        assert solve(problem).cost <= greedy.cost * (1 + 1e-12)


law_params = st.tuples(st.floats(0.1, 0.6), st.floats(1.0, 3.0), st.floats(0.5, 3.0))


@settings(max_examples=40, deadline=None)
@given(st.lists(law_params, min_size=1, max_size=4), st.floats(0.02, 1.0),
       st.sampled_from([0.0, 1e16, 1e18]), st.sampled_from([0.0, 0.01, 0.2]),
       st.sampled_from([None, 0, 1, 2]))
def test_optimal_never_costs_more_than_greedy_or_any_static_shape(
        shapes, margin, switch_flops, penalty, limit):
    laws = LawSet("random", tuple(
        Shape(f"s{i}", {}, PowerLaw(a=(start - floor) * 1e17**b, b=b, c=floor))
        for i, (b, floor, start) in enumerate((b, f, f + s) for b, f, s in shapes)))
    target = min(floor for _, floor, _ in shapes) + margin
    result = plan(laws, PlanRequest.for_laws(laws, target, levels=150, switch_flops=switch_flops,
                                             switch_penalty=penalty, max_switches=limit))
    cost = result.optimal.cost
    if result.greedy.cost is not None:
        assert cost <= result.greedy.cost * (1 + 1e-12)
    assert cost <= result.static_best.cost * (1 + 1e-12)
    assert cost >= result.lower_bound * (1 - 1e-9)
    reachable = [c for c in result.static.values() if c is not None]
    assert result.static_best.compute == pytest.approx(min(reachable), rel=1e-12)


def continuous_optimum(params, start, target, switch, penalty):
    """The best schedule of 0, 1 or 2 switches at any losses (not grid levels), by scipy."""
    def run(order, losses):
        points = [start, *losses, target]
        if any(hi < lo for hi, lo in pairwise(points)) or losses and losses[0] > start:
            return np.inf
        cost, position = 0.0, None
        for k, shape in enumerate(order):
            end = points[k + 1]
            begin = closed_forms.inverse(params[shape], position) if position is not None else 0.0
            cost += closed_forms.inverse(params[shape], end) - begin + (switch if k else 0.0)
            position = end + penalty
        return cost if np.isfinite(cost) else 1e40  # beyond a floor: finite, for the optimisers

    best = min(closed_forms.inverse(p, target) for p in params)
    span = np.linspace(target, start, 41)[1:-1]
    for a, b in itertools.permutations(range(len(params)), 2):
        found = minimize_scalar(lambda x, a=a, b=b: run((a, b), [x]), bounds=(target, start),
                                method="bounded", options={"xatol": 1e-10})
        best = min(best, found.fun)
    for order in itertools.permutations(range(len(params)), 3):
        seeds = [(x, y) for x in span for y in span if y < x]
        x0 = min(seeds, key=lambda xy, o=order: run(o, list(xy)))
        found = minimize(lambda xy, o=order: run(o, list(xy)), x0, method="Nelder-Mead",
                         options={"xatol": 1e-10, "fatol": 1e-3, "maxiter": 4000})
        best = min(best, found.fun)
    return best


@pytest.mark.parametrize("switch, penalty",  # optima with one and with two switches
                         [(1e18, 0.0), (2e17, 0.0), (5e17, 0.02), (5e16, 0.01)])
def test_switch_costs_match_a_continuous_optimisation_of_the_switch_points(demo, switch, penalty):
    result = plan(demo, PlanRequest.for_laws(demo, TARGET, start_loss=6.0, switch_flops=switch,
                                             switch_penalty=penalty))
    expected = continuous_optimum(power_params(demo), 6.0, TARGET, switch, penalty)
    assert result.optimal.cost == pytest.approx(expected, rel=5e-3)
    assert result.optimal.compute == pytest.approx(result.optimal.cost, rel=1e-12)


def test_schedule_accounts_for_every_flop(demo):
    result = plan(demo, PlanRequest.for_laws(demo, TARGET, switch_flops=2e17))
    optimal = result.optimal
    assert optimal.switches == len(optimal.schedule) - 1 >= 1
    segments = optimal.schedule
    assert sum(s.compute + s.switch_compute for s in segments) == pytest.approx(
        optimal.compute, rel=1e-12)
    assert sum(s.cost for s in segments) == pytest.approx(optimal.cost, rel=1e-12)
    params = dict(zip(demo.names, power_params(demo), strict=True))
    first = segments[0]
    assert first.compute == pytest.approx(
        closed_forms.inverse(params[first.shape], first.loss_to), rel=1e-9)
    for before, after in pairwise(segments):
        assert after.loss_from == before.loss_to
        assert after.switch_compute == 2e17
        assert after.compute == pytest.approx(
            closed_forms.inverse(params[after.shape], after.loss_to)
            - closed_forms.inverse(params[after.shape], after.loss_from), rel=1e-9)


def test_seconds_and_money_objectives_weigh_by_throughput(demo):
    seconds = plan(demo, PlanRequest.for_laws(demo, TARGET, objective="seconds"))
    money = plan(demo, PlanRequest.for_laws(demo, TARGET, objective="money", price_per_hour=3.6))
    throughput = {s.name: s.throughput for s in demo.shapes}
    by_hand = sum(s.compute / throughput[s.shape] for s in seconds.optimal.schedule)
    assert seconds.optimal.cost == pytest.approx(by_hand, rel=1e-12)
    assert money.optimal.cost == pytest.approx(seconds.optimal.cost / 1000, rel=1e-9)
    static_seconds = {n: c / throughput[n] for n, c in seconds.static.items() if c}
    assert seconds.static_best.shape == min(static_seconds, key=static_seconds.get)


def test_max_switches_zero_is_the_best_static_shape(demo):
    result = plan(demo, PlanRequest.for_laws(demo, TARGET, max_switches=0))
    assert result.optimal.switches == 0
    assert result.optimal.cost == pytest.approx(result.static_best.cost, rel=1e-12)


def test_plan_names_its_laws_and_options(demo):
    result = plan(demo, PlanRequest.for_laws(demo, TARGET, levels=300))
    assert result.laws == LawsRecord("demo", ("p32", "p16", "p8"), law_set_digest(demo))
    other = LawSet("demo", demo.shapes[:2])
    assert law_set_digest(other) != law_set_digest(demo)
    assert result.request.levels == result.levels == 300
    assert result.request == PlanRequest.for_laws(demo, TARGET, levels=300)
    assert result.saving_vs_static == pytest.approx(
        1 - result.optimal.cost / result.static_best.cost, rel=1e-12)


def test_one_axis_only_grow_rules_force_two_step_growth():
    law = {  # small early, wide-and-deep late; the one-axis shapes between are never cheapest
        (256, 6): PowerLaw(a=3e4, b=0.3, c=2.2),
        (512, 6): PowerLaw(a=2e5, b=0.3, c=2.0),
        (256, 12): PowerLaw(a=2e5, b=0.3, c=2.0),
        (512, 12): PowerLaw(a=9e4, b=0.3, c=1.8),
    }
    laws = LawSet("grid", tuple(Shape(f"w{w}-d{d}", {"width": w, "depth": d}, f)
                                for (w, d), f in law.items()))

    def route_of(**rules):
        problem = build_problem(laws, PlanRequest.for_laws(laws, 1.95, levels=400,
                                                           switch_flops=1e16, **rules))
        route = solve(problem)
        assert solve_networkx(problem).cost == pytest.approx(route.cost, rel=1e-12)
        return [problem.names[s] for s, _, _ in route.legs], route.cost

    free, free_cost = route_of()
    assert free == ["w256-d6", "w512-d12"]  # one diagonal jump, which the rules forbid
    names, cost = route_of(allowed="one-axis", only_grow=("width", "depth"))
    assert names[0] == "w256-d6" and names[-1] == "w512-d12" and len(names) == 3
    for before, after in pairwise(names):
        (w0, d0), (w1, d1) = (tuple(int(x[1:]) for x in n.split("-")) for n in (before, after))
        assert (w1 > w0 and d1 == d0) or (d1 > d0 and w1 == w0)
    # The step between is taken at the same loss (no shape between is worth training), so
    # the detour costs exactly its second switch.
    assert cost == pytest.approx(free_cost + 1e16, rel=1e-12)


def test_without_a_measured_start_the_plan_starts_a_millionth_of_the_cheapest_way_in():
    # Both laws diverge at zero compute. To the target 1.2, a needs (1 / 0.2)^2 = 25 FLOPs and
    # b 2 / 0.7 = 2.857: a millionth of the cheaper is 2.857e-6 FLOPs, where a reads
    # 1 + (2.857e-6)^-0.5 = 592.6 and b 0.5 + 2 / 2.857e-6 = 700000.5; the lower is the start.
    laws = LawSet("two", (Shape("a", {}, PowerLaw(a=1.0, b=0.5, c=1.0)),
                          Shape("b", {}, PowerLaw(a=2.0, b=1.0, c=0.5))))
    tiny = 1e-6 * 2 / 0.7
    assert default_start_loss(laws, 1.2) == pytest.approx(1 + tiny**-0.5, rel=1e-12)


def test_a_target_above_where_every_law_starts_is_refused():
    """The demo laws diverge at zero compute; a millionth of the compute to 2.19e87 (a power
    law's compute to a loss that high underflows to 0) starts them at an infinite loss."""
    laws = load_preset("demo")
    with pytest.raises(InputError, match=r"target loss 2\.19e\+87 must lie below the start "
                                         r"loss inf"):
        build_problem(laws, PlanRequest.for_laws(laws, 2.19e87))
    from laws.search.grid import loss_grid

    for start in (2.5, np.inf):
        with pytest.raises(InputError, match=rf"target loss 3 must lie below the start loss "
                                             rf"{start:g}"):
            loss_grid(laws, 3.0, start)


def test_levels_are_capped_at_a_documented_maximum():
    from laws.search.request import MAX_LEVELS

    laws = load_preset("demo")
    assert MAX_LEVELS == 1_000_000
    assert PlanRequest.for_laws(laws, 2.1, levels=MAX_LEVELS).levels == MAX_LEVELS
    with pytest.raises(InputError, match="levels must be an integer from 2 to 1,000,000"):
        PlanRequest.for_laws(laws, 2.1, levels=MAX_LEVELS + 1)
