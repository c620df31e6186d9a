"""Law forms: the inverse undoes the law, the derivative matches finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from laws.forms import ChinchillaLaw, PowerLaw, SaturatingLaw, TableLaw, make_law

exponent = st.floats(0.05, 1.5)
log_compute = st.floats(12.0, 26.0)


@st.composite
def power_laws(draw):
    return PowerLaw(a=10 ** draw(st.floats(-2, 12)), b=draw(exponent), c=draw(st.floats(0, 5)))


@st.composite
def saturating_laws(draw):
    return SaturatingLaw(a=10 ** draw(st.floats(-2, 12)), b=draw(exponent),
                         c=draw(st.floats(0, 5)), d=10 ** draw(st.floats(10, 22)))


@st.composite
def chinchilla_laws(draw):
    return ChinchillaLaw(E0=draw(st.floats(0.5, 3)), A=10 ** draw(st.floats(0, 4)),
                         B=10 ** draw(st.floats(0, 5)), alpha=draw(exponent),
                         beta=draw(exponent), N=10 ** draw(st.floats(6, 11)))


@st.composite
def table_laws(draw):
    """A measured-looking curve: a power law sampled at log-spaced points, slightly jittered
    (at most 2%, less than the law's own drop between points, so the table stays monotone)."""
    n = draw(st.integers(2, 8))
    steps = draw(st.lists(st.floats(0.2, 1.0), min_size=n, max_size=n))
    compute = 10 ** (15 + np.cumsum(steps))
    floor, b = draw(st.floats(0, 2)), draw(st.floats(0.1, 1.0))
    jitter = np.array(draw(st.lists(st.floats(0.98, 1.02), min_size=n, max_size=n)))
    loss = floor + draw(st.floats(0.5, 3.0)) * (compute / compute[0]) ** -b * jitter
    assume(np.all(np.diff(loss) < 0))
    return TableLaw(tuple(compute), tuple(loss), floor)


any_law = st.one_of(power_laws(), saturating_laws(), chinchilla_laws(), table_laws())


def _excess_is_resolvable(law, compute: float) -> bool:
    """The inverse is well conditioned only where the loss sits measurably above the floor
    and, for the saturating form, where C is not lost in rounding against its offset d."""
    loss = float(law.loss(compute))
    if isinstance(law, SaturatingLaw) and compute < 1e-3 * law.d:
        return False
    return loss - law.floor > 1e-7 * max(1.0, abs(law.floor))


@settings(max_examples=300, deadline=None)
@given(any_law, log_compute)
def test_compute_inverts_loss(law, log_c) -> None:
    compute = 10**log_c
    assume(_excess_is_resolvable(law, compute))
    assert float(law.compute(law.loss(compute))) == pytest.approx(compute, rel=1e-6)


@settings(max_examples=300, deadline=None)
@given(any_law, log_compute)
def test_dcompute_matches_central_differences(law, log_c) -> None:
    compute = 10**log_c
    assume(_excess_is_resolvable(law, compute))
    loss = float(law.loss(compute))
    h = 1e-5 * (loss - law.floor)
    if isinstance(law, TableLaw):  # stay inside one segment: the table's slope jumps at knots
        knots = np.asarray(law.loss_points)
        assume(np.all(np.abs(knots - loss) > 10 * h))
    if isinstance(law, SaturatingLaw):  # stay where the law has started (C > 0 both sides)
        assume(float(law.compute(loss + h)) > 0)
    numeric = (float(law.compute(loss + h)) - float(law.compute(loss - h))) / (2 * h)
    analytic = float(law.dcompute(loss))
    assert analytic < 0
    assert analytic == pytest.approx(numeric, rel=1e-4)


@given(any_law)
def test_compute_is_infinite_at_and_below_the_floor(law) -> None:
    assert math.isinf(law.compute(law.floor))
    assert math.isinf(law.compute(law.floor - 0.1))


@given(any_law)
def test_vectorised_over_arrays(law) -> None:
    compute = np.logspace(15, 24, 7)
    losses = law.loss(compute)
    assert losses.shape == compute.shape
    assert np.all(np.diff(losses) <= 0)  # decreasing (ties only where floats cannot tell)
    assert law.compute(losses).shape == compute.shape
    assert law.dcompute(losses).shape == compute.shape


def test_closed_forms() -> None:
    # loss = 1 + 10 C^-0.5: at C = 100, loss = 2; dC/dE = -2 C / (E - c) = -200.
    law = PowerLaw(a=10.0, b=0.5, c=1.0)
    assert law.loss(100.0) == pytest.approx(2.0)
    assert law.dcompute(2.0) == pytest.approx(-200.0)
    # Chinchilla: E0 + A/N^alpha + B/D^beta with D = C / (6 N).
    chin = ChinchillaLaw(E0=1.5, A=400.0, B=2000.0, alpha=0.34, beta=0.37, N=1e9)
    tokens = 2e10
    expected = 1.5 + 400.0 / 1e9**0.34 + 2000.0 / tokens**0.37
    assert chin.loss(6 * 1e9 * tokens) == pytest.approx(expected)
    assert chin.floor == pytest.approx(1.5 + 400.0 / 1e9**0.34)
    # Saturating: finite loss at zero compute, c + a d^-b.
    sat = SaturatingLaw(a=100.0, b=0.5, c=1.0, d=10_000.0)
    assert sat.ceiling == pytest.approx(2.0)


def test_make_law_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="b must be a positive"):
        make_law("power", {"a": 1.0, "b": -0.3, "c": 1.0})
    with pytest.raises(ValueError, match="missing parameter"):
        make_law("power", {"a": 1.0, "b": 0.3})
    with pytest.raises(ValueError, match="unknown form"):
        make_law("cubic", {})
