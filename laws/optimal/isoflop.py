"""The IsoFLOP method (Hoffmann et al. 2022's approach 2, as Porian et al. 2024 use it): on a
sweep of model sizes at each of several fixed budgets, fit per budget a parabola of loss in
log N (least squares), take its minimum N*(C), then fit N* = k C^a through the minima (least
squares in log-log).

Points belong to one compute level when their compute agrees to 4 significant digits (budgets
computed as 6 N D from rounded N and D still group). A level needs 3 distinct sizes and an
upward-curved parabola; other levels are left out of the power law (and reported). A minimum
outside the sizes measured at its level is an extrapolation of the parabola; ``inside_only``
leaves such levels out too, and in each resample the levels whose minimum lies outside the
sizes that resample drew. The bootstrap resamples points with
replacement within each level and refits everything; the interval of a is over the resamples
that keep at least two levels.

``laws.optimal.porian`` estimates the same exponent Porian et al.'s way (an interpolation per
level, a seed-noise bootstrap, a weighted power law) and returns the same ``IsoFlopFit``.

>>> log_c = np.repeat(np.log([1e18, 1e19, 1e20]), 5)
>>> log_n = np.log(0.1) + 0.5 * log_c + np.tile(np.linspace(-1, 1, 5), 3)
>>> loss = 2.0 + 0.1 * (log_n - (np.log(0.1) + 0.5 * log_c)) ** 2
>>> result = isoflop_fit(np.exp(log_c), np.exp(log_n), loss)
>>> round(result.a, 9), round(result.k, 9)
(0.5, 0.1)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from laws.errors import InputError
from laws.stats import LEVEL, percentile_interval
from laws.tables import format_number, format_table

_LEVEL_DIGITS = 4


@dataclass(frozen=True)
class IsoLevel:
    """One compute level: its points, the minimum (None when the level cannot give one),
    whether that minimum lies within the sizes measured and, for the Porian estimator, the
    spread of log N* that weights the level (None for the parabola method)."""

    compute: float
    points: int
    n_opt: float | None
    loss_opt: float | None
    interior: bool
    reason: str = ""
    spread: float | None = None

    def to_dict(self) -> dict:
        return {"compute": self.compute, "points": self.points, "N_opt": self.n_opt,
                "loss_opt": self.loss_opt, "interior": self.interior,
                **({"log_N_opt_spread": self.spread} if self.spread is not None else {}),
                **({"left_out": self.reason} if self.reason else {})}


@dataclass(frozen=True)
class IsoFlopFit:
    """N* = k C^a through the levels' minima, with the ``level`` interval of a over
    ``resamples`` bootstrap resamples, of which ``valid`` gave an exponent (parabola: kept at
    least two levels; porian: the draws paired across levels); None without resamples or
    when none did. ``method`` names the estimator: "parabola" or "porian"."""

    name: str
    levels: tuple[IsoLevel, ...]
    a: float
    k: float
    interval: tuple[float, float] | None = None
    resamples: int = 0
    valid: int = 0
    level: float = LEVEL
    method: str = "parabola"

    def to_dict(self) -> dict:
        return {"name": self.name, "method": self.method, "a": self.a, "k": self.k,
                "a_interval": None if self.interval is None else list(self.interval),
                "resamples": self.resamples, "valid_resamples": self.valid,
                "level": self.level, "levels": [lv.to_dict() for lv in self.levels]}


def weighted_polyfit(x: np.ndarray, y: np.ndarray, weights: np.ndarray,
                     degree: int) -> np.ndarray:
    """Least-squares polynomial coefficients (lowest power first) for each row of
    ``weights`` (r, n) over the same points (x, y) (n,); y may also be (r, n). Rows whose
    weighted points hold fewer than degree + 1 distinct x give NaNs. Solved by normal
    equations, so callers centre x (log N is about 20, its square about 400).

    >>> fit = weighted_polyfit(np.arange(4.0), 1 + np.arange(4.0) ** 2, np.ones((1, 4)), 2)
    >>> (fit.round(9) + 0.0).tolist()
    [[1.0, 0.0, 1.0]]
    """
    weights = np.atleast_2d(weights)
    powers = x[:, None] ** np.arange(degree + 1)  # (n, p)
    normal = np.einsum("rn,np,nq->rpq", weights, powers, powers)
    rhs = np.einsum("rn,np,rn->rp", weights, powers, np.broadcast_to(y, weights.shape))
    order = np.argsort(x, kind="stable")
    first = np.flatnonzero(np.r_[True, np.diff(x[order]) != 0])  # each distinct x's first
    per_value = np.add.reduceat(weights[:, order], first, axis=1)
    distinct = np.count_nonzero(per_value > 0, axis=1)
    ok = distinct > degree
    normal[~ok] = np.eye(degree + 1)
    coefficients = np.linalg.solve(normal, rhs[..., None])[..., 0]
    coefficients[~ok] = np.nan
    return coefficients


def _minima(log_n: np.ndarray, loss: np.ndarray, weights: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """The parabola's minimum (log N*, loss there) per row of weights; NaN where the
    parabola does not curve upwards or cannot be fitted."""
    centre = float(np.mean(log_n))
    c0, c1, c2 = weighted_polyfit(log_n - centre, loss, weights, 2).T
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(c2 > 0, -c1 / (2 * c2), np.nan)
    return x + centre, c0 + c1 * x + c2 * x**2


def compute_levels(compute: np.ndarray) -> np.ndarray:
    """The level of each point: its compute to 4 significant digits."""
    return np.array([float(f"{c:.{_LEVEL_DIGITS - 1}e}") for c in compute])


def isoflop_fit(compute: np.ndarray, n_params: np.ndarray, loss: np.ndarray, name: str = "",
                resamples: int = 0, seed: int = 0, level: float = LEVEL,
                inside_only: bool = False) -> IsoFlopFit:
    """The IsoFLOP fit of one sweep (module docstring); ``resamples`` > 0 adds the interval.

    Raises ``InputError`` when fewer than two levels give a minimum.
    """
    compute, n_params, loss = (np.asarray(v, dtype=float) for v in (compute, n_params, loss))
    levels = compute_levels(compute)
    budgets = np.unique(levels)
    rng = np.random.default_rng(seed)
    point_minima, drawn_minima, summaries = [], [], []
    for budget in budgets:
        members = levels == budget
        log_n, y = np.log(n_params[members]), loss[members]
        x, best = _minima(log_n, y, np.ones((1, y.size)))
        inside = bool(log_n.min() <= x[0] <= log_n.max())
        reason = ""
        if np.unique(log_n).size < 3:
            reason = "fewer than 3 sizes"
        elif not np.isfinite(x[0]):
            reason = "parabola not curved upwards"
        elif inside_only and not inside:
            reason = "minimum outside the sizes measured"
        found = not reason
        summaries.append(IsoLevel(
            float(budget), int(y.size), float(np.exp(x[0])) if found else None,
            float(best[0]) if found else None, found and inside, reason))
        point_minima.append(x[0] if found else np.nan)
        if resamples:
            counts = rng.multinomial(y.size, np.full(y.size, 1.0 / y.size), size=resamples)
            drawn = _minima(log_n, y, counts)[0] if found else np.full(resamples, np.nan)
            if inside_only:  # inside the sizes this resample drew
                low = np.where(counts > 0, log_n, np.inf).min(axis=1)
                high = np.where(counts > 0, log_n, -np.inf).max(axis=1)
                drawn[(drawn < low) | (drawn > high)] = np.nan
            drawn_minima.append(drawn)
    log_c = np.log(budgets)
    slope, intercept = power_law(log_c, np.array([point_minima]))
    if not np.isfinite(slope[0]):
        raise InputError(f"{name or 'sweep'}: {np.isfinite(point_minima).sum()} compute "
                         "level(s) give a parabola minimum; the IsoFLOP method needs at least "
                         "2 (each with 3 or more model sizes)")
    interval, valid = None, 0
    if resamples:
        slopes, _ = power_law(log_c, np.array(drawn_minima).T)
        valid = int(np.isfinite(slopes).sum())
        interval = percentile_interval(slopes, level) if valid else None
    return IsoFlopFit(name, tuple(summaries), float(slope[0]), float(np.exp(intercept[0])),
                      interval, resamples, valid, level)


def power_law(log_c: np.ndarray, log_n_opt: np.ndarray, weights: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Slope a and intercept log k of log N* = log k + a log C per row of minima (r, levels),
    by least squares over the levels where the minimum is finite, each weighted by
    ``weights`` (levels,) (default 1); rows with fewer than two such levels give NaN.

    >>> slope, intercept = power_law(np.log([1.0, 10.0, 100.0]), np.log([[2.0, 6.0, 200.0]]),
    ...                              np.array([1.0, 0.0, 1.0]))  # the middle level ignored
    >>> round(float(slope[0]), 9), round(float(np.exp(intercept[0])), 9)
    (1.0, 2.0)
    """
    found = np.isfinite(log_n_opt)
    level_weights = np.ones(log_c.size) if weights is None else np.asarray(weights, float)
    centre = float(np.mean(log_c))
    at_centre, slope = weighted_polyfit(log_c - centre, np.where(found, log_n_opt, 0.0),
                                        np.where(found, level_weights, 0.0), 1).T
    return slope, at_centre - slope * centre


# Per method: what the power law goes through, and what the interval resamples.
_DESCRIPTIONS = {
    "parabola": ("the parabola minima of loss in log N per compute level",
                 "bootstrap resamples of the points within each level"),
    "porian": ("the minima of an Akima interpolation of log loss in log N per compute level "
               "(medians over seed-noise draws), weighted by 1/spread^2 (Porian et al. 2024)",
               "seed-noise draws, paired across levels while every level has a valid one"),
}


def format_isoflop(fits: list[IsoFlopFit]) -> str:
    """One row per sweep: a with its interval, k, levels used; then levels left out."""
    rows = []
    for fit in fits:
        used = sum(lv.n_opt is not None for lv in fit.levels)
        interior = sum(lv.interior for lv in fit.levels)
        interval = "" if fit.interval is None else \
            f"{format_number(fit.interval[0])} – {format_number(fit.interval[1])}"
        rows.append([fit.name, fit.a, interval, fit.k, f"{used}/{len(fit.levels)}",
                     f"{interior}/{used}"])
    fit = fits[0]
    minima, resampled = _DESCRIPTIONS[fit.method]
    lines = [format_table(["sweep", "a", "interval", "k", "levels used",
                           "minimum inside"], rows), "", f"N*(C) = k C^a through {minima}"]
    if any(fit.interval is not None for fit in fits):
        lines.append(f"intervals: {100 * fit.level:g}% over {fit.resamples} {resampled}")
    for fit in fits:
        for lv in fit.levels:
            if lv.reason:
                lines.append(f"{fit.name}: level {format_number(lv.compute)} left out "
                             f"({lv.reason})")
    return "\n".join(lines)
