"""Power laws loss = c + a C^-b written out by hand: what the tests of the search, the simulator
and the CLI compare the code's outputs with, instead of a copy of those outputs.

Inverse law C(E) = ((E - c)/a)^(-1/b) for E > c, so |dC/dE| = C(E) / (b (E - c)). With free,
loss-preserving transitions the paper's rule is optimal: follow the shape of least |dC/dE| as
the loss falls; its cost is C* = min_P C_P(e0) + integral from target to e0 of min_P |dC_P/dE|.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.integrate import quad
from scipy.optimize import brentq

Params = dict[str, tuple[float, float, float]]  # shape name -> (a, b, c)


def power_params(laws) -> Params:
    """The (a, b, c) of every shape of a law set of power laws, by name, in the set's order."""
    return {shape.name: (shape.law.a, shape.law.b, shape.law.c) for shape in laws.shapes}


def inverse(abc: tuple[float, float, float], loss: float) -> float:
    """C(E), +inf at or below the floor c."""
    a, b, c = abc
    return ((loss - c) / a) ** (-1.0 / b) if loss > c else math.inf


def slope(abc: tuple[float, float, float], loss: float) -> float:
    """|dC/dE| = C(E) / (b (E - c)), +inf at or below the floor."""
    b, c = abc[1], abc[2]
    return inverse(abc, loss) / (b * (loss - c)) if loss > c else math.inf


def greedy_order(params: Params, start: float, target: float,
                 probes: int = 20001) -> tuple[list[str], list[float]]:
    """The owners of the least |dC/dE| from ``start`` down to ``target``, in that order, and the
    losses where the owner changes.

    A change is bracketed between two neighbouring probes, then solved by brentq on the log of
    the two slopes' ratio, so its loss is exact to 1e-13 whatever the probe spacing; the spacing
    only has to be finer than the narrowest stretch one shape owns.
    """
    losses = np.linspace(start, target, probes)
    owner = [min(params, key=lambda name, e=e: slope(params[name], e)) for e in losses]
    owners, crossings = [owner[0]], []
    for i in range(1, probes):
        if owner[i] != owner[i - 1]:
            before, after = params[owner[i - 1]], params[owner[i]]
            crossings.append(brentq(
                lambda e, p=before, q=after: math.log(slope(p, e) / slope(q, e)),
                losses[i], losses[i - 1], xtol=1e-13))
            owners.append(owner[i])
    return owners, crossings


def free_lower_bound(params: Params, start: float, target: float) -> float:
    """C*, the integral by quad with the owners' crossings as break points (the integrand's
    kinks), to a relative 1e-12."""
    _, crossings = greedy_order(params, start, target)
    integral, _ = quad(lambda e: min(slope(abc, e) for abc in params.values()), target, start,
                       points=crossings or None, epsabs=0.0, epsrel=1e-12, limit=200)
    return min(inverse(abc, start) for abc in params.values()) + integral


def best_static(params: Params, target: float) -> tuple[str, float]:
    """The shape that reaches ``target`` cheapest on its own, and its compute C_P(target)."""
    name = min(params, key=lambda n: inverse(params[n], target))
    return name, inverse(params[name], target)


def free_saving(params: Params, start: float, target: float) -> float:
    """1 - C* / C_static: the saving of the optimal schedule when transitions are free."""
    return 1.0 - free_lower_bound(params, start, target) / best_static(params, target)[1]
