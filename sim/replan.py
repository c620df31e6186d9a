"""Which schedule a posterior prefers from where a run is, and whether it beats the one followed.

The search problem is asked again from the run's loss (the request's, with that start loss and
``LEVELS`` levels, its measured switches charged as a plan's are by
``laws.search.charges.settle_charges``), on every sample the posterior keeps: ``FromHere``
counts each shape's compute from that loss (a run already there pays only what is left, and a
switch onto another shape), so the search machinery of ``laws.search.uncertainty`` solves all
samples at once where transitions are free, and prices any route on all of them. The
candidates are the samples' optimal routes that differ from the schedule followed by more than
the run can resolve (``indistinct``: not only by a switch moved, or a leg as short as, the noise
of the run's level); the chosen one has the least posterior expected cost (or, with the
request's ``robust`` percentile Q, the least cost at the posterior's (100 - Q)-th
percentile), and it replaces the schedule followed only when the posterior mean of
what it saves exceeds that mean's own uncertainty: the posterior standard deviation of the
saving over the square root of the effective sample size (the error of an expectation taken
over that many samples; a tempered posterior, which keeps at least ``ess_floor`` of them, needs
the clearer margin).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from laws.lawset import LawSet
from laws.search.charges import settle_charges
from laws.search.problem import Problem, build_problem
from laws.search.request import PlanRequest
from laws.search.solvers import Route
from laws.search.uncertainty import route_costs, sample_optima
from sim.posterior import Posterior, SampleCurves

LEVELS = 200  # the grid from the run's loss to the target: a few levels per evaluation stretch
MASS, MOST = 0.99, 64  # the samples kept: the heaviest that hold 99% of the weight, at most 64
SOLVED = 16  # the heaviest samples whose optimal routes are candidates (one search each where
# transitions cost something)
Legs = tuple[tuple[int, int, int], ...]


class FromHere:
    """The samples ``kept`` of ``curves`` seen from a run at ``problem``'s start loss on shape
    ``current``: C'_P(E) = C_P(E) - C_P(start) + switch(current -> P) / scale_P. What
    ``laws.search.uncertainty`` asks of samples (``count``, ``compute``, ``grid``)."""

    def __init__(self, curves: SampleCurves, problem: Problem, current: int,
                 kept: np.ndarray) -> None:
        self._curves, self._kept, self.count = curves, kept, kept.size
        entry = problem.switch_cost[current] / problem.scale
        entry[current] = 0.0
        start = problem.grid[:1]
        self._offset = np.column_stack([entry[p] - curves.compute(p, start)[kept, 0]
                                        for p in range(len(problem.names))])  # (kept, shapes)

    def compute(self, shape: int, losses: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            counted = self._curves.compute(shape, losses)[self._kept] + self._offset[:, [shape]]
        return np.where(np.isnan(counted), np.inf, counted)

    def grid(self, sample: int, losses: np.ndarray) -> np.ndarray:
        rows = self._curves.grid(int(self._kept[sample]), losses)
        with np.errstate(invalid="ignore"):
            counted = rows + self._offset[sample][:, None]
        return np.where(np.isnan(counted), np.inf, counted)


@dataclass(frozen=True)
class Choice:
    """The outcome of one re-plan: the schedule to follow from here (None: keep the one
    followed) and the posterior's figures for it."""

    schedule: list[tuple[str, float]] | None
    expected_gain: float
    gain_error: float


def remaining_problem(request: PlanRequest, laws: LawSet, level: float,
                      switches_made: int) -> Problem:
    """The request asked from ``level`` with ``LEVELS`` levels and the switches left, its
    measured switches charged as the plan's are (``settle_charges``)."""
    left = (None if request.max_switches is None
            else max(0, request.max_switches - switches_made))
    return settle_charges(laws, build_problem(laws, replace(request, start_loss=level,
                                                            levels=LEVELS, max_switches=left)))


def choose(posterior: Posterior, problem: Problem, current: str,
           schedule: list[tuple[str, float]], quantile: float | None = None,
           resolution: float = 0.0) -> Choice:
    """The posterior's choice between ``schedule`` (what the run follows from here: (shape,
    loss at which to leave it)) and the samples' optimal routes (module docstring), those
    that differ from it by more than ``resolution`` in loss (``indistinct``)."""
    kept = posterior.heaviest(MASS, MOST)
    weights = posterior.weights[kept] / posterior.weights[kept].sum()
    index = problem.names.index(current)
    here = FromHere(posterior.curves, problem, index, kept)
    routes = sample_optima(problem, FromHere(posterior.curves, problem, index, kept[:SOLVED]))[1]
    followed = schedule_legs(problem, schedule)
    candidates = [legs for legs in dict.fromkeys(_trimmed(route) for route in routes)
                  if legs and not indistinct(problem, legs, followed, resolution)
                  and _within_limit(problem, legs, index)]
    if not candidates:
        return Choice(None, 0.0, 0.0)
    costs = np.array([route_costs(problem, here, legs) for legs in [followed, *candidates]])
    scores = [_score(row, weights, quantile) for row in costs]
    best = int(np.argmin(scores))
    # A sample on which a route never reaches the target: as if it cost ten times the most
    # any route costs on any sample (finite, so that the gain has a mean and a spread).
    finite = costs[np.isfinite(costs)]
    costs = np.where(np.isfinite(costs), costs, 10.0 * (finite.max() if finite.size else 1.0))
    gain = costs[0] - costs[best]
    mean = float(weights @ gain)
    error = float(np.sqrt(weights @ (gain - mean) ** 2)) / math.sqrt(posterior.ess)
    if best == 0 or mean <= error:
        return Choice(None, mean, error)
    return Choice([(problem.names[s], float(problem.grid[b])) for s, _, b in candidates[best - 1]],
                  mean, error)


def schedule_legs(problem: Problem, schedule: list[tuple[str, float]]) -> Legs:
    """A schedule followed from ``problem``'s start loss as legs of its grid: segments whose
    level lies above the start are behind the run; the last segment ends at the target."""
    grid, legs, first = problem.grid, [], 0
    ahead = [(shape, level) for shape, level in schedule[:-1] if level < grid[0]]
    for shape, level in [*ahead, (schedule[-1][0], grid[-1])]:
        last = max(first, min(int(np.argmin(np.abs(grid - level))), grid.size - 1))
        legs.append((problem.names.index(shape), first, last))
        first = last
    return tuple(legs)


def indistinct(problem: Problem, legs: Legs, other: Legs, resolution: float) -> bool:
    """Whether two routes train the same shape at every step of the grid but those whose both
    ends lie within ``resolution`` (in loss) of one switch of either: a run whose level reads
    the loss no finer than that follows either alike (a switch moved by less, or a leg shorter
    than that, is noise to it).

    >>> from laws.forms import PowerLaw
    >>> from laws.lawset import LawSet, Shape
    >>> from laws.search import PlanRequest, build_problem
    >>> laws = LawSet("t", (Shape("a", {}, PowerLaw(2.0, 0.5, 1.0)),
    ...                     Shape("b", {}, PowerLaw(8.0, 0.5, 0.5))))
    >>> request = replace(PlanRequest.for_laws(laws, 1.2), start_loss=2.0, levels=5)
    >>> problem = build_problem(laws, request)
    >>> [round(float(loss), 3) for loss in problem.grid]  # 0.5 + 1.5 (0.7 / 1.5)^(k / 4)
    [2.0, 1.74, 1.525, 1.347, 1.2]
    >>> later = ((0, 0, 2), (1, 2, 4))  # leaves a at 1.525 rather than at 1.74
    >>> indistinct(problem, ((0, 0, 1), (1, 1, 4)), later, 0.25)
    True
    >>> indistinct(problem, ((0, 0, 1), (1, 1, 4)), later, 0.2)
    False
    """
    owners, others = _owners(problem, legs), _owners(problem, other)
    switches = problem.grid[[last for _, _, last in (*legs[:-1], *other[:-1])]]
    for step in np.flatnonzero(owners != others):
        ends = problem.grid[[step, step + 1]]
        if not np.any(np.all(np.abs(ends[:, None] - switches[None, :]) <= resolution, axis=0)):
            return False
    return True


def _owners(problem: Problem, legs: Legs) -> np.ndarray:
    """The shape a route trains on each step of ``problem``'s grid (-1: on none)."""
    owners = np.full(problem.grid.size - 1, -1)
    for shape, first, last in legs:
        owners[first:last] = shape
    return owners


def _trimmed(route: Route) -> Legs:
    """A route's legs without the zero-length first leg of a start from scratch."""
    legs = route.legs
    return legs[1:] if len(legs) > 1 and legs[0][1] == legs[0][2] else legs


def _within_limit(problem: Problem, legs: Legs, current: int) -> bool:
    """Whether a route keeps to the switch limit, a switch onto its first shape counted."""
    if problem.max_switches is None:
        return True
    return len(legs) - 1 + (legs[0][0] != current) <= problem.max_switches


def _score(costs: np.ndarray, weights: np.ndarray, quantile: float | None) -> float:
    """Posterior expected cost, or its (100 - ``quantile``)-th weighted percentile."""
    if not np.all(np.isfinite(costs[weights > 0])):
        return np.inf
    if quantile is None:
        return float(weights @ costs)
    order = np.argsort(costs)
    cumulative = np.cumsum(weights[order])
    at = np.searchsorted(cumulative, 1.0 - quantile / 100.0)
    return float(costs[order][min(int(at), costs.size - 1)])
