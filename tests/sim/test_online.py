"""The online policy and its posterior, against brute force and closed forms."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from laws.forms import PowerLaw
from laws.lawset import LawSet, MeasuredTransition, Shape, Transitions
from laws.presets import load_preset
from laws.search import PlanRequest, plan
from laws.search.problem import build_problem
from sim import SimConfig, simulate
from sim.level import current_level
from sim.online import Online
from sim.policies import PlanningContext, planned
from sim.posterior import (
    Prior,
    SampleCurves,
    effective_sample_size,
    log_likelihood,
    noise_estimate,
    normalised,
    widened,
)
from sim.replan import FromHere, choose, remaining_problem, schedule_legs
from sim.truth import TruthDraw

A_DRAWS = (3.0, 4.0, 5.0, 6.0)
B_DRAWS = (8.0, 9.0, 12.0, 10.0)


def toy(a_draws=A_DRAWS, b_draws=B_DRAWS) -> LawSet:
    """Two power laws with a joint sample k of (a_a, a_b); b = 0.5, floors 1.0 and 0.5."""
    return LawSet("toy", (
        Shape("a", {}, PowerLaw(4.0, 0.5, 1.0), samples=tuple(PowerLaw(x, 0.5, 1.0)
                                                               for x in a_draws)),
        Shape("b", {}, PowerLaw(9.0, 0.5, 0.5), samples=tuple(PowerLaw(x, 0.5, 0.5)
                                                               for x in b_draws))))


# Three evaluations on a, a switch, three on b: (shape, trained FLOPs so far, observed loss).
HISTORY = [("a", 1.0, 5.2), ("a", 2.0, 3.9), ("a", 4.0, 3.1),
           ("b", 5.0, 2.6), ("b", 7.0, 2.4), ("b", 10.0, 2.1)]


def brute_force_log_weights(laws: LawSet, history, sigma: float, penalty: float) -> list[float]:
    """Sample by sample, evaluation by evaluation, in plain floats: on a from scratch, then on
    b from where loss is preserved under that sample, C_b(L_a(4) + penalty)."""
    out = []
    for sample in laws.samples():
        law_a, law_b = sample.shape("a").law, sample.shape("b").law
        landing = float(law_b.compute(float(law_a.loss(4.0)) + penalty))
        total = 0.0
        for shape, trained, observed in history:
            x = trained if shape == "a" else landing + trained - 4.0
            true = float((law_a if shape == "a" else law_b).loss(x))
            total += (math.log(observed) - math.log(true)) ** 2
        out.append(-total / (2.0 * sigma**2))
    return out


@pytest.mark.parametrize("penalty", [0.0, 0.1])
def test_weights_are_the_likelihood_of_each_samples_own_account_of_the_run(penalty):
    laws = toy()
    expected = brute_force_log_weights(laws, HISTORY, 0.05, penalty)
    untrained = [("a", 0.0, 9.0)]  # a real run's first evaluation: on no law, left out
    got = log_likelihood(SampleCurves(laws), untrained + HISTORY, 0.05, penalty)
    assert got == pytest.approx(expected, rel=1e-10)
    weights = np.exp(np.array(expected) - max(expected))
    assert normalised(got) == pytest.approx(weights / weights.sum(), rel=1e-9)


def test_effective_sample_size_is_sum_squared_over_sum_of_squares():
    assert effective_sample_size(np.ones(7)) == pytest.approx(7.0)
    assert effective_sample_size(np.array([0.0, 3.0, 0.0])) == pytest.approx(1.0)
    # (1 + 2 + 3)^2 / (1 + 4 + 9) = 36 / 14
    assert effective_sample_size(np.array([1.0, 2.0, 3.0])) == pytest.approx(36.0 / 14.0)


def test_noise_estimate_recovers_the_relative_noise_of_a_run():
    rng = np.random.default_rng(5)
    law = PowerLaw(4.0, 0.5, 1.0)
    trained = np.linspace(1.0, 400.0, 4000)
    observed = law.loss(trained) * (1.0 + 0.03 * rng.standard_normal(trained.size))
    history = [("a", float(c), float(y)) for c, y in zip(trained, observed, strict=True)]
    assert noise_estimate(history) == pytest.approx(0.03, rel=0.06)


def test_data_the_prior_explains_are_not_tempered():
    laws = toy()
    truth = laws.samples()[1]  # a = 4, b = 9: sample 1 itself
    history = [("a", float(c), float(truth.shape("a").law.loss(c)) * (1 + 0.01 * z))
               for c, z in zip(np.linspace(1, 40, 60), np.tile([1.0, -1.0], 30), strict=True)]
    posterior = Prior(laws, ess_floor=2.0).update(history)
    assert posterior.tau == 1.0 and posterior.widening == 1.0
    assert int(np.argmax(posterior.weights)) == 1


def test_a_prior_that_cannot_explain_the_run_is_tempered_to_the_floor():
    laws = toy()
    outside = PowerLaw(12.0, 0.5, 1.0)  # a = 12: no sample, not even widened 8-fold near it
    history = [("a", float(c), float(outside.loss(c)) * (1 + 0.01 * z))
               for c, z in zip(np.linspace(1, 40, 60), np.tile([1.0, -1.0], 30), strict=True)]
    prior = Prior(laws, ess_floor=3.0)
    posterior = prior.update(history)
    assert posterior.misfit > 1.5 and posterior.ess_raw < 3.0
    assert 0.0 < posterior.tau < 1.0
    assert posterior.ess == pytest.approx(3.0, rel=1e-3)
    # The tempered weights are the chosen prior's likelihood raised to tau, normalised.
    sigma = noise_estimate(history)
    raw = log_likelihood(prior.curves(posterior.widening), history, sigma)
    assert posterior.weights == pytest.approx(normalised(posterior.tau * raw), rel=1e-9)
    # Widened, the heaviest sample lies nearer the truth than any of the prior's.
    heaviest = posterior.curves.compute(0, np.array([2.0]))[np.argmax(posterior.weights), 0]
    assert abs(heaviest - outside.compute(2.0)) < min(
        abs(law.compute(2.0) - outside.compute(2.0)) for law in laws.shapes[0].samples)


def test_widening_scales_each_samples_log_deviation():
    laws = widened(toy(), 2.0)
    # a: 4 (3/4)^2 = 2.25, 4 (5/4)^2 = 6.25; b's exponents and floors are those of the point.
    assert [law.a for law in laws.shapes[0].samples] == pytest.approx([2.25, 4.0, 6.25, 9.0])
    assert {law.b for law in laws.shapes[1].samples} == {0.5}


def test_from_here_counts_what_is_left_and_the_switch():
    """Remaining cost from loss 2.0 on a, by hand: C = (a / (E - c))^2."""
    laws = toy()
    request = PlanRequest.for_laws(laws, 1.2, start_loss=2.0, levels=50, switch_flops=3.0)
    problem = build_problem(laws, request)
    here = FromHere(SampleCurves(laws), problem, 0, np.arange(4))
    for k, (a, b) in enumerate(zip(A_DRAWS, B_DRAWS, strict=True)):
        a_left = (a / 0.2) ** 2 - (a / 1.0) ** 2  # a from 2.0 to 1.2
        b_left = (b / 0.7) ** 2 - (b / 1.5) ** 2 + 3.0  # a switch, then b from 2.0 to 1.2
        assert here.compute(0, problem.grid[[-1]])[k, 0] == pytest.approx(a_left)
        assert here.compute(1, problem.grid[[-1]])[k, 0] == pytest.approx(b_left)


def test_the_posterior_adopts_its_samples_route_only_when_it_saves_clearly():
    """From loss 2.0 to 1.2 on b, by hand (C = (a / (E - c))^2, free switches at the level
    where 2 a^2 / (E - 1)^3 = 2 b^2 / (E - 0.5)^3). Sample 0 (a = 8, b = 9): b is cheaper all
    the way, 129.3 FLOPs; a to 1.29 then b would cost 732. Sample 1 (a = 2, b = 9): a to 1.290,
    then b: 43.7 + 35.4 = 79.1 against b's 129.3."""
    laws = toy(a_draws=(8.0, 2.0), b_draws=(9.0, 9.0))
    request = PlanRequest.for_laws(laws, 1.2, start_loss=2.0, levels=50)
    problem = build_problem(laws, request)
    prior = Prior(laws, ess_floor=1.0)
    on_b = [("b", 1.0, 2.0)]  # the run is on b; nothing in the likelihood
    sure = replace(prior.update(on_b), weights=np.array([0.0, 1.0]), ess=1.0)
    adopted = choose(sure, problem, "b", [("b", 1.2)])
    assert adopted.schedule is not None and adopted.schedule[0][0] == "a"
    # Split evenly: a's expected saving is (129.3 - 732 + 129.3 - 79.1) / 2 < 0.
    split = replace(sure, weights=np.array([0.5, 0.5]), ess=2.0)
    assert choose(split, problem, "b", [("b", 1.2)]).schedule is None
    assert schedule_legs(problem, [("b", 1.2)]) == ((1, 0, 49),)


def test_the_online_policy_needs_only_what_a_run_view_offers():
    """A hand-made run (as a real training loop's controller would be): evaluations from
    sample 0 of the toy, each decision asked, the posterior's notes kept."""
    laws = toy()
    context = PlanningContext(laws, PlanRequest.for_laws(laws, 1.2, levels=100))
    truth = laws.samples()[0]

    class Run:
        shape_name, observed, lowest_observed, trained_flops, evaluations = "", 0.0, 0.0, 0.0, 0
        history: list = []
        notes: list = []
        policy_rng = np.random.default_rng(0)

        @property
        def level(self):
            return current_level(self.history)

        def note(self, event, fields):
            self.notes.append((event, fields))

    run, policy = Run(), Online(context, every=10)
    run.shape_name = policy.begin(run)
    for step in range(1, 200):
        run.trained_flops = 5.0 * step
        run.observed = float(truth.shape(run.shape_name).law.loss(run.trained_flops))
        run.evaluations = step
        run.history.append((run.shape_name, run.trained_flops, run.observed))
        run.shape_name = policy.decide(run) or run.shape_name
        if run.observed <= 1.2:
            break
    assert run.notes and all(event == "posterior" for event, _ in run.notes)
    assert {"ess", "tau", "widening", "sigma", "adopted"} <= set(run.notes[0][1])


def test_online_recovers_most_of_the_gap_when_the_truth_is_a_sample_the_plan_misjudged():
    """vit-patch-fmnist's bootstrap sample 136: the point plan's route costs 2.3 times that
    sample's own optimum on it (patch 7 is much worse there than the point law says)."""
    laws = load_preset("vit-patch-fmnist")
    request = PlanRequest.for_laws(laws, laws.extra["default_target"])
    truth = laws.samples()[136]
    best = plan(truth, replace(request.for_other_laws(truth),
                               start_loss=plan(laws, request).start_loss))
    results = simulate(laws, request, ["online", "planned"], SimConfig(noise=0.03), runs=1,
                       seed=1, truth=truth)
    online, planned = (results.runs_of(p)[0].true_compute_to_target
                       for p in ("online", "planned"))
    assert online < 0.6 * planned
    assert online < 1.15 * best.optimal.compute


def test_each_replication_follows_its_drawn_sample_with_every_policy():
    """Without noise a static run's true crossing is its truth's C(target): the sample that
    ``TruthDraw`` names for the replication."""
    laws = toy()
    request = PlanRequest.for_laws(laws, 1.2)
    config = SimConfig(confirm=1, truth_draw="samples")
    results = simulate(laws, request, ["static:a", "planned"], config, runs=6, seed=3)
    for run in results.runs_of("static:a"):
        sequence = np.random.SeedSequence(3, spawn_key=(run.replication, 3))
        k = int(np.random.default_rng(sequence).integers(4))
        assert run.true_compute_to_target == pytest.approx((A_DRAWS[k] / 0.2) ** 2, rel=1e-9)
    assert TruthDraw.parse("widened:2").laws(laws, 3, 0).shapes[0].law.a in (
        pytest.approx(4.0 * (x / 4.0) ** 2) for x in A_DRAWS)


def test_truth_draws_give_the_same_bytes_for_any_number_of_workers():
    laws = toy()
    request = PlanRequest.for_laws(laws, 1.2)
    config = SimConfig(noise=0.02, truth_draw="widened:1.5", trajectories=False)
    one, two = (simulate(laws, request, ["planned", "online"], config, runs=6, seed=2,
                         workers=workers) for workers in (1, 2))
    assert [r.to_dict() for r in one.runs] == [r.to_dict() for r in two.runs]


def test_current_level_is_the_median_of_the_recent_window_not_its_lowest():
    # Nine recent evaluations with one low outlier (0.1), after three old ones (9.0) that the
    # window leaves out. Sorted: 0.1, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 2.9, 3.0; the median is the
    # fifth, 2.6 (the lowest would be 0.1, the mean 2.37, the whole history's median 2.75).
    observed = [9.0, 9.0, 9.0, 3.0, 2.9, 2.8, 0.1, 2.7, 2.6, 2.5, 2.4, 2.3]
    history = [("a", float(i), loss) for i, loss in enumerate(observed)]
    assert current_level(history, window=9) == 2.6


def test_the_level_window_grows_with_the_run():
    """200 evaluations at 0 to 199 FLOPs: the window is the last tenth of the FLOPs, from 180
    on, 20 evaluations. Nine at 1.0 after eleven at 3.0 after 180 at 5.0: the median of those
    20 is 3.0 (of the last 9, 1.0; of all, 5.0)."""
    observed = [5.0] * 180 + [3.0] * 11 + [1.0] * 9
    history = [("a", float(i), loss) for i, loss in enumerate(observed)]
    assert current_level(history) == 3.0
    assert current_level(history[:50]) == 5.0  # 50 evaluations: those from 45 FLOPs, all 5.0


class HandRun:
    """What a real training loop's controller offers a policy (``RunView``), filled by hand."""

    def __init__(self, shape: str, observed: list[float]) -> None:
        self.shape_name, self.evaluations = shape, len(observed)
        self.history = [(shape, 1.0 + i, loss) for i, loss in enumerate(observed)]
        self.observed = self.lowest_observed = observed[-1]
        self.trained_flops = float(len(observed))
        self.policy_rng = np.random.default_rng(0)
        self.notes: list = []

    @property
    def level(self):
        return current_level(self.history)

    def note(self, event, fields):
        self.notes.append((event, fields))


def test_a_segment_ends_when_the_runs_level_reaches_it_not_one_low_evaluation():
    """The toy's plan leaves a at loss 1.7186. Twenty evaluations at 1.8 and a last one at 1.6
    (noise), at 1 to 21 FLOPs: the median of those over the last tenth of the FLOPs (19, 20
    and 21) is 1.8, so online and the plan's policy both stay on a (a re-plan from 1.8 would
    bring the run back). With the last five at 1.6 the median is 1.6: both leave a."""
    laws = toy()
    context = PlanningContext(laws, PlanRequest.for_laws(laws, 1.2, levels=100))
    online = Online(context)
    level = online.schedule[0][1]
    assert online.schedule[0][0] == "a" and 1.6 < level < 1.8
    dip = HandRun("a", [1.8] * 20 + [1.6])
    crossed = HandRun("a", [1.8] * 16 + [1.6] * 5)
    for policy in (online, planned(context.the_plan(), laws)):
        for run, leaves in ((dip, False), (crossed, True)):
            twin = policy.clone()
            twin.begin(run)
            assert (twin.decide(run) == "b") is leaves
    assert not dip.notes and not crossed.notes  # before the first update: nothing re-planned


def test_replanning_charges_a_measured_switch_as_the_plan_does():
    """On a at loss 2.0, target 1.2, the posterior sure of sample 1 (a = 2, b = 9; C = (a /
    (E - c))^2; free switches where 2 a^2 / (E - 1)^3 = 2 b^2 / (E - 0.5)^3, E = 1.2897): a to
    1.2897 then b costs 43.65 + 35.43 = 79.08 FLOPs, staying on a 100 - 4 = 96. A measured
    switch a -> b that delays b by 20 FLOPs makes that route cost 99.08: the run stays."""
    free = LawSet("toy", (
        Shape("a", {}, PowerLaw(2.0, 0.5, 1.0),
              samples=(PowerLaw(8.0, 0.5, 1.0), PowerLaw(2.0, 0.5, 1.0))),
        Shape("b", {}, PowerLaw(9.0, 0.5, 0.5), samples=(PowerLaw(9.0, 0.5, 0.5),) * 2)))
    delay = MeasuredTransition("a", "b", "constant-flops", {"flops": 20.0})
    measured = replace(free, transitions=Transitions(measured=(delay,)))
    problem, adopted = _replan_sure_of_sample_1(free)
    assert problem.charged == {}
    assert [shape for shape, _ in adopted.schedule] == ["a", "b"]
    assert adopted.schedule[0][1] == pytest.approx(1.2897, abs=0.005)
    assert adopted.expected_gain == pytest.approx(96.0 - 79.08, rel=0.01)
    problem, kept = _replan_sure_of_sample_1(measured)
    assert problem.charged == {(0, 1): 20.0}
    assert kept.schedule is None


def _replan_sure_of_sample_1(laws: LawSet):
    """The re-plan's problem from loss 2.0 on a, and its choice under a posterior that puts
    all its weight on sample 1."""
    problem = remaining_problem(PlanRequest.for_laws(laws, 1.2), laws, 2.0, 0)
    sure = replace(Prior(laws, ess_floor=1.0).update([("a", 1.0, 2.0)]),
                   weights=np.array([0.0, 1.0]), ess=1.0)
    return problem, choose(sure, problem, "a", [("a", 1.2)])
