"""Porian et al. 2024's IsoFLOP estimator ("Resolving Discrepancies in Compute-Optimal Scaling
of Language Models", arXiv 2406.19146): the same exponent a of N* = k C^a as the parabola
method (``laws.optimal.isoflop``), estimated as their published code does
(github.com/formll/resolving-scaling-law-discrepancies, ``analysis.py``; the function each
step follows is named):

1. Levels. Points group into compute levels as for the parabola method (``compute_levels``);
   at one level the lowest loss per model size is kept (``interp_flop``,
   ``groupby_action='min'``), and a level needs 3 sizes (``interp_flop``: ``len(df_) < 3``).
2. Interpolation (``interpolation``): an Akima spline (scipy's ``Akima1DInterpolator``) of
   log loss in log N through the sizes, read on ``(sizes - 1) x 25`` points spaced evenly in
   log N from the smallest size to the largest (``interp_num_multiplier=25``); the minimiser
   is the grid point of lowest loss. A minimum at either end of the grid leaves the level
   out (``interp_flop``: ``n_star_ind_ != 0 and != interp_num - 1``).
3. Seed-noise bootstrap (``vectorized_interp_with_seed_noise``, ``get_noise_for_loss``):
   ``resamples`` draws add Gaussian noise of standard deviation ``seed_noise`` to every loss
   and redo step 2; a draw whose minimum is at an end of the grid is invalid, and a level
   with fewer than ``resamples // 2`` valid draws is left out. The level's N* is the median
   of its valid draws (``bs_median_as_obs=True``); its spread is the standard deviation of
   log N* over them, floored at 0.33 x 25 grid steps (``min_std_factor`` times
   ``interp_num_multiplier``: a third of the mean spacing of the sizes in log N) and
   multiplied by ``resamples / valid``.
4. Weighted power law (``power_law_fit(weighted=True)`` in
   ``fit_compute_optimal_power_laws``): log N* = log k + a log C by least squares with
   weights 1/spread^2 through the medians (their ``bs_median_weighted``, the estimate their
   tables print), and the interval of a over the same weighted fits through the i-th valid
   draw of every level, for i below the fewest valid draws of any level
   (``bootstrap_weighted``; ``paper_tables.extract_CI``).

Where theirs does not carry over, the choices made here:

- The noise. ``get_noise_for_loss`` interpolates the standard deviation between
  ``noise_low`` and ``noise_high`` in log loss, but it compares log loss with thresholds (3
  and 7) that its interpolation treats as losses, so every loss below e^3 ~ 20 (all of
  theirs) gets ``noise_low``: 0.002 on RefinedWeb, 0.01 on OpenWebText2 (``configs.py``,
  ``RW_SEED_CONFIG``, ``OWT2_SEED_CONFIG``). Here it is one constant, ``seed_noise``.
- They interpolate in D as well and leave out of their bootstrap a level whose D
  interpolation fails; only N is interpolated here.
- Their points are read off training curves at each budget (``fetch_flop``); here they are
  given.
- The draws come from ``numpy.random.default_rng(seed)``: for each level in increasing
  compute, ``standard_normal((resamples, sizes))`` with sizes in increasing N (every level
  draws, used or not), where theirs use the global ``np.random.seed(42)``.
- The interval is ``laws.stats.percentile_interval`` at ``level`` (90% by default, the
  project's); their tables give 95% (``np.quantile`` at 2.5% and 97.5%).

On exact parabolas (no noise) the level minima are the grid points nearest the vertices:

>>> log_c = np.repeat(np.log([1e18, 1e19, 1e20]), 5)
>>> log_n = np.log(0.1) + 0.5 * log_c + np.tile(np.linspace(-1, 1, 5), 3)
>>> loss = 2.0 + 0.1 * (log_n - (np.log(0.1) + 0.5 * log_c)) ** 2
>>> fit = porian_fit(np.exp(log_c), np.exp(log_n), loss, seed_noise=0.0, resamples=10)
>>> round(fit.a, 9), fit.method, [lv.interior for lv in fit.levels]
(0.5, 'porian', [True, True, True])
"""

from __future__ import annotations

import numpy as np

from laws.errors import InputError
from laws.optimal.isoflop import IsoFlopFit, IsoLevel, compute_levels, power_law
from laws.stats import LEVEL, percentile_interval

GRID_PER_GAP = 25  # their interp_num_multiplier: grid points per gap between sizes
SPREAD_FLOOR = 0.33  # their min_std_factor: the floor of the spread, in gaps between sizes


def porian_fit(compute: np.ndarray, n_params: np.ndarray, loss: np.ndarray,
               seed_noise: float, name: str = "", resamples: int = 1000, seed: int = 0,
               level: float = LEVEL) -> IsoFlopFit:
    """Porian et al.'s estimate of a on one sweep (module docstring), with ``seed_noise`` the
    standard deviation of the loss between training seeds.

    Raises ``InputError`` for fewer than 2 draws, a negative ``seed_noise``, noise that makes
    a loss non-positive, or fewer than two levels that give a minimum.
    """
    if resamples < 2:
        raise InputError(f"the Porian estimator needs at least 2 seed-noise draws, not "
                         f"{resamples}: its level weights are their spread")
    if seed_noise < 0:
        raise InputError(f"seed noise {seed_noise}: a standard deviation cannot be negative")
    compute, n_params, loss = (np.asarray(v, dtype=float) for v in (compute, n_params, loss))
    levels = compute_levels(compute)
    budgets = np.unique(levels)
    rng = np.random.default_rng(seed)
    summaries, draws = [], []
    for budget in budgets:
        members = levels == budget
        sizes, lowest = _lowest_loss_per_size(n_params[members], loss[members])
        noise = seed_noise * rng.standard_normal((resamples, sizes.size))
        summary, valid = _level(float(budget), int(members.sum()), sizes, lowest, noise)
        summaries.append(summary)
        draws.append(valid)
    found = [(lv, valid) for lv, valid in zip(summaries, draws, strict=True)
             if lv.n_opt is not None]
    if len(found) < 2:
        raise InputError(f"{name or 'sweep'}: {len(found)} compute level(s) give an interior "
                         "minimum; the Porian estimator needs at least 2 (each with 3 or more "
                         "model sizes)")
    log_c = np.log([lv.compute for lv, _ in found])
    weights = np.array([lv.spread for lv, _ in found]) ** -2.0
    slope, intercept = power_law(log_c, np.log([[lv.n_opt for lv, _ in found]]), weights)
    paired = min(valid.size for _, valid in found)
    slopes, _ = power_law(log_c, np.array([valid[:paired] for _, valid in found]).T, weights)
    return IsoFlopFit(name, tuple(summaries), float(slope[0]), float(np.exp(intercept[0])),
                      percentile_interval(slopes, level), resamples, paired, level, "porian")


def _lowest_loss_per_size(n_params: np.ndarray, loss: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    """The distinct sizes in increasing order and the lowest loss measured at each."""
    sizes, which = np.unique(n_params, return_inverse=True)
    lowest = np.full(sizes.size, np.inf)
    np.minimum.at(lowest, which, loss)
    return sizes, lowest


def _level(budget: float, points: int, sizes: np.ndarray, lowest: np.ndarray,
           noise: np.ndarray) -> tuple[IsoLevel, np.ndarray]:
    """One level's summary (of ``points`` points, at ``sizes`` with the ``lowest`` loss at
    each) and the log N* of its valid draws (empty when left out)."""
    none = np.empty(0)
    if sizes.size < 3:
        return IsoLevel(budget, points, None, None, False, "fewer than 3 sizes"), none
    log_n = np.log(sizes)
    grid = np.linspace(log_n[0], log_n[-1], (sizes.size - 1) * GRID_PER_GAP)
    noisy = lowest[None, :] + noise
    if np.any(noisy <= 0):
        raise InputError(f"level {budget:.4g}: the seed noise makes a loss non-positive, "
                         "whose log the interpolation needs")
    curves = _interpolate(log_n, np.log(np.vstack([lowest[None, :], noisy])).T, grid)
    at = curves.argmin(axis=0)
    interior = (at > 0) & (at < grid.size - 1)
    valid = grid[at[1:][interior[1:]]]
    if not interior[0]:
        return IsoLevel(budget, points, None, None, False,
                        "minimum at the edge of the sizes measured"), none
    if valid.size < noise.shape[0] // 2:
        return IsoLevel(budget, points, None, None, False,
                        f"{valid.size} of {noise.shape[0]} seed-noise draws give an interior "
                        "minimum, fewer than half"), none
    floor = SPREAD_FLOOR * GRID_PER_GAP * (grid[1] - grid[0])
    spread = max(float(np.std(valid)), floor) * noise.shape[0] / valid.size
    return IsoLevel(budget, points, float(np.median(np.exp(valid))),
                    float(np.exp(curves[at[0], 0])), True, spread=spread), valid


def _interpolate(log_n: np.ndarray, log_loss: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Akima splines through (log N, log loss) for each column of ``log_loss`` (sizes, r),
    read at ``grid``: (grid points, r)."""
    from scipy.interpolate import Akima1DInterpolator

    return Akima1DInterpolator(log_n, log_loss, axis=0)(grid)
