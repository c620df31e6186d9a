"""Annealed losses (issue 28, laws side): the schedule areas S1 and S2 against sums and
integrals computed here, the schedule-aware law recovering known parameters, the held-out
score, and bench/bench_anneal.py's methods on Gemstones' real hot and cool_end files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from laws.errors import InputError
from laws.fit import (
    ANNEAL_METHODS,
    CooldownBranches,
    ScheduleAwareLaw,
    fit_law,
    fit_schedule_aware_law,
    held_out_log_rmse,
    schedule_areas,
)
from tests.components import require

GEMSTONE_STEPS = 2385.0 * np.arange(1, 11)  # a hot checkpoint every 10B tokens


def _per_step_areas(steps: int, cooldown: int, warmup: int, final: float, momentum: float,
                    shape: str) -> tuple[float, float]:
    """S1 and S2 by walking the schedule one step at a time, as Tissue et al. define them."""
    stable_end = steps - cooldown
    s1 = s2 = m = 0.0
    previous = 1.0  # eta_0: the peak, where the warm-up ends (or the run starts without one)
    for i in range(1, steps + 1):
        if i <= warmup:
            eta = i / warmup
        elif i <= stable_end:
            eta = 1.0
        elif shape == "linear":
            eta = 1.0 - (1.0 - final) * (i - stable_end) / cooldown
        else:
            phase = math.pi * (i - stable_end) / cooldown
            eta = final + (1.0 - final) * (1.0 + math.cos(phase)) / 2
        s1 += eta
        if i > warmup:  # the momentum starts at the peak, after the warm-up's rise
            m = momentum * m + (previous - eta)
            s2 += m
        previous = eta
    return s1, s2


def test_areas_by_hand() -> None:
    # Constant after no warm-up: S1 is the step count, nothing anneals.
    assert [float(v) for v in schedule_areas(1234.0)] == [1234.0, 0.0]
    # 10 steps, the last 4 decaying to 0: rates 1 x6, 0.75, 0.5, 0.25, 0 -> S1 = 7.5. With
    # momentum 0.5 the drops of 0.25 accumulate to m = 0.25, 0.375, 0.4375, 0.46875.
    s1, s2 = schedule_areas(10.0, 4.0, momentum=0.5)
    assert float(s1) == pytest.approx(7.5, rel=1e-12)
    assert float(s2) == pytest.approx(0.25 + 0.375 + 0.4375 + 0.46875, rel=1e-12)
    # Without momentum S2 is the total drop, 1 - final fraction; a 4-step warm-up adds
    # 0.25 + 0.5 + 0.75 + 1 = 2.5 where the constant run had 4.
    s1, s2 = schedule_areas(10.0, 4.0, warmup_steps=4.0, final_fraction=0.2, momentum=0.0)
    assert float(s2) == pytest.approx(0.8, rel=1e-12)
    assert float(s1) == pytest.approx(2.5 + 2 + (0.8 + 0.6 + 0.4 + 0.2), rel=1e-12)
    # A cosine over the last 2 of 10 steps: rates 1 x8, (1 + cos(pi / 2)) / 2 = 0.5, then 0;
    # two drops of 0.5, so with momentum 0.5, m = 0.5, then 0.25 + 0.5.
    s1, s2 = schedule_areas(10.0, 2.0, momentum=0.5, cooldown_shape="cosine")
    assert float(s1) == pytest.approx(8.5, rel=1e-12)
    assert float(s2) == pytest.approx(0.5 + 0.75, rel=1e-12)


@pytest.mark.parametrize("shape", ["linear", "cosine"])
@pytest.mark.parametrize(("steps", "cooldown", "warmup", "final", "momentum"), [
    (50, 0, 0, 0.0, 0.999),
    (50, 5, 0, 0.0, 0.9),
    (50, 1, 0, 0.3, 0.9),
    (300, 120, 30, 0.1, 0.99),
    (300, 7, 10, 0.0, 0.0),
    (2623, 238, 0, 0.0, 0.999),
    (1000, 1000, 0, 0.0, 0.999),
])
def test_areas_match_the_per_step_sums(steps, cooldown, warmup, final, momentum,
                                       shape) -> None:
    s1, s2 = schedule_areas(float(steps), float(cooldown), float(warmup), final, momentum,
                            shape)
    expected = _per_step_areas(steps, cooldown, warmup, final, momentum, shape)
    np.testing.assert_allclose([float(s1), float(s2)], expected, rtol=1e-10, atol=1e-12)


def test_areas_match_integrals_on_a_fine_grid() -> None:
    """The continuous schedule (rate and momentum as functions of time) integrated by the
    trapezoid rule: S1 within a step of the sum; S2 within 0.2% (the sum's momentum builds
    up in whole steps, about (1 - lambda) / 2 relatively behind the continuous one)."""
    steps, cooldown, warmup, final, momentum = 20000, 2000, 500, 0.1, 0.999
    t = np.linspace(0.0, steps, 4_000_001)
    rate = np.where(t < warmup, t / warmup, np.where(
        t < steps - cooldown, 1.0, 1.0 - (1.0 - final) * (t - steps + cooldown) / cooldown))
    kappa = -np.log(momentum)
    tau = np.linspace(0.0, cooldown, 400_001)
    drift = (1.0 - final) / cooldown * (1.0 - np.exp(-kappa * tau)) / kappa  # dm = drop - k m
    s1, s2 = schedule_areas(float(steps), float(cooldown), float(warmup), final, momentum)
    assert float(s1) == pytest.approx(np.trapezoid(rate, t), abs=1.0)
    assert float(s2) == pytest.approx(np.trapezoid(drift, tau), rel=2e-3)


def test_cosine_areas_match_an_ode_solution() -> None:
    """A full cosine schedule after a warm-up, its continuous S1, m and S2 integrated as
    d(S1, m, S2)/dt = (eta, -kappa m - deta/dt, m) by an ODE solver (kappa = -log lambda),
    within the same tolerances as the trapezoid test above."""
    steps, warmup, final, momentum = 12000, 400, 0.05, 0.999
    cooldown = steps - warmup
    kappa, omega = -np.log(momentum), np.pi / cooldown

    def rates(t, state):
        eta = final + (1.0 - final) * (1.0 + np.cos(omega * t)) / 2
        falling = (1.0 - final) * omega * np.sin(omega * t) / 2
        return [eta, falling - kappa * state[1], state[1]]

    solution = solve_ivp(rates, (0.0, cooldown), [0.0, 0.0, 0.0], rtol=1e-10, atol=1e-10)
    s1_cooldown, _, s2 = solution.y[:, -1]
    s1, expected_s2 = schedule_areas(float(steps), float(cooldown), float(warmup), final,
                                     momentum, "cosine")
    assert float(s1) == pytest.approx(warmup / 2 + s1_cooldown, abs=1.0)
    assert float(expected_s2) == pytest.approx(s2, rel=2e-3)


@pytest.mark.parametrize("bad", [
    {"momentum": 1.0}, {"momentum": -0.1}, {"final_fraction": 1.5},
    {"warmup_steps": 95.0}, {"cooldown_steps": -1.0}, {"cooldown_shape": "step"},
])
def test_impossible_schedules_are_input_errors(bad) -> None:
    arguments = {"steps": 100.0, "cooldown_steps": 10.0} | bad
    with pytest.raises(InputError):
        schedule_areas(**arguments)


def _synthetic(truth: ScheduleAwareLaw, momentum: float = 0.999,
               noise: float = 0.0) -> CooldownBranches:
    """Gemstones-shaped branches (10% linear cool-downs to 0) whose losses follow ``truth``."""
    ends = GEMSTONE_STEPS * 1.1
    s1, s2 = schedule_areas(ends, ends - GEMSTONE_STEPS, momentum=momentum)
    hot = np.asarray(truth.loss(GEMSTONE_STEPS, 0.0))
    annealed = np.asarray(truth.loss(s1, s2))
    wobble = np.exp(noise * np.random.default_rng(3).standard_normal((2, hot.size)))
    return CooldownBranches(GEMSTONE_STEPS, hot * wobble[0], GEMSTONE_STEPS, ends,
                            annealed * wobble[1], flop_per_step=2.6e16, momentum=momentum)


@pytest.mark.parametrize(("truth", "momentum"), [
    (ScheduleAwareLaw(floor=2.1, a=40.0, alpha=0.45, c=1.5e-4), 0.999),
    (ScheduleAwareLaw(floor=1.6, a=9.0, alpha=0.25, c=4e-3), 0.99),
])
def test_schedule_aware_fit_recovers_its_parameters(truth, momentum) -> None:
    law = fit_schedule_aware_law(_synthetic(truth, momentum))
    for name in ("floor", "a", "alpha", "c"):
        assert getattr(law, name) == pytest.approx(getattr(truth, name), rel=1e-3), name


def test_schedule_aware_law_predicts_later_branches_of_its_own_form() -> None:
    """Fitted on the first 6 budgets of curves from the formula, it predicts the 4 later
    annealed losses exactly; the hot law, blind to the anneal, is off by about the anneal's
    gain (c S2 relative to the loss)."""
    truth = ScheduleAwareLaw(floor=2.1, a=40.0, alpha=0.45, c=1.5e-4)
    branches = _synthetic(truth)
    cut = GEMSTONE_STEPS[5]
    assert held_out_log_rmse(branches, "schedule-aware law", cut) < 1e-6
    _, ends, annealed = branches.after(cut)
    gain = np.log(annealed + truth.c * schedule_areas(ends, ends / 11)[1]) - np.log(annealed)
    hot_error = held_out_log_rmse(branches, "hot law", cut)
    assert hot_error == pytest.approx(np.sqrt(np.mean(gain**2)), rel=0.2)


def test_branch_law_predicts_annealed_losses_on_a_power_law_in_their_compute() -> None:
    """Annealed losses 1.9 + 300 C^-0.1 at each branch's end compute, hot losses 0.1 higher
    (a branch law needs no hot point): the branch law fitted on 6 budgets predicts the other 4
    exactly; the hot law's error is the log of (loss + 0.1) / loss there, by hand."""
    flop_per_step = 2.6e16
    ends = GEMSTONE_STEPS * 1.1
    annealed = 1.9 + 300.0 * (ends * flop_per_step) ** -0.1
    hot = 2.0 + 300.0 * (GEMSTONE_STEPS * flop_per_step) ** -0.1
    branches = CooldownBranches(GEMSTONE_STEPS, hot, GEMSTONE_STEPS, ends, annealed,
                                flop_per_step)
    cut = GEMSTONE_STEPS[5]
    assert held_out_log_rmse(branches, "cool-down-branch law", cut) < 1e-6
    by_hand = np.log((annealed[6:] + 0.1) / annealed[6:])
    assert held_out_log_rmse(branches, "hot law", cut) == pytest.approx(
        np.sqrt(np.mean(by_hand**2)), rel=1e-4)


def test_held_out_score_needs_a_method_and_points_to_hold_out() -> None:
    branches = _synthetic(ScheduleAwareLaw(floor=2.1, a=40.0, alpha=0.45, c=1.5e-4))
    with pytest.raises(InputError, match="unknown method"):
        held_out_log_rmse(branches, "cosine law", GEMSTONE_STEPS[5])
    with pytest.raises(InputError, match="no cool-down branch"):
        held_out_log_rmse(branches, "hot law", GEMSTONE_STEPS[-1])
    with pytest.raises(InputError, match="at least one cool-down branch"):
        fit_schedule_aware_law(branches.up_to(GEMSTONE_STEPS[0] - 1))


@pytest.fixture(scope="module")
def gemstones():
    from bench.bench_anneal import HOT, gemstones_branches

    if not HOT.is_file():
        require("the Gemstones data", f"{HOT} is absent (../shared/data beside the checkout)")
    return gemstones_branches()


def test_gemstones_branches_are_ten_percent_cool_downs_of_the_hot_run(gemstones) -> None:
    assert len(gemstones) == 20  # two hot shapes have no cool-downs
    for name, shape in gemstones.items():
        assert shape.hot_steps.size == 10, name
        assert shape.end_steps.size in (9, 10), name
        assert np.all(np.isin(shape.branch_steps, shape.hot_steps)), name
        np.testing.assert_allclose(shape.end_steps / shape.branch_steps, 1.1, atol=0.002)
        # Annealing lowers the loss at every budget (10% more steps at a lower rate).
        hot_at_branch = shape.hot_loss[np.searchsorted(shape.hot_steps, shape.branch_steps)]
        assert np.all(shape.annealed_loss < hot_at_branch), name


def test_gemstones_held_out_annealed_losses(gemstones) -> None:
    from bench.bench_anneal import TOKENS_PER_STEP, held_out_errors

    cut = 6.5e10  # budgets 10B-60B fitted, the branches from 70B on held out
    errors = held_out_errors(gemstones, cut)
    assert set(errors) == set(ANNEAL_METHODS)
    # The hot law, recomputed here from the hot points alone, for the first shape.
    shape = next(iter(gemstones.values()))
    fitted = shape.hot_steps <= cut / TOKENS_PER_STEP
    law = fit_law(shape.hot_steps[fitted] * shape.flop_per_step, shape.hot_loss[fitted])
    _, ends, annealed = shape.after(cut / TOKENS_PER_STEP)
    own = np.sqrt(np.mean(np.log(law.loss(ends * shape.flop_per_step) / annealed) ** 2))
    assert errors["hot law"][0] == pytest.approx(own, rel=1e-6)
    # Both anneal-aware laws beat the baseline on every shape, by a factor of 3 on average.
    for method in ("cool-down-branch law", "schedule-aware law"):
        assert np.all(errors[method] < errors["hot law"]), method
        assert np.mean(errors[method]) < np.mean(errors["hot law"]) / 3, method
