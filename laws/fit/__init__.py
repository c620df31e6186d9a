"""Fitting scaling laws to measured curves: robust objective, multi-start L-BFGS-B, joint fits,
bootstrap samples and intervals (``laws.fit.uncertainty``) and an extrapolation check.

A fitted law set records, per shape, what it was fitted on (``Shape.measured``) and, with a
bootstrap, the refitted laws (``Shape.samples``; ``LawSet.samples()`` gives one law set per
resample).

>>> import numpy as np
>>> compute = np.logspace(18, 20, 10)
>>> law = fit_law(compute, 1.5 + 2e4 * compute ** -0.25)
>>> round(law.c, 3)
1.5
"""

from laws.fit.choice import choose_auto
from laws.fit.curveset import FitResult, fit_curves, loss_errors
from laws.fit.holdout import HoldoutReport, holdout_check
from laws.fit.objective import HUBER_DELTA
from laws.fit.problem import FIT_FORMS, SHAREABLE, fit_law

__all__ = ["FIT_FORMS", "HUBER_DELTA", "SHAREABLE", "FitResult", "HoldoutReport",
           "choose_auto", "fit_curves", "fit_law", "holdout_check", "loss_errors"]
