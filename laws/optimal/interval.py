"""Percentile intervals over bootstrap samples, the one way ``laws.optimal`` summarises them.

>>> [round(v, 9) for v in percentile_interval(np.linspace(0.0, 1.0, 101), level=0.9)]
[0.05, 0.95]
"""

from __future__ import annotations

import numpy as np

LEVEL = 0.9  # the search's plan uncertainty reports 90% intervals too (p5 to p95)


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` interval of the finite ``values`` (the samples' percentiles,
    as the fit's intervals take them); NaNs when none is finite."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail], method="inverted_cdf")
    return float(low), float(high)


def percentile_intervals(values: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """``percentile_interval`` of every column of ``values`` (samples, m): shape (m, 2)."""
    return np.array([percentile_interval(column, level) for column in np.asarray(values).T]
                    ).reshape(-1, 2)
