"""Compute-optimal allocation, prediction and the alpha = beta constraint, each checked
against an independent computation: scipy's scalar minimiser over log N at a fixed budget,
finite differences of its answers, losses written out by hand, and the untied fit."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from laws.errors import InputError
from laws.fit import fit_curves
from laws.forms import ChinchillaLaw, PowerLaw
from laws.io.curves import ColumnMap, Curve, Curves, LogBins, load_curves
from laws.lawset import LawSet, Measured, Shape
from laws.optimal.allocate import allocate, chinchilla_laws
from laws.optimal.predict import predict

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
EPOCH = DATA / "chinchilla_epoch" / "svg_extracted_data.csv"
CHINCHILLA_BUDGET = 5.76e23  # Chinchilla's own training compute (Hoffmann et al. 2022)


def _brute_force_optimum(p: dict, budget: float) -> tuple[float, float, float]:
    """N, D and loss minimising E0 + A/N^alpha + B/D^beta with D = C / (6 N), by scipy's
    bounded scalar minimiser over log N (no closed form involved)."""
    def loss(log_n: float) -> float:
        n = np.exp(log_n)
        return p["E0"] + p["A"] / n ** p["alpha"] + p["B"] / (budget / (6 * n)) ** p["beta"]

    log_c = np.log(budget / 6)
    found = minimize_scalar(loss, bounds=(0.05 * log_c, 0.95 * log_c), method="bounded",
                            options={"xatol": 1e-10})
    n = float(np.exp(found.x))
    return n, budget / (6 * n), float(found.fun)


def _brute_force_exponent(p: dict, budget: float, of: int = 0) -> float:
    """d log N_opt / d log C (``of`` 1: D_opt) by a central finite difference of brute-force
    optima."""
    step = 0.5
    low = _brute_force_optimum(p, budget * np.exp(-step))[of]
    high = _brute_force_optimum(p, budget * np.exp(step))[of]
    return float(np.log(high / low) / (2 * step))


def _params(law: ChinchillaLaw) -> dict:
    return {k: getattr(law, k) for k in ("E0", "A", "B", "alpha", "beta")}


@pytest.fixture(scope="module")
def epoch_fit():
    if not EPOCH.is_file():
        pytest.skip(f"needs the shared data at {EPOCH}")
    # The README's Chinchilla example: grouped model sizes, 5 highest losses dropped.
    columns = ColumnMap(shape=("Model Size",), loss="loss", compute="Training FLOP",
                        params="Model Size", bins=(LogBins("Model Size", 4),))
    return fit_curves(load_curves(EPOCH, columns), form="chinchilla", drop_highest=5,
                      bootstrap=20)


def test_epoch_allocation_matches_brute_force_within_half_a_percent(epoch_fit) -> None:
    result = allocate(epoch_fit.laws, [CHINCHILLA_BUDGET])
    n, d, loss = _brute_force_optimum(epoch_fit.shared, CHINCHILLA_BUDGET)
    assert result.n_opt[0] == pytest.approx(n, rel=0.005)
    assert result.d_opt[0] == pytest.approx(d, rel=0.005)
    assert result.loss[0] == pytest.approx(loss, rel=1e-6)
    # The exponent, against the finite difference of brute-force optima, and its interval.
    assert result.a == pytest.approx(_brute_force_exponent(epoch_fit.shared, 1e22), abs=1e-4)
    assert result.b == pytest.approx(_brute_force_exponent(epoch_fit.shared, 1e22, of=1),
                                     abs=1e-4)
    for name in ("a", "b"):
        low, high = result.intervals[name]
        assert low < getattr(result, name) < high
    assert result.samples == 20


def test_interval_is_the_percentiles_of_the_samples_own_optima(epoch_fit) -> None:
    budget = 1e22
    result = allocate(epoch_fit.laws, [budget], level=0.9)
    samples = epoch_fit.laws.shapes[0].samples
    exponents = [_brute_force_exponent(_params(s), budget) for s in samples]
    sizes = [_brute_force_optimum(_params(s), budget)[0] for s in samples]
    expected_a = np.quantile(exponents, [0.05, 0.95], method="inverted_cdf")
    expected_n = np.quantile(sizes, [0.05, 0.95], method="inverted_cdf")
    np.testing.assert_allclose(result.intervals["a"], expected_a, atol=1e-4)
    np.testing.assert_allclose(result.intervals["n"][0], expected_n, rtol=1e-3)


@settings(max_examples=25, deadline=None)
@given(alpha=st.floats(0.1, 0.8), beta=st.floats(0.1, 0.8), log_a=st.floats(3.0, 8.0),
       log_b=st.floats(3.0, 9.0), budget=st.floats(1e18, 1e25))
def test_closed_form_matches_brute_force_for_any_law(alpha, beta, log_a, log_b,
                                                     budget) -> None:
    p = {"E0": 1.7, "A": float(np.exp(log_a)), "B": float(np.exp(log_b)), "alpha": alpha,
         "beta": beta}
    result = allocate(LawSet("c", (Shape("n", {}, ChinchillaLaw(**p, N=1e9)),)), [budget])
    n, d, loss = _brute_force_optimum(p, budget)
    log_c = np.log(budget / 6)
    assume(0.06 * log_c < np.log(n) < 0.94 * log_c)  # inside the brute force's bracket
    assert result.n_opt[0] == pytest.approx(n, rel=1e-4)
    assert result.d_opt[0] == pytest.approx(d, rel=1e-4)
    assert result.loss[0] == pytest.approx(loss, rel=1e-9)


def test_allocation_is_a_minimum_on_the_budget() -> None:
    law = ChinchillaLaw(E0=1.7, A=400.0, B=1200.0, alpha=0.3, beta=0.4, N=1e9)
    laws = LawSet("c", (Shape("n", {}, law),))
    budgets = np.array([1e19, 1e21, 1e23])
    result = allocate(laws, budgets)
    np.testing.assert_allclose(6 * result.n_opt * result.d_opt, budgets, rtol=1e-12)
    for c, n, loss in zip(budgets, result.n_opt, result.loss, strict=True):
        sizes = n * np.exp(np.linspace(-0.3, 0.3, 61))  # the optimum sits in the middle
        brute = law.E0 + law.A / sizes**law.alpha + law.B / (c / (6 * sizes))**law.beta
        assert np.argmin(brute) == 30 and loss == pytest.approx(brute.min(), rel=1e-12)
    assert result.intervals == {} and result.to_dict()["a_interval"] is None


def test_allocation_refuses_other_forms_and_mixed_laws() -> None:
    with pytest.raises(InputError, match="needs the chinchilla form"):
        allocate(LawSet("p", (Shape("s", {}, PowerLaw(a=1.0, b=0.3, c=1.0)),)), [1e20])
    one = ChinchillaLaw(E0=1.7, A=400.0, B=1200.0, alpha=0.3, beta=0.4, N=1e9)
    other = dataclasses.replace(one, N=2e9, beta=0.41)
    with pytest.raises(InputError, match="differ in beta"):
        chinchilla_laws(LawSet("c", (Shape("a", {}, one), Shape("b", {}, other))))
    with pytest.raises(InputError, match="positive finite"):
        allocate(LawSet("c", (Shape("a", {}, one),)), [-1.0])


def test_predict_by_hand_with_sample_percentiles_and_extrapolation() -> None:
    samples = tuple(PowerLaw(a=10.0 * f, b=0.5, c=1.0) for f in np.linspace(0.8, 1.2, 21))
    shape = Shape("s", {}, PowerLaw(a=10.0, b=0.5, c=1.0), samples=samples,
                  measured=Measured(3.0, (10.0, 1000.0), 5))
    rows = predict(LawSet("toy", (shape,)), [100.0, 1e4], level=0.9)
    assert [r.loss for r in rows] == pytest.approx([1 + 10 / 10, 1 + 10 / 100])
    # 21 evenly spread scales: the 5th and 95th percentiles are the 2nd and 20th values.
    assert rows[0].interval == pytest.approx((1 + 0.82, 1 + 1.18))
    assert rows[1].interval == pytest.approx((1 + 0.082, 1 + 0.118))
    assert [r.extrapolated for r in rows] == [False, True]


def test_predict_chinchilla_at_any_size() -> None:
    law = ChinchillaLaw(E0=1.7, A=400.0, B=1200.0, alpha=0.3, beta=0.4, N=1e9)
    laws = LawSet("c", (Shape("n1e9", {}, law), Shape("n4e9", {}, dataclasses.replace(
        law, N=4e9))))
    (row,) = predict(laws, [1e22], n_params=(7e10,))
    d = 1e22 / (6 * 7e10)
    assert row.loss == pytest.approx(1.7 + 400.0 / 7e10**0.3 + 1200.0 / d**0.4, rel=1e-12)
    assert row.shape is None and row.interval is None
    assert [r.shape for r in predict(laws, [1e20])] == ["n1e9", "n4e9"]
    with pytest.raises(InputError, match="unknown shape"):
        predict(laws, [1e20], shapes=("n2e9",))
    with pytest.raises(InputError, match="chinchilla form"):
        predict(LawSet("p", (Shape("s", {}, PowerLaw(a=1.0, b=0.3, c=1.0)),)), [1e20],
                n_params=(1e9,))


# The alpha = beta constraint (Gadre et al. 2024's form) in the joint chinchilla fit.

TIED = {"E0": 1.8, "A": 400.0, "B": 1500.0, "alpha": 0.33, "beta": 0.33}


def _chinchilla_curves(truth: dict, noise: float = 0.0) -> Curves:
    rng = np.random.default_rng(1)
    compute = np.logspace(18, 22, 12)
    curves = []
    for i, n in enumerate((5e7, 2e8, 1e9, 4e9)):
        loss = ChinchillaLaw(**truth, N=n).loss(compute)
        loss = loss * np.exp(rng.normal(0.0, noise, compute.size))
        curves.append(Curve(f"n{i}", {}, compute, loss, tuple(range(compute.size)),
                            np.full(compute.size, n)))
    return Curves("synthetic.csv", tuple(curves))


def test_tied_fit_recovers_a_law_with_alpha_equal_beta() -> None:
    result = fit_curves(_chinchilla_curves(TIED), form="chinchilla", share=("alpha=beta",),
                        bootstrap=5)
    for key, value in TIED.items():
        assert result.shared[key] == pytest.approx(value, rel=1e-3), key
    for sample in result.laws.shapes[0].samples:
        assert sample.alpha == sample.beta


def test_a_constraint_cannot_fit_better() -> None:
    # Data from a law with alpha != beta, with noise: the tied fit is strictly worse.
    curves = _chinchilla_curves({**TIED, "beta": 0.28}, noise=0.003)
    tied = fit_curves(curves, form="chinchilla", share=("alpha=beta",))
    free = fit_curves(curves, form="chinchilla")
    assert tied.shared["alpha"] == tied.shared["beta"]
    assert tied.objective >= free.objective
    # With alpha = beta allowed either way, the same data tied to its own truth fits alike.
    exact = _chinchilla_curves(TIED)
    assert fit_curves(exact, form="chinchilla").objective == pytest.approx(
        fit_curves(exact, form="chinchilla", share=("alpha=beta",)).objective, abs=1e-12)


def test_ties_belong_to_the_chinchilla_form() -> None:
    compute = np.logspace(18, 21, 8)
    curve = Curve("s", {}, compute, 2.0 + 5e5 * compute**-0.3, tuple(range(8)))
    with pytest.raises(InputError, match="use --form chinchilla"):
        fit_curves(Curves("x.csv", (curve,)), share=("alpha=beta",))
    with pytest.raises(InputError, match="shares all its parameters"):
        fit_curves(_chinchilla_curves(TIED), form="chinchilla", share=("floor",))
    with pytest.raises(InputError, match="cannot share"):
        fit_curves(_chinchilla_curves(TIED), form="chinchilla", share=("A=B",))
