"""What the online policy re-plans from and what it counts as another route: the lowest level
the run has read, and routes that differ by more than that level's noise."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from laws.forms import PowerLaw
from laws.lawset import LawSet, Shape
from laws.search import PlanRequest
from sim.level import current_level, level_error, window_size
from sim.online import Online
from sim.policies import PlanningContext
from sim.posterior import Prior
from sim.replan import choose, remaining_problem

# Sample 1 of the toy: a = 2 (floor 1.0), b = 9 (floor 0.5), C = (a / (E - c))^2. From loss 2.0
# to 1.2, switching freely where 2 a^2 / (E - 1)^3 = 2 b^2 / (E - 0.5)^3, at E = 1.2897: a to
# there, 43.66 FLOPs, then b, 35.42. Leaving a at 1.30 instead: 40.44 + 38.74 = 79.19, 0.10
# more.
LAWS = LawSet("toy", (
    Shape("a", {}, PowerLaw(2.0, 0.5, 1.0),
          samples=(PowerLaw(8.0, 0.5, 1.0), PowerLaw(2.0, 0.5, 1.0))),
    Shape("b", {}, PowerLaw(9.0, 0.5, 0.5), samples=(PowerLaw(9.0, 0.5, 0.5),) * 2)))
SWITCH = 1.2897


def _choice_sure_of_sample_1(current: str, followed: list[tuple[str, float]],
                             resolution: float):
    problem = remaining_problem(PlanRequest.for_laws(LAWS, 1.2), LAWS, 2.0, 0)
    sure = replace(Prior(LAWS, ess_floor=1.0).update([(current, 1.0, 2.0)]),
                   weights=np.array([0.0, 1.0]), ess=1.0)
    return choose(sure, problem, current, followed, resolution=resolution)


def test_a_switch_moved_by_less_than_the_resolution_is_the_same_route():
    """Followed: a to 1.30, then b. The posterior's route leaves a at 1.2897, 0.010 lower (each
    on the re-plan's grid, about 0.003 apart there) and saves 0.10 FLOPs: taken when the level
    reads the loss to 0.005, not when it reads it only to 0.02."""
    followed = [("a", 1.30), ("b", 1.2)]
    fine = _choice_sure_of_sample_1("a", followed, resolution=0.005)
    assert [shape for shape, _ in fine.schedule] == ["a", "b"]
    assert fine.schedule[0][1] == pytest.approx(SWITCH, abs=0.003)
    assert fine.expected_gain == pytest.approx(79.19 - 79.08, abs=0.05)
    assert _choice_sure_of_sample_1("a", followed, resolution=0.02).schedule is None


def test_a_leg_shorter_than_the_resolution_is_noise_and_a_longer_one_a_route():
    """On b at 2.0, followed: b to the target (129.3 FLOPs: (9 / 0.7)^2 - (9 / 1.5)^2). The
    posterior's route goes back to a for the 0.71 of loss down to 1.2897 (79.1 FLOPs): another
    route where the level reads the loss to 0.2, noise where it reads it only to 0.8."""
    followed = [("b", 1.2)]
    taken = _choice_sure_of_sample_1("b", followed, resolution=0.2)
    assert [shape for shape, _ in taken.schedule] == ["a", "b"]
    assert taken.expected_gain == pytest.approx((9 / 0.7) ** 2 - 36.0 - 79.08, rel=0.01)
    assert _choice_sure_of_sample_1("b", followed, resolution=0.8).schedule is None


def test_level_error_is_the_spread_of_the_median_of_the_window():
    """249 evaluations at 1 to 249 FLOPs: the window (from 224.1 FLOPs) holds 25. The standard
    deviation of the median of 25 draws of 3.0 (1 + 0.03 z), by simulation, against
    sqrt(pi / 2) 0.09 / 5 = 0.02256 (the large-n form is within 1% at 25)."""
    history = [("a", float(flops), 3.0) for flops in range(1, 250)]
    assert window_size(history) == 25
    draws = 3.0 * (1.0 + 0.03 * np.random.default_rng(0).standard_normal((40_000, 25)))
    assert level_error(history, 0.03) == pytest.approx(np.median(draws, axis=1).std(),
                                                       rel=0.03)
    assert level_error(history, 0.03) == pytest.approx(
        math.sqrt(math.pi / 2.0) * 0.09 / 5.0, rel=1e-12)


def test_online_replans_from_the_lowest_level_the_run_has_read():
    """Evaluations fall from 2.0 to 1.22 over the first 20 (the plan's switch to b at 1.2897 is
    read at the 19th: the median of the 18th and 19th, 1.2816), then read 1.5 (noise) for the
    next ten: the run's level rises back to 1.5 (those from 27 FLOPs on). Lowest read: 1.261
    (at the 20th, the median of the 18th to the 20th). The update at the 30th evaluation
    re-plans from there, not from 1.5, from which the posterior would send the run back to a
    for 0.21 of loss."""
    context = PlanningContext(LAWS, PlanRequest.for_laws(LAWS, 1.2, levels=100))
    policy = Online(context, every=30)
    observed = [2.0 - 0.78 * i / 19 for i in range(20)] + [1.5] * 10
    notes, history, levels = [], [], []

    class Run:
        shape_name, lowest_observed, policy_rng = "", 0.0, np.random.default_rng(0)

        @property
        def level(self):
            return current_level(history)

        def note(self, event, fields):
            notes.append(fields)

    run = Run()
    run.shape_name = policy.begin(run)
    for step, loss in enumerate(observed, start=1):
        run.trained_flops, run.observed, run.evaluations = float(step), loss, step
        history.append((run.shape_name, float(step), loss))
        run.history = history
        levels.append(current_level(history))
        run.shape_name = policy.decide(run) or run.shape_name
    assert min(levels) == pytest.approx(2.0 - 0.78 * 18 / 19) and levels[-1] == 1.5
    assert len(notes) == 1 and notes[0]["level"] == pytest.approx(2.0 - 0.78 * 18 / 19)
    assert notes[0]["adopted"] == "" and run.shape_name == "b"
