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

from laws.fit.anneal import (
    ANNEAL_METHODS,
    CooldownBranches,
    ScheduleAwareLaw,
    fit_schedule_aware_law,
    held_out_log_rmse,
    schedule_areas,
)
from laws.fit.choice import choose_auto
from laws.fit.curveset import FitResult, fit_curves, loss_errors
from laws.fit.holdout import HoldoutReport, holdout_check
from laws.fit.objective import HUBER_DELTA
from laws.fit.problem import FIT_FORMS, SHAREABLE, fit_law

__all__ = ["ANNEAL_METHODS", "FIT_FORMS", "HUBER_DELTA", "SHAREABLE", "CooldownBranches",
           "FitResult", "HoldoutReport", "ScheduleAwareLaw", "choose_auto", "fit_curves",
           "fit_law", "fit_schedule_aware_law", "held_out_log_rmse", "holdout_check",
           "loss_errors", "schedule_areas"]
