"""Fit a whole set of curves to a law set: laws, fit metrics, bootstrap intervals.

Every fitted shape records what it was fitted on (``Shape.measured``); with a bootstrap it also
carries the refitted laws (``Shape.samples``, see ``laws.fit.uncertainty`` for the method).
A curve of more than 2,000 points (a per-step log) is fitted on weighted points kept from
log-spaced bins of compute (``laws.fit.reduce``); its metrics are those of the law on every row.

>>> from laws.io.curves import Curve, Curves
>>> compute = np.logspace(18, 20, 8)
>>> curve = Curve("s", {"width": 8}, compute, 2.0 + 5e5 * compute ** -0.3, tuple(range(8)))
>>> result = fit_curves(Curves("toy.csv", (curve,)))
>>> round(result.laws.shape("s").law.b, 4), result.metrics["all"]["rmse"] < 1e-6
(0.3, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from laws.errors import InputError
from laws.fit.objective import HUBER_DELTA, huber
from laws.fit.problem import FITTED_PARAMS, polish_on_rows, solve
from laws.fit.reduce import REDUCE_ABOVE, reduce_curve, reduction_record
from laws.fit.uncertainty import BLOCKS, Progress, bootstrap_laws, law_intervals
from laws.forms import Law
from laws.io.curves import Curve, Curves
from laws.lawset import LawSet, Measured, Shape
from laws.stats import LEVEL


@dataclass(frozen=True)
class FitResult:
    """The fitted law set and how well it fits.

    ``metrics`` maps each shape name, and ``"all"``, to points, objective (summed Huber on
    log-loss), RMSE and mean absolute relative error of loss. ``shared`` holds the law-file
    values of parameters common to all shapes. ``intervals`` (with a bootstrap) maps each shape
    to parameter -> (low, high), including ``compute``: the compute to reach ``target_loss``.
    The bootstrap's laws themselves are the shapes' ``samples`` in ``laws``; ``bootstrap``
    says how they were drawn (method, resamples, seed, level; empty without a bootstrap).
    ``reduction`` says which curves were reduced to weighted points (``laws.fit.reduce``;
    empty when none was); ``objective`` is that of the laws on every row, except in a joint
    fit of reduced curves or one without the polish (that of the points kept).
    """

    laws: LawSet
    form: str
    share: tuple[str, ...]
    objective: float
    metrics: dict[str, dict[str, float]]
    shared: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    target_loss: dict[str, float] = field(default_factory=dict)
    dropped: int = 0
    bootstrap: dict[str, object] = field(default_factory=dict)
    reduction: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready summary (infinite bounds become None)."""
        return {
            "form": self.form, "share": list(self.share), "objective": self.objective,
            "dropped_points": self.dropped, "shared": self.shared, "metrics": self.metrics,
            "target_loss": self.target_loss,
            **({"bootstrap": self.bootstrap} if self.bootstrap else {}),
            **({"reduction": self.reduction} if self.reduction else {}),
            "intervals": {shape: {k: [_finite_or_none(v) for v in pair]
                                  for k, pair in params.items()}
                          for shape, params in self.intervals.items()},
        }


def fit_curves(curves: Curves, form: str = "power", share: tuple[str, ...] = (),
               drop_highest: int = 0, bootstrap: int = 0, seed: int = 0,
               target_loss: float | None = None, level: float = LEVEL,
               time_column: str | None = None, name: str = "fitted",
               delta: float = HUBER_DELTA, progress: Progress | None = None,
               reduce_above: int | None = REDUCE_ABOVE, polish: bool = True) -> FitResult:
    """Fit ``form`` to every curve (sharing ``share`` across shapes) and build a law set.

    ``drop_highest`` removes the points of the k highest losses first (Epoch AI's Chinchilla
    recipe drops 5). ``bootstrap`` resamples give intervals at ``level``; the compute interval
    is for ``target_loss`` (default: each shape's lowest measured loss). With ``time_column``
    (seconds to reach each point), each shape gets a throughput: compute per second. A curve
    of more than ``reduce_above`` points (None: no limit) is fitted on weighted points kept
    from it, and a per-shape law then re-minimised on all its points (``laws.fit.reduce``),
    unless ``polish`` is False: fits that only rank candidate forms (``laws.fit.choice``) keep
    the optimum on the points kept.
    """
    kept, dropped = drop_highest_losses(list(curves.curves), drop_highest)
    # The chinchilla form is fitted to all points at once: a shape of one model size may hold
    # two points read off a figure at the same loss, and the joint fit still decreases.
    for curve in kept if form != "chinchilla" else ():
        check_decreasing(curve, curves.source)
    reduced = [reduce_curve(curve, reduce_above) for curve in kept]
    solved = solve(reduced, form, tuple(share), curves.source, delta)
    laws, values = solved.laws, solved.values
    polished = polish and not share and form != "chinchilla"
    if polished:
        laws, values = polish_on_rows(solved, reduced, kept, form, delta)
    pairs = list(zip(kept, laws, strict=True))
    metrics = {curve.name: loss_errors(law, curve, delta) for curve, law in pairs}
    metrics["all"] = pooled_errors(list(metrics.values()))
    targets = {curve.name: float(np.min(curve.loss)) if target_loss is None else target_loss
               for curve in kept}
    intervals: dict[str, dict[str, tuple[float, float]]] = {}
    samples: list[list[Law]] = []
    drawn: dict[str, object] = {}
    if bootstrap > 0:
        samples = bootstrap_laws(solved, bootstrap, np.random.default_rng(seed), progress,
                                 BLOCKS)
        drawn = {"method": BLOCKS, "resamples": bootstrap, "seed": seed, "level": level}
        per_curve = law_intervals(samples, FITTED_PARAMS[form], list(targets.values()), level)
        intervals = dict(zip(targets, per_curve, strict=True))
    law_set = LawSet(name, tuple(
        Shape(curve.name, curve.axes, law, _throughput(curve, time_column),
              samples=tuple(sample[i] for sample in samples), measured=measured(curve))
        for i, (curve, law) in enumerate(pairs)))
    return FitResult(law_set, form, tuple(share), float(sum(values)), metrics,
                     solved.shared, intervals, targets, dropped, drawn,
                     reduction_record(kept, reduced, reduce_above, polished))


def check_decreasing(curve: Curve, source: str = "") -> None:
    """Refuse a curve whose loss does not fall with compute overall (least-squares slope of
    log-loss on log-compute >= 0): every form decreases, so its fit would end flat at a bound.
    Noise is allowed; a curve of one compute says nothing of the trend and passes.

    >>> check_decreasing(Curve("s", {}, np.array([1.0, 2.0, 4.0]), np.array([3.0, 3.1, 3.3]),
    ...                        (0, 1, 2)), "runs.csv")
    Traceback (most recent call last):
    ...
    laws.errors.InputError: runs.csv: shape 's': losses do not decrease with compute (log-log \
slope +0.0688 over 3 points); no decreasing law fits them
    """
    x, y = np.log(curve.compute), np.log(curve.loss)
    spread = x - x.mean()
    if not np.any(spread):
        return
    slope = float(spread @ (y - y.mean()) / (spread @ spread))
    if slope >= 0:
        where = f"{source}: " if source else ""
        raise InputError(f"{where}shape {curve.name!r}: losses do not decrease with compute "
                         f"(log-log slope {slope:+.3g} over {len(curve)} points); no "
                         "decreasing law fits them")


def measured(curve: Curve) -> Measured:
    """What a fit of ``curve`` measured: the loss of its point of lowest compute (the first
    of equal ones, in file order), its compute range and points, its grouped axes' ranges."""
    first = int(np.argmin(curve.compute))
    return Measured(float(curve.loss[first]),
                    (float(np.min(curve.compute)), float(np.max(curve.compute))), len(curve),
                    dict(curve.grouped))


def drop_highest_losses(curves: list[Curve], count: int) -> tuple[list[Curve], int]:
    """Remove every point whose loss is among the ``count`` highest (ties all go), and the
    curves left empty; returns the curves and how many points went."""
    if count <= 0:
        return curves, 0
    losses = np.sort(np.concatenate([curve.loss for curve in curves]))
    if count >= losses.size:
        raise InputError(f"cannot drop {count} of {losses.size} points")
    threshold = losses[-count]
    kept = [curve.subset(curve.loss < threshold) for curve in curves]
    kept = [curve for curve in kept if len(curve)]
    return kept, int(losses.size - sum(len(curve) for curve in kept))


def loss_errors(law: Law, curve: Curve, delta: float = HUBER_DELTA) -> dict[str, float]:
    """How far the law's loss is from the curve's: points, objective, RMSE, MARE, and the RMSE
    of log-loss (``rmse_log``: the error the fit minimises, and the Revisiting benchmark's)."""
    predicted = np.asarray(law.loss(curve.compute), dtype=float)
    error = predicted - curve.loss
    log_error = np.log(predicted) - np.log(curve.loss)
    return {
        "points": len(curve),
        "objective": float(np.sum(huber(log_error, delta))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mare": float(np.mean(np.abs(error) / curve.loss)),
        "rmse_log": float(np.sqrt(np.mean(log_error**2))),
    }


def pooled_errors(metrics: list[dict[str, float]]) -> dict[str, float]:
    """Metrics over all points from per-curve ones (RMSEs and MARE weighted by points)."""
    points = sum(m["points"] for m in metrics)
    return {
        "points": points,
        "objective": sum(m["objective"] for m in metrics),
        **{key: float(np.sqrt(sum(m[key] ** 2 * m["points"] for m in metrics) / points))
           for key in ("rmse", "rmse_log")},
        "mare": sum(m["mare"] * m["points"] for m in metrics) / points,
    }


def _throughput(curve: Curve, time_column: str | None) -> float | None:
    if time_column is None:
        return None
    seconds = curve.extra[time_column]
    if np.any(seconds <= 0):
        raise InputError(f"shape {curve.name!r}: column {time_column!r} must be positive "
                         "seconds")
    return float(np.median(curve.compute / seconds))


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
