"""Fit diagnostics: each warning fires on the fit it describes and stays quiet on a sound one;
warnings and the form choice reach the law file's provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from laws.fit import fit_curves, holdout_check
from laws.fit.diagnostics import (
    HOLDOUT_RATIO,
    OUTLIER_SIGMAS,
    diagnose,
    free_parameters,
    holdout_warnings,
    parameter_warnings,
    robust_warnings,
    size_warnings,
)
from laws.fit.objective import EXPONENT_BOUNDS, HUBER_DELTA
from laws.fit.request import FitRequest, fit_file
from laws.forms import PowerLaw, SaturatingLaw
from laws.io.curves import ColumnMap, Curve, Curves
from laws.lawset import LawSet, Measured, Shape

COMPUTE = np.logspace(18, 21, 30)
TRUTH = PowerLaw(a=2e6, b=0.3, c=2.0)


def _curve(name: str, compute: np.ndarray, loss: np.ndarray, n=None) -> Curve:
    return Curve(name, {}, compute, loss, tuple(range(2, compute.size + 2)),
                 None if n is None else np.full(compute.size, n))


def _noisy(law, compute, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return law.loss(compute) * np.exp(rng.normal(0.0, noise, compute.size))


def _law_set(law) -> LawSet:
    return LawSet("x", (Shape("s", {}, law, measured=Measured(3.0, (1e18, 1e21), 30, {})),))


@pytest.mark.parametrize("b", EXPONENT_BOUNDS)
def test_an_exponent_at_either_bound_warns(b) -> None:
    [warning] = parameter_warnings(_law_set(PowerLaw(a=2e79, b=b, c=1.0)))
    assert warning.kind == "bound" and warning.shapes == ("s",)
    assert f"b={b:.3g}" in warning.message and "a=2e+79" in warning.message


def test_an_offset_far_beyond_the_fitted_compute_warns() -> None:
    # d = 1e25 against a largest fitted compute of 1e21: 1e4 times, beyond OFFSET_RATIO.
    [warning] = parameter_warnings(_law_set(SaturatingLaw(a=1e12, b=0.5, c=1.0, d=1e25)))
    assert warning.kind == "bound" and "offset d" in warning.message
    assert parameter_warnings(_law_set(SaturatingLaw(a=1e12, b=0.5, c=1.0, d=1e23))) == []
    # A large scale alone is no sign of trouble: b = 1 with compute in FLOPs.
    assert parameter_warnings(_law_set(PowerLaw(a=1e21, b=1.0, c=2.0))) == []


def test_a_fit_that_runs_into_the_bound_is_flagged() -> None:
    # An exponential decay: the saturating fit chases b -> inf and stops at the bound.
    compute = np.logspace(6, 7.3, 20)
    curves = Curves("exp.csv", (_curve("s", compute, 0.2 + 0.7 * np.exp(-compute / 5e6)),))
    result = fit_curves(curves, "saturating")
    kinds = [w.kind for w in diagnose(result, curves)]
    assert "bound" in kinds


@pytest.mark.parametrize(("form", "points", "warns"), [
    ("saturating", 5, True),   # 4 parameters: 5 <= 4 + 1
    ("saturating", 6, False),
    ("power", 4, True),        # 3 parameters
    ("power", 5, False),
])
def test_too_few_points_per_shape(form, points, warns) -> None:
    compute = COMPUTE[::4][:points]
    curves = Curves("few.csv", (_curve("s", compute, TRUTH.loss(compute)),))
    warnings = size_warnings(fit_curves(curves, form))
    assert bool(warnings) == warns
    if warns:
        params = {"power": 3, "saturating": 4}[form]
        assert f"s ({points} points for {params} parameters)" in warnings[0].message


def test_a_five_point_five_parameter_chinchilla_fit_warns() -> None:
    n = np.array([1e8, 1e8, 1e8, 1e9, 1e9])
    compute = np.array([1e18, 3e18, 1e19, 3e19, 1e20])
    loss = 1.8 + 400 * n ** -0.34 + 400 * (compute / (6 * n)) ** -0.28
    curves = Curves("five.csv", (_curve("small", compute[:3], loss[:3], 1e8),
                                 _curve("large", compute[3:], loss[3:], 1e9)))
    result = fit_curves(curves, "chinchilla")
    assert free_parameters(result) == (5, 5)
    [warning] = size_warnings(result)
    assert warning.shapes == ("the joint fit",) and "5 points for 5 parameters" in warning.message


def test_free_parameters_of_shared_fits() -> None:
    curves = Curves("two.csv", tuple(_curve(name, COMPUTE, PowerLaw(a=a, b=0.3, c=2.0).loss(
        COMPUTE)) for name, a in (("s", 2e6), ("t", 3e6))))
    assert free_parameters(fit_curves(curves)) == (3, 6)
    assert free_parameters(fit_curves(curves, share=("floor", "exponent"))) == (1, 4)


def test_outliers_the_robust_fit_discounted_are_named_by_line() -> None:
    loss = _noisy(TRUTH, COMPUTE, 0.003, 0)
    assert robust_warnings(fit_curves(Curves("x.csv", (_curve("s", COMPUTE, loss),))),
                           Curves("x.csv", (_curve("s", COMPUTE, loss),))) == []
    spoiled = loss.copy()
    spoiled[[7, 19]] *= 1.2  # 18% off in log-loss, where the noise is 0.3%
    curves = Curves("x.csv", (_curve("s", COMPUTE, spoiled),))
    result = fit_curves(curves)
    # The Huber fit barely moves: the law stays near the truth despite the outliers ...
    assert result.laws.shape("s").law.b == pytest.approx(TRUTH.b, rel=0.05)
    [warning] = robust_warnings(result, curves)
    # ... and the warning names the two points by their source lines (index + 2).
    assert warning.kind == "robust" and warning.shapes == ("s",)
    assert "2 of 30 points" in warning.message and "(lines 9, 21)" in warning.message
    assert np.log(1.2) > OUTLIER_SIGMAS * 0.003 and np.log(1.2) > HUBER_DELTA


def test_dropped_points_are_not_judged() -> None:
    loss = TRUTH.loss(COMPUTE)
    loss[0] *= 1.5  # the highest loss, dropped before the fit
    curves = Curves("x.csv", (_curve("s", COMPUTE, loss),))
    assert robust_warnings(fit_curves(curves, drop_highest=1), curves, drop_highest=1) == []
    assert robust_warnings(fit_curves(curves), curves) != []


def test_a_poor_extrapolation_warns() -> None:
    cut = COMPUTE[19]
    exact = Curves("x.csv", (_curve("s", COMPUTE, _noisy(TRUTH, COMPUTE, 0.002, 1)),))
    assert holdout_warnings(holdout_check(exact, cut)) == []
    # The curve bends away from its early power law above the cut-off.
    bent_loss = TRUTH.loss(COMPUTE) - np.where(cut < COMPUTE, 0.1 * np.log(COMPUTE / cut), 0.0)
    bent = Curves("bent.csv", (_curve("s", COMPUTE, bent_loss),))
    report = holdout_check(bent, cut)
    held, inside = report.metrics["s"]["rmse_log"], report.fit.metrics["s"]["rmse_log"]
    assert held > HOLDOUT_RATIO * inside and held > 0.01
    [warning] = holdout_warnings(report)
    assert warning.kind == "holdout" and warning.shapes == ("s",)


def _csv(tmp_path: Path, law, compute, noise: float = 0.0) -> Path:
    loss = _noisy(law, compute, noise, 0) if noise else law.loss(compute)
    path = tmp_path / "runs.csv"
    path.write_text("run,C,loss\n" + "".join(f"r,{c:.8e},{v:.10f}\n"
                                              for c, v in zip(compute, loss, strict=True)))
    return path


def test_provenance_records_the_choice_and_the_warnings(tmp_path) -> None:
    compute = np.logspace(6, 9, 40)
    law = SaturatingLaw(a=4e3, b=0.6, c=0.2, d=1e7)
    path = _csv(tmp_path, law, compute, 0.002)
    columns = ColumnMap(shape=("run",), compute="C", loss="loss")
    outcome = fit_file(path, columns, FitRequest(holdout_above=float(compute[35])))
    provenance = outcome.laws.provenance
    assert outcome.result.form == "saturating"
    assert provenance["form_choice"]["chosen"] == {"form": "saturating", "share": []}
    scores = {c["form"]: c["score"] for c in provenance["form_choice"]["candidates"]}
    assert scores["saturating"] < scores["power"]
    assert provenance["warnings"] == []
    assert "separate fit" in provenance["holdout"]["fit"]
    assert "form" not in provenance["options"]  # auto is the default
    # The same curve, fitted as a power law on 4 points, warns; the warning is recorded.
    few = _csv(tmp_path, law, compute[::13])
    outcome = fit_file(few, columns, FitRequest(form="power"))
    assert "form_choice" not in outcome.laws.provenance
    assert [w["kind"] for w in outcome.laws.provenance["warnings"]] == ["points"]
    assert outcome.laws.provenance["options"]["form"] == "power"
