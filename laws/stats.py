"""Intervals, one convention for the whole project: percentile intervals over samples
(bootstrap resamples, simulated runs) and Student-t intervals of a mean (seeds, paired runs).

``level`` is always the central probability as a fraction: 0.90 is the 5th to the 95th
percentile, and every command reports ``LEVEL`` (90%) unless asked otherwise. Output files keep
their key names (``p5``/``p95``, ``low``/``high``) beside a ``level`` entry.

Percentiles are those of the samples' empirical distribution (numpy's ``inverted_cdf``: the
smallest sample whose share at or below it reaches the probability), so an interval's ends are
always values that were drawn. That keeps them defined when some samples are infinite (a
bootstrap law that never reaches a target needs +inf compute), where interpolating between
neighbours (numpy's default) gives inf - inf = NaN. A NaN sample has no value and is left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

LEVEL = 0.90  # the central 90%: 5th to 95th percentile


def tails(level: float = LEVEL) -> tuple[float, float]:
    """The probabilities at the ends of the central ``level`` interval.

    >>> [round(p, 12) for p in tails(0.9)]
    [0.05, 0.95]
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"an interval level is a fraction in (0, 1), got {level!r}")
    return (1.0 - level) / 2.0, (1.0 + level) / 2.0


def quantiles(values: ArrayLike, probabilities: Sequence[float]) -> np.ndarray:
    """The empirical quantiles of ``values`` (NaNs left out) at ``probabilities``; all NaN
    when no value is left.

    Twenty values 1..20: 5% of them lie at or below 1, 50% at or below 10, 95% at or below 19.

    >>> quantiles(np.r_[np.arange(1.0, 21.0), np.nan], [0.05, 0.5, 0.95]).tolist()
    [1.0, 10.0, 19.0]
    >>> quantiles([1.0, 2.0, np.inf], [0.5, 0.95]).tolist()  # two of three at or below 2
    [2.0, inf]
    """
    array = np.asarray(values, dtype=float).ravel()
    array = array[~np.isnan(array)]
    if array.size == 0:
        return np.full(len(probabilities), np.nan)
    return np.quantile(array, list(probabilities), method="inverted_cdf")


def percentile_interval(values: ArrayLike, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` interval of ``values``: its ``tails(level)`` quantiles.

    A hundred and one values 0.00, 0.01, ..., 1.00: 6 of them (5.9%) lie at or below 0.05,
    5 (4.95%) at or below 0.04, so the interval starts at 0.05; symmetrically it ends at 0.95.

    >>> [round(v, 9) for v in percentile_interval(np.linspace(0.0, 1.0, 101))]
    [0.05, 0.95]
    """
    low, high = quantiles(values, tails(level))
    return float(low), float(high)


def t_interval(values: ArrayLike, level: float = LEVEL) -> tuple[float, float, float]:
    """The mean of two or more ``values`` and its two-sided Student-t interval at ``level``:
    (mean, low, high), mean -+ t((1 + level) / 2, n - 1) x s / sqrt(n).

    Two values 0.12 and 0.31: mean 0.215, s / sqrt(2) = 0.095; a table's t(0.95, 1 dof) is
    6.3138, so the half-width is 0.5998.

    >>> [round(x, 3) for x in t_interval([0.12, 0.31], 0.9)]
    [0.215, -0.385, 0.815]
    """
    from scipy.stats import t

    x = np.asarray(values, dtype=float)
    if x.size < 2:
        raise ValueError(f"a t-interval needs two or more values, got {x.size}")
    half = float(t.ppf(tails(level)[1], x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    mean = float(x.mean())
    return mean, mean - half, mean + half
