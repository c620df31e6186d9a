"""Fit diagnostics: the signs that a fit, though it converged, should not be trusted as it is.

Each rule gives one ``FitWarning`` (kind, message, shapes) for the whole fit:

* ``bound``: an exponent ended at a bound of ``EXPONENT_BOUNDS`` (the optimiser wanted to go
  further: the form does not describe the curve; the scale then takes absurd values, such as
  a = 2e79 with b = 10, and the message lists them), or a saturating offset d lies beyond
  ``OFFSET_RATIO`` (1000) times the largest fitted compute (over the fitted range the law is
  then an exponential whose a, b and d trade off). Both are unit-free: a bare magnitude is not
  (a = 1e21 is ordinary for b = 1 with compute in FLOPs);
* ``exponent``: an exponent at or beyond ``EXPONENT_LIMIT`` (3), inside the bounds. Published
  laws have exponents of about 0.05 to 1.5: Kaplan et al. 2020 0.05 to 0.095, Hoffmann et al.
  2022 (and Epoch AI's refit) 0.28 to 0.37, Alabdulmohsin et al. 2022 ("Revisiting") up to
  about 1.5; on the Revisiting benchmark's 92 curves every power fit has b <= 1.07, and every
  saturating fit not at a bound b <= 2.75 but one (6.1). 3, twice the largest published, is a
  loss above its floor falling 8-fold per doubling of compute: the form has read a bend or a
  step (a curve that flattens abruptly) as a power law, and its scale is absurd (a user's
  patch-7 ViT curve: a = 1.07e44, b = 3.72);
* ``spread``: with a bootstrap, the interval of an exponent spans more than a factor
  ``SPREAD_FACTOR`` (10) or reaches ``EXPONENT_LIMIT``: the shape's data do not settle the
  exponent's order of magnitude (published exponents of all tasks together span a factor 30;
  the committed ViT preset's 8 noisy evaluations per shape give factors 2.1 to 3.1);
* ``points``: a shape (or a joint fit) has at most one point more than it has free
  parameters, so the fit passes through (nearly) every point and says nothing of the noise.
  Shapes of fewer points than that are left out of the law file before fitting
  (``too_few_points``: one line names them; none left is an ``InputError``). In a chinchilla
  fit, when most shapes hold fewer than ``CURVE_POINTS`` (3) points, they are counted and
  named: a file of model sizes read off a figure and not grouped (``--group``) gives a shape
  per point or two;
* ``holdout``: on the extrapolation check, a shape's held-out RMSE of log-loss is more than
  ``HOLDOUT_RATIO`` (3) times the in-sample one of the same (partial) fit, and above
  ``HOLDOUT_FLOOR`` (1% of loss: below it an extrapolation is as good as one can ask);
* ``robust``: points whose log residual lies beyond the Huber delta and beyond
  ``OUTLIER_SIGMAS`` (5) robust standard deviations of the residuals: the Huber loss counts
  them linearly, so they barely moved the fit, and the RMSE reported includes them. The
  spread is 1.4826 x the median absolute residual, without the p smallest (a nearly-L1 fit
  passes through about p points, p its parameters), over each shape of at least
  ``JUDGED_POINTS`` (8) points in a per-shape fit, over all points in a joint fit. (With
  delta = 1e-3 most points of a noisy curve lie beyond delta; only points far outside the
  rest are reported.)

>>> from laws.forms import PowerLaw
>>> from laws.lawset import LawSet, Measured, Shape
>>> laws = LawSet("x", (Shape("s", {}, PowerLaw(a=1.0, b=10.0, c=1.0),
...                           measured=Measured(2.0, (1.0, 10.0), 8, {})),))
>>> [w.kind for w in parameter_warnings(laws)]
['bound']
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from laws.errors import InputError
from laws.fit.curveset import FitResult, drop_highest_losses
from laws.fit.holdout import HoldoutReport
from laws.fit.objective import EXPONENT_BOUNDS, HUBER_DELTA
from laws.fit.problem import FITTED_PARAMS
from laws.forms import ChinchillaLaw, Law
from laws.io.curves import Curve, Curves
from laws.lawset import LawSet

EXPONENTS = ("b", "alpha", "beta")
EXPONENT_LIMIT = 3.0  # twice the largest published exponent (the module's docstring)
SPREAD_FACTOR = 10.0  # a bootstrap interval of an exponent wider than an order of magnitude
CURVE_POINTS = 3  # the fewest points of one shape that make a curve (the power form's 3)
OFFSET_RATIO = 1e3
HOLDOUT_RATIO = 3.0
HOLDOUT_FLOOR = 0.01  # held-out RMSE of log-loss: 1% of loss
OUTLIER_SIGMAS = 5.0
JUDGED_POINTS = 8  # fewer residuals of one shape cannot tell an outlier from the law's misfit
_MAD_TO_SIGMA = 1.4826  # the MAD of a normal sample, scaled to its standard deviation


@dataclass(frozen=True)
class FitWarning:
    """One diagnostic: ``kind`` (input, bound, points, holdout, robust, choice), a one-line
    ``message`` and the ``shapes`` it concerns."""

    kind: str
    message: str
    shapes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "shapes": list(self.shapes)}


def diagnose(result: FitResult, curves: Curves, drop_highest: int = 0,
             holdout: HoldoutReport | None = None,
             delta: float = HUBER_DELTA) -> list[FitWarning]:
    """Every warning for ``result``, the fit of ``curves`` after dropping the points of the
    ``drop_highest`` highest losses, and for its extrapolation check ``holdout``."""
    # What reading the file found doubtful (repeated rows, tiny compute: laws.io.plausible).
    warnings = [FitWarning("input", doubt) for doubt in curves.doubts]
    warnings += parameter_warnings(result.laws)
    warnings += spread_warnings(result)
    warnings += size_warnings(result)
    warnings += robust_warnings(result, curves, drop_highest, delta)
    if holdout is not None:
        warnings += holdout_warnings(holdout)
    return warnings


def parameter_warnings(laws: LawSet) -> list[FitWarning]:
    """Exponents at a bound of the fit or beyond ``EXPONENT_LIMIT``; saturating offsets far
    beyond the fitted compute."""
    at_bound: dict[str, str] = {}
    steep: dict[str, str] = {}
    offset: dict[str, str] = {}
    for shape in laws.shapes:
        params = shape.law.params()
        listed = ", ".join(f"{k}={v:.4g}" for k, v in params.items()
                           if isinstance(v, float))
        exponents = [params[name] for name in EXPONENTS if name in params]
        if any(np.isclose(value, bound, rtol=1e-6, atol=0.0)
               for value in exponents for bound in EXPONENT_BOUNDS):
            at_bound[shape.name] = listed
        elif any(value >= EXPONENT_LIMIT for value in exponents):
            steep[shape.name] = listed
        largest = shape.measured.compute_range[1] if shape.measured else None
        if largest and shape.law.offset > OFFSET_RATIO * largest:
            offset[shape.name] = listed
    warnings = []
    if at_bound:
        warnings.append(FitWarning(
            "bound", f"exponent at the fit's bound {EXPONENT_BOUNDS} in {_list(at_bound)}: "
            "the form does not describe these curves (try another form or more points)",
            tuple(at_bound)))
    if steep:
        warnings.append(FitWarning(
            "exponent", f"exponent of {EXPONENT_LIMIT:g} or more in {_list(steep)}: published "
            "laws have 0.05 to 1.5; the curve bends or flattens too abruptly for the form "
            "(try another form, or more points past the bend)", tuple(steep)))
    if offset:
        warnings.append(FitWarning(
            "bound", f"offset d beyond {OFFSET_RATIO:g}x the largest fitted compute in "
            f"{_list(offset)}: over the fitted range the law is an exponential whose a, b and "
            "d trade off (the fit is degenerate)", tuple(offset)))
    return warnings


def spread_warnings(result: FitResult) -> list[FitWarning]:
    """Exponents whose bootstrap interval spans more than a factor ``SPREAD_FACTOR`` or
    reaches ``EXPONENT_LIMIT`` (none without a bootstrap)."""
    wide = {}
    for shape, bounds in result.intervals.items():
        spans = [f"{name} [{low:.3g}, {high:.3g}]" for name, (low, high) in bounds.items()
                 if name in EXPONENTS and (high > SPREAD_FACTOR * low or high >= EXPONENT_LIMIT)]
        if spans:
            wide[shape] = ", ".join(spans)
    if not wide:
        return []
    return [FitWarning("spread", f"bootstrap {100 * result.bootstrap['level']:g}% interval of "
                       f"an exponent wider than a factor {SPREAD_FACTOR:g} or reaching "
                       f"{EXPONENT_LIMIT:g} in {_list(wide)}: the data do not settle the "
                       "exponent (more points, or --share exponent)", tuple(wide))]


def own_parameters(form: str, share: tuple[str, ...] = ()) -> int:
    """The parameters each shape fits on its own: the form's, less the shared ones; a
    chinchilla law is one for all shapes, each tie (alpha=beta) one parameter less.

    >>> own_parameters("saturating"), own_parameters("saturating", ("floor",))
    (4, 3)
    """
    return len(FITTED_PARAMS[form]) - len(set(share))


def free_parameters(result: FitResult) -> tuple[int, int]:
    """(own parameters of each shape, parameters of the whole fit) of a fit of one form.

    >>> from laws.fit.curveset import fit_curves
    >>> from laws.io.curves import Curve
    >>> c = np.logspace(18, 20, 8)
    >>> curves = Curves("x", tuple(Curve(n, {}, c, 2.0 + k * c ** -0.3, tuple(range(8)))
    ...                            for n, k in (("s", 5e5), ("t", 8e5))))
    >>> free_parameters(fit_curves(curves, share=("floor",)))
    (2, 5)
    """
    own = own_parameters(result.form, result.share)
    if result.form == "chinchilla":  # one law for all shapes
        return own, own
    return own, own * len(result.laws.shapes) + len(set(result.share))


def shape_parameters(result: FitResult) -> dict[str, int]:
    """Each shape's own parameters; the shapes' forms may differ (``laws.fit.pershape``)."""
    return {shape.name: own_parameters(shape.law.form, result.share)
            for shape in result.laws.shapes}


def too_few_points(curves: Curves, form: str,
                   share: tuple[str, ...] = ()) -> tuple[Curves, list[FitWarning]]:
    """``curves`` without the shapes of fewer points than ``form``'s own parameters (no fit
    can be made of them: they are left out of the law file, so of planning) and a ``points``
    warning naming them; an ``InputError`` when no shape is left. A chinchilla law is fitted
    to all points at once and leaves none out (``size_warnings`` names its sparse shapes)."""
    if form == "chinchilla":
        return curves, []
    # A joint fit starts from each shape's own fit of all the form's parameters, so a lone
    # shape needs them all (laws.fit.problem).
    own = own_parameters(form, share if len(curves.curves) > 1 else ())
    few = [curve for curve in curves.curves if len(curve) < own]
    if not few:
        return curves, []
    sizes = sorted({len(curve) for curve in few})
    counts = " to ".join(map(str, sorted({sizes[0], sizes[-1]})))
    if len(few) == 1 == len(curves.curves):
        raise InputError(f"{curves.source}: shape {few[0].name!r} has {len(few[0])} point(s); "
                         f"the {form} form needs at least {own}")
    if len(few) == len(curves.curves):
        raise InputError(f"{curves.source}: all {len(few)} shapes hold fewer points than the "
                         f"{form} form's {own} parameters ({counts} each): no law can be "
                         "fitted; a shape column of measured values (model sizes) needs "
                         "--group")
    names = [curve.name for curve in few]
    hint = "; most shapes this sparse: group the shape column (--group)" \
        if 2 * len(few) > len(curves.curves) else ""
    return curves.replace([c for c in curves.curves if len(c) >= own]), [FitWarning(
        "points", f"{len(few)} of {len(curves.curves)} shapes left out of the law file, with "
        f"fewer points than the {form} form's {own} parameters ({counts}): {_names(names)}"
        + hint, tuple(names))]


def size_warnings(result: FitResult) -> list[FitWarning]:
    """Shapes, or a joint fit, with at most one point more than free parameters; in a
    chinchilla fit, most shapes of fewer than ``CURVE_POINTS`` points (a few sparse sizes beside
    measured curves are ordinary; most of them, an ungrouped column of measured values)."""
    own = shape_parameters(result)
    points = {shape: int(result.metrics[shape]["points"]) for shape in own}
    few = {}
    if result.form == "chinchilla" or result.share:
        _, total = free_parameters(result)
        joint = int(result.metrics["all"]["points"])
        if joint <= total + 1:
            few["the joint fit"] = (joint, total)
    if result.form != "chinchilla":
        few.update({shape: (points[shape], own[shape]) for shape in own
                    if points[shape] <= own[shape] + 1})
    warnings = []
    if few:
        listed = _names([f"{name} ({n} points for {p} parameters)"
                         for name, (n, p) in few.items()])
        named = sum(name in own for name in few)
        count = f" ({named} of {len(own)} shapes)" if named > 1 else ""
        warnings.append(FitWarning("points", f"too few points to tell the law from the "
                                   f"noise{count}: {listed}; give at least 2 more points than "
                                   "parameters", tuple(few)))
    sparse = [shape for shape in own if points[shape] < CURVE_POINTS] \
        if result.form == "chinchilla" else []
    if 2 * len(sparse) > len(own):
        warnings.append(FitWarning("points", f"{len(sparse)} of {len(own)} shapes hold fewer "
                                   f"than {CURVE_POINTS} points: {_names(sparse)}; each is a "
                                   "model size seen at one or two budgets (group sizes read "
                                   "off a figure with --group)", tuple(sparse)))
    return warnings


def robust_warnings(result: FitResult, curves: Curves, drop_highest: int = 0,
                    delta: float = HUBER_DELTA) -> list[FitWarning]:
    """Points far off the fit that the Huber loss discounted (see the module's rule). The
    spread is each shape's own in per-shape fits, that of all points in a joint fit."""
    kept, _ = drop_highest_losses(list(curves.curves), drop_highest)
    kept = [curve for curve in kept if curve.name in result.laws.names]
    residuals = [np.log(_predicted(result.laws.shape(curve.name).law, curve))
                 - np.log(curve.loss) for curve in kept]
    joint = result.form == "chinchilla" or bool(result.share)
    own = shape_parameters(result)
    pooled = _spread(np.concatenate(residuals), free_parameters(result)[1]) \
        if residuals and joint else 0.0
    found: dict[str, list[int]] = {}
    for curve, residual in zip(kept, residuals, strict=True):
        if not joint and len(curve) < JUDGED_POINTS:
            continue
        spread = pooled if joint else _spread(residual, own[curve.name])
        far = np.abs(residual) > max(delta, OUTLIER_SIGMAS * spread)
        if np.any(far):
            found[curve.name] = [line for line, f in zip(curve.lines, far, strict=True) if f]
    if not found:
        return []
    count = sum(len(lines) for lines in found.values())
    listed = _names([f"{name} (line{'s' if len(lines) > 1 else ''} "
                     f"{', '.join(map(str, lines[:5]))}{', ...' if len(lines) > 5 else ''})"
                     for name, lines in found.items()])
    total = sum(len(curve) for curve in kept)
    return [FitWarning("robust", f"{count} of {total} points lie far off the fit (beyond the "
                       f"Huber delta {delta:g} and {OUTLIER_SIGMAS:g} robust sigmas of the "
                       f"residuals); the robust fit discounted them and the RMSE includes "
                       f"them: {listed}", tuple(found))]


def holdout_warnings(holdout: HoldoutReport) -> list[FitWarning]:
    """Shapes whose held-out error is large against the in-sample error of the same fit."""
    large = {}
    for name, held in holdout.metrics.items():
        if name == "all" or name not in holdout.fit.metrics:
            continue
        inside = holdout.fit.metrics[name]["rmse_log"]
        if held["rmse_log"] > max(HOLDOUT_FLOOR, HOLDOUT_RATIO * inside):
            large[name] = (held["rmse_log"], inside)
    if not large:
        return []
    listed = _names([f"{name} ({out:.3g} vs {inside:.3g})"
                     for name, (out, inside) in large.items()])
    return [FitWarning("holdout", f"held-out RMSE of log-loss above {HOLDOUT_FLOOR:g} and "
                       f"{HOLDOUT_RATIO:g}x the in-sample one of the fit up to the cut-off: "
                       f"{listed}: the law extrapolates worse than it fits", tuple(large))]


def _predicted(law: Law, curve: Curve) -> np.ndarray:
    """The loss the fit predicted at each point: a chinchilla law at each point's own N (a
    shape of grouped sizes has one law, at their geometric mean, but the fit saw every N)."""
    if isinstance(law, ChinchillaLaw) and curve.n_params is not None:
        return np.array([dataclasses.replace(law, N=float(n)).loss(c)
                         for n, c in zip(curve.n_params, curve.compute, strict=True)])
    return np.asarray(law.loss(curve.compute), dtype=float)


def _spread(residuals: np.ndarray, params: int) -> float:
    """A standard deviation robust to outliers: 1.4826 x the median absolute residual, leaving
    out the ``params`` smallest (a nearly-L1 fit passes through about as many points as it has
    parameters, and their zero residuals would shrink the spread to nothing)."""
    size = np.sort(np.abs(residuals))[params:]
    return float(_MAD_TO_SIGMA * np.median(size)) if size.size else 0.0


def _names(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _list(found: dict[str, str]) -> str:
    return _names([f"{name} ({values})" for name, values in found.items()])
