"""Annealed (cooled-down) losses of one shape, predicted from a constant-rate run and the
cool-down branches taken off it, three ways:

* ``hot law``: the power law of the constant-rate ("hot") curve alone, read at the branch's
  end: the baseline that ignores the anneal (it predicts too high a loss);
* ``cool-down-branch law``: a power law fitted to the annealed losses themselves, against the
  compute at each branch's end; it needs branches that all cool down the same fraction of the
  run (Hägele et al. 2024; Gemstones cools down over the last 10%);
* ``schedule-aware law`` (Tissue et al. 2024, "Scaling Law with Learning Rate Annealing"):
  L = L0 + A S1^-alpha - C S2, fitted to the hot points and the annealed points together; S1 is
  the area under the learning rate (``schedule_areas``), S2 the annealing area with momentum.

Fitted on the points up to a step (``CooldownBranches.up_to``), all three see the same
budgets: the hot law the hot checkpoints, the branch law the branches leaving the run at those
checkpoints, the schedule-aware law both.

>>> steps = np.array([1000.0, 2000.0, 4000.0, 8000.0])
>>> s1, s2 = schedule_areas(steps * 1.1, cooldown_steps=steps * 0.1)
>>> truth = ScheduleAwareLaw(floor=2.0, a=20.0, alpha=0.4, c=1e-3)
>>> branches = CooldownBranches(steps, truth.loss(steps, 0.0), steps, steps * 1.1,
...                             truth.loss(s1, s2), flop_per_step=1e15)
>>> law = fit_schedule_aware_law(branches)
>>> round(law.alpha, 3), round(law.floor, 3)
(0.4, 2.0)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from laws.errors import InputError
from laws.fit.objective import EXPONENT_BOUNDS, HUBER_DELTA, Objective
from laws.fit.problem import fit_law
from laws.fit.solve import minimize_multistart, power_starts

MOMENTUM = 0.999  # Tissue et al.'s decay factor lambda of the annealing momentum, per step
COOLDOWN_SHAPES = ("linear", "cosine")
# Starting values of C S_ref over five decades: the anneal's share of the loss is unknown.
_ANNEAL_SCALES = np.logspace(-1, 4, 11)

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


def schedule_areas(steps: ArrayLike, cooldown_steps: ArrayLike = 0.0,
                   warmup_steps: float = 0.0, final_fraction: float = 0.0,
                   momentum: float = MOMENTUM, cooldown_shape: str = "linear"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """S1 and S2 after ``steps`` optimiser steps, in units of the peak learning rate: a linear
    warm-up from 0 over ``warmup_steps``, the peak rate, and over the last ``cooldown_steps``
    a decay to ``final_fraction`` of the peak (reached at the last step), ``linear`` or
    ``cosine`` (half a cosine period). A cosine schedule from the peak to the end is a cosine
    cool-down as long as the run after its warm-up.

    Sums over steps, as Tissue et al. define them: S1 = sum of eta_i; S2 = sum of m_i with
    m_i = momentum m_(i-1) + (eta_(i-1) - eta_i), counted from the end of the warm-up (whose
    rise is not an anneal). A constant rate has no annealing area:

    >>> [float(v) for v in schedule_areas(1000.0)]
    [1000.0, 0.0]
    >>> [round(float(v), 6) for v in schedule_areas(1000.0, 100.0, momentum=0.0)]  # S2: drop
    [949.5, 1.0]
    """
    steps, cooldown = np.broadcast_arrays(np.asarray(steps, dtype=float),
                                          np.asarray(cooldown_steps, dtype=float))
    if cooldown_shape not in COOLDOWN_SHAPES:
        raise InputError(f"unknown cool-down {cooldown_shape!r}; expected one of "
                         f"{', '.join(COOLDOWN_SHAPES)}")
    if not 0.0 <= momentum < 1.0:
        raise InputError(f"the annealing momentum must lie in [0, 1), got {momentum!r}")
    if not 0.0 <= final_fraction <= 1.0:
        raise InputError(f"the final learning rate is a fraction of the peak in [0, 1], "
                         f"got {final_fraction!r}")
    if np.any(cooldown < 0) or np.any(steps - cooldown < warmup_steps) or warmup_steps < 0:
        raise InputError("a schedule needs 0 <= warm-up <= steps - cool-down and a "
                         "non-negative cool-down")
    warmup_area = (warmup_steps + 1.0) / 2.0 if warmup_steps > 0 else 0.0
    drop = 1.0 - final_fraction
    cooling = cooldown > 0
    k = np.where(cooling, cooldown, 1.0)
    # Both decays are symmetric about their midpoint, so the K cool-down steps fall short of
    # the peak by the same drop * (K + 1) / 2.
    s1 = warmup_area + steps - warmup_steps - np.where(cooling, drop * (k + 1) / 2, 0.0)
    # Summing the recursion over the K steps: (1 - momentum) S2 + momentum m_K = drop, where
    # m_K is the sum of the drops, each decayed by momentum^(K - k) since its step k.
    if cooldown_shape == "linear":  # K equal drops of drop / K: a geometric series
        leftover = drop / k * momentum * (1.0 - momentum**k) / (1.0 - momentum)
    else:  # half a cosine period: a geometric series of e^(i pi k / K)
        turn = momentum * np.exp(1j * np.pi / k)
        leftover = drop / 2 * (1.0 + momentum**k) * np.real((momentum - turn) / (1.0 - turn))
    s2 = (drop - leftover) / (1.0 - momentum)
    return s1, np.where(cooling, s2, 0.0)


@dataclass(frozen=True)
class ScheduleAwareLaw:
    """loss = floor + a S1^-alpha - c S2 (Tissue et al. 2024): S1, S2 from ``schedule_areas``.

    >>> ScheduleAwareLaw(floor=2.0, a=10.0, alpha=0.5, c=0.01).loss(100.0, 10.0)
    2.9
    """

    floor: float
    a: float
    alpha: float
    c: float

    def loss(self, s1: ArrayLike, s2: ArrayLike) -> np.ndarray | float:
        values = (self.floor + self.a * np.asarray(s1, dtype=float) ** -self.alpha
                  - self.c * np.asarray(s2, dtype=float))
        return float(values) if values.ndim == 0 else values


class _ScheduleModel:
    """log(e^e + e^la u^-alpha - e^lc v), u = S1 / S_ref, v = S2 / S_ref, for ``Objective``.

    Not a ``laws.fit.objective.Model``: those are log-sum-exps of positive terms, and the
    anneal is subtracted. It provides what ``Objective`` and ``minimize_multistart`` call; a
    parameter set that predicts a non-positive loss has log-loss NaN, which they score +inf.
    Parameters in the order (la, alpha, e, lc), so that power-law starts fill the first three.
    """

    n_params = 4

    def __init__(self, s1: np.ndarray, s2: np.ndarray, reference: float) -> None:
        self.log_u = np.log(s1 / reference)
        self.v = s2 / reference

    def _parts(self, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        la, alpha, e, lc = (theta[..., i, :] for i in range(4))
        power = np.exp(la - alpha * self.log_u)
        anneal = np.exp(lc) * self.v
        floor = np.broadcast_to(np.exp(e), power.shape)
        return floor + power - anneal, power, anneal, floor

    def log_loss(self, theta: np.ndarray) -> np.ndarray:
        """(k, 4, m) -> (k, n)."""
        with np.errstate(invalid="ignore"):
            return np.log(self._parts(theta)[0])

    def log_loss_and_jacobian(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        loss, power, anneal, floor = self._parts(theta)
        with np.errstate(invalid="ignore"):
            jacobian = np.stack([power, -self.log_u * power, floor, -anneal], axis=1)
            return np.log(loss), jacobian / loss[:, None]

    def bounds(self) -> list[tuple[float | None, float | None]]:
        return [(None, None), EXPONENT_BOUNDS, (None, None), (None, None)]


@dataclass(frozen=True)
class CooldownBranches:
    """One shape's constant-rate checkpoints and the cool-downs branched off them, in optimiser
    steps; each branch leaves the run at ``branch_steps`` and ends, annealed, at ``end_steps``
    (its cool-down lasts the difference). ``flop_per_step`` converts steps to the compute of
    the power laws; the schedule is ``schedule_areas``'s, with the warm-up, final fraction,
    momentum and cool-down shape given here."""

    hot_steps: np.ndarray
    hot_loss: np.ndarray
    branch_steps: np.ndarray
    end_steps: np.ndarray
    annealed_loss: np.ndarray
    flop_per_step: float
    warmup_steps: float = 0.0
    final_fraction: float = 0.0
    momentum: float = MOMENTUM
    cooldown_shape: str = "linear"

    def up_to(self, step: float) -> CooldownBranches:
        """The hot checkpoints at or before ``step`` and the branches that leave there."""
        hot = self.hot_steps <= step
        branch = self.branch_steps <= step
        return replace(self, hot_steps=self.hot_steps[hot], hot_loss=self.hot_loss[hot],
                       branch_steps=self.branch_steps[branch],
                       end_steps=self.end_steps[branch],
                       annealed_loss=self.annealed_loss[branch])

    def after(self, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(branch steps, end steps, annealed losses) of the branches leaving after ``step``."""
        later = self.branch_steps > step
        return self.branch_steps[later], self.end_steps[later], self.annealed_loss[later]

    def areas(self, branch_steps: np.ndarray, end_steps: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """S1 and S2 at the ends of branches (a branch at its own start: the hot point)."""
        return schedule_areas(end_steps, end_steps - branch_steps, self.warmup_steps,
                              self.final_fraction, self.momentum, self.cooldown_shape)


def fit_schedule_aware_law(branches: CooldownBranches,
                           delta: float = HUBER_DELTA) -> ScheduleAwareLaw:
    """The schedule-aware law of the hot points and the annealed points together, by the
    project's objective (Huber on log-loss) and multi-start L-BFGS-B.

    Raises ``InputError`` without a cool-down branch (nothing pins C) or with fewer than 5
    points for its 4 parameters.
    """
    if branches.end_steps.size == 0:
        raise InputError("the schedule-aware law needs at least one cool-down branch")
    points = branches.hot_steps.size + branches.end_steps.size
    if points < 5:
        raise InputError(f"{points} points; the schedule-aware law needs at least 5")
    hot_s1, hot_s2 = branches.areas(branches.hot_steps, branches.hot_steps)
    cool_s1, cool_s2 = branches.areas(branches.branch_steps, branches.end_steps)
    s1, s2 = np.concatenate([hot_s1, cool_s1]), np.concatenate([hot_s2, cool_s2])
    loss = np.concatenate([branches.hot_loss, branches.annealed_loss])
    reference = float(np.max(s1))
    model = _ScheduleModel(s1, s2, reference)
    objective = Objective(model, np.log(loss), delta=delta)  # type: ignore[arg-type]
    power = power_starts(s1, loss)
    starts = np.column_stack([np.repeat(power, _ANNEAL_SCALES.size, axis=0),
                              np.tile(np.log(_ANNEAL_SCALES), len(power))])
    (la, alpha, e, lc), _ = minimize_multistart(objective, starts)
    return ScheduleAwareLaw(floor=float(np.exp(e)), a=float(np.exp(la) * reference**alpha),
                            alpha=float(alpha), c=float(np.exp(lc) / reference))


def _power_predictor(steps: np.ndarray, loss: np.ndarray, flop_per_step: float) -> Predictor:
    law = fit_law(steps * flop_per_step, loss, "power")
    return lambda branch_steps, end_steps: np.asarray(law.loss(end_steps * flop_per_step))


def fit_hot_law(branches: CooldownBranches) -> Predictor:
    """The baseline: the hot curve's power law, read at each branch's end compute."""
    return _power_predictor(branches.hot_steps, branches.hot_loss, branches.flop_per_step)


def fit_branch_law(branches: CooldownBranches) -> Predictor:
    """A power law of the annealed losses against their compute (same cool-down fraction)."""
    return _power_predictor(branches.end_steps, branches.annealed_loss, branches.flop_per_step)


def fit_schedule_aware(branches: CooldownBranches) -> Predictor:
    """The schedule-aware law as a predictor of branches' annealed losses."""
    law = fit_schedule_aware_law(branches)
    return lambda branch_steps, end_steps: np.asarray(
        law.loss(*branches.areas(branch_steps, end_steps)))


ANNEAL_METHODS: dict[str, Callable[[CooldownBranches], Predictor]] = {
    "hot law": fit_hot_law,
    "cool-down-branch law": fit_branch_law,
    "schedule-aware law": fit_schedule_aware,
}


def held_out_log_rmse(branches: CooldownBranches, method: str, fit_up_to: float) -> float:
    """RMSE of log-loss on the annealed losses of branches leaving after step ``fit_up_to``,
    by ``method`` (a key of ``ANNEAL_METHODS``) fitted on ``branches.up_to(fit_up_to)``."""
    if method not in ANNEAL_METHODS:
        raise InputError(f"unknown method {method!r}; expected one of "
                         f"{', '.join(ANNEAL_METHODS)}")
    branch_steps, end_steps, measured = branches.after(fit_up_to)
    if measured.size == 0:
        raise InputError(f"no cool-down branch leaves after step {fit_up_to:g} to hold out")
    predicted = ANNEAL_METHODS[method](branches.up_to(fit_up_to))(branch_steps, end_steps)
    return float(np.sqrt(np.mean((np.log(predicted) - np.log(measured)) ** 2)))


def held_out_errors(branches: Mapping[str, CooldownBranches], fit_up_to: float
                    ) -> dict[str, np.ndarray]:
    """Per method of ``ANNEAL_METHODS``, each run's ``held_out_log_rmse`` at step
    ``fit_up_to`` (runs in ``branches``' order): what a comparison over runs or shapes
    averages."""
    return {method: np.array([held_out_log_rmse(run, method, fit_up_to)
                              for run in branches.values()])
            for method in ANNEAL_METHODS}
