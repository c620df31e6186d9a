"""The polish on every row, rescaled by the reduced points' curvature (laws.fit.solve).

The rescaled run must end where the plain L-BFGS-B run ends, and must hand over to the plain
run where its change of coordinates cannot be trusted (an ill-conditioned Hessian) or its
minimum leaves the bounds.
"""

from __future__ import annotations

import numpy as np
import pytest

from laws.fit.objective import Objective, PowerModel
from laws.fit.problem import solve
from laws.fit.reduce import reduce_curve
from laws.fit.solve import local_hessian, polish_start
from laws.forms import PowerLaw
from laws.io.curves import Curve


class _Counted(Objective):
    """The objective, counting its evaluations."""

    evaluations = 0

    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        self.evaluations += 1
        return super().value_and_gradient(theta)


def _noisy_steps(steps: int = 20_000, seed: int = 1) -> Curve:
    compute = np.arange(1, steps + 1) * 3e12
    loss = PowerLaw(a=80.0, b=0.13, c=1.8).loss(compute) * np.exp(
        np.random.default_rng(seed).normal(0.0, 0.02, steps))
    return Curve("s", {}, compute, loss, tuple(range(steps)))


def test_the_hessian_by_differences_is_the_closed_form_at_an_exact_fit() -> None:
    # Residuals 0 inside the Huber delta: the objective is half the weighted sum of squared
    # residuals there, whose Hessian is J^T W J (the residuals' second derivatives count 0).
    compute = np.logspace(12, 17, 300)
    model = PowerModel(compute)
    theta = np.array([0.2, 0.15, 0.4])
    weights = np.linspace(1.0, 3.0, compute.size)
    objective = Objective(model, model.log_loss(theta[None, :, None])[0], weights=weights)
    _, jacobian = model.log_loss_and_jacobian(theta[:, None])
    expected = jacobian.T @ (weights[:, None] * jacobian)
    np.testing.assert_allclose(local_hessian(objective, theta), expected, rtol=1e-6)


def test_no_hessian_where_a_step_crosses_a_bound() -> None:
    compute = np.logspace(12, 17, 50)
    objective = Objective(PowerModel(compute), np.log(2.0 + compute ** -0.1))
    assert local_hessian(objective, np.array([0.0, 5e-5 + 1e-4, 0.5])) is None  # b near 1e-4


def test_rescaled_by_the_reduced_curvature_the_polish_ends_where_the_plain_one_does() -> None:
    curve = _noisy_steps()
    points = reduce_curve(curve)
    reduced = solve([points], "power")
    model = PowerModel(curve.compute, float(np.max(points.compute)))
    plain, rescaled = (_Counted(model, np.log(curve.loss)) for _ in range(2))
    theta, value = polish_start(plain, reduced.thetas[0])
    mine, my_value = polish_start(rescaled, reduced.thetas[0],
                                  hessian=local_hessian(reduced.objectives[0],
                                                        reduced.thetas[0]))
    assert my_value == pytest.approx(value, rel=1e-12)
    theirs, ours = model.law(theta, 1.0).params(), model.law(mine, 1.0).params()
    for name, expected in theirs.items():
        assert ours[name] == pytest.approx(expected, rel=1e-5), name
    assert rescaled.evaluations < plain.evaluations


def test_an_ill_conditioned_hessian_gets_the_plain_run() -> None:
    curve = _noisy_steps(3_000)
    objective = Objective(PowerModel(curve.compute), np.log(curve.loss))
    start = np.array([0.5, 0.2, 0.5])
    flat = np.diag([1.0, 1e-12, 1.0])  # curvature 1e-12 against 1: beyond CONDITION_LIMIT
    plain = polish_start(objective, start)
    rescaled = polish_start(objective, start, hessian=flat)
    assert rescaled[1] == plain[1] and np.array_equal(rescaled[0], plain[0])


def test_a_rescaled_minimum_outside_the_bounds_gets_the_plain_run() -> None:
    # A loss that rises with compute: unbounded, its fit would take a negative exponent; the
    # plain run stops at the exponent's lower bound.
    compute = np.logspace(12, 17, 200)
    objective = Objective(PowerModel(compute), np.log(2.0 + 0.1 * np.log(compute / 1e12)))
    start = np.array([-1.0, 0.1, 0.6])
    plain = polish_start(objective, start)
    rescaled = polish_start(objective, start, hessian=np.eye(3))
    assert plain[0][1] == pytest.approx(objective.bounds()[1][0])
    assert rescaled[1] == plain[1] and np.array_equal(rescaled[0], plain[0])
