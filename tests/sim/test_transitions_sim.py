"""Simulated switches follow the truth's measured transitions, checked against closed forms.

Shape a's truth is L_a(C) = 1 + C^-1/2, shape b's L_b(C) = 1/2 + 2 / C (so C_b(E) = 2 / (E -
1/2)); a run trains a until its level is 1.5, then b to the target 1.0, one FLOP per second, no
evaluation cost. The expected losses below are those formulas written out, and the transitions'
(a jump delta l0 exp(-x / tau), a delay of c FLOPs) on top, x FLOPs after the switch at l0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from laws.errors import InputError
from laws.forms import PowerLaw
from laws.lawset import LawSet, MeasuredTransition, Shape, Transitions
from laws.search import PlanRequest
from sim import FaultModel, SimConfig, simulate
from sim.policies import Scheduled
from sim.truth import TruthDraw
from tests.sim.noise_free import walk

SWITCH_AT, TARGET = 1.5, 1.0
DX = 3e-3  # FLOPs between evaluations: the switch level is not on the grid (C_a(1.5) = 4)
DELTA, TAU = 0.5, 0.5


def loss_a(compute):
    return 1.0 + compute ** -0.5


def loss_b(compute):
    return 0.5 + 2.0 / compute


def compute_b(loss: float) -> float:
    return 2.0 / (loss - 0.5)


def jump(delta: float = DELTA, tau: float = TAU) -> MeasuredTransition:
    return MeasuredTransition("a", "b", "transient-penalty", {"delta": delta, "tau_flops": tau})


def delay(flops: float) -> MeasuredTransition:
    return MeasuredTransition("a", "b", "constant-flops", {"flops": flops})


def truth(*measured: MeasuredTransition) -> LawSet:
    return LawSet("ab", (Shape("a", {}, PowerLaw(a=1.0, b=0.5, c=1.0), throughput=1.0),
                         Shape("b", {}, PowerLaw(a=2.0, b=1.0, c=0.5), throughput=1.0)),
                  transitions=Transitions(measured=measured))


def run_once(laws: LawSet, config: SimConfig | None = None):
    policy = Scheduled("a-then-b", [("a", SWITCH_AT), ("b", TARGET)])
    config = config or SimConfig(eval_every=DX, confirm=1, max_compute=100.0)
    (run,) = simulate(laws, PlanRequest.for_laws(laws, TARGET), [policy], config, runs=1).runs
    return run


def split_at_switch(run) -> tuple[float, float, np.ndarray, np.ndarray]:
    """The FLOPs and true loss of the last evaluation on a, and the FLOPs after the switch and
    true losses of the evaluations on b."""
    on_a = [row for row in run.trajectory if row[4] == "a"]
    on_b = [row for row in run.trajectory if row[4] == "b"]
    switched_at, level = on_a[-1][1], on_a[-1][2]
    return (switched_at, level, np.array([row[1] for row in on_b]) - switched_at,
            np.array([row[2] for row in on_b]))


def test_a_transient_penalty_switch_follows_the_closed_form_after_it():
    run = run_once(truth(jump()))
    switched_at, level, since, losses = split_at_switch(run)
    # The switch fires where the run's level reaches 1.5, walked by hand: past C_a(1.5) = 4.
    (k,), _ = walk([(loss_a, lambda e: (e - 1.0) ** -2, SWITCH_AT),
                    (loss_b, compute_b, -math.inf)], DX, TARGET)
    assert 4.0 < switched_at == pytest.approx(k * DX, rel=1e-12)
    assert level == pytest.approx(loss_a(switched_at), rel=1e-12)
    landing = compute_b(level)
    for k in (1, 10, 100, 300):
        assert since[k - 1] == pytest.approx(k * DX, rel=1e-9)
        expected = loss_b(landing + k * DX) + DELTA * level * math.exp(-k * DX / TAU)
        assert losses[k - 1] == pytest.approx(expected, rel=1e-9)
    # The first evaluation on b is above where the switch fired: the jump, not yet faded.
    assert losses[0] > level
    # Where the true loss crosses the target, found here by bisection on the closed form.
    to_target = brentq(lambda x: loss_b(landing + x) + DELTA * level * math.exp(-x / TAU)
                       - TARGET, 0.0, 100.0, xtol=1e-14)
    assert to_target > compute_b(TARGET) - landing + 1e-3  # the jump costs FLOPs to the target
    assert run.reached
    assert run.true_compute_to_target == pytest.approx(switched_at + to_target, rel=1e-9)


def test_a_transient_penalty_survives_failures_and_restarts_from_checkpoints():
    # A failure about every 0.7 s (FLOPs) of a ~6 s run, checkpoints every 0.05 s: the run
    # restarts from checkpoints after the switch, and looks ahead again from them.
    faults = FaultModel(mtbf_hours=0.7 / 3600.0, checkpoint_seconds=1e-4, interval_seconds=0.05)
    run = run_once(truth(jump()), SimConfig(eval_every=DX, confirm=1, max_compute=100.0,
                                            faults=faults))
    assert run.failures > 3 and run.reached
    on_a = [row for row in run.trajectory if row[4] == "a"]
    level = on_a[-1][2]
    landing = compute_b(level)
    expected = loss_b(landing + DX * np.arange(1, 2000)) + DELTA * level * np.exp(
        -DX * np.arange(1, 2000) / TAU)
    on_b = np.array([row[2] for row in run.trajectory if row[4] == "b"])
    # Each evaluation on b, repeated or not after a restart, is one of the closed form's.
    nearest = np.abs(on_b[:, None] - expected[None, :]).min(axis=1)
    assert nearest.max() < 1e-9
    assert len(on_b) > len(set(on_b.round(12)))  # some were evaluated again after a failure


def test_a_constant_flops_switch_delays_the_crossing_of_a_level_by_exactly_its_flops():
    c = 100 * DX
    free, delayed = run_once(truth()), run_once(truth(delay(c)))
    switched_at, level, since, losses = split_at_switch(delayed)
    assert switched_at == split_at_switch(free)[0]
    # During the delay the loss stays where the switch fired; then b's law, c FLOPs late.
    assert losses[:99] == pytest.approx(np.full(99, level), rel=1e-12)
    landing = compute_b(level)
    assert losses[299] == pytest.approx(loss_b(landing + 300 * DX - c), rel=1e-9)

    def first_at_or_below(run, loss: float) -> float:
        return next(flops for _, flops, true, _, _ in run.trajectory if true <= loss)

    for crossed in (1.3, 1.1):
        assert (first_at_or_below(delayed, crossed) - first_at_or_below(free, crossed)
                == pytest.approx(c, rel=1e-9))
    expected = switched_at + compute_b(TARGET) - landing
    assert free.true_compute_to_target == pytest.approx(expected, rel=1e-9)
    assert delayed.true_compute_to_target == pytest.approx(expected + c, rel=1e-9)


def test_a_free_transition_or_one_for_another_pair_changes_nothing():
    config = SimConfig(eval_every=DX, confirm=1, max_compute=100.0, noise=0.02)
    today = run_once(truth(), config)
    other_pair = MeasuredTransition("b", "a", "transient-penalty", {"delta": 2.0,
                                                                    "tau_flops": 1.0})
    free = MeasuredTransition("a", "b", "free", {})
    for laws in (truth(free), truth(other_pair)):
        run = run_once(laws, config)
        assert run.trajectory == today.trajectory
        assert run.true_compute_to_target == today.true_compute_to_target


SAMPLE_LAWS_A = (PowerLaw(a=1.0, b=0.5, c=1.0), PowerLaw(a=1.2, b=0.5, c=1.0),
                 PowerLaw(a=0.8, b=0.5, c=1.0))
SAMPLE_LAWS_B = (PowerLaw(a=2.0, b=1.0, c=0.5), PowerLaw(a=2.4, b=1.0, c=0.5),
                 PowerLaw(a=1.6, b=1.0, c=0.5))
SAMPLE_JUMPS = ((0.2, 0.3), (0.9, 0.6), (0.5, 0.1))  # (delta, tau) of samples 0, 1, 2


def sampled_truth(jumps=SAMPLE_JUMPS) -> LawSet:
    return LawSet("ab", (
        Shape("a", {}, PowerLaw(a=1.0, b=0.5, c=1.0), throughput=1.0, samples=SAMPLE_LAWS_A),
        Shape("b", {}, PowerLaw(a=2.0, b=1.0, c=0.5), throughput=1.0, samples=SAMPLE_LAWS_B)),
        transitions=Transitions(measured=(MeasuredTransition(
            "a", "b", "transient-penalty", {"delta": DELTA, "tau_flops": TAU}, jumps),)))


def test_a_replication_follows_sample_k_of_the_laws_and_of_the_transitions_together():
    laws = sampled_truth()
    policy = Scheduled("a-then-b", [("a", SWITCH_AT), ("b", TARGET)])
    config = SimConfig(eval_every=DX, confirm=1, max_compute=100.0, truth_draw="samples")
    results = simulate(laws, PlanRequest.for_laws(laws, TARGET), [policy], config, runs=8,
                       seed=3)
    drawn = set()
    for run in results.runs:
        switched_at, level, since, losses = split_at_switch(run)
        # Which law sample the run followed, read off shape a: L = 1 + a_k C^-1/2.
        (k,) = [k for k, law in enumerate(SAMPLE_LAWS_A)
                if level == pytest.approx(1.0 + law.a * switched_at ** -0.5, rel=1e-12)]
        drawn.add(k)
        a_b = SAMPLE_LAWS_B[k].a
        landing = a_b / (level - 0.5)
        delta, tau = SAMPLE_JUMPS[k]
        expected = (0.5 + a_b / (landing + since[:200])
                    + delta * level * np.exp(-since[:200] / tau))
        assert losses[:200] == pytest.approx(expected, rel=1e-9)
    assert len(drawn) >= 2  # the pairing is seen on more than one sample


def test_a_draw_from_samples_needs_as_many_transition_samples_as_law_samples():
    draw = TruthDraw.parse("samples")
    draw.check(sampled_truth())
    with pytest.raises(InputError, match="has 2 samples, its laws 3"):
        draw.check(sampled_truth(SAMPLE_JUMPS[:2]))
