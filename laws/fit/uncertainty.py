"""Bootstrap confidence intervals of fitted parameters and of the compute to reach a loss.

Each resample draws the points of every stratum (a shape, or all points) with replacement (a
multinomial count per point, so that nothing is copied) and re-minimises from the point
estimate: the percentile interval of the refitted values is the interval reported.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from laws.fit.problem import Solved
from laws.forms import Law

Progress = Callable[[int, int], None]


def bootstrap_laws(solved: Solved, resamples: int, rng: np.random.Generator,
                   progress: Progress | None = None) -> list[list[Law]]:
    """``resamples`` refitted law lists (one law per curve each)."""
    samples = []
    for done in range(1, resamples + 1):
        samples.append(solved.refit([_resample_counts(s, rng) for s in solved.strata]))
        if progress is not None:
            progress(done, resamples)
    return samples


def _resample_counts(strata: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """How often each point is drawn when every stratum is resampled with replacement."""
    counts = np.zeros(strata.size)
    for label in np.unique(strata):
        members = np.flatnonzero(strata == label)
        counts[members] = rng.multinomial(members.size, np.full(members.size, 1 / members.size))
    return counts


def percentile_intervals(samples: list[list[Law]], params: tuple[str, ...],
                         target_losses: list[float], level: float = 0.95
                         ) -> list[dict[str, tuple[float, float]]]:
    """For each curve, the ``level`` interval of each parameter in ``params`` and of
    ``compute`` (the compute to reach that curve's target loss; +inf when out of reach).

    >>> from laws.forms import PowerLaw
    >>> samples = [[PowerLaw(a=1.0, b=b, c=1.0)] for b in np.linspace(0.1, 0.3, 101)]
    >>> low, high = percentile_intervals(samples, ("b",), [2.0], level=0.9)[0]["b"]
    >>> round(low, 6), round(high, 6)
    (0.11, 0.29)
    """
    tail = (1.0 - level) / 2.0
    intervals = []
    for curve, target in enumerate(target_losses):
        laws = [sample[curve] for sample in samples]
        values = {name: np.array([law.params()[name] for law in laws]) for name in params}
        values["compute"] = np.array([float(law.compute(target)) for law in laws])
        intervals.append({
            name: tuple(float(q) for q in np.quantile(v, [tail, 1.0 - tail],
                                                      method="inverted_cdf"))
            for name, v in values.items()
        })
    return intervals
