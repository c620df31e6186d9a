"""The yardsticks around the optimal route: the paper's greedy rule and the lower bound C*.

>>> from laws.forms import PowerLaw
>>> from laws.lawset import LawSet, Shape
>>> laws = LawSet("one", (Shape("a", {}, PowerLaw(a=1.0, b=1.0, c=0.0)),))
>>> round(lower_bound(laws, np.ones(1), np.array([2.0, 0.5])), 9)   # one shape: C(0.5) = 2
2.0
"""

from __future__ import annotations

import numpy as np

from laws.lawset import LawSet
from laws.search.grid import compute_grid, inverse_gradients
from laws.search.problem import Problem
from laws.search.solvers import UNREACHED, Route


def greedy_route(problem: Problem) -> Route:
    """The paper's rule on the grid, paying every transition it makes.

    It starts on the shape cheapest to train to the start loss; at each level it moves to the
    allowed shape whose next step is cheapest (the least mean |dC/dE| over the step, in
    objective units), ignoring what the switch costs. After a switch with a loss penalty it keeps
    the new shape until it is back at the loss it switched at, so that it cannot oscillate.
    Returns cost +inf when it gets stuck (its shape hits its floor with no allowed way out).
    """
    start, train = problem.start_cost, problem.train_cost
    allowed = np.isfinite(problem.switch_cost)
    limit = problem.max_switches
    levels = problem.grid.size
    shape = int(np.argmin(start))
    cost = float(start[shape])
    legs = []
    first = i = hold_until = 0
    while np.isfinite(cost) and i < levels - 1:
        if i >= hold_until and (limit is None or len(legs) < limit):
            candidates = np.flatnonzero(allowed[shape])
            if candidates.size:
                best = int(candidates[np.argmin(train[candidates, i])])
                if train[best, i] < train[shape, i]:
                    legs.append((shape, first, i))
                    cost += float(problem.switch_cost[shape, best])
                    shape, hold_until = best, i
                    first = i = int(problem.landing[i])
                    continue
        cost += float(train[shape, i])
        i += 1
    if not np.isfinite(cost):
        return UNREACHED
    return Route(cost, (*legs, (shape, first, levels - 1)))


def lower_bound(laws: LawSet, scale: np.ndarray, grid: np.ndarray) -> float:
    """C* of DESIGN.md in objective units: the cheapest start plus the integral, from the
    target up to the start loss, of the least |dC_P/dE| over the shapes.

    The least-gradient shape changes where two gradient curves cross; each crossing seen between
    two grid levels is located by bisection, and each piece is integrated exactly as the
    difference C_P(lower) - C_P(upper) of the shape that is least there.
    """
    shapes = laws.shapes
    gradients = scale[:, None] * inverse_gradients(laws, grid)
    least = np.argmin(gradients, axis=0)
    pieces = []  # (shape, upper loss, lower loss)
    upper = grid[0]
    for i in np.flatnonzero(least[1:] != least[:-1]):
        a, b = int(least[i]), int(least[i + 1])
        crossing = _crossing(shapes[a].law, shapes[b].law, scale[a], scale[b],
                             grid[i], grid[i + 1])
        pieces.append((a, upper, crossing))
        upper = crossing
    pieces.append((int(least[-1]), upper, grid[-1]))
    start = float(np.min(scale * compute_grid(laws, grid[:1])[:, 0]))
    return start + sum(
        float(scale[s]) * float(shapes[s].law.compute(lo) - shapes[s].law.compute(hi))
        for s, hi, lo in pieces)


def _crossing(law_a, law_b, scale_a: float, scale_b: float, high: float, low: float) -> float:
    """The loss in [low, high] where shape b's gradient becomes the lesser (a leads at high)."""
    for _ in range(100):
        middle = 0.5 * (high + low)
        if middle in (high, low):
            break
        with np.errstate(over="ignore"):
            a_leads = scale_a * abs(float(law_a.dcompute(middle))) <= scale_b * abs(
                float(law_b.dcompute(middle)))
        high, low = (middle, low) if a_leads else (high, middle)
    return 0.5 * (high + low)
