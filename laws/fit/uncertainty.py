"""Bootstrap resamples of a fit: joint law samples and percentile intervals from them.

The method (``BLOCKS``, the default) is a circular block bootstrap by curve. Each resample
draws, within every stratum (one shape's curve; all points for the ``chinchilla`` form),
ceil(n / L) blocks of L = ceil(n^(1/3)) consecutive points (by compute, wrapping round at the
end), counts how often each point was drawn, and re-minimises the objective with those counts
as weights (times each point's own weight: the rows a point of a reduced per-step curve
stands for, ``laws.fit.reduce``), started from the point estimate. A reduced curve is
resampled as its kept points, in blocks of its points: each drawn point brings its rows'
weight, as a drawn bin of rows would. Every stratum is drawn in the same resample, so
sample k of every shape comes from one draw: in a joint fit (shared floor or exponent,
chinchilla) the samples carry the correlation between shapes.

Why blocks and not single points: successive evaluations of one training run are correlated
(the fit residuals of the committed ViT curves have a lag-1 autocorrelation of 0.4 to 0.8).
On synthetic curves (``bench/bench_fit_coverage.py``) the nominal 90% interval of the compute
to reach a target covers the truth about as often as the plain point bootstrap does when the
noise is independent, and clearly more often when it is correlated, where residual and
parametric bootstraps (which assume independent noise) fall further short. ``POINTS`` (block
length 1: the plain bootstrap of points) is kept for that comparison.

>>> rng = np.random.default_rng(0)
>>> counts = resample_counts(np.zeros(8, dtype=int), rng, BLOCKS)
>>> int(counts.sum()), bool(np.all(counts >= 0))
(8, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from laws.errors import InputError
from laws.fit.problem import Solved
from laws.forms import Law
from laws.stats import LEVEL, percentile_interval

Progress = Callable[[int, int], None]
BLOCKS = "blocks"
POINTS = "points"
METHODS = (BLOCKS, POINTS)


def bootstrap_laws(solved: Solved, resamples: int, rng: np.random.Generator,
                   progress: Progress | None = None, method: str = BLOCKS) -> list[list[Law]]:
    """``resamples`` refitted law lists, one law per curve each: entry k of every curve comes
    from resample k (a joint draw)."""
    if method not in METHODS:
        raise InputError(f"unknown bootstrap method {method!r}; expected {', '.join(METHODS)}")
    samples = []
    for done in range(1, resamples + 1):
        samples.append(solved.refit([resample_counts(s, rng, method) for s in solved.strata]))
        if progress is not None:
            progress(done, resamples)
    return samples


def block_length(points: int, method: str = BLOCKS) -> int:
    """Points per block: ceil(n^(1/3)), the usual order for a block bootstrap, or 1.

    >>> [block_length(n) for n in (1, 7, 8, 15, 28)], block_length(28, POINTS)
    ([1, 2, 2, 3, 4], 1)
    """
    if method == POINTS:
        return 1
    root = round(points ** (1 / 3))
    return root if root**3 >= points else root + 1


def resample_counts(strata: np.ndarray, rng: np.random.Generator,
                    method: str = BLOCKS) -> np.ndarray:
    """How often each point is drawn when every stratum (points in compute order) is
    resampled in circular blocks; each stratum keeps its number of points."""
    counts = np.zeros(strata.size)
    for label in np.unique(strata):
        members = np.flatnonzero(strata == label)
        size = members.size
        length = block_length(size, method)
        starts = rng.integers(0, size, math.ceil(size / length))
        drawn = ((starts[:, None] + np.arange(length)) % size).ravel()[:size]
        counts[members] = np.bincount(drawn, minlength=size)
    return counts


def law_intervals(samples: list[list[Law]], params: tuple[str, ...], target_losses: list[float],
                  level: float = LEVEL) -> list[dict[str, tuple[float, float]]]:
    """For each curve, the ``level`` percentile interval (``laws.stats``) of each parameter in
    ``params`` and of ``compute`` (the compute to reach that curve's target loss; +inf when out
    of reach) over the bootstrap ``samples``.

    101 samples of b evenly from 0.1 to 0.3: the 90% interval is their 6th and 96th values.

    >>> from laws.forms import PowerLaw
    >>> samples = [[PowerLaw(a=1.0, b=b, c=1.0)] for b in np.linspace(0.1, 0.3, 101)]
    >>> low, high = law_intervals(samples, ("b",), [2.0], level=0.9)[0]["b"]
    >>> round(low, 6), round(high, 6)
    (0.11, 0.29)
    """
    intervals = []
    for curve, target in enumerate(target_losses):
        laws = [sample[curve] for sample in samples]
        values = {name: [law.params()[name] for law in laws] for name in params}
        values["compute"] = [float(law.compute(target)) for law in laws]
        intervals.append({name: percentile_interval(v, level) for name, v in values.items()})
    return intervals
