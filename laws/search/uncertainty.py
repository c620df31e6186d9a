"""How sure a plan is: the search answered again on every bootstrap sample of the laws.

A law file fitted with ``fit --bootstrap N`` carries N joint resamples of its laws
(``LawSet.samples``). On each sample, on the point plan's grid and with the same request:

- the optimal saving over that sample's best static shape (``saving``: what adaptive training
  can save, as far as the fit knows), each sample searched with the point plan's switch prices
  (its measured switches' point charges);
- the point plan's own route followed on that sample, against the sample's best static shape
  (``p_beats_static``: how often it wins) and against the static shape the point plan names
  (``plan_saving``), each measured switch charged what its transition's sample of the same
  index costs there (``laws.search.charges.SampleCharges``; a transition without samples, and
  any other switch, at the point plan's price);
- which order of shapes is optimal (``schedules``: the share of samples for each).

A robust choice (``robust_route``) takes, among the samples' optimal routes, the one whose
``quantile``-th percentile of saving over the samples (its switches charged sample by sample,
as the point plan's are) is highest, and says what it costs at the point estimate.

With free transitions (no switch cost, penalty or limit, all switches allowed) the optimum on a
grid is the cheapest shape of every step, so all samples are solved at once in numpy; otherwise
each sample is solved by the search's own solver.

>>> from laws.forms import PowerLaw
>>> from laws.lawset import LawSet, Shape
>>> from laws.search import PlanRequest, build_problem, plan_for_problem
>>> def shape(name, a, c, draws):
...     return Shape(name, {}, PowerLaw(a, 0.5, c), samples=tuple(PowerLaw(x, 0.5, c)
...                                                                for x in draws))
>>> laws = LawSet("toy", (shape("small", 2.0, 1.0, [1.8, 2.2]), shape("big", 8.0, 0.5, [7, 9])))
>>> problem = build_problem(laws, PlanRequest.for_laws(laws, 1.2))
>>> report = plan_uncertainty(laws, problem, plan_for_problem(laws, problem))
>>> report.samples, sorted(report.schedules)
(2, ['small > big'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from laws.errors import InputError
from laws.forms import offset_power_compute
from laws.lawset import LawSet
from laws.search.charges import SampleCharges
from laws.search.grid import compute_rows
from laws.search.planfile import (
    Percentiles,
    Plan,
    PlanUncertainty,
    RobustChoice,
    RobustStep,
    Segment,
)
from laws.search.problem import Problem
from laws.search.solvers import UNREACHED, Route, solve
from laws.stats import LEVEL, quantiles, tails


def plan_uncertainty(laws: LawSet, problem: Problem, point_plan: Plan,
                     quantile: float | None = None,
                     progress: Callable[[int, int], None] | None = None) -> PlanUncertainty:
    """The ``uncertainty`` entry of a plan (see the module docstring); ``quantile`` adds the
    ``robust`` choice. Raises ``InputError`` when the law set carries no samples."""
    if not laws.shapes[0].samples:
        raise InputError(f"law set {laws.name!r} carries no bootstrap samples (fit it with "
                         "`shapeshift fit --bootstrap N`)")
    draws = SampleLaws(laws)
    costs, routes = sample_optima(problem, draws, progress)
    static = np.column_stack([problem.scale[p] * draws.compute(p, problem.grid[-1:])[:, 0]
                              for p in range(len(problem.names))])  # (samples, shapes)
    best_static = static.min(axis=1)
    charges = SampleCharges(laws, problem)
    followed = route_costs(problem, draws, _legs(problem, point_plan.optimal.schedule), charges)
    named = static[:, problem.names.index(point_plan.static_best.shape)]
    with np.errstate(invalid="ignore", divide="ignore"):  # unreachable on a sample: inf / inf
        saving, plan_saving = 1.0 - costs / best_static, 1.0 - followed / named
    orders = Counter(" > ".join(problem.names[s] for s, _, _ in r.legs) for r in routes)
    return PlanUncertainty(
        samples=draws.count,
        level=LEVEL,
        saving=_percentiles(saving),
        plan_saving=_percentiles(plan_saving),
        p_beats_static=float(np.mean(followed < best_static)),
        schedules={order: count / draws.count for order, count in orders.most_common()},
        robust=None if quantile is None else robust_route(
            problem, draws, routes, best_static, quantile, point_plan, charges))


class SampleLaws:
    """The bootstrap samples of a law set, shape by shape: C_P(E) of all samples at once."""

    def __init__(self, laws: LawSet) -> None:
        self._laws = [shape.samples for shape in laws.shapes]
        self._offset_power = [
            tuple(np.array(column)[:, None] for column in zip(
                *(law.offset_power() for law in draws), strict=True))
            if all(hasattr(law, "offset_power") for law in draws) else None
            for draws in self._laws]
        self.count = len(self._laws[0])

    def compute(self, shape: int, losses: np.ndarray) -> np.ndarray:
        """(samples, losses): the FLOPs each sample of ``shape`` needs from scratch to each
        loss; laws of the offset-power family (power, saturating, chinchilla) in one call."""
        params = self._offset_power[shape]
        if params is not None:
            return offset_power_compute(np.asarray(losses)[None, :], *params)
        return compute_rows(self._laws[shape], losses)

    def grid(self, sample: int, losses: np.ndarray) -> np.ndarray:
        """(shapes, losses) for one sample: what ``Problem.compute`` holds."""
        return compute_rows([draws[sample] for draws in self._laws], losses)


def _free(problem: Problem) -> bool:
    """Free transitions: every switch allowed at no cost, none penalised, no limit."""
    off_diagonal = ~np.eye(len(problem.names), dtype=bool)
    return (problem.max_switches is None and not problem.penalised
            and bool(np.all(problem.switch_cost[off_diagonal] == 0.0)))


def sample_optima(problem: Problem, draws: SampleLaws,
                  progress: Callable[[int, int], None] | None = None
                  ) -> tuple[np.ndarray, list[Route]]:
    """The optimal cost and route of every sample of ``draws`` (``SampleLaws``, or anything
    with its ``count``, ``compute`` and ``grid``): all at once where transitions are free,
    else one search per sample (``progress(done, total)`` after each)."""
    if _free(problem):
        return _free_optima(problem, draws)
    routes = []
    for k in range(draws.count):
        routes.append(solve(replace(problem, compute=draws.grid(k, problem.grid))))
        if progress:
            progress(k + 1, draws.count)
    return np.array([r.cost for r in routes]), routes


def _free_optima(problem: Problem, draws: SampleLaws) -> tuple[np.ndarray, list[Route]]:
    """With free transitions the optimum takes the cheapest shape of every step: a running
    minimum over the shapes, one shape at a time (no samples x shapes x levels array)."""
    shape_steps = problem.grid.size - 1
    best_start = np.full(draws.count, np.inf)
    first = np.zeros(draws.count, dtype=np.int64)
    best_step = np.full((draws.count, shape_steps), np.inf)
    owners = np.zeros((draws.count, shape_steps), dtype=np.int16)
    for p, scale in enumerate(problem.scale):
        compute = draws.compute(p, problem.grid)  # (samples, levels)
        with np.errstate(invalid="ignore"):
            steps = scale * (compute[:, 1:] - compute[:, :-1])
        steps[~np.isfinite(compute[:, 1:])] = np.inf
        cheaper = steps < best_step
        best_step[cheaper], owners[cheaper] = steps[cheaper], p
        start = scale * compute[:, 0]
        first[start < best_start] = p
        best_start = np.minimum(best_start, start)
    costs = best_start + best_step.sum(axis=1)
    return costs, [_free_route(int(f), o, c) for f, o, c in zip(first, owners, costs,
                                                                 strict=True)]


def _free_route(first: int, owners: np.ndarray, cost: float) -> Route:
    """The route of a free-transition optimum: ``first`` (the cheapest to the start loss), then
    the owner of each step, a leg wherever the owner changes."""
    if not np.isfinite(cost):
        return UNREACHED
    changes = (np.flatnonzero(np.diff(owners)) + 1).tolist()
    legs = [(int(owners[a]), a, b) for a, b in zip([0, *changes], [*changes, owners.size],
                                                    strict=True)]
    if legs[0][0] != first:  # trained to the start loss on one shape, switched there for free
        legs.insert(0, (first, 0, 0))
    return Route(float(cost), tuple(legs))


def _legs(problem: Problem, schedule: Sequence[Segment | RobustStep]
          ) -> tuple[tuple[int, int, int], ...]:
    """A plan's schedule as legs (shape, first level, last level) of ``problem``'s grid."""
    grid = problem.grid

    def level(loss: float) -> int:
        return int(np.argmin(np.abs(grid - loss)))

    return tuple((problem.names.index(s.shape), level(s.loss_from), level(s.loss_to))
                 for s in schedule)


def route_costs(problem: Problem, draws: SampleLaws | None,
                legs: tuple[tuple[int, int, int], ...],
                charges: SampleCharges | None = None) -> np.ndarray:
    """What a route costs on every sample (``draws``; None: on the point laws, one value), in
    objective units: the first leg from scratch, later ones from where they land, each switch
    at the problem's switch cost, or what ``charges`` (samples of ``draws``) say it costs on
    each sample."""
    total = np.zeros(1 if draws is None else draws.count)
    previous, fired = None, 0
    for shape, first, last in legs:
        ends = (problem.compute[shape, [first, last]][None, :] if draws is None
                else draws.compute(shape, problem.grid[[first, last]]))  # (samples, 2)
        switch = (0.0 if previous is None
                  else problem.switch_cost[previous, shape] if charges is None
                  else charges.cost(previous, shape, fired, last))
        with np.errstate(invalid="ignore"):  # a sample's floor above a level: inf - inf
            trained = ends[:, 1] - (ends[:, 0] if previous is not None else 0.0)
            total = total + problem.scale[shape] * trained + switch
        previous, fired = shape, last
    return np.where(np.isnan(total), np.inf, total)


def robust_route(problem: Problem, draws: SampleLaws, routes: list[Route],
                 best_static: np.ndarray, quantile: float, point_plan: Plan,
                 charges: SampleCharges | None = None) -> RobustChoice:
    """Among the samples' optimal routes, the one whose ``quantile``-th percentile of saving
    (over each sample's best static shape; switches charged by ``charges`` where given) is
    highest, and its cost at the point estimate."""
    candidates = list(dict.fromkeys(r.legs for r in routes if r.reaches))
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = [float(quantiles(1.0 - route_costs(problem, draws, legs, charges) / best_static,
                                  [quantile / 100])[0]) for legs in candidates]
    chosen = candidates[int(np.argmax(scores))]
    point_cost = float(route_costs(problem, None, chosen)[0])
    return RobustChoice(
        quantile=quantile,
        schedule=tuple(RobustStep(problem.names[s], float(problem.grid[a]),
                                  float(problem.grid[b])) for s, a, b in chosen),
        saving_at_quantile=max(scores),
        point_cost=point_cost,
        point_cost_over_optimal=point_cost / point_plan.optimal.cost - 1.0,
    )


def _percentiles(values: np.ndarray) -> Percentiles:
    """The median and the ``LEVEL`` interval (``p5``, ``p95``) over the samples where the
    value is finite: a sample on which a route never reaches the target has no saving."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return Percentiles(None, None, None)
    low, high = tails(LEVEL)
    p5, p50, p95 = quantiles(finite, [low, 0.5, high])
    return Percentiles(float(p5), float(p50), float(p95))
