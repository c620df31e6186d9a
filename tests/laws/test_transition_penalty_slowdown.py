"""The transition that joins a fading jump and a lasting slowdown (``penalty-slowdown``): its
parameters recovered from curves written in closed form, its out-of-sample score against the
two models it joins, and the FLOPs it charges against a root found here by bisection."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from laws.fit.transitions import fit_model, fit_models, leave_one_run_out, with_measured_transitions
from laws.transitions import extra_compute
from tests.laws.test_transitions import landing, law_set, on_law, runs

DELTA, TAU_SHARE, FACTOR = 0.3, 0.2, 0.25


def jump_then_slower(delta: float, tau: float, factor: float):
    return lambda loss, flops: (on_law(landing(loss) + flops / (1.0 + factor))
                                + delta * loss * np.exp(-flops / tau))


def test_recovered_and_kept_where_neither_model_it_joins_fits():
    tau = TAU_SHARE * landing(0.5)
    switches = runs(jump_then_slower(DELTA, tau, FACTOR))
    assert fit_model("penalty-slowdown", law_set(), switches) == pytest.approx(
        (DELTA, tau, FACTOR), rel=1e-5)
    comparison = leave_one_run_out(law_set(), switches)
    assert comparison.rmse("penalty-slowdown") == pytest.approx(0.0, abs=1e-6)
    for joined in ("transient-penalty", "slowdown"):
        assert comparison.rmse(joined) > 1e-3  # a clear miss where the joint model has ~0
    (kept,) = with_measured_transitions(law_set(), switches).transitions.measured
    assert kept.model == "penalty-slowdown"
    assert (kept.params["delta"], kept.params["tau_flops"], kept.params["factor"]) == (
        pytest.approx((DELTA, tau, FACTOR), rel=1e-5))


def test_fits_at_least_as_well_as_either_model_it_joins():
    """On curves with a jump only, and with a lasting slowdown only, it finds the model it
    reduces to: a factor of 0, or a jump of 0."""
    tau = TAU_SHARE * landing(0.5)
    jump_only = fit_models(law_set(), runs(jump_then_slower(DELTA, tau, 0.0)))
    assert jump_only["penalty-slowdown"][0] == pytest.approx(DELTA, rel=1e-5)
    assert jump_only["penalty-slowdown"][2] == pytest.approx(0.0, abs=1e-6)
    slower_only = fit_models(law_set(), runs(jump_then_slower(0.0, tau, FACTOR)))
    assert slower_only["penalty-slowdown"][0] == pytest.approx(0.0, abs=1e-6)
    assert slower_only["penalty-slowdown"][2] == pytest.approx(FACTOR, rel=1e-5)


@pytest.mark.parametrize("switched, target, jump_paid", [(0.62, 0.6, True), (0.5, 0.48, True),
                                                        (0.62, 0.34, False)])
def test_charges_the_flops_that_bisection_finds(switched, target, jump_paid):
    tau = TAU_SHARE * landing(0.5)
    curve = jump_then_slower(DELTA, tau, FACTOR)
    after = brentq(lambda flops: curve(switched, np.array([flops]))[0] - target,
                   0.0, 1e3 * landing(target), xtol=1e-6)
    free = landing(target) - landing(switched)
    law = law_set().shape("b").law
    extra = extra_compute("penalty-slowdown", law, switched, target, (DELTA, tau, FACTOR))
    assert extra == pytest.approx(after - free, rel=1e-8)
    # Near the switch the jump costs more than the slowdown's share; far from it the jump has
    # faded and the share is what is left.
    slowdown_share = FACTOR * free
    if jump_paid:
        assert extra > 1.5 * slowdown_share
    else:
        assert extra == pytest.approx(slowdown_share, rel=1e-9)
