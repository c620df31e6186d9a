"""The IsoFLOP method: exact parabolas recovered, the weighted fit against numpy's polyfit, a
Chinchilla law's exponent recovered from sweeps of it, levels that give no minimum, and on
Porian et al.'s points the same answer as an independent numpy implementation."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from laws.errors import InputError
from laws.forms import ChinchillaLaw
from laws.optimal.allocate import exponents, optimal_allocation
from laws.optimal.isoflop import compute_levels, isoflop_fit, weighted_polyfit

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PORIAN = DATA / "porian_resolving_discrepancies" / "porian_isoflop_points.csv"


def _parabolas(a: float, k: float, budgets: np.ndarray, offsets: np.ndarray):
    """Points on exact parabolas of loss in log N whose minima lie on N* = k C^a."""
    log_c = np.repeat(np.log(budgets), offsets.size)
    centre = np.log(k) + a * log_c
    log_n = centre + np.tile(offsets, budgets.size)
    loss = 2.0 + 0.05 * log_c.mean() / log_c + 0.1 * (log_n - centre) ** 2
    return np.exp(log_c), np.exp(log_n), loss


def test_exact_parabolas_give_their_exponent() -> None:
    compute, n, loss = _parabolas(0.46, 0.3, np.logspace(17, 21, 5),
                                  np.array([-1.5, -0.7, 0.1, 0.4, 1.2]))  # off-centre sizes
    fit = isoflop_fit(compute, n, loss)
    assert fit.a == pytest.approx(0.46, rel=1e-9) and fit.k == pytest.approx(0.3, rel=1e-6)
    assert all(level.interior and level.points == 5 for level in fit.levels)
    for level in fit.levels:
        assert level.n_opt == pytest.approx(0.3 * level.compute ** 0.46, rel=1e-9)


def test_weighted_polyfit_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=9), rng.normal(size=9)
    weights = rng.integers(0, 4, size=(3, 9)).astype(float)
    weights[2] = [5, 0, 0, 0, 0, 0, 0, 0, 1]  # two distinct x: no parabola
    fits = weighted_polyfit(x, y, weights, 2)
    for row in range(2):
        expected = np.polyfit(x, y, 2, w=np.sqrt(weights[row]))[::-1]
        np.testing.assert_allclose(fits[row], expected, rtol=1e-9, atol=1e-12)
    assert np.all(np.isnan(fits[2]))


def test_sweeps_of_a_chinchilla_law_give_its_exponent() -> None:
    law = ChinchillaLaw(E0=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37, N=1.0)
    budgets = np.logspace(18, 22, 9)
    centre, _, _ = optimal_allocation(law, budgets)
    # Sizes spread evenly in log N around each budget's true optimum, as a sweep is planned.
    n = centre[:, None] * np.exp(np.linspace(-0.8, 0.8, 7))[None, :]
    compute = np.repeat(budgets, 7)
    loss = law.E0 + law.A / n.ravel()**law.alpha + law.B / (compute / (6 * n.ravel()))**law.beta
    fit = isoflop_fit(compute, n.ravel(), loss)
    assert fit.a == pytest.approx(exponents(law)[0], abs=2e-3)


def test_bootstrap_interval_covers_the_truth_under_noise() -> None:
    compute, n, loss = _parabolas(0.5, 0.1, np.logspace(17, 21, 6), np.linspace(-1.2, 1.2, 9))
    noisy = loss + np.random.default_rng(3).normal(0.0, 0.005, loss.size)
    fit = isoflop_fit(compute, n, noisy, resamples=400, seed=1)
    low, high = fit.interval
    assert low < 0.5 < high and high - low < 0.1
    assert fit.valid == 400 and fit.resamples == 400
    again = isoflop_fit(compute, n, noisy, resamples=400, seed=1)
    assert again.interval == fit.interval  # seeded


def test_levels_without_a_minimum_are_left_out() -> None:
    compute, n, loss = _parabolas(0.5, 0.1, np.logspace(17, 19, 3), np.linspace(-1, 1, 5))
    compute = np.append(compute, [1e20, 1e20, 3e20, 3e20, 3e20])
    n = np.append(n, [1e9, 2e9, 1e9, 2e9, 4e9])
    loss = np.append(loss, [3.0, 2.9, 3.0, 3.2, 3.0])  # 2 sizes; a parabola curved downwards
    fit = isoflop_fit(compute, n, loss)
    reasons = {level.compute: level.reason for level in fit.levels}
    assert reasons[1e20] == "fewer than 3 sizes"
    assert reasons[3e20] == "parabola not curved upwards"
    assert fit.a == pytest.approx(0.5, rel=1e-9)
    with pytest.raises(InputError, match="needs at least 2"):
        isoflop_fit(compute[-5:], n[-5:], loss[-5:])


def test_levels_group_compute_to_four_digits() -> None:
    assert compute_levels(np.array([1.00004e20, 0.99996e20, 1.0006e20])).tolist() == [
        1e20, 1e20, 1.001e20]


def _numpy_isoflop(rows: list[dict]) -> float:
    """Independent implementation: np.polyfit per level, then np.polyfit in log-log."""
    levels = defaultdict(list)
    for row in rows:
        levels[float(row["flops"])].append((np.log(float(row["N"])), float(row["loss"])))
    log_c, log_n = [], []
    for budget, points in levels.items():
        x, y = np.array(points).T
        c2, c1, _ = np.polyfit(x, y, 2)
        log_c.append(np.log(budget))
        log_n.append(-c1 / (2 * c2))
    return float(np.polyfit(log_c, log_n, 1)[0])


@pytest.mark.skipif(not PORIAN.is_file(), reason=f"needs the shared data at {PORIAN}")
def test_porian_points_match_an_independent_implementation() -> None:
    with open(PORIAN, newline="") as handle:
        rows = list(csv.DictReader(handle))
    sweeps = defaultdict(list)
    for row in rows:
        sweeps[(row["dataset"], row["hparams"], row["warmup"], row["decay"],
                row["param_count"], row["loss_split"])].append(row)
    assert len(sweeps) == 10
    for key, points in sweeps.items():
        fit = isoflop_fit(*(np.array([float(r[c]) for r in points])
                            for c in ("flops", "N", "loss")), resamples=200)
        assert fit.a == pytest.approx(_numpy_isoflop(points), rel=1e-9), key
        assert fit.interval[0] <= fit.interval[1]


def test_inside_only_leaves_out_extrapolated_minima() -> None:
    compute, n, loss = _parabolas(0.5, 0.1, np.logspace(17, 19, 3), np.linspace(-1, 1, 5))
    # A fourth level sampled only below its optimum (on N* = 0.1 C^0.6, off the others' law).
    best = np.log(0.1 * 1e20**0.6)
    offsets = np.linspace(-2.0, -1.0, 4)
    compute = np.append(compute, np.full(4, 1e20))
    n = np.append(n, np.exp(best + offsets))
    loss = np.append(loss, 2.0 + 0.1 * offsets**2)
    every = isoflop_fit(compute, n, loss)
    assert not every.levels[-1].interior
    assert every.levels[-1].n_opt == pytest.approx(0.1 * 1e20**0.6, rel=1e-9)
    assert every.a > 0.5 + 1e-3  # pulled by the extrapolated minimum
    inside = isoflop_fit(compute, n, loss, resamples=100, inside_only=True)
    assert inside.levels[-1].reason == "minimum outside the sizes measured"
    assert inside.a == pytest.approx(0.5, rel=1e-9)
    assert inside.interval == pytest.approx((0.5, 0.5), rel=1e-9)  # exact parabolas


def test_inside_only_applies_to_every_resample() -> None:
    compute, n, loss = _parabolas(0.5, 0.1, np.logspace(17, 19, 3), np.linspace(-1, 1, 8))
    # A fourth level off the others' law whose largest size sits just past its optimum: the
    # point fit keeps it, resamples without that size (a third) put the minimum outside.
    best = np.log(0.1 * 1e20**0.6)
    offsets = np.append(np.linspace(-2.0, -0.5, 7), 0.05)
    compute = np.append(compute, np.full(8, 1e20))
    n = np.append(n, np.exp(best + offsets))
    loss = np.append(loss, 2.0 + 0.1 * offsets**2)
    every = isoflop_fit(compute, n, loss, resamples=200)
    inside = isoflop_fit(compute, n, loss, resamples=200, inside_only=True)
    assert inside.a == every.a > 0.5 + 1e-3 and inside.levels[-1].interior
    # Exact parabolas: a resample is 0.5 exactly when it leaves the fourth level out.
    assert every.interval[0] > 0.5 + 1e-3
    assert inside.interval[0] == pytest.approx(0.5, rel=1e-9)
