"""Extrapolation check: fit on the points up to a cut-off, measure the error beyond it.

The cut-off applies to compute, or to another column kept with the curves (tokens, say), so
that "fit on up to 50B tokens, predict 60B-100B" can be asked of shapes of different sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from laws.errors import InputError
from laws.fit.curveset import FitResult, fit_curves, loss_errors, pooled_errors
from laws.io.curves import Curve, Curves


@dataclass(frozen=True)
class HoldoutReport:
    """Errors on the held-out points; ``metrics`` per shape with held-out points and ``"all"``.

    Each entry has ``train`` and ``points`` (held out) counts, ``rmse`` and ``mare`` of loss.
    """

    above: float
    column: str
    form: str
    share: tuple[str, ...]
    metrics: dict[str, dict[str, float]]
    fit: FitResult

    def to_dict(self) -> dict:
        return {"above": self.above, "column": self.column, "form": self.form,
                "share": list(self.share), "metrics": self.metrics}


def holdout_check(curves: Curves, above: float, column: str | None = None,
                  form: str = "power", share: tuple[str, ...] = (),
                  drop_highest: int = 0) -> HoldoutReport:
    """Fit on the points whose ``column`` (default: compute) is at most ``above``; report the
    RMSE and mean absolute relative error of loss on the points beyond it."""
    train, test = [], []
    for curve in curves.curves:
        values = _split_values(curve, column)
        train.append(curve.subset(values <= above))
        test.append(curve.subset(values > above))
    if not any(len(curve) for curve in test):
        raise InputError(f"--holdout-above {above:g}: no points lie above the cut-off")
    fitted = [(tr, te) for tr, te in zip(train, test, strict=True) if len(tr)]
    fit = fit_curves(curves.replace([tr for tr, _ in fitted]), form, share, drop_highest)
    metrics = {}
    for train_curve, test_curve in fitted:
        if len(test_curve) and train_curve.name in fit.laws.names:
            law = fit.laws.shape(train_curve.name).law
            errors = loss_errors(law, test_curve)
            metrics[test_curve.name] = {"train": len(train_curve), **errors}
    pooled = pooled_errors(list(metrics.values()))
    pooled["train"] = sum(m["train"] for m in metrics.values())
    metrics["all"] = pooled
    return HoldoutReport(above, column or "compute", form, tuple(share), metrics, fit)


def choose_form(curves: Curves, above: float, column: str | None = None,
                candidates: tuple[tuple[str, tuple[str, ...]], ...] = (
                    ("power", ()), ("saturating", ()), ("power", ("floor",)),
                    ("power", ("exponent",))),
                ) -> tuple[HoldoutReport, list[HoldoutReport]]:
    """The (form, share) candidate with the lowest held-out RMSE, and every candidate's report.

    Candidates that cannot be fitted (too few points, say) are left out.
    """
    reports = []
    for form, share in candidates:
        try:
            reports.append(holdout_check(curves, above, column, form, share))
        except InputError:
            continue
    if not reports:
        raise InputError("no candidate form could be fitted below the hold-out cut-off")
    return min(reports, key=lambda r: r.metrics["all"]["rmse"]), reports


def _split_values(curve: Curve, column: str | None) -> np.ndarray:
    if column is None:
        return curve.compute
    if column not in curve.extra:
        raise InputError(f"hold-out column {column!r} was not loaded with the curves")
    return curve.extra[column]
