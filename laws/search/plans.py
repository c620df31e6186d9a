"""The plan: the optimal schedule of shapes to a target loss, with what it is measured against
(a ``Plan``, ``laws.search.planfile``), made and formatted for people.

>>> from laws.presets import load_preset
>>> from laws.search.request import PlanRequest
>>> laws = load_preset("demo")
>>> result = plan(laws, PlanRequest.for_laws(laws, 2.2, levels=500))
>>> result.optimal.cost <= result.static_best.cost
True
>>> result.request.target, result.request.levels
(2.2, 500)
"""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import numpy as np

from laws.lawset import LawSet
from laws.search.assumptions import free_switches
from laws.search.charges import settle_charges
from laws.search.grid import compute_grid
from laws.search.planfile import (
    LawsRecord,
    MeasuredSwitch,
    Percentiles,
    Plan,
    PlannedRoute,
    PlanUncertainty,
    ProducedBy,
    Segment,
    StaticBest,
)
from laws.search.problem import Problem, build_problem
from laws.search.request import PlanRequest, describe_request
from laws.search.rules import greedy_route, lower_bound
from laws.search.solvers import Route, solve
from laws.search.uncertainty import plan_uncertainty
from laws.version import shapeshift_version


def plan(laws: LawSet, request: PlanRequest) -> Plan:
    """The plan that ``request`` asks of ``laws``. Raises ``UnreachableTarget`` on a target at
    or below every shape's floor, ``InputError`` on options the laws cannot meet (a throughput
    missing for ``--objective seconds``, an unknown shape in ``allowed``).
    """
    return plan_for_problem(laws, build_problem(laws, request))


def plan_for_problem(laws: LawSet, problem: Problem) -> Plan:
    """The plan for a problem built by ``build_problem`` from ``laws``, its measured switches
    charged first (``settle_charges``)."""
    problem = settle_charges(laws, problem)
    optimal = solve(problem)
    route = describe_route(problem, optimal)
    # Every shape alone, whichever shape the request's routes must end on.
    static_compute = compute_grid(laws, problem.grid[-1:])[:, 0]
    static_cost = problem.scale * static_compute
    best = int(np.argmin(static_cost))
    static = {name: _finite(c) for name, c in zip(problem.names, static_compute, strict=True)}
    result = Plan(
        target_loss=float(problem.grid[-1]),
        start_loss=float(problem.grid[0]),
        objective=problem.request.objective,
        compute_unit=laws.compute_unit,
        levels=int(problem.grid.size),
        # build_problem checked that the request was made for these laws
        laws=LawsRecord(laws.name, tuple(problem.names), problem.request.laws_digest),
        request=problem.request,
        solver="sparse-dijkstra" if problem.penalised else "layered-dp",
        optimal=route,
        assumptions=tuple(free_switches(route.shapes, problem.request.transitions(laws),
                                        problem.request.objective,
                                        {(problem.names[p], problem.names[q])
                                         for p, q in problem.charged})),
        measured_switches=measured_switches(laws, problem, optimal),
        greedy=describe_route(problem, greedy_route(problem)),
        static=static,
        static_best=StaticBest(problem.names[best], static[problem.names[best]],
                               float(static_cost[best])),
        saving_vs_static=1.0 - optimal.cost / float(static_cost[best]),
        lower_bound=lower_bound(laws, problem.scale, problem.grid),
        produced_by=ProducedBy("shapeshift search", shapeshift_version()),
    )
    if laws.shapes[0].samples or problem.request.robust is not None:
        result = replace(result, uncertainty=plan_uncertainty(laws, problem, result,
                                                              problem.request.robust))
    return result


def describe_route(problem: Problem, route: Route) -> PlannedRoute:
    """A route as the plan shows it (``PlannedRoute``: cost, compute, switches, schedule)."""
    if not route.reaches:
        return PlannedRoute(cost=None, compute=None, switches=None, schedule=())
    grid, compute = problem.grid, problem.compute
    schedule = []
    previous = None
    for shape, first, last in route.legs:
        trained = compute[shape, last] - (compute[shape, first] if previous is not None else 0.0)
        switch_cost = 0.0 if previous is None else float(problem.switch_cost[previous, shape])
        schedule.append(Segment(
            shape=problem.names[shape],
            loss_from=float(grid[first]),
            loss_to=float(grid[last]),
            compute=float(trained),
            switch_compute=0.0 if previous is None else float(problem.charged.get(
                (previous, shape), problem.switch_flops)),
            cost=switch_cost + float(problem.scale[shape] * trained),
        ))
        previous = shape
    total = sum(s.compute + s.switch_compute for s in schedule)
    return PlannedRoute(cost=route.cost, compute=total, switches=route.switches,
                        schedule=tuple(schedule))


def measured_switches(laws: LawSet, problem: Problem, route: Route
                      ) -> tuple[MeasuredSwitch, ...]:
    """The switches of ``route`` charged by a measured transition: the pair, the transition's
    model and the FLOPs charged (``laws.search.charges``)."""
    measured = laws.transitions.measured_pairs
    found = []
    for (p, _, _), (q, _, _) in pairwise(route.legs):
        if (p, q) in problem.charged:
            found.append(MeasuredSwitch(
                problem.names[p], problem.names[q],
                measured[problem.names[p], problem.names[q]].model, problem.charged[p, q]))
    return tuple(found)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


_UNITS = {"flops": "FLOPs", "seconds": "s", "money": "money"}


def format_plan(result: Plan) -> str:
    """The plan for people: the optimal schedule as a table, then how it compares."""
    from laws.tables import format_number, format_table

    optimal = result.optimal
    rows = [[s.shape, _loss_from_label(s, first=i == 0), s.loss_to,
             s.compute + s.switch_compute,
             f"{100 * (s.compute + s.switch_compute) / optimal.compute:.1f}%"]
            for i, s in enumerate(optimal.schedule)]
    unit = _UNITS[result.objective]
    best = result.static_best
    greedy = result.greedy.cost
    lines = [
        f"{result.laws.name}: from loss {format_number(result.start_loss)} to "
        f"{format_number(result.target_loss)}, {result.levels} levels, objective "
        f"{result.objective}, {optimal.switches} switch(es)",
        f"search options: {describe_request(result.request.to_dict())}",
        "",
        format_table(["shape", "loss from", "loss to", "compute (FLOPs)", "share"], rows),
        "",
        f"optimal {format_number(optimal.cost)} {unit} vs best static "
        f"{format_number(best.cost)} {unit} (shape {best.shape}): saves "
        f"{100 * result.saving_vs_static:.1f}%",
        f"greedy rule {'stuck' if greedy is None else format_number(greedy) + ' ' + unit}; "
        f"lower bound C* {format_number(result.lower_bound)} {unit}",
    ]
    lines += [f"switch {m.from_shape} -> {m.to_shape} charged {format_number(m.flops)} FLOPs "
              f"by its measured transition ({m.model})" for m in result.measured_switches]
    if result.uncertainty is not None:
        lines += ["", *format_uncertainty(result.uncertainty)]
    if result.assumptions:
        lines += ["", *(f"warning: this plan {line} (no measured transition, no switch cost "
                        "given)" for line in result.assumptions)]
    if result.recommends_static:
        lines += ["", f"recommendation: train {best.shape} alone ({_why_static(result)})"]
    return "\n".join(lines)


def _why_static(result: Plan) -> str:
    """Why a plan that ``recommends_static`` does: no cheaper schedule, or one that may lose."""
    from laws.tables import format_percent

    if result.optimal.switches == 0:
        return "no schedule that switches is cheaper to the target"
    report = result.uncertainty
    return (f"this plan's saving over it reaches {format_percent(report.plan_saving.p5)} at the "
            f"low end of its {100 * report.level:g}% interval: following it may lose to static")


def _loss_from_label(segment: Segment, first: bool) -> float | str:
    """The "loss from" cell of a schedule row. A first segment that ends at the start loss is
    the cheapest way to reach it from scratch before switching at once (its compute is real),
    so it reads "scratch" rather than a segment from the start loss to itself.

    >>> _loss_from_label(Segment("p32", 3.6, 3.6, 1e15, 0.0, 1e15), first=True)
    'scratch'
    >>> _loss_from_label(Segment("p16", 3.6, 3.6, 0.0, 0.0, 0.0), first=False)
    3.6
    """
    if first and segment.loss_from == segment.loss_to:
        return "scratch"
    return segment.loss_from


def format_uncertainty(report: PlanUncertainty) -> list[str]:
    """The ``uncertainty`` entry of a plan for people: the interval, the odds, the schedules."""
    from laws.tables import format_percent

    def interval(stats: Percentiles) -> str:
        p5, p50, p95 = (format_percent(value, "n/a")
                        for value in (stats.p5, stats.p50, stats.p95))
        return f"{p50} [{p5}, {p95}]"

    schedules = ", ".join(f"{order} {format_percent(share)}"
                          for order, share in list(report.schedules.items())[:3])
    lines = [
        f"fit uncertainty ({report.samples} bootstrap samples, {100 * report.level:g}% "
        f"intervals): optimal saving {interval(report.saving)}; this plan saves "
        f"{interval(report.plan_saving)} over its static shape",
        f"this plan beats every sample's best static shape in "
        f"{format_percent(report.p_beats_static)} of samples; optimal orders: {schedules}",
    ]
    robust = report.robust
    if robust:
        order = " > ".join(step.shape for step in robust.schedule)
        lines.append(f"robust choice (best saving at the {robust.quantile:g}th percentile): "
                     f"{order}, saves {format_percent(robust.saving_at_quantile)} there; "
                     f"costs {format_percent(robust.point_cost_over_optimal)} more than the "
                     "optimum at the point estimate")
    return lines
