"""The loss grid of the shape graph and the laws evaluated on it.

>>> from laws.forms import PowerLaw
>>> from laws.lawset import LawSet, Shape
>>> laws = LawSet("toy", (Shape("a", {}, PowerLaw(a=2.0, b=0.5, c=1.0)),))
>>> grid = loss_grid(laws, target=1.5, start=3.0, levels=5)
>>> [round(float(e), 4) for e in grid]   # 1 + geometric steps from 2 to 0.5
[3.0, 2.4142, 2.0, 1.7071, 1.5]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from laws.errors import InputError, UnreachableTarget
from laws.forms import Law
from laws.lawset import LawSet

# Where no shape's law starts at a finite loss, training starts at the loss the quickest shape
# reaches after this fraction of the cheapest static compute: what is spent above it is negligible.
START_COMPUTE_FRACTION = 1e-6


def reachable_losses(laws: LawSet) -> str:
    """The lowest loss each shape can approach (its floor), for error messages."""
    return ", ".join(f"{s.name} > {s.law.floor:.6g}" for s in laws.shapes)


def default_start_loss(laws: LawSet, target: float) -> float:
    """Where a schedule starts unless told: the measured start when the laws were fitted from
    curves (the highest of the shapes' first measured losses: a plan never starts above what
    was measured); otherwise the highest loss at which every shape's law is defined, the
    lowest ceiling (loss at zero compute), where a law that diverges at zero compute counts
    with the loss it reaches on a millionth of the cheapest static compute to ``target``.
    """
    measured = laws.measured_start_loss()
    if measured is not None:
        if not measured > target:
            raise InputError(f"target loss {target:g} is not below the highest first measured "
                             f"loss {measured:g} of law set {laws.name!r}; give --start-loss "
                             "to plan from higher up")
        return measured
    static = compute_grid(laws, np.array([target]))[:, 0]
    reachable = static[np.isfinite(static)]
    if not reachable.size:
        raise UnreachableTarget(f"target loss {target:g} is below every shape's floor; lowest "
                                f"reachable losses: {reachable_losses(laws)}")
    tiny = START_COMPUTE_FRACTION * float(reachable.min())
    with np.errstate(over="ignore", divide="ignore"):  # a compute that underflows starts at inf
        start = min(s.law.ceiling if np.isfinite(s.law.ceiling) else float(s.law.loss(tiny))
                    for s in laws.shapes)
    if not (math.isfinite(start) and start > target):
        raise InputError(f"target loss {target:g} must lie below the start loss {start:g}, "
                         "where every shape's law starts; give a lower --target or a finite "
                         "--start-loss above it")
    return start


def loss_grid(laws: LawSet, target: float, start: float | None = None,
              levels: int = 2000) -> np.ndarray:
    """``levels`` losses from ``start`` down to ``target``, uniform in log(E - lowest floor).

    The spacing tightens towards the floors, where compute grows fastest.
    """
    if not any(target > s.law.floor for s in laws.shapes):
        raise UnreachableTarget(f"target loss {target:g} is not above any shape's floor; "
                                f"lowest reachable losses: {reachable_losses(laws)}")
    if start is None:
        start = default_start_loss(laws, target)
    if not (math.isfinite(start) and start > target):
        raise InputError(f"target loss {target:g} must lie below the start loss {start:g}")
    lowest_floor = min(s.law.floor for s in laws.shapes)
    grid = lowest_floor + np.exp(np.linspace(np.log(start - lowest_floor),
                                             np.log(target - lowest_floor), levels))
    grid[0], grid[-1] = start, target  # exact ends despite rounding in exp(log(.))
    return grid


def compute_grid(laws: LawSet, grid: np.ndarray) -> np.ndarray:
    """C_P(e_i), FLOPs from scratch to each grid loss, shape by shape (+inf below a floor)."""
    return compute_rows([s.law for s in laws.shapes], grid)


def compute_rows(laws: Sequence[Law], grid: np.ndarray) -> np.ndarray:
    """(laws, losses): each law's C(E) at every loss of ``grid``, one row per law."""
    with np.errstate(over="ignore"):  # below a floor the laws overflow on their way to +inf
        return np.array([np.asarray(law.compute(grid), dtype=float) for law in laws])


def inverse_gradients(laws: LawSet, grid: np.ndarray) -> np.ndarray:
    """|dC_P/dE| on the grid, shape by shape: FLOPs per unit of loss (+inf below a floor).

    >>> from laws.forms import PowerLaw
    >>> from laws.lawset import LawSet, Shape
    >>> laws = LawSet("toy", (Shape("a", {}, PowerLaw(a=1.0, b=1.0, c=0.0)),))
    >>> inverse_gradients(laws, np.array([0.5])).tolist()   # C = 1/E, |dC/dE| = 1/E^2
    [[4.0]]
    """
    with np.errstate(over="ignore"):
        slopes = [np.asarray(s.law.dcompute(grid), dtype=float) for s in laws.shapes]
    return np.abs(np.array(slopes))
