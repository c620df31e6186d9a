"""The online policy: refitting from the run's own evaluations recovers from misfit laws."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from laws.forms import PowerLaw
from laws.search import PlanRequest, plan
from sim import SimConfig, simulate
from sim.online import current_level, refit


def test_refit_recovers_a_law_from_exact_observations(four):
    law = four.shape("w64").law
    trained = np.geomspace(1e14, 1e17, 30)
    history = [("w64", float(c), float(law.loss(c))) for c in trained]
    fitted = refit(four, history, min_points=10).shape("w64").law
    assert fitted.loss(3e17) == pytest.approx(law.loss(3e17), rel=1e-3)
    assert refit(four, history[:5], min_points=10) == four  # too few points: prior kept


def test_current_level_is_the_median_of_the_recent_window_not_its_lowest():
    # Nine recent evaluations with one low outlier (0.1), after three old ones (9.0) that the
    # window leaves out. Sorted: 0.1, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0; the median is the
    # fifth, 2.6 (the lowest would be 0.1, the mean 2.37, the whole history's median 2.75).
    observed = [9.0, 9.0, 9.0, 3.0, 2.9, 2.8, 0.1, 2.7, 2.6, 2.5, 2.4, 2.3]
    history = [("a", float(i), loss) for i, loss in enumerate(observed)]
    assert current_level(history, window=9) == 2.6


def test_online_beats_the_stale_plan_when_a_shape_flattens_early(
        four, four_plan, target, four_request):
    # The truth: w256 levels off at 1.40 instead of 1.35, so the plan leaves it too late.
    truth = replace(four, name="truth", shapes=tuple(
        replace(s, law=PowerLaw(s.law.a, s.law.b, 1.40)) if s.name == "w256" else s
        for s in four.shapes))
    best_possible = plan(truth, PlanRequest.for_laws(truth, target))["optimal"]["compute"]
    config = SimConfig(confirm=1)  # default evaluation interval and refit schedule
    results = simulate(four, four_request, ["online", "planned"], config, runs=1, plan=four_plan,
                       truth=truth)
    online, planned = (results.runs_of(p)[0] for p in ("online", "planned"))
    assert online.reached and planned.reached
    assert online.compute_to_target < 0.9 * planned.compute_to_target
    assert online.compute_to_target < 1.1 * best_possible
