"""``--form auto``: choose the law form by the extrapolation it will be asked for.

Each candidate (form, shared parameters) is fitted to every curve's points up to a cut-off,
C <= C_max / ``ratio`` (C_max: the curve's largest compute), and scored by the RMSE of
log-loss on the curve's points above it, the last factor ``ratio`` (2) of its compute: the
mean over shapes is the candidate's score. The simplest candidate (fewest parameters, listed
first) whose score is within ``margin`` (5%) of the best wins. A candidate whose fit of all the
points is degenerate (an exponent at its bound or beyond the published range, an offset far
beyond the fitted compute: see ``laws.fit.diagnostics``) is out, whatever its partial fit
scored.

``per_shape`` (``fit --form auto`` when no parameter is shared): every shape takes the
simplest candidate within ``margin`` of its own best score, among those whose fit of its
points is not degenerate, so that one file's curves of different kinds each get their form
(the shapes' fits are independent: ``laws.fit.pershape``). A candidate's fit of all points is
made only for the shapes whose choice it can still change (``_settled``): where power's fit
is sound and within the margin of every candidate's score, saturating's fit of all points
would not change the choice, and is not made (the law file lists those shapes as
``unchecked``). On the Revisiting benchmark one
form for all 92 curves scores a mean held-out error of 0.0413 (power), a form per curve
0.0315 (``bench/bench_revisiting.py --one-command``). With shared parameters the shapes are
fitted together, so the form stays common.

Why the last stretch only: a curve's bend changes along it, so how a form extrapolates from
its earlier parts says little about how it extrapolates beyond its end. On the Revisiting
benchmark (``bench/bench_revisiting.py``, docs/FITTING.md), whose held-out rows reach about a
factor 2 beyond the training rows, this test picks the better of power and saturating on 68 of
92 curves; holding out the last factor 3 instead, on 50 (a coin). It is the one chooser:
``fit --form auto`` and the validate loop both ask it.

>>> from laws.forms import SaturatingLaw
>>> from laws.io.curves import Curve
>>> c = np.logspace(6, 9, 30)
>>> law = SaturatingLaw(a=40.0, b=0.5, c=0.1, d=3e6)
>>> choice = choose_auto(Curves("x", (Curve("s", {}, c, law.loss(c), tuple(range(30))),)))
>>> choice.form, choice.share
('saturating', ())
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from laws.errors import InputError
from laws.fit.curveset import fit_curves, pooled_errors
from laws.fit.diagnostics import FitWarning, parameter_warnings
from laws.fit.holdout import fit_split
from laws.fit.pershape import PER_SHAPE
from laws.fit.reduce import REDUCE_ABOVE, reduce_curve
from laws.io.curves import Curve, Curves

AUTO = "auto"  # the form name that asks for the choice
AUTO_RATIO = 2.0  # the last factor 2 of each curve's compute is held out
AUTO_MARGIN = 0.05  # a more complex form must beat the simpler one by more than 5%
MIN_TRAIN = 5  # points below the cut-off for a curve to take part (the 4 of saturating, + 1)
RANKING_QUANTILES = 8  # rows kept per bin of a per-step curve for the candidates' fits
Candidate = tuple[str, tuple[str, ...]]


@dataclass(frozen=True)
class Scored:
    """A candidate's extrapolation score: mean RMSE of log-loss over ``shapes`` (None when it
    could not be fitted or its fit is degenerate; ``status`` says which). ``metrics``: the
    held-out errors of its partial fit, per shape and pooled as ``"all"`` (``fit_split``).
    ``degenerate``: the shapes whose fit of all points is degenerate (out of a per-shape
    choice; the score of a per-shape choice averages the other shapes). ``unchecked``: per
    shape, the shapes whose fit of all points was not made, because a simpler candidate is
    theirs whatever it would give (``_settled``); they are out of this candidate's choice."""

    form: str
    share: tuple[str, ...]
    score: float | None
    metrics: dict[str, dict[str, float]]
    status: str
    degenerate: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()

    @property
    def shapes(self) -> dict[str, float]:
        """Each shape's held-out RMSE of log-loss, what the score averages."""
        return {name: m["rmse_log"] for name, m in self.metrics.items() if name != "all"}

    def to_dict(self) -> dict:
        return {"form": self.form, "share": list(self.share), "score": self.score,
                "status": self.status, "shapes": self.shapes,
                "degenerate": list(self.degenerate), "unchecked": list(self.unchecked)}


@dataclass(frozen=True)
class FormChoice:
    """The chosen form and share, how it was chosen and every candidate's score; ``forms``,
    for a choice per shape, each shape's form (``form`` is then that form when all shapes
    have it, else ``PER_SHAPE``)."""

    form: str
    share: tuple[str, ...]
    ratio: float
    margin: float
    candidates: tuple[Scored, ...]
    reason: str
    forms: dict[str, str] = field(default_factory=dict)

    def held_out(self) -> dict[str, dict[str, float]]:
        """The chosen candidates' held-out errors (per shape and ``"all"``); empty when the
        test scored no candidate."""
        if not self.forms:
            return next((c.metrics for c in self.candidates if c.score is not None
                         and (c.form, c.share) == (self.form, self.share)), {})
        by_form = {c.form: c.metrics for c in self.candidates}
        metrics = {name: by_form[form][name] for name, form in self.forms.items()
                   if name in by_form.get(form, {})}
        return {**metrics, "all": pooled_errors(list(metrics.values()))} if metrics else {}

    @property
    def tested(self) -> bool:
        """Whether the extrapolation test scored any candidate (else: the simplest, untested)."""
        return any(c.score is not None for c in self.candidates)

    def warnings(self) -> list[FitWarning]:
        """A ``choice`` warning when the form was not chosen by the test."""
        if self.tested:
            return []
        return [FitWarning("choice", f"--form auto could not test the forms ({self.reason}); "
                           "give --form to choose one yourself")]

    def to_dict(self) -> dict:
        return {"method": f"fit each curve on C <= C_max/{self.ratio:g}, score the RMSE of "
                          "log-loss above; the simplest candidate within "
                          f"{self.margin:.0%} of the best"
                          + (", per shape" if self.forms else ""),
                "chosen": {"form": self.form, "share": list(self.share),
                           **({"forms": self.forms} if self.form == PER_SHAPE else {})},
                "reason": self.reason,
                "candidates": [c.to_dict() for c in self.candidates]}


def default_candidates(share: tuple[str, ...] = ()) -> tuple[Candidate, ...]:
    """Power, then saturating, each with the ``share`` asked for (none by default).

    >>> default_candidates(("floor",))
    (('power', ('floor',)), ('saturating', ('floor',)))
    """
    return (("power", tuple(share)), ("saturating", tuple(share)))


def choose_auto(curves: Curves, share: tuple[str, ...] = (), ratio: float = AUTO_RATIO,
                margin: float = AUTO_MARGIN,
                candidates: tuple[Candidate, ...] | None = None,
                per_shape: bool = False, reduce_above: int | None = REDUCE_ABOVE
                ) -> FormChoice:
    """The candidate that extrapolates best over the last factor ``ratio`` of each curve's
    compute (see the module's docstring); candidates are listed simplest first. With
    ``per_shape`` (no ``share``), each shape's own best. A curve of more than ``reduce_above``
    points is reduced once, to ``RANKING_QUANTILES`` rows per bin (``laws.fit.reduce``), and
    every candidate is fitted on those points, without the polish on every row: the fits only
    rank the candidates (scored on the held-out rows themselves), and the chosen form is then
    fitted as any given form is.

    Curves with fewer than ``MIN_TRAIN`` points below their cut-off take no part (per shape:
    they take the first candidate); when none is left, or no candidate can be scored, the
    first (simplest) candidate is chosen and ``reason`` says why.
    """
    if ratio <= 1.0:
        raise InputError(f"the auto form's hold-out ratio must exceed 1, got {ratio:g}")
    if per_shape and share:
        raise InputError("a form per shape shares no parameter: the shapes sharing "
                         f"{', '.join(share)} are fitted together, in one form")
    candidates = candidates or default_candidates(share)
    cuts = [np.max(curve.compute) / ratio for curve in curves.curves]
    taking = [(curve, cut) for curve, cut in zip(curves.curves, cuts, strict=True)
              if MIN_TRAIN <= np.sum(curve.compute <= cut) < len(curve)]
    first = candidates[0]
    default_forms = {curve.name: first[0] for curve in curves.curves} if per_shape else {}
    if not taking:
        return FormChoice(*first, ratio, margin, (), "no curve has "
                          f"{MIN_TRAIN} points below C_max/{ratio:g} and some above: "
                          f"{first[0]} by default", default_forms)
    points = {curve.name: reduce_curve(curve, reduce_above, quantiles=RANKING_QUANTILES)
              for curve in curves.curves}
    pairs = [(points[curve.name].subset(points[curve.name].compute <= cut),
              curve.subset(curve.compute > cut)) for curve, cut in taking]
    # Per shape, a curve left out of the test takes the first form: only the tested curves'
    # fits of all points can rule a candidate out.
    whole_of = curves.replace([points[curve.name] for curve in
                               ([curve for curve, _ in taking] if per_shape else curves.curves)])
    held_out = [_held_out(curves, pairs, form, tuple(share)) for form, share in candidates]
    scored: list[Scored] = []
    for (form, share), errors in zip(candidates, held_out, strict=True):
        settled = _settled(scored, held_out, margin) if per_shape else set()
        scored.append(_score(whole_of, errors, form, tuple(share), per_shape, settled))
    scored = tuple(scored)
    valid = [s for s in scored if s.score is not None]
    if not valid:
        return FormChoice(*first, ratio, margin, scored,
                          f"no candidate could be scored: {first[0]} by default", default_forms)
    if per_shape:
        return _per_shape(default_forms, scored, ratio, margin)
    best = min(s.score for s in valid)
    chosen = next(s for s in valid if s.score <= best * (1.0 + margin))
    return FormChoice(chosen.form, chosen.share, ratio, margin, scored,
                      f"simplest within {margin:.0%} of the best score {best:.4g}")


def _per_shape(default_forms: dict[str, str], scored: tuple[Scored, ...], ratio: float,
               margin: float) -> FormChoice:
    """Each tested shape's simplest candidate within ``margin`` of its best score, among the
    candidates fitted without degeneracy; ``default_forms`` gives the others' (default) form."""
    tested = [name for name in default_forms if any(name in s.shapes for s in scored)]
    forms = dict(default_forms)
    for name in tested:
        valid = [(s.form, s.shapes[name]) for s in scored
                 if name in s.shapes and name not in (*s.degenerate, *s.unchecked)]
        if valid:
            best = min(score for _, score in valid)
            forms[name] = next(form for form, score in valid if score <= best * (1.0 + margin))
    counts = {form: list(forms.values()).count(form) for form in dict.fromkeys(
        s.form for s in scored)}
    reason = (f"per shape, the simplest within {margin:.0%} of its best score: "
              + ", ".join(f"{form} on {n}" for form, n in counts.items() if n))
    if len(forms) > len(tested):
        reason += (f"; {len(forms) - len(tested)} shapes with too few points for the test take "
                   f"{scored[0].form}")
    chosen = set(forms.values())
    return FormChoice(chosen.pop() if len(chosen) == 1 else PER_SHAPE, (), ratio, margin,
                      scored, reason, forms)


def _held_out(curves: Curves, pairs: list[tuple[Curve, Curve]], form: str,
              share: tuple[str, ...]) -> dict[str, dict[str, float]] | str:
    """The held-out errors of the partial fit of ``pairs`` (train points, test rows), or why
    it cannot be made. The points come reduced already."""
    try:
        return fit_split(curves, pairs, form, share, reduce_above=None, polish=False)[1]
    except InputError as err:
        return str(err)


def _settled(scored: list[Scored], held_out: list[dict | str], margin: float) -> set[str]:
    """The shapes whose per-shape choice the candidates judged so far (``scored``, the
    first of ``held_out``'s) decide whatever the fits of all points of the others give: the
    simplest candidate within ``margin`` of the best score among those known sound is within
    it of the least score of any candidate, so that no later one, sound or not, can change
    which comes first. Their later fits of all points are not needed.

    With power and saturating: a shape whose power fit is sound and within 5% of both
    candidates' held-out errors takes power, whatever its saturating fit of all points."""
    least: dict[str, float] = {}
    for errors in held_out:
        for name, metric in errors.items() if isinstance(errors, dict) else ():
            if name != "all":
                least[name] = min(least.get(name, np.inf), metric["rmse_log"])
    settled = set()
    for name, lowest in least.items():
        sound = [s.shapes[name] for s in scored if s.score is not None and name in s.shapes
                 and name not in (*s.degenerate, *s.unchecked)]
        if sound:
            best = min(sound)
            first = next(score for score in sound if score <= best * (1.0 + margin))
            if first <= lowest * (1.0 + margin):
                settled.add(name)
    return settled


def _score(whole_of: Curves, errors: dict[str, dict[str, float]] | str, form: str,
           share: tuple[str, ...], per_shape: bool, settled: set[str]) -> Scored:
    """The partial fit's held-out ``errors`` scored; out if that fit, or the fit of all of
    ``whole_of`` but the ``settled`` shapes, cannot be made, or (``per_shape``: for a shape)
    if the fit of all points (the one a law file would hold) is degenerate. The points come
    reduced already."""
    if isinstance(errors, str):
        return Scored(form, share, None, {}, f"not fitted: {errors}")
    checked = [curve for curve in whole_of.curves if curve.name not in settled]
    unchecked = tuple(curve.name for curve in whole_of.curves if curve.name in settled)
    try:
        whole = fit_curves(whole_of.replace(checked), form, share, reduce_above=None,
                           polish=False) if checked else None
    except InputError as err:
        return Scored(form, share, None, {}, f"not fitted: {err}")
    degenerate = () if whole is None else tuple(
        name for warning in parameter_warnings(whole.laws) for name in warning.shapes)
    shapes = {name: m["rmse_log"] for name, m in errors.items() if name != "all"}
    sound = [error for name, error in shapes.items() if name not in degenerate]
    if degenerate and not (per_shape and sound):
        return Scored(form, share, None, errors, "degenerate fit of all points (see its "
                      "bound or exponent warning)", degenerate)
    status = "scored" + (f"; out for the {len(degenerate)} shapes of degenerate fits"
                         if degenerate else "") + (
        f"; its fit of all points not made for the {len(unchecked)} shapes that a simpler "
        "candidate takes whatever it gives" if unchecked else "")
    return Scored(form, share, float(np.mean(sound)), errors, status, degenerate, unchecked)
