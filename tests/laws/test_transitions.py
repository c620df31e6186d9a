"""The transition models fitted from curves with switches: switch records read by hand, known
parameters recovered from curves written in closed form, out-of-sample scores checked against
the RMSE computed directly."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.optimize import brentq

from cli import main
from laws.errors import InputError
from laws.fit.transitions import (
    Switch,
    fit_model,
    fit_transitions,
    leave_one_run_out,
    switches_in_run,
    with_measured_transitions,
)
from laws.forms import PowerLaw
from laws.io.lawfile import law_set_from_dict, law_set_to_dict, read_law_file, write_law_file
from laws.lawset import LawSet, MeasuredTransition, Shape
from laws.presets import load_preset
from laws.search import PlanRequest, plan
from laws.search.planfile import MeasuredSwitch
from laws.transitions import extra_compute

# Shape b's law, loss = FLOOR + A * C^-B, written out here so that the curves below do not go
# through the code under test.
FLOOR, A, B = 0.3, 50.0, 0.3
LEVELS = (0.62, 0.56, 0.5, 0.46, 0.42, 0.4)  # the losses at which the runs switch


def landing(loss: float) -> float:
    return ((loss - FLOOR) / A) ** (-1.0 / B)


def on_law(compute: np.ndarray) -> np.ndarray:
    return FLOOR + A * compute ** -B


def law_set(a: float = A) -> LawSet:
    return LawSet("synthetic", (Shape("a", {"patch": 14}, PowerLaw(a=80.0, b=0.3, c=0.35)),
                                Shape("b", {"patch": 7}, PowerLaw(a=a, b=B, c=FLOOR))))


def since(loss: float) -> np.ndarray:
    return np.geomspace(0.02, 3.0, 25) * landing(loss)


def runs(curve) -> list[Switch]:
    """One switch a -> b per run, at each of LEVELS, its evaluations from ``curve``."""
    return [Switch(f"seed{k}", "a", "b", loss, since(loss), curve(loss, since(loss)))
            for k, loss in enumerate(LEVELS)]


def penalised(delta: float, tau: float):
    return lambda loss, flops: on_law(landing(loss) + flops) + delta * loss * np.exp(-flops / tau)


def delayed(lag: float):
    return lambda loss, flops: on_law(landing(loss) + np.maximum(flops - lag, 0.0))


def test_switches_read_from_records_by_hand():
    def evaluation(flops, loss, shape):
        return {"event": "eval", "flops": flops, "eval_loss": loss, "shape_name": shape}

    records = [
        {"event": "switch", "flops": 0.0, "eval_loss": None},  # moves to the first shape
        evaluation(0.0, 3.0, "s"), evaluation(5.0, 2.5, "s"),
        {"event": "switch", "flops": 5.0, "eval_loss": 2.5},
        evaluation(7.0, 2.7, "m"), evaluation(9.0, 2.3, "m"),
        {"event": "switch", "flops": 9.0, "eval_loss": 2.3},
        evaluation(12.0, 2.4, "l"),
        {"event": "switch", "flops": 12.0, "eval_loss": 2.4},  # the run ended on it
    ]
    found = switches_in_run("r", records)
    assert [(s.pair, s.loss, s.since.tolist(), s.observed.tolist()) for s in found] == [
        (("s", "m"), 2.5, [2.0, 4.0], [2.7, 2.3]),
        (("m", "l"), 2.3, [3.0], [2.4]),
    ]


def test_free_scores_zero_on_curves_that_follow_the_law():
    comparison = leave_one_run_out(law_set(), runs(lambda loss, flops: on_law(landing(loss)
                                                                              + flops)))
    assert comparison.rmse("free") == pytest.approx(0.0, abs=1e-12)
    # The fitted models can do no better, and find no cost: a delay of 0, a penalty of 0.
    assert comparison.rmse("constant-flops") == pytest.approx(0.0, abs=1e-9)
    assert comparison.rmse("transient-penalty") == pytest.approx(0.0, abs=1e-7)
    assert comparison.switches == len(LEVELS) and comparison.evaluations == 25 * len(LEVELS)


def test_transient_penalty_recovered_and_scored_out_of_sample():
    delta, tau = 0.4, 0.3 * landing(0.5)
    switches = runs(penalised(delta, tau))
    recovered = fit_model("transient-penalty", law_set(), switches)
    assert recovered == pytest.approx((delta, tau), rel=1e-5)
    comparison = leave_one_run_out(law_set(), switches)
    assert comparison.rmse("transient-penalty") == pytest.approx(0.0, abs=1e-6)
    # "free" misses exactly the penalty: its RMSE, computed here in closed form.
    gaps = np.concatenate([np.log(on_law(landing(s.loss) + s.since)) - np.log(s.observed)
                           for s in switches])
    assert comparison.rmse("free") == pytest.approx(np.sqrt(np.mean(gaps ** 2)), rel=1e-9)
    assert comparison.rmse("free") > 0.05
    assert comparison.rmse("transient-penalty") < comparison.rmse("constant-flops")


def test_constant_delay_recovered():
    lag = 0.25 * landing(0.5)
    recovered = fit_model("constant-flops", law_set(), runs(delayed(lag)))
    assert recovered == pytest.approx((lag,), rel=1e-5)
    assert leave_one_run_out(law_set(), runs(delayed(lag))).rmse("constant-flops") == (
        pytest.approx(0.0, abs=1e-6))


def slowed(factor: float):
    return lambda loss, flops: on_law(landing(loss) + flops / (1.0 + factor))


def test_slowdown_recovered_kept_and_charged_in_closed_form():
    """Curves on which b learns 1.3 times slower after every switch: the slowdown is fitted
    back, scores best out of sample, is the model the law set keeps, and a switch at 0.5 to
    the target 0.42 costs 0.3 x (C_b(0.42) - C_b(0.5)) FLOPs more than a free one."""
    switches = runs(slowed(0.3))
    assert fit_model("slowdown", law_set(), switches) == pytest.approx((0.3,), rel=1e-6)
    comparison = leave_one_run_out(law_set(), switches)
    assert comparison.rmse("slowdown") == pytest.approx(0.0, abs=1e-7)
    assert comparison.rmse("transient-penalty") > 10 * comparison.rmse("slowdown")
    (kept,) = with_measured_transitions(law_set(), switches).transitions.measured
    assert (kept.model, kept.params["factor"]) == ("slowdown", pytest.approx(0.3, rel=1e-6))
    law = law_set().shape("b").law
    assert extra_compute("slowdown", law, 0.5, 0.42, (0.3,)) == pytest.approx(
        0.3 * (landing(0.42) - landing(0.5)), rel=1e-12)


def test_bootstrap_samples_fit_on_the_laws_sample_of_their_index():
    delta, tau = 0.4, 0.3 * landing(0.5)
    point = law_set()
    steeper = law_set(a=1.1 * A)
    laws = LawSet("synthetic", tuple(
        Shape(s.name, s.axes, s.law, samples=(s.law, other.law))
        for s, other in zip(point.shapes, steeper.shapes, strict=True)))
    (pair,) = fit_transitions(laws, runs(penalised(delta, tau)), resamples=4, seed=1)
    assert (pair.source, pair.destination, pair.switches) == ("a", "b", len(LEVELS))
    assert pair.params["transient-penalty"] == pytest.approx((delta, tau), rel=1e-5)
    samples = pair.samples["transient-penalty"]
    assert len(samples) == 4 and len(pair.samples["constant-flops"]) == 4
    # Samples 0 and 2 use the law the curves follow: any resample of switches recovers the
    # truth. Samples 1 and 3 use a law 10% higher above its floor, whose curve from the same
    # loss falls more slowly: the truth no longer fits exactly there.
    for k in (0, 2):
        assert samples[k] == pytest.approx((delta, tau), rel=1e-4)
    for k in (1, 3):
        assert samples[k] != pytest.approx((delta, tau), rel=1e-3)
    low, high = pair.interval("transient-penalty")[0]  # the samples' lowest and highest
    assert (low, high) == (pytest.approx(min(s[0] for s in samples), rel=1e-12),
                           pytest.approx(max(s[0] for s in samples), rel=1e-12))


def test_every_sample_stays_paired_with_the_laws_sample_of_its_index():
    """Law sample 1's floor (0.45) lies above two of the switches, sample 2's (0.7) above all:
    no sample is dropped (sample k of the transition goes with law sample k), sample 2 keeps
    the point parameters, and samples 0 and 3, on the law the curves follow, the truth."""
    delta, tau = 0.4, 0.3 * landing(0.5)
    point = law_set()
    floors = (FLOOR, 0.45, 0.7)
    laws = LawSet("synthetic", (
        Shape("a", point.shape("a").axes, point.shape("a").law,
              samples=(point.shape("a").law,) * 3),
        Shape("b", point.shape("b").axes, point.shape("b").law,
              samples=tuple(PowerLaw(a=A, b=B, c=floor) for floor in floors))))
    (pair,) = fit_transitions(laws, runs(penalised(delta, tau)), resamples=6, seed=2)
    for model, samples in pair.samples.items():
        assert len(samples) == 6, model
        assert samples[2] == samples[5] == pair.params[model]
    for k in (0, 3):
        assert pair.samples["transient-penalty"][k] == pytest.approx((delta, tau), rel=1e-4)


def test_a_pair_in_one_run_only_scores_nothing():
    one = runs(delayed(1e6))[:1]
    with pytest.raises(InputError, match="two runs"):
        leave_one_run_out(law_set(), one)


def test_extra_compute_of_a_transient_penalty_solves_its_equation():
    delta, tau, switched, target = 0.4, 0.3 * landing(0.5), 0.5, 0.44
    law = law_set().shape("b").law
    extra = extra_compute("transient-penalty", law, switched, target, (delta, tau))
    free = landing(target) - landing(switched)
    after = free + extra  # FLOPs from the switch to the target, penalty included
    assert penalised(delta, tau)(switched, np.array([after]))[0] == pytest.approx(target,
                                                                                  abs=1e-10)
    assert extra > 0
    # The penalty has faded long before a far target: almost nothing is left to pay there.
    far = extra_compute("transient-penalty", law, switched, 0.34, (delta, tau))
    assert 0 <= far < 1e-3 * extra
    assert extra_compute("free", law, switched, target, ()) == 0.0
    assert extra_compute("constant-flops", law, switched, FLOOR, (5.0,)) == float("inf")


def with_measured(laws: LawSet, *measured: MeasuredTransition) -> LawSet:
    return replace(laws, transitions=replace(laws.transitions, measured=measured))


def test_law_files_keep_measured_transitions_and_old_ones_load(tmp_path):
    demo = load_preset("demo")
    # A law file without measured transitions writes none: its digest (plans name it) stays.
    assert "measured" not in law_set_to_dict(demo)["transitions"]
    jump = MeasuredTransition("p16", "p8", "transient-penalty", {"delta": 0.6, "tau_flops": 2e17},
                              ((0.5, 1e17), (0.7, 3e17)), 8, {"free": 0.14})
    laws = with_measured(demo, jump)
    path = tmp_path / "laws.json"
    write_law_file(laws, path)
    assert read_law_file(path) == laws
    data = json.loads(path.read_text())
    data["transitions"]["measured"][0]["samples"] = [[0.5]]
    with pytest.raises(InputError, match=r"measured\[0\]\.samples\[0\]: expected a list of 2"):
        law_set_from_dict(data, "bad.json")
    data["transitions"]["measured"][0].update(samples=[], to="p4")
    with pytest.raises(InputError, match="names no shape 'p4'"):
        law_set_from_dict(data, "bad.json")


def demo_penalty_root(switched: float, target: float, delta: float, tau: float) -> float:
    """FLOPs after a switch at ``switched`` onto demo's p8 with a transient penalty until the
    loss reaches ``target``, minus the free switch's: the demo law written out, brentq."""
    a, b, c = 57865.895821698425, 0.26, 1.5
    start = ((switched - c) / a) ** (-1 / b)

    def above(flops: float) -> float:
        return c + a * (start + flops) ** -b + delta * switched * np.exp(-flops / tau) - target

    return brentq(above, 0.0, 1e25, xtol=1e-3, rtol=1e-15) - (((target - c) / a) ** (-1 / b)
                                                              - start)


def test_search_charges_a_measured_switch_what_its_transition_costs_the_route():
    delta, tau = 0.05, 5e18
    laws = with_measured(load_preset("demo"), MeasuredTransition(
        "p16", "p8", "transient-penalty", {"delta": delta, "tau_flops": tau}))
    # Only these switches: through free unmeasured ones (p16 -> p32 -> p8) a route would
    # dodge the charge.
    allowed = (("p32", "p16"), ("p16", "p8"))
    result = plan(laws, PlanRequest.for_laws(laws, 2.0, levels=400, allowed=allowed))
    schedule = result.optimal.schedule
    assert result.optimal.shapes == ("p32", "p16", "p8")
    (charged,) = result.measured_switches
    expected = demo_penalty_root(schedule[2].loss_from, 2.0, delta, tau)
    assert charged == MeasuredSwitch("p16", "p8", "transient-penalty",
                                     pytest.approx(expected, rel=1e-6))
    assert schedule[2].switch_compute == charged.flops > 0
    # Only the unmeasured switch is assumed free.
    assert result.assumptions == ("assumes a free switch p32 -> p16",)
    # Settled: the charge is what the transition costs this route's own switch (above), and
    # the route's cost is its training on the demo laws, written out, plus that charge.
    params = {"p32": (125892.54117941667, 0.3, 2.0), "p16": (92070.3899739452, 0.28, 1.7),
              "p8": (57865.895821698425, 0.26, 1.5)}

    def compute(shape: str, loss: float) -> float:
        a, b, c = params[shape]
        return ((loss - c) / a) ** (-1 / b)

    trained = compute("p32", schedule[0].loss_to) + sum(
        compute(s.shape, s.loss_to) - compute(s.shape, s.loss_from)
        for s in schedule[1:])
    assert result.optimal.cost == pytest.approx(trained + charged.flops, rel=1e-9)


def test_a_costly_measured_switch_leaves_the_plan_static():
    demo = load_preset("demo")
    jumps = [MeasuredTransition(a, b, "constant-flops", {"flops": 1e21})
             for a in demo.names for b in demo.names if a != b]
    laws = with_measured(demo, *jumps)
    result = plan(laws, PlanRequest.for_laws(laws, 2.0, levels=200))
    assert result.optimal.switches == 0 and result.saving_vs_static == 0.0
    assert result.assumptions == () and result.measured_switches == ()
    # --switch-flops, given, replaces the measured transitions: none is charged.
    given = plan(laws, PlanRequest.for_laws(laws, 2.0, levels=200, switch_flops=0.0))
    assert given.optimal.switches == 2 and given.measured_switches == ()


def test_fit_keeps_the_transitions_of_switching_runs_and_search_uses_them(tmp_path):
    examples = Path(__file__).resolve().parents[2] / "docs" / "examples"
    loop = examples / "validate-vit-patch" / "merge-6e12-8seeds"
    out = tmp_path / "laws.json"
    fitted = CliRunner().invoke(main, ["fit", str(loop / "static"), "--switch-runs",
                                       str(loop / "adaptive"), "--form", "power", "-o", str(out)])
    assert fitted.exit_code == 0, fitted.output
    assert "transition patch14 -> patch7 (8 switches): transient-penalty" in fitted.output
    (measured,) = read_law_file(out).transitions.measured
    assert (measured.source, measured.destination, measured.switches) == ("patch14", "patch7", 8)
    assert set(measured.rmse) == {"free", "constant-flops", "transient-penalty", "slowdown",
                                  "penalty-slowdown"}
    # The model kept scores within 0.01% of the best there with the fewest parameters:
    # penalty-slowdown adds a slowdown fitted to nothing on these switches (a factor near
    # 1e-15) and scores the same as transient-penalty up to rounding.
    best = min(("constant-flops", "transient-penalty", "slowdown", "penalty-slowdown"),
               key=measured.rmse.get)
    assert measured.model == "transient-penalty"
    assert measured.rmse["transient-penalty"] <= measured.rmse[best] * (1 + 1e-4)
    searched = CliRunner().invoke(main, ["search", str(out), "--target", "0.4", "--json",
                                         "--allowed", "patch14:patch7", "--strict"])
    assert searched.exit_code == 0, searched.output
    result = json.loads(searched.output)
    assert result["assumptions"] == []
    assert [(m["from"], m["to"]) for m in result["measured_switches"]] == [("patch14", "patch7")]
    static = CliRunner().invoke(main, ["fit", str(loop / "static"), "--switch-runs",
                                       str(loop / "static"), "-o", str(tmp_path / "x.json")])
    assert static.exit_code == 2 and "no transition to measure" in static.output
