"""Fitting: analytic gradients, recovery of known laws from noisy curves, joint fits,
bootstrap intervals, the extrapolation check and bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import approx_fprime

from laws.errors import InputError
from laws.fit import fit_curves, fit_law, holdout_check
from laws.fit.objective import ChinchillaModel, Objective, PowerModel, SaturatingModel, huber
from laws.forms import ChinchillaLaw, PowerLaw, SaturatingLaw
from laws.io.curves import Curve, Curves

COMPUTE = np.logspace(18, 21, 30)


def _noisy(law, compute, noise, seed):
    rng = np.random.default_rng(seed)
    return law.loss(compute) * np.exp(rng.normal(0.0, noise, compute.size))


def _curves(laws: dict, compute=COMPUTE, noise=0.0, n_params=None) -> Curves:
    curves = []
    for i, (name, law) in enumerate(laws.items()):
        loss = _noisy(law, compute, noise, i) if noise else law.loss(compute)
        curves.append(Curve(name, {"size": i}, compute, loss, tuple(range(compute.size)),
                            None if n_params is None else np.full(compute.size, n_params[i])))
    return Curves("synthetic.csv", tuple(curves))


@pytest.mark.parametrize("model", [
    PowerModel(COMPUTE),
    SaturatingModel(COMPUTE),
    ChinchillaModel(np.repeat([1e8, 1e9, 1e10], 10), COMPUTE / 6e9),
])
def test_analytic_gradient_matches_finite_differences(model) -> None:
    rng = np.random.default_rng(0)
    theta = {3: [1.0, 0.3, 0.5], 4: [1.0, 0.3, 0.5, -2.0], 5: [6.0, 7.0, 0.5, 0.3, 0.3]}[
        model.n_params]
    # A wide delta keeps every residual on the smooth, quadratic side of the Huber penalty.
    measured = model.log_loss(np.array(theta)[None, :, None])[0] + rng.normal(0, 0.05, 30)
    objective = Objective(model, measured, delta=1.0)
    value, gradient = objective.value_and_gradient(np.array(theta))
    numeric = approx_fprime(np.array(theta), lambda t: objective.value_and_gradient(t)[0],
                            1e-7)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-4, atol=1e-7)
    expected = np.sum(huber(model.log_loss(np.array(theta)[None, :, None])[0] - measured, 1.0))
    assert value == pytest.approx(expected)


@pytest.mark.parametrize("model", [PowerModel(COMPUTE), SaturatingModel(COMPUTE)])
def test_the_gradient_of_a_reduced_curve_s_weights_matches_finite_differences(model) -> None:
    # Weights that are no whole counts (a reduced per-step curve's): one product of the slopes
    # and the Jacobian instead of sums in point order; the same gradient.
    rng = np.random.default_rng(2)
    theta = np.array([1.0, 0.3, 0.5, -2.0][:model.n_params])
    measured = model.log_loss(theta[None, :, None])[0] + rng.normal(0, 0.05, COMPUTE.size)
    weights = rng.uniform(0.5, 7.0, COMPUTE.size)
    objective = Objective(model, measured, delta=1.0, weights=weights)
    value, gradient = objective.value_and_gradient(theta)
    steps = 1e-6 * np.eye(theta.size)  # central differences: weights up to 7 bend it more
    numeric = [(objective.value_and_gradient(theta + h)[0]
                - objective.value_and_gradient(theta - h)[0]) / 2e-6 for h in steps]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6, atol=1e-9)
    expected = huber(model.log_loss(theta[None, :, None])[0] - measured, 1.0) @ weights
    assert value == pytest.approx(expected)


def test_joint_gradient_adds_shared_positions() -> None:
    compute = np.tile(COMPUTE[:10], 2)
    model = PowerModel(compute, np.repeat([COMPUTE[9], COMPUTE[9]], 10))
    # Parameters: shared floor at 0, then (la, b) of shape 0 and of shape 1.
    index = np.array([[1] * 10 + [3] * 10, [2] * 10 + [4] * 10, [0] * 20])
    rng = np.random.default_rng(1)
    objective = Objective(model, np.log(2.5 + rng.random(20)), index, 5, delta=1.0)
    theta = np.array([0.3, 0.1, 0.4, -0.2, 0.2])
    numeric = approx_fprime(theta, lambda t: objective.value_and_gradient(t)[0], 1e-7)
    np.testing.assert_allclose(objective.value_and_gradient(theta)[1], numeric, rtol=1e-4,
                               atol=1e-7)


@settings(max_examples=10, deadline=None)
@given(b=st.floats(0.2, 0.6), c=st.floats(1.0, 3.0), start_loss=st.floats(1.5, 3.0),
       seed=st.integers(0, 1000))
def test_fit_law_recovers_a_noisy_power_law(b, c, start_loss, seed) -> None:
    # The law starts 'start_loss' above its floor at the smallest compute of the curve.
    truth = PowerLaw(a=start_loss * COMPUTE[0] ** b, b=b, c=c)
    measured = _noisy(truth, COMPUTE, 0.002, seed)
    law = fit_law(COMPUTE, measured)
    # The optimiser finds a fit at least as good as the truth itself ...
    def objective(fitted):
        return np.sum(huber(np.log(fitted.loss(COMPUTE)) - np.log(measured)))
    assert objective(law) <= objective(truth) * (1 + 1e-9)
    # ... and the noise leaves the parameters and the curve within 5 standard errors of the
    # truth. The errors come from the linearised least-squares fit (Jacobian of log-loss in
    # (log a, b, c)): how well b and c are determined depends on the draw (a small exponent
    # trades c against a), so a fixed relative tolerance would be wrong for some draws.
    scaled = truth.a * COMPUTE**-b / truth.loss(COMPUTE)
    jacobian = np.column_stack([scaled, -scaled * np.log(COMPUTE), 1 / truth.loss(COMPUTE)])
    covariance = 0.002**2 * np.linalg.inv(jacobian.T @ jacobian)
    assert abs(law.b - b) <= 5 * np.sqrt(covariance[1, 1])
    assert abs(law.c - c) <= 5 * np.sqrt(covariance[2, 2])
    hat = jacobian @ np.linalg.solve(jacobian.T @ jacobian, jacobian.T)
    standard_error = 0.002 * np.sqrt(np.diag(hat))
    relative_error = np.abs(law.loss(COMPUTE) / truth.loss(COMPUTE) - 1)
    assert np.all(relative_error <= 5 * standard_error), relative_error / standard_error


def test_fit_law_recovers_a_saturating_law() -> None:
    truth = SaturatingLaw(a=3e5, b=0.3, c=1.5, d=3e19)
    law = fit_law(COMPUTE, _noisy(truth, COMPUTE, 0.001, 3), form="saturating")
    np.testing.assert_allclose(law.loss(COMPUTE), truth.loss(COMPUTE), rtol=0.002)
    assert law.c == pytest.approx(1.5, rel=0.05)
    assert law.d == pytest.approx(3e19, rel=0.5)


def test_fit_law_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="needs at least 3"):
        fit_law(COMPUTE[:2], np.array([3.0, 2.9]))
    with pytest.raises(InputError, match="positive and finite"):
        fit_law(COMPUTE[:3], np.array([3.0, np.nan, 2.0]))
    with pytest.raises(InputError, match="fit_law fits one curve"):
        fit_law(COMPUTE, COMPUTE, form="chinchilla")


def test_shared_floor_and_exponent_recovered_jointly() -> None:
    laws = {f"s{i}": PowerLaw(a=a, b=0.3, c=2.0) for i, a in enumerate([2e6, 5e6, 1e7])}
    curves = _curves(laws, noise=0.002)
    joint = fit_curves(curves, share=("floor", "exponent"))
    assert joint.shared["c"] == pytest.approx(2.0, rel=0.01)
    assert joint.shared["b"] == pytest.approx(0.3, rel=0.05)
    for shape in joint.laws.shapes:
        assert shape.law.c == joint.shared["c"] and shape.law.b == joint.shared["b"]
    floors = fit_curves(curves, share=("floor",))
    assert {s.law.c for s in floors.laws.shapes} == {floors.shared["c"]}
    assert len({s.law.b for s in floors.laws.shapes}) == 3


def test_joint_fit_lets_a_short_curve_borrow_the_shared_parameters() -> None:
    truth = {"long": PowerLaw(a=5e6, b=0.3, c=2.0), "short": PowerLaw(a=1e7, b=0.3, c=2.0)}
    long, short = _curves(truth).curves
    two_points = short.subset(np.arange(len(short)) < 2)
    result = fit_curves(Curves("x.csv", (long, two_points)), share=("floor",))
    assert result.laws.shape("short").law.loss(1e21) == pytest.approx(
        truth["short"].loss(1e21), rel=1e-3)
    with pytest.raises(InputError, match=r"x\.csv: shape 'short' has 2 point\(s\); the power "
                                         r"form needs at least 3"):
        fit_curves(Curves("x.csv", (long, two_points)))


def test_chinchilla_form_recovers_its_parameters() -> None:
    truth = dict(E0=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)
    sizes = [5e7, 2e8, 1e9, 4e9]
    laws = {f"n{i}": ChinchillaLaw(**truth, N=n) for i, n in enumerate(sizes)}
    result = fit_curves(_curves(laws, compute=np.logspace(18, 22, 12), n_params=sizes),
                        form="chinchilla")
    for key, value in truth.items():
        assert result.shared[key] == pytest.approx(value, rel=0.01)
    assert result.laws.shape("n2").law.N == 1e9


def test_chinchilla_needs_sizes() -> None:
    with pytest.raises(InputError, match="params column"):
        fit_curves(_curves({"x": PowerLaw(a=1e6, b=0.3, c=2.0)}), form="chinchilla")
    with pytest.raises(InputError, match="shares all its parameters"):
        fit_curves(_curves({"x": PowerLaw(a=1e6, b=0.3, c=2.0)}), form="chinchilla",
                   share=("floor",))


def test_metrics_match_an_independent_computation() -> None:
    curves = _curves({"x": PowerLaw(a=2e6, b=0.3, c=2.0)}, noise=0.01)
    result = fit_curves(curves)
    law = result.laws.shape("x").law
    curve = curves.curves[0]
    error = law.loss(curve.compute) - curve.loss
    assert result.metrics["x"]["rmse"] == pytest.approx(np.sqrt(np.mean(error**2)))
    assert result.metrics["x"]["mare"] == pytest.approx(np.mean(np.abs(error) / curve.loss))
    assert result.metrics["all"]["points"] == 30


def test_bootstrap_intervals_cover_the_truth() -> None:
    truth = PowerLaw(a=2e6, b=0.3, c=2.0)
    curves = _curves({"x": truth}, noise=0.003)
    result = fit_curves(curves, bootstrap=60, seed=7, target_loss=2.2)
    low, high = result.intervals["x"]["b"]
    assert low < 0.3 < high and high - low < 0.2
    low, high = result.intervals["x"]["compute"]
    assert low < truth.compute(2.2) < high
    again = fit_curves(curves, bootstrap=60, seed=7, target_loss=2.2)
    assert again.intervals == result.intervals  # reproducible from the seed


def test_drop_highest_removes_the_top_losses() -> None:
    curves = _curves({"x": PowerLaw(a=2e6, b=0.3, c=2.0)})
    result = fit_curves(curves, drop_highest=4)
    assert result.dropped == 4 and result.metrics["all"]["points"] == 26


def test_holdout_on_exact_law_is_near_zero_and_measures_departures() -> None:
    truth = PowerLaw(a=2e6, b=0.3, c=2.0)
    cut = COMPUTE[19]
    exact = holdout_check(_curves({"x": truth}), cut)
    assert exact.metrics["x"]["train"] == 20 and exact.metrics["x"]["points"] == 10
    assert exact.metrics["all"]["rmse"] < 1e-4
    # A curve that bends away from its early power law above the cut-off.
    loss = truth.loss(COMPUTE) - np.where(cut < COMPUTE, 0.05 * np.log(COMPUTE / cut), 0.0)
    bent = Curves("bent.csv", (Curve("x", {}, COMPUTE, loss, tuple(range(30))),))
    report = holdout_check(bent, cut)
    law = report.fit.laws.shape("x").law
    held = cut < COMPUTE
    expected = np.sqrt(np.mean((law.loss(COMPUTE[held]) - loss[held]) ** 2))
    assert report.metrics["x"]["rmse"] == pytest.approx(expected)
    assert report.metrics["x"]["rmse"] > 0.01


def test_holdout_without_points_above_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no points lie above"):
        holdout_check(_curves({"x": PowerLaw(a=2e6, b=0.3, c=2.0)}), 1e30)



def test_fit_records_what_it_measured_after_drops() -> None:
    laws = {"x": PowerLaw(a=2e6, b=0.3, c=2.0), "y": PowerLaw(a=5e6, b=0.3, c=2.0)}
    curves = _curves(laws, noise=0.01)
    result = fit_curves(curves, drop_highest=3)
    every_loss = np.sort(np.concatenate([c.loss for c in curves.curves]))
    for curve in curves.curves:
        kept = curve.loss < every_loss[-3]
        measured = result.laws.shape(curve.name).measured
        assert measured.points == int(kept.sum())
        assert measured.first_loss == curve.loss[kept][np.argmin(curve.compute[kept])]
        assert measured.compute_range == (curve.compute[kept].min(), curve.compute[kept].max())
    first_losses = [result.laws.shape(c.name).measured.first_loss for c in curves.curves]
    assert result.laws.measured_start_loss() == max(first_losses)


def test_chinchilla_points_of_grouped_sizes_keep_their_own_n() -> None:
    truth = dict(E0=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)
    compute = np.logspace(18, 22, 12)
    sizes = np.array([5e7, 6e7, 1e9, 1.2e9])  # two groups of two sizes
    points = [ChinchillaLaw(**truth, N=n).loss(compute) for n in sizes]
    grouped = tuple(
        Curve(name, {"N": n}, np.tile(compute, 2), np.concatenate(points[2 * g:2 * g + 2]),
              tuple(range(24)), np.repeat(sizes[2 * g:2 * g + 2], 12),
              grouped={"N": (sizes[2 * g], sizes[2 * g + 1])})
        for g, (name, n) in enumerate([("small", 5.5e7), ("large", 1.1e9)]))
    result = fit_curves(Curves("grouped.csv", grouped), form="chinchilla")
    for key, value in truth.items():  # exact data: the per-point N recover the truth
        assert result.shared[key] == pytest.approx(value, rel=1e-3)
    assert np.isclose(result.laws.shape("small").law.N, np.sqrt(5e7 * 6e7), rtol=1e-12)
    assert np.isclose(result.laws.shape("large").law.N, np.sqrt(1e9 * 1.2e9), rtol=1e-12)
    ungrouped = tuple(dataclasses.replace(curve, grouped={}) for curve in grouped)
    with pytest.raises(InputError, match="'small': the params column varies within the shape"):
        fit_curves(Curves("mixed.csv", ungrouped), form="chinchilla")
