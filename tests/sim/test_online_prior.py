"""The online policy's prior can be given: a prior sure of a run's true laws is what the bench
uses to see what re-planning gains where the posterior is right."""

from __future__ import annotations

import math

import numpy as np
import pytest

from laws.forms import PowerLaw
from laws.lawset import LawSet, Shape
from laws.search import PlanRequest
from sim.level import current_level
from sim.online import Online
from sim.policies import PlanningContext
from sim.posterior import MISFIT, Prior, sure_of

# Two shapes, each with four samples of its coefficient (exponent 0.5, floors 1.0 and 0.5).
LAWS = LawSet("toy", (
    Shape("a", {}, PowerLaw(4.0, 0.5, 1.0),
          samples=tuple(PowerLaw(x, 0.5, 1.0) for x in (3.0, 4.0, 5.0, 6.0))),
    Shape("b", {}, PowerLaw(9.0, 0.5, 0.5),
          samples=tuple(PowerLaw(x, 0.5, 0.5) for x in (8.0, 9.0, 12.0, 10.0)))))
# Coefficients between the samples': no sample of LAWS is this truth.
TRUTH = LawSet("truth", (Shape("a", {}, PowerLaw(3.5, 0.5, 1.0)),
                         Shape("b", {}, PowerLaw(10.5, 0.5, 0.5))))


class HandMadeRun:
    """What a real loop's controller offers a policy (``RunView``), evaluations exact."""

    def __init__(self) -> None:
        self.shape_name, self.observed, self.lowest_observed = "", math.inf, math.inf
        self.trained_flops, self.evaluations = 0.0, 0
        self.history: list[tuple[str, float, float]] = []
        self.notes: list[tuple[str, dict]] = []
        self.policy_rng = np.random.default_rng(0)

    @property
    def level(self) -> float:
        return current_level(self.history)

    def note(self, event: str, fields: dict) -> None:
        self.notes.append((event, fields))


def first_update(policy: Online) -> dict:
    """The policy's first posterior note on a run that follows ``TRUTH`` exactly: 5 FLOPs
    between evaluations, a switch landing where the new shape's loss is the old one's."""
    run = HandMadeRun()
    run.shape_name, position = policy.begin(run), 0.0
    for step in range(1, 200):
        position += 5.0
        run.trained_flops, run.evaluations = 5.0 * step, step
        run.observed = float(TRUTH.shape(run.shape_name).law.loss(position))
        run.history.append((run.shape_name, run.trained_flops, run.observed))
        shape = policy.decide(run) or run.shape_name
        if shape != run.shape_name:
            position = float(TRUTH.shape(shape).law.compute(run.observed))
            run.shape_name = shape
        if run.notes:
            return run.notes[0][1]
    raise AssertionError("the policy never updated")


def test_sure_of_makes_the_truth_the_one_sample_of_every_shape():
    prior = sure_of(LAWS, TRUTH)
    assert [s.samples for s in prior.shapes] == [(PowerLaw(3.5, 0.5, 1.0),),
                                                 (PowerLaw(10.5, 0.5, 0.5),)]
    assert [s.law for s in prior.shapes] == [s.law for s in LAWS.shapes]  # the plan's laws


def test_a_given_prior_is_the_one_the_posterior_weighs():
    """Exact evaluations of the truth: a prior sure of it fits them exactly (misfit 0, one
    sample); the law file's samples, none of which is the truth, cannot: their best misses by
    more than the ``MISFIT`` at which the posterior calls a prior unable to explain a run."""
    context = PlanningContext(LAWS, PlanRequest.for_laws(LAWS, 1.2, levels=100))
    sure = first_update(Online(context, every=10, prior=Prior(sure_of(LAWS, TRUTH))))
    assert sure["misfit"] == pytest.approx(0.0, abs=1e-12)
    assert sure["ess"] == 1.0 and sure["widening"] == 1.0
    assert first_update(Online(context, every=10))["misfit"] > MISFIT
