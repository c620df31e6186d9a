"""``--form auto``: choose the law form by the extrapolation it will be asked for.

Each candidate (form, shared parameters) is fitted to every curve's points up to a cut-off,
C <= C_max / ``ratio`` (C_max: the curve's largest compute), and scored by the RMSE of
log-loss on the curve's points above it, the last factor ``ratio`` (2) of its compute: the
mean over shapes is the candidate's score. The simplest candidate (fewest parameters, listed
first) whose score is within ``margin`` (5%) of the best wins. A candidate whose fit of all the
points is degenerate (an exponent at its bound, an offset far beyond the fitted compute: see
``laws.fit.diagnostics``) is out, whatever its partial fit scored.

Why the last stretch only: a curve's bend changes along it, so how a form extrapolates from
its earlier parts says little about how it extrapolates beyond its end. On the Revisiting
benchmark (``bench/bench_revisiting.py``, docs/FITTING.md), whose held-out rows reach about a
factor 2 beyond the training rows, this test picks the better of power and saturating on 67 of
92 curves; holding out the last factor 3 instead, on 49 (a coin). It is the one chooser:
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

from dataclasses import dataclass, replace

import numpy as np

from laws.errors import InputError
from laws.fit.curveset import fit_curves
from laws.fit.diagnostics import FitWarning, parameter_warnings
from laws.fit.holdout import split_fit
from laws.io.curves import Curves

AUTO = "auto"  # the form name that asks for the choice
AUTO_RATIO = 2.0  # the last factor 2 of each curve's compute is held out
AUTO_MARGIN = 0.05  # a more complex form must beat the simpler one by more than 5%
MIN_TRAIN = 5  # points below the cut-off for a curve to take part (the 4 of saturating, + 1)
Candidate = tuple[str, tuple[str, ...]]


@dataclass(frozen=True)
class Scored:
    """A candidate's extrapolation score: mean RMSE of log-loss over ``shapes`` (None when it
    could not be fitted or its fit is degenerate; ``status`` says which). ``metrics``: the
    held-out errors of its partial fit, per shape and pooled as ``"all"`` (``split_fit``)."""

    form: str
    share: tuple[str, ...]
    score: float | None
    metrics: dict[str, dict[str, float]]
    status: str

    @property
    def shapes(self) -> dict[str, float]:
        """Each shape's held-out RMSE of log-loss, what the score averages."""
        return {name: m["rmse_log"] for name, m in self.metrics.items() if name != "all"}

    def to_dict(self) -> dict:
        return {"form": self.form, "share": list(self.share), "score": self.score,
                "status": self.status, "shapes": self.shapes}


@dataclass(frozen=True)
class FormChoice:
    """The chosen form and share, how it was chosen and every candidate's score."""

    form: str
    share: tuple[str, ...]
    ratio: float
    margin: float
    candidates: tuple[Scored, ...]
    reason: str

    def held_out(self) -> dict[str, dict[str, float]]:
        """The chosen candidate's held-out errors (per shape and ``"all"``); empty when the
        test scored no candidate."""
        return next((c.metrics for c in self.candidates if c.score is not None
                     and (c.form, c.share) == (self.form, self.share)), {})

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
                          f"{self.margin:.0%} of the best",
                "chosen": {"form": self.form, "share": list(self.share)},
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
                candidates: tuple[Candidate, ...] | None = None) -> FormChoice:
    """The candidate that extrapolates best over the last factor ``ratio`` of each curve's
    compute (see the module's docstring); candidates are listed simplest first.

    Curves with fewer than ``MIN_TRAIN`` points below their cut-off take no part; when none
    is left, or no candidate can be scored, the first (simplest) candidate is chosen and
    ``reason`` says why.
    """
    if ratio <= 1.0:
        raise InputError(f"the auto form's hold-out ratio must exceed 1, got {ratio:g}")
    candidates = candidates or default_candidates(share)
    masks = [curve.compute <= np.max(curve.compute) / ratio for curve in curves.curves]
    taking = [(curve, mask) for curve, mask in zip(curves.curves, masks, strict=True)
              if np.sum(mask) >= MIN_TRAIN and not np.all(mask)]
    first = candidates[0]
    if not taking:
        return FormChoice(*first, ratio, margin, (), "no curve has "
                          f"{MIN_TRAIN} points below C_max/{ratio:g} and some above: "
                          f"{first[0]} by default")
    subset = curves.replace([curve for curve, _ in taking])
    keep = [mask for _, mask in taking]
    scored = tuple(_score(curves, subset, keep, form, tuple(share))
                   for form, share in candidates)
    valid = [s for s in scored if s.score is not None]
    if not valid:
        return FormChoice(*first, ratio, margin, scored,
                          f"no candidate could be scored: {first[0]} by default")
    best = min(s.score for s in valid)
    chosen = next(s for s in valid if s.score <= best * (1.0 + margin))
    return FormChoice(chosen.form, chosen.share, ratio, margin, scored,
                      f"simplest within {margin:.0%} of the best score {best:.4g}")


def _score(curves: Curves, subset: Curves, keep: list[np.ndarray], form: str,
           share: tuple[str, ...]) -> Scored:
    """The partial fit of ``subset`` scored; out if it, or the fit of all of ``curves``,
    cannot be made, or if the fit of all (the one a law file would hold) is degenerate."""
    try:
        _, metrics = split_fit(subset, keep, form, share)
        whole = fit_curves(curves, form, share)
    except InputError as err:
        return Scored(form, share, None, {}, f"not fitted: {err}")
    scored = Scored(form, share, None, metrics, "degenerate fit of all points (see its "
                    "bound warning)")
    if parameter_warnings(whole.laws):
        return scored
    return replace(scored, score=float(np.mean(list(scored.shapes.values()))), status="scored")
