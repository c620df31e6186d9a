"""Multi-start minimisation: screen a grid of starts cheaply, polish the best with L-BFGS-B.

The objective is non-convex (a floor and a scale trade off), so one start is not enough; but
running L-BFGS-B from every point of a large grid is slow. Evaluating the objective at every
start is one vectorised pass, and only the few best starts are polished with L-BFGS-B using
the analytic gradient.

>>> from laws.fit.objective import Objective, PowerModel
>>> compute = np.logspace(18, 21, 12)
>>> measured = np.log(2.0 + 3.0 * (compute / compute.max()) ** -0.3)
>>> model = PowerModel(compute)
>>> theta, _ = minimize_multistart(Objective(model, measured),
...                                power_starts(compute, np.exp(measured)))
>>> law = model.law(theta, compute.max())
>>> round(law.b, 3), round(law.c, 3)
(0.3, 2.0)
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import minimize

from laws.fit.blas import one_blas_thread
from laws.fit.objective import Objective

# Epoch AI's grid of starts for the Chinchilla fit (a, b, e, alpha, beta): 6 x 6 x 5 x 5 x 5.
EPOCH_GRID = {
    "a": np.arange(0, 30, 5.0),
    "b": np.arange(0, 30, 5.0),
    "e": np.arange(-1, 1.5, 0.5),
    "alpha": np.arange(0, 2.5, 0.5),
    "beta": np.arange(0, 2.5, 0.5),
}
_EXPONENTS = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.2])
_FLOOR_FRACTIONS = np.array([1e-3, 0.3, 0.6, 0.8, 0.9, 0.95, 0.98])
_OFFSETS = np.array([1e-3, 1e-2, 0.1, 1.0])  # saturating offset d, relative to the largest C
POLISHED = 4  # starts polished by default: few points can leave several valleys
HESSIAN_STEP = 1e-4  # of the internal parameters (log-scales, exponents) for local_hessian
CONDITION_LIMIT = 1e8  # largest over smallest curvature of a Hessian polish_start rescales by


def minimize_multistart(objective: Objective, starts: np.ndarray, polish: int = POLISHED,
                        tolerance: float = 1e-13) -> tuple[np.ndarray, float]:
    """The best minimum found by L-BFGS-B from the ``polish`` starts of lowest objective.

    Returns the parameter vector and its objective value.
    """
    values = objective.values(starts)
    order = np.argsort(values, kind="stable")[:polish]
    bounds = objective.bounds()
    best_theta, best_value = starts[order[0]], float(values[order[0]])
    with one_blas_thread():
        for index in order:
            if not np.isfinite(values[index]):
                break
            theta, value = polish_start(objective, starts[index], bounds, tolerance)
            if value < best_value:
                best_theta, best_value = theta, value
    return best_theta, best_value


def polish_start(objective: Objective, start: np.ndarray, bounds: list | None = None,
                 tolerance: float = 1e-13, hessian: np.ndarray | None = None
                 ) -> tuple[np.ndarray, float]:
    """L-BFGS-B with the analytic gradient from one start; tight tolerances because the
    summed Huber objective is small (about delta x residual per point).

    With ``hessian`` (a nearby objective's curvature at ``start``: ``local_hessian``),
    L-BFGS-B runs in coordinates in which that Hessian is the identity, where a flat valley
    is a round bowl: from the optimum of a per-step curve's reduced points to that of all its
    rows, a power law takes 10 or 11 evaluations instead of 21 to 50 (``bench/bench_big_fit.py``).
    A Hessian conditioned worse than ``CONDITION_LIMIT``, a run that does not converge or a
    minimum outside ``bounds`` gets the plain run from ``start``. The Hessian must be of the
    objective's own scale, as the reduced points' is (their weights count the rows): one many
    times too large shrinks the gradient in the new coordinates below the run's tolerance,
    which would then stop short."""
    bounds = objective.bounds() if bounds is None else bounds
    options = {"ftol": tolerance, "gtol": 1e-12, "maxiter": 2000}
    with np.errstate(over="ignore", invalid="ignore"), one_blas_thread():
        if hessian is not None and _well_conditioned(hessian):
            # theta = start + to_theta @ z: the objective's Hessian in z is the identity.
            to_theta = np.linalg.inv(np.linalg.cholesky(hessian).T)

            def whitened(z: np.ndarray) -> tuple[float, np.ndarray]:
                value, gradient = objective.value_and_gradient(start + to_theta @ z)
                return value, to_theta.T @ gradient

            result = minimize(whitened, np.zeros(start.size), jac=True, method="L-BFGS-B",
                              options=options)
            theta = start + to_theta @ result.x
            # Not converged (a line search that met an overflow, say): the plain run decides.
            if result.success and np.isfinite(result.fun) and _within(theta, bounds):
                return theta, float(result.fun)
        result = minimize(objective.value_and_gradient, start, jac=True, method="L-BFGS-B",
                          bounds=bounds, options=options)
    return result.x, float(result.fun)


def local_hessian(objective: Objective, theta: np.ndarray, step: float = HESSIAN_STEP
                  ) -> np.ndarray | None:
    """The Hessian of ``objective`` at ``theta``, by central differences of its analytic
    gradient (2 evaluations a parameter); None where a step would cross a bound, so that
    the curvature there is not the objective's."""
    steps = step * np.eye(theta.size)
    if not _within(theta - step, objective.bounds()) or not _within(theta + step,
                                                                     objective.bounds()):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        columns = [objective.value_and_gradient(theta + h)[1]
                   - objective.value_and_gradient(theta - h)[1] for h in steps]
    hessian = np.array(columns) / (2 * step)
    return (hessian + hessian.T) / 2 if np.all(np.isfinite(hessian)) else None


def _well_conditioned(hessian: np.ndarray) -> bool:
    """Whether ``hessian`` is positive definite within ``CONDITION_LIMIT``: a saturating
    law's offset can leave a direction of curvature 1e-13 against 1e3, along which the change
    of coordinates would carry the minimum far off (and its result would not be the plain
    run's)."""
    eigenvalues = np.linalg.eigvalsh(hessian)
    return bool(eigenvalues[0] > eigenvalues[-1] / CONDITION_LIMIT)


def _within(theta: np.ndarray, bounds: list) -> bool:
    """Whether every parameter lies inside its (low, high) bound (None: unbounded)."""
    return all((low is None or value >= low) and (high is None or value <= high)
               for value, (low, high) in zip(theta.tolist(), bounds, strict=True))


def grid_starts(grid: dict[str, np.ndarray]) -> np.ndarray:
    """All combinations of the grid's values, one start per row, in the grid's key order."""
    return np.array(list(itertools.product(*grid.values())), dtype=float)


def power_starts(compute: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Starts (la, b, e) for one curve: a grid of exponents and floors below the lowest loss,
    with the scale that fits the curve's mean log-excess for each pair."""
    return _scale_fitted_starts(np.log(compute / np.max(compute)), loss)


def saturating_starts(compute: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """Starts (la, b, e, ld): the power-law starts, for each of a few offsets."""
    u = compute / np.max(compute)
    return np.vstack([
        np.column_stack([_scale_fitted_starts(np.log(u + offset), loss), np.full(
            len(_EXPONENTS) * len(_FLOOR_FRACTIONS), np.log(offset))])
        for offset in _OFFSETS
    ])


def _scale_fitted_starts(log_u: np.ndarray, loss: np.ndarray) -> np.ndarray:
    b, fraction = (v.ravel() for v in np.meshgrid(_EXPONENTS, _FLOOR_FRACTIONS))
    floor = fraction * np.min(loss)
    excess = np.maximum(loss[None, :] - floor[:, None], 1e-12)
    la = np.mean(np.log(excess) + b[:, None] * log_u[None, :], axis=1)
    return np.column_stack([la, b, np.log(floor)])
