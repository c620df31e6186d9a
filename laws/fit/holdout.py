"""Extrapolation check: fit on the points up to a cut-off, measure the error beyond it.

The cut-off applies to compute, or to another column kept with the curves (tokens, say), so
that "fit on up to 50B tokens, predict 60B-100B" can be asked of shapes of different sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from laws.errors import InputError
from laws.fit.curveset import FitResult, loss_errors, pooled_errors
from laws.fit.pershape import Forms, fit_forms
from laws.fit.reduce import REDUCE_ABOVE
from laws.io.curves import Curve, Curves

# What the hold-out errors describe, said wherever they are shown beside the laws themselves.
HOLDOUT_FIT = "points up to the cut-off (a separate fit; the laws are fitted on all points)"


@dataclass(frozen=True)
class HoldoutReport:
    """Errors on the held-out points; ``metrics`` per shape with held-out points and ``"all"``.

    Each entry has ``train`` and ``points`` (held out) counts, ``rmse`` and ``mare`` of loss,
    ``rmse_log`` of log-loss. ``fit`` is the fit on the points up to the cut-off, which the
    errors describe (not the fit on all points that a law file records).
    """

    above: float
    column: str
    form: str
    share: tuple[str, ...]
    metrics: dict[str, dict[str, float]]
    fit: FitResult

    def to_dict(self) -> dict:
        return {"above": self.above, "column": self.column, "form": self.form,
                "share": list(self.share), "fit": HOLDOUT_FIT, "metrics": self.metrics}


def holdout_check(curves: Curves, above: float, column: str | None = None,
                  form: Forms = "power", share: tuple[str, ...] = (),
                  drop_highest: int = 0, reduce_above: int | None = REDUCE_ABOVE
                  ) -> HoldoutReport:
    """Fit on the points whose ``column`` (default: compute) is at most ``above``; report the
    RMSE and mean absolute relative error of loss on the points beyond it. ``form``: one for
    all shapes or one per shape (``laws.fit.pershape``); ``reduce_above``: per-step curves'
    threshold (``laws.fit.reduce``)."""
    keep = [_split_values(curve, column) <= above for curve in curves.curves]
    if all(np.all(mask) for mask in keep):
        raise InputError(f"--holdout-above {above:g}: no points lie above the cut-off")
    if not any(np.any(mask) and not np.all(mask) for mask in keep):
        raise InputError(f"--holdout-above {above:g}: no shape has points both at or below "
                         "the cut-off and above it")
    fit, metrics = split_fit(curves, keep, form, share, drop_highest, reduce_above)
    return HoldoutReport(above, column or "compute", fit.form, tuple(share), metrics, fit)


def split_fit(curves: Curves, keep: list[np.ndarray], form: Forms, share: tuple[str, ...] = (),
              drop_highest: int = 0, reduce_above: int | None = REDUCE_ABOVE,
              polish: bool = True) -> tuple[FitResult, dict[str, dict[str, float]]]:
    """Fit ``form`` on the points where ``keep`` holds (one mask per curve) and measure the
    errors on the others: ``fit_split`` of each curve's two parts."""
    pairs = [(curve.subset(mask), curve.subset(~mask))
             for curve, mask in zip(curves.curves, keep, strict=True)]
    return fit_split(curves, pairs, form, share, drop_highest, reduce_above, polish)


def fit_split(curves: Curves, pairs: list[tuple[Curve, Curve]], form: Forms,
              share: tuple[str, ...] = (), drop_highest: int = 0,
              reduce_above: int | None = REDUCE_ABOVE, polish: bool = True
              ) -> tuple[FitResult, dict[str, dict[str, float]]]:
    """Fit ``form`` on the first curve of each (train, test) pair of ``curves``' shapes and
    measure the errors on the second: per shape with points left out (with ``train``, the
    points it was fitted on), and pooled as ``"all"``. ``reduce_above`` and ``polish`` as in
    ``fit_curves``; a train curve may come reduced already (``laws.fit.choice`` ranks on
    points of its own reduction), its test rows as they are."""
    fitted = [(train, test) for train, test in pairs if len(train)]
    fit = fit_forms(curves.replace([train for train, _ in fitted]), form, share, drop_highest,
                    reduce_above=reduce_above, polish=polish)
    metrics = {}
    for train_curve, test_curve in fitted:
        if len(test_curve) and train_curve.name in fit.laws.names:
            law = fit.laws.shape(train_curve.name).law
            metrics[test_curve.name] = {"train": len(train_curve),
                                        **loss_errors(law, test_curve)}
    pooled = pooled_errors(list(metrics.values()))
    pooled["train"] = sum(m["train"] for m in metrics.values())
    metrics["all"] = pooled
    return fit, metrics


def _split_values(curve: Curve, column: str | None) -> np.ndarray:
    if column is None:
        return curve.compute
    if column not in curve.extra:
        raise InputError(f"hold-out column {column!r} was not loaded with the curves")
    return curve.extra[column]
