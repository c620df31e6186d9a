"""A single run against closed forms: static and planned compute, time, switch semantics."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laws.forms import PowerLaw
from laws.lawset import LawSet, Shape, Transitions
from laws.search import PlanRequest
from sim import FaultModel, SimConfig, simulate
from sim.lookahead import LookAhead, completed_legs, leg_end, plan_legs, steps_to
from sim.policies import Policy, Scheduled
from tests.sim.noise_free import walk


def power_inverse(params: dict, loss: float) -> float:
    """C(E) = ((E - c) / a)^(-1/b), written out here rather than taken from laws.forms."""
    return ((loss - params["c"]) / params["a"]) ** (-1.0 / params["b"])


def power_segment(params: dict, level: float):
    """E(C) = c + a C^-b, its inverse, and the loss level at which a run leaves it."""
    return (lambda c: params["c"] + params["a"] * c ** -params["b"],
            lambda e: power_inverse(params, e), level)


def only(results):
    (run,) = results.runs
    return run


def test_static_compute_and_time_equal_the_closed_form_for_every_shape(
        four, four_plan, target, four_request):
    dx = four_plan.optimal.compute / 10_000
    for shape in four.shapes:
        params = shape.law.params()
        if params["c"] >= target:
            continue
        expected = power_inverse(params, target)
        run = only(simulate(four, four_request, [f"static:{shape.name}"],
                            SimConfig(eval_every=dx), runs=1, plan=four_plan))
        assert run.reached and run.switches == 0
        assert expected <= run.compute_to_target <= expected * 1.001
        assert four_plan.static[shape.name] == pytest.approx(expected, rel=1e-9)
        assert run.time_to_target == pytest.approx(expected / shape.throughput, rel=1e-3)


def test_planned_without_noise_faults_or_transition_costs_follows_the_plan(four, four_plan,
                                                                          target, four_request):
    """Each shape is left where the run's level (the median over the last tenth of the
    trained FLOPs) reaches the plan's loss: walked by hand (``noise_free.walk``). It lags the
    last evaluation, so the run spends a little more than the plan's compute."""
    optimal = four_plan.optimal
    dx = optimal.compute / 10_000
    run = only(simulate(four, four_request, ["planned"], SimConfig(eval_every=dx), runs=1,
                        plan=four_plan))
    laws = [four.shape(shape) for shape in optimal.shapes]
    switches, reached = walk([power_segment(shape.law.params(), step.loss_to)
                              for shape, step in zip(laws, optimal.schedule, strict=True)],
                             dx, target)
    assert run.reached and run.switches == len(switches) == optimal.switches == 3
    assert run.compute_to_target == pytest.approx(reached * dx, abs=4 * dx)
    ends = [0, *switches, reached]
    seconds = sum((end - start) * dx / shape.throughput
                  for start, end, shape in zip(ends[:-1], ends[1:], laws, strict=True))
    assert run.time_to_target == pytest.approx(seconds, rel=1e-3)
    # Late switches near the optimal ones cost little (the cost is flat there: second order).
    assert optimal.compute < run.compute_to_target < 1.001 * optimal.compute
    switched = [detail for _, kind, detail in run.events if kind == "switch"]
    shapes = optimal.shapes
    assert switched == [f"{a}->{b}" for a, b in zip(shapes, shapes[1:], strict=False)]
    assert run.ledger["useful_flops"] == pytest.approx(run.ledger["spent_flops"], rel=1e-12)


def two_shapes(**transitions) -> LawSet:
    return LawSet("two", (Shape("a", {}, PowerLaw(a=1.0, b=0.5, c=1.0), throughput=2.0),
                          Shape("b", {}, PowerLaw(a=2.0, b=1.0, c=0.5), throughput=1.0)),
                  transitions=Transitions(**transitions))


def switch_once(laws: LawSet, config: SimConfig):
    """a until the run's level is 1.5, then b to 1.0."""
    policy = Scheduled("a-then-b", [("a", 1.5), ("b", 1.0)])
    return only(simulate(laws, PlanRequest.for_laws(laws, 1.0), [policy], config, runs=1))


def test_a_switch_preserves_the_loss_and_charges_its_costs():
    # a: E = 1 + C^-1/2, left at evaluation k where the run's level reaches 1.5 (C_a(1.5) = 4,
    # a little later: the median lags); b: C = 2/(E-0.5) from a's loss there plus 0.1, to 4.
    laws = two_shapes(flops=0.5, seconds=3.0, loss_penalty=0.1)
    dx = 1e-4
    run = switch_once(laws, SimConfig(eval_every=dx, confirm=1))
    (k,), _ = walk([(lambda c: 1.0 + c ** -0.5, lambda e: (e - 1.0) ** -2, 1.5),
                    (lambda c: 0.5 + 2.0 / c, lambda e: 2.0 / (e - 0.5), -math.inf)], dx, 1.0)
    switched = k * dx
    landing = 2.0 / (1.0 + switched ** -0.5 + 0.1 - 0.5)
    assert 4.0 < switched < 4.0 / 0.9
    trained = switched + (4.0 - landing)
    transition_flops = 0.5 + 3.0 * 1.0  # FLOPs plus seconds x throughput of b
    assert run.ledger["transition_flops"] == pytest.approx(transition_flops, rel=1e-12)
    assert run.ledger["useful_flops"] == pytest.approx(trained, abs=3 * dx)
    assert run.compute_to_target == pytest.approx(trained + transition_flops, abs=3 * dx)
    seconds = switched / 2.0 + (3.0 + 0.5 / 1.0) + (4.0 - landing) / 1.0
    assert run.time_to_target == pytest.approx(seconds, abs=3 * dx)


def test_evaluations_and_checkpoints_are_charged_and_the_true_crossing_counts_them():
    # b alone: C = 2 / (E - 0.5), 4 FLOPs to the target 1.0, at 1 FLOP/s. Evaluations every
    # 0.03 FLOPs, 134 of them to pass 4 (133.3 reach it), each 0.005 s: 0.005 FLOPs of
    # evaluation at that speed. Checkpoints of 0.002 s every 0.1 s, failures never.
    laws = two_shapes()
    faults = FaultModel(mtbf_hours=1e9, checkpoint_seconds=0.002, interval_seconds=0.1)
    config = SimConfig(eval_every=0.03, eval_seconds=0.005, confirm=1, faults=faults)
    run = only(simulate(laws, PlanRequest.for_laws(laws, 1.0), ["static:b"], config, runs=1))
    ledger = run.ledger
    assert run.evaluations == 134
    assert ledger["eval_flops"] == pytest.approx(134 * 0.005, rel=1e-9)
    assert ledger["checkpoint_seconds"] > 0 and ledger["lost_flops"] == 0
    assert ledger["checkpoint_flops"] == pytest.approx(ledger["checkpoint_seconds"], rel=1e-9)
    # Spent at the stop: 134 chunks of 0.035 FLOPs and the checkpoints. The true loss crossed
    # 1.0 after 4 FLOPs of training, 4 / 0.03 chunks: 4 x 0.035 / 0.03 FLOPs of chunks.
    assert run.compute_to_target == pytest.approx(134 * 0.035 + ledger["checkpoint_flops"])
    assert run.true_compute_to_target == pytest.approx(4 * 0.035 / 0.03
                                                       + ledger["checkpoint_flops"], rel=1e-9)


def test_a_decaying_penalty_lifts_the_loss_then_fades():
    laws = two_shapes(loss_penalty=0.2)
    dx, decay = 1e-3, 0.5
    run = switch_once(laws, SimConfig(eval_every=dx, confirm=1, penalty_decay_flops=decay))
    rows = [row for row in run.trajectory if row[4] == "b"]
    first_loss = rows[0][2]
    switched, switch_loss = [row for row in run.trajectory if row[4] == "a"][-1][1:3]
    landing = 2.0 / (switch_loss - 0.5)
    assert first_loss == pytest.approx(0.5 + 2.0 / (landing + dx) + 0.2 * (1 - dx / decay),
                                       rel=1e-9)
    # Once the penalty has faded, the run is where free training would have put it.
    assert run.ledger["useful_flops"] == pytest.approx(switched + 4.0 - landing,
                                                       abs=3 * dx + 0.01)
    late = rows[int(decay / dx) + 5]
    assert late[2] == pytest.approx(0.5 + 2.0 / (landing + (int(decay / dx) + 6) * dx), rel=1e-9)


def test_noise_is_relative_gaussian_with_the_given_sigma():
    laws = two_shapes()
    request = PlanRequest.for_laws(laws, 1.0)
    run = only(simulate(laws, request, ["static:b"], SimConfig(eval_every=1e-3, noise=0.05),
                        runs=1, seed=3))
    ratios = [observed / true - 1.0 for _, _, true, observed, _ in run.trajectory]
    n = len(ratios)
    mean = sum(ratios) / n
    sd = math.sqrt(sum((r - mean) ** 2 for r in ratios) / (n - 1))
    assert n > 1000
    assert abs(mean) < 4 * 0.05 / math.sqrt(n)
    assert sd == pytest.approx(0.05, rel=4 / math.sqrt(2 * n))


def test_confirmation_costs_evaluations_but_not_compute_to_target():
    laws = two_shapes()
    request = PlanRequest.for_laws(laws, 1.0)
    one, three = (only(simulate(laws, request, ["static:b"], SimConfig(eval_every=1e-3, confirm=k),
                                runs=1)) for k in (1, 3))
    assert one.compute_to_target == three.compute_to_target
    assert three.evaluations == one.evaluations + 2
    assert three.ledger["spent_flops"] == pytest.approx(one.ledger["spent_flops"] + 2e-3)


def with_b(law: PowerLaw) -> LawSet:
    """The two shapes with b's law replaced: a truth that differs from the planning laws."""
    laws = two_shapes()
    return replace(laws, name="truth",
                   shapes=(laws.shapes[0], replace(laws.shapes[1], law=law)))


def test_an_unreachable_truth_stops_at_the_compute_budget():
    truth = with_b(PowerLaw(a=2.0, b=1.0, c=1.1))
    run = only(simulate(two_shapes(), PlanRequest.for_laws(two_shapes(), 1.0), ["static:b"],
                        SimConfig(eval_every=1e-2, max_compute=5.0), runs=1, truth=truth))
    assert not run.reached and run.compute_to_target is None
    assert 5.0 <= run.ledger["spent_flops"] < 5.0 + 1e-2 + 1e-9
    assert run.events[-1][1] == "budget"


def test_a_misfit_truth_moves_the_static_cost_to_the_truth_inverse():
    truth = with_b(PowerLaw(a=3.0, b=1.0, c=0.5))
    request = PlanRequest.for_laws(two_shapes(), 1.0)
    run = only(simulate(two_shapes(), request, ["static:b"], SimConfig(eval_every=1e-4, confirm=1),
                        runs=1, truth=truth))
    assert run.compute_to_target == pytest.approx(power_inverse({"a": 3.0, "b": 1.0, "c": 0.5},
                                                                1.0), abs=2e-4)


def test_a_hardware_spec_sets_time_by_peak_times_utilisation():
    from sim import Hardware

    hardware = Hardware(peak_flops=10.0, utilisation={"b": 0.25})
    run = only(simulate(two_shapes(), PlanRequest.for_laws(two_shapes(), 1.0), ["static:b"],
                        SimConfig(eval_every=1e-3, confirm=1, hardware=hardware,
                                  accelerators=2), runs=1))
    # C_b(1) = 4 FLOPs at 10 x 0.25 FLOP/s per accelerator on 2 accelerators.
    assert run.time_to_target == pytest.approx(4.0 / (10.0 * 0.25 * 2), abs=1e-3)
    assert run.accelerator_hours == pytest.approx(2 * run.time_to_target / 3600)


def test_the_target_counts_from_the_first_evaluation_of_the_confirming_streak():
    """Read off the trajectory: the first window of ``confirm`` observations at or below the
    target. Noise makes observations cross the target back and forth before; checkpoints
    (which fall inside stretches) and one segment without consultation make long stretches."""
    from sim import FaultModel

    faults = FaultModel(mtbf_hours=1e6, checkpoint_seconds=0.01, interval_seconds=0.05)
    config = SimConfig(eval_every=1e-3, noise=0.05, confirm=4, faults=faults)
    policy = Scheduled("b-only", [("b", 1.0)])
    for seed in range(4):
        request = PlanRequest.for_laws(two_shapes(), 1.0)
        run = only(simulate(two_shapes(), request, [policy], config, runs=1, seed=seed))
        observed = [row[3] for row in run.trajectory]
        first = next(i for i in range(len(observed) - 3)
                     if all(loss <= 1.0 for loss in observed[i:i + 4]))
        assert sum(loss <= 1.0 for loss in observed[:first]) > 0  # crossings before the streak
        assert run.reached and run.evaluations == len(observed) == first + 4
        time, flops, true_loss = run.trajectory[first][:3]
        assert run.compute_to_target == pytest.approx(flops, rel=1e-12)
        assert run.time_to_target == pytest.approx(time, rel=1e-12)
        assert run.true_loss_at_target == true_loss


class Recorder(Policy):
    """Stays on b; asks to be consulted once the observed loss is 0.05 below where it was last
    consulted, and notes (evaluations, observed) at every call (in a list its clones share)."""

    name = "recorder"

    def __init__(self, calls: list) -> None:
        self.calls = calls

    def begin(self, run) -> str:
        self.stay_above = 1.6
        return "b"

    def decide(self, run) -> str | None:
        self.calls.append((run.evaluations, run.observed))
        self.stay_above = run.observed - 0.05
        return None


def test_the_policy_is_consulted_exactly_when_an_observation_reaches_its_level():
    calls: list = []
    run = only(simulate(two_shapes(), PlanRequest.for_laws(two_shapes(), 1.0), [Recorder(calls)],
                        SimConfig(eval_every=1e-3, noise=0.03, confirm=2), runs=1, seed=5))
    level, expected = 1.6, []
    for evaluation, (_, _, _, observed, _) in enumerate(run.trajectory, start=1):
        if observed <= level:
            expected.append((evaluation, observed))
            level = observed - 0.05
    assert len(expected) > 5
    # The last evaluation confirms the target, so the run stops before consulting the policy.
    assert calls == [call for call in expected if call[0] < run.evaluations]


# -- the look-ahead (sim.lookahead), each piece against a walk one evaluation at a time --------

QUARTERS = st.integers(1, 40).map(lambda k: k / 4)  # exact in binary: sums below are exact


@settings(max_examples=200, deadline=None)
@given(start=st.floats(-1e6, 1e6), step=st.floats(1e-3, 1e3), gap=st.floats(-10.0, 3000.0))
def test_steps_to_is_the_least_count_that_reaches_the_level(start, step, gap):
    level = start + gap * step
    least = next((n for n in range(1, 2049) if start + n * step >= level), 2048)
    assert steps_to(start, step, level) == least


@pytest.mark.parametrize(("start", "step", "level"), [
    (574615.0, 9.571205698320808, 574854.280142458),  # the quotient's ceiling is one too many
    (-830.2560096821567, 8.355153282416365, -36.51644785260189),  # ... and one too few
    (0.0, 1.0, -5.0), (3.0, 0.5, 3.0)])  # already reached: one evaluation all the same
def test_steps_to_where_rounding_puts_the_quotient_off_by_one(start, step, level):
    least = next(n for n in range(1, 2049) if start + n * step >= level)
    assert steps_to(start, step, level) == least


def walk_legs(left, now, spent, seconds, flops, save_seconds, save_flops, due, every, budget,
              deadline):
    """``plan_legs`` one evaluation at a time: a checkpoint after an evaluation that finds it
    due, the stretch over at its last evaluation or at the budget or deadline, or before a
    checkpoint that would reach them."""
    legs, count, start, at_start = [], 0, now, spent
    for i in range(left):
        now, spent, count = now + seconds, spent + flops, count + 1
        if i == left - 1 or spent >= budget or now >= deadline:
            return [*legs, (count, start, at_start)], now
        if now >= due:
            legs.append((count, start, at_start))
            if spent + save_flops >= budget or now + save_seconds >= deadline:
                return legs, now
            now, spent = now + save_seconds, spent + save_flops
            due, count, start, at_start = now + every, 0, now, spent
    raise AssertionError("a stretch has at least one evaluation")


@settings(max_examples=300, deadline=None)
@given(left=st.integers(1, 60), seconds=QUARTERS, flops=QUARTERS,
       save_seconds=st.sampled_from([0.0, 0.25, 1.0, 3.5]),
       save_flops=st.sampled_from([0.0, 0.5, 2.0]), due=st.integers(-2, 40),
       every=st.sampled_from([0.0, 0.5, 2.0, 7.25]), budget=st.integers(1, 400),
       deadline=st.sampled_from([math.inf, 5.0, 30.0, 120.0]))
def test_plan_legs_cuts_a_stretch_where_a_walk_by_evaluation_does(left, seconds, flops,
                                                                  save_seconds, save_flops, due,
                                                                  every, budget, deadline):
    args = (left, 1.0, 0.5, seconds, flops, save_seconds, save_flops, float(due), every,
            float(budget), deadline)
    legs, end = plan_legs(*args)
    assert (legs, end) == walk_legs(*args)
    assert all(count >= 1 for count, _, _ in legs) and sum(c for c, _, _ in legs) <= left


def test_leg_end_and_completed_legs_follow_the_evaluations_of_the_legs():
    legs = [(3, 0.0, 0.0), (2, 3.5, 7.0), (4, 6.0, 12.0)]  # evaluations of 1 s and 2 FLOPs
    ends = [(t + n * 1.0, f + n * 2.0) for count, t, f in legs for n in range(1, count + 1)]
    assert [leg_end(legs, i, 1.0, 2.0) for i in range(9)] == ends
    # A failure 0.25 s into the second evaluation of the second leg, then into the last one
    # (which never completes: the stretch's last evaluation comes with what it calls for).
    assert completed_legs(legs, 4.75, 1.0) == ([(3, 0.0, 0.0), (1, 3.5, 7.0)], 0.25)
    assert completed_legs(legs, 9.75, 1.0) == ([*legs[:2], (3, 6.0, 12.0)], 0.75)
    assert completed_legs(legs, 10.0, 1.0) == ([*legs[:2], (3, 6.0, 12.0)], 1.0)  # at its end
    assert completed_legs(legs, 3.25, 1.0) == ([(3, 0.0, 0.0)], 0.25)  # during the checkpoint


def look_ahead(observed, target=1.0, confirm=3, rng=None, noise=0.0) -> LookAhead:
    ahead = LookAhead(SimConfig(confirm=confirm, noise=noise), 1.0, target, rng)
    ahead.observe(np.asarray(observed, dtype=float), 0)
    return ahead


def walk_stop(observed, done, level, streak, target, confirm):
    for j in range(done, len(observed)):
        streak = streak + 1 if observed[j] <= target else 0
        if streak >= confirm or observed[j] <= level:
            return j - done + 1
    return len(observed) - done


@settings(max_examples=300, deadline=None)
@given(observed=st.lists(st.sampled_from([0.5, 0.9, 1.0, 1.1, 1.5, 2.0]), min_size=1,
                         max_size=40),
       level=st.sampled_from([-math.inf, 0.5, 0.95, 1.2, math.inf]), streak=st.integers(0, 4),
       confirm=st.integers(1, 4), data=st.data())
def test_the_stop_is_the_first_evaluation_that_consults_the_policy_or_confirms(
        observed, level, streak, confirm, data):
    ahead = look_ahead(observed, confirm=confirm)
    done = data.draw(st.integers(0, len(observed) - 1))
    assert ahead.stop(done, level, streak) == walk_stop(observed, done, level, streak, 1.0,
                                                        confirm)
    assert ahead.consults(level) == [i for i, x in enumerate(observed) if x <= level]
    stop = data.draw(st.integers(done + 1, len(observed)))
    walked = streak
    for x in observed[done:stop]:
        walked = walked + 1 if x <= 1.0 else 0
    assert ahead.streak_after(done, stop, streak) == walked


def test_evaluation_i_observes_the_ith_noise_draw_whatever_was_looked_ahead():
    """Draws come in blocks of 256, each used last to first (as the simulator always has)."""
    sigma, seed = 0.1, 7
    z = np.random.default_rng(seed).standard_normal(4 * 256)
    factors = 1.0 + sigma * z.reshape(-1, 256)[:, ::-1].ravel()
    ahead = look_ahead(np.ones(5), rng=np.random.default_rng(seed), noise=sigma)
    assert ahead.observed.tolist() == factors[:5].tolist()
    for evaluations, size in ((3, 300), (250, 10), (260, 600), (700, 50)):  # gaps, overlaps
        ahead.observe(np.full(size, 2.0), evaluations)
        assert ahead.observed.tolist() == (2.0 * factors[evaluations:evaluations + size]).tolist()


def test_a_noisy_run_leaves_a_shape_right_after_the_evaluation_its_level_reaches_the_loss():
    """The run looks ahead and asks the schedule only where its level can reach the segment's
    loss; read off the trajectory, one evaluation at a time, the median of the observed losses
    from 0.9 x its FLOPs on reaches 1.7 at the last evaluation on a, and at none before, though
    single evaluations fell below 1.7 earlier (whole FLOPs: the window's edge is exact)."""
    laws = LawSet("ab", (Shape("a", {}, PowerLaw(a=40.0, b=0.5, c=1.0)),
                         Shape("b", {}, PowerLaw(a=90.0, b=0.5, c=0.5))))
    policy = Scheduled("a-then-b", [("a", 1.7), ("b", -math.inf)])
    config = SimConfig(eval_every=1.0, noise=0.03, confirm=1)
    for seed in range(3):
        run = only(simulate(laws, PlanRequest.for_laws(laws, 1.2), [policy], config, runs=1,
                            seed=seed))
        on_a = [(flops, observed) for _, flops, _, observed, shape in run.trajectory
                if shape == "a"]
        levels = [statistics.median(o for f, o in on_a[:k] if f >= 0.9 * on_a[k - 1][0])
                  for k in range(1, len(on_a) + 1)]
        assert levels[-1] <= 1.7 < min(levels[:-1])
        assert min(observed for _, observed in on_a[:-1]) < 1.7  # the old rule left earlier
        assert [kind for _, kind, _ in run.events].count("switch") == 1
