"""The comparison report's cases beyond the one report the other file reads: the baseline, the
verdict, the paired interval, true crossings, random draws, hours, the committed examples."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from laws.errors import InputError
from laws.forms import PowerLaw
from laws.lawset import LawSet, Shape
from laws.presets import load_preset, preset_path
from laws.search import PlanRequest
from laws.search.planfile import Percentiles, PlanUncertainty
from laws.search.request import default_target
from sim import SimConfig
from sim.report import compare
from tests.sim.test_report import (
    TARGET,
    first_paragraph,
    markdown_tables,
    mean_and_range,
    table_with,
)


def test_best_static_runs_as_the_baseline_even_when_not_asked(tmp_path):
    demo = load_preset("demo")
    compare(demo, PlanRequest.for_laws(demo, TARGET, levels=100), ["planned"],
            SimConfig(eval_every=2e17), out_dir=tmp_path, runs=1)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["options"]["policies"] == ["planned", "static"]
    assert summary["simulation"]["baseline"]["source"] == "simulated"


def test_a_law_set_without_default_target_needs_a_target():
    laws = LawSet("bare", (Shape("a", {}, PowerLaw(4.0, 0.5, 1.0)),))
    with pytest.raises(InputError, match="--target"):
        default_target(laws)


@pytest.mark.parametrize("example", ["demo", "gemstones-lm"])
def test_committed_examples_come_from_the_current_presets(example):
    """Regenerate docs/examples/<example> (commands in its README) when its preset changes."""
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "docs" / "examples"
    summary = json.loads((examples / example / "summary.json").read_text())
    laws = summary["inputs"]["laws"]
    preset = laws["source"].removeprefix("preset ")
    assert laws["sha256"] == hashlib.sha256(preset_path(preset).read_bytes()).hexdigest()


def verdict_inputs(fit_p5: float | None, runs_low: float | None
                   ) -> tuple[dict, PlanUncertainty | None]:
    fit = None if fit_p5 is None else PlanUncertainty(
        samples=200, level=0.9, saving=Percentiles(0.0, 0.1, 0.2),
        plan_saving=Percentiles(fit_p5, 0.1, 0.2), p_beats_static=0.9, schedules={"a": 1.0})
    runs = None if runs_low is None else {"mean": 0.08, "low": runs_low, "high": 0.12,
                                          "pairs": 20, "level": 0.9}
    return {"simulation": {"summary": {"planned": {"paired_saving": runs}}}}, fit


@pytest.mark.parametrize("fit_p5, runs_low, expected", [
    (0.02, 0.05, "so the saving is distinguishable from zero."),
    (-0.01, 0.05, "not distinguishable from zero (the fit's interval reaches 0)"),
    (0.02, -0.03, "not distinguishable from zero (the runs' interval reaches 0)"),
    (None, 0.05, "distinguishable from zero given the evaluation noise (the laws carry no"),
    (None, None, "is not known here"),
])
def test_the_verdict_weighs_both_intervals(fit_p5, runs_low, expected):
    from sim.report.sections import verdict

    text = verdict(*verdict_inputs(fit_p5, runs_low))
    assert expected in text
    if fit_p5 is not None:
        assert f"[{100 * fit_p5:.1f}%, 20.0%] (90%, 200 bootstrap samples)" in text


def test_paired_saving_is_the_t_interval_of_the_per_replication_savings(four, four_plan):
    from scipy import stats

    from sim import SimConfig, simulate

    request = PlanRequest.for_laws(four, 1.45)
    results = simulate(four, request, ["planned", "static"], SimConfig(noise=0.02), runs=8,
                       seed=4, plan=four_plan)
    static = {r.replication: r.compute_to_target for r in results.runs_of("static:w512")}
    savings = [1 - r.compute_to_target / static[r.replication]
               for r in results.runs_of("planned")]
    low, high = stats.t.interval(0.9, len(savings) - 1, loc=np.mean(savings),
                                 scale=stats.sem(savings))
    paired = results.paired_saving("planned")
    assert paired["pairs"] == 8
    assert paired["mean"] == pytest.approx(np.mean(savings))
    assert (paired["low"], paired["high"]) == pytest.approx((low, high))


@pytest.mark.parametrize("eval_seconds, factor", [(0.0, 1.0), (2.0, 2.0)])
def test_the_true_crossing_of_a_static_run_is_the_closed_form(eval_seconds, factor):
    """loss = 1 + 4 C^-0.5 crosses 1.5 at C = (4 / 0.5)^2 = 64 training FLOPs, whatever the
    noise made the run observe; an evaluation of 2 s at 0.05 FLOP/s costs 0.1 FLOPs, as much
    as the 0.1 FLOPs of training between two, so the crossing then costs twice 64."""
    from sim import simulate

    laws = LawSet("t", (Shape("a", {}, PowerLaw(4.0, 0.5, 1.0), throughput=0.05),))
    config = SimConfig(noise=0.05, eval_every=0.1, eval_seconds=eval_seconds)
    results = simulate(laws, PlanRequest.for_laws(laws, 1.5), ["static:a"], config, runs=6,
                       seed=1)
    stops = []
    for run in results.runs:
        assert run.reached
        assert run.true_compute_to_target == pytest.approx(64.0 * factor, rel=1e-9)
        stops.append(run.compute_to_target)
    assert np.ptp(stops) > 0.5  # the observed stops scatter around it


def test_random_draws_only_shapes_that_can_reach_the_target():
    """Floors 1.0 and 1.2 lie below the target 1.5, b's 1.6 does not: with b among the draws a
    run below 1.6 would be thrown back to b's floor."""
    from sim import simulate
    from sim.policies import RandomShape

    laws = LawSet("t", (Shape("a", {}, PowerLaw(4.0, 0.5, 1.0)),
                        Shape("b", {}, PowerLaw(2.0, 0.5, 1.6)),
                        Shape("c", {}, PowerLaw(3.0, 0.5, 1.2))))
    assert RandomShape(laws).names == ["a", "b", "c"]
    policy = RandomShape(laws, 1.5)
    results = simulate(laws, PlanRequest.for_laws(laws, 1.5), [policy],
                       SimConfig(eval_every=1.0), runs=4, seed=2)
    trained = {row[4] for run in results.runs for row in run.trajectory}
    assert trained == {"a", "c"}
    assert all(run.reached for run in results.runs)
    with pytest.raises(InputError, match="no shape's floor lies below the target 0.9"):
        RandomShape(laws, 0.9)


def test_hours_from_assumed_throughputs_say_so(tmp_path):
    """Without throughputs in the law file, hours come from the default 1e15 x 0.4 FLOP/s: the
    report says so beside them, and the switch points carry no hours."""
    laws = LawSet("bare", (Shape("a", {}, PowerLaw(4.0, 0.5, 1.0)),
                           Shape("b", {}, PowerLaw(1.0, 0.5, 1.4))))
    compare(laws, PlanRequest.for_laws(laws, 1.45, levels=200), ["planned"],
            SimConfig(eval_every=1.0), out_dir=tmp_path, runs=2)
    markdown = (tmp_path / "report.md").read_text()
    assert ("Hours at an assumed 4.000e+14 FLOP/s per accelerator, 1 per run (1e+15 FLOP/s "
            "peak x 0.4 utilisation; the law file has no throughput for a, b)") in markdown
    lead = first_paragraph(tmp_path)
    assert re.search(r"b → a at loss \S+ \(after \S+ FLOPs\)", lead), lead


def test_accelerator_hours_appear_where_they_differ_from_the_time(tmp_path):
    """Two accelerators per run and no queue: accelerator-hours = 2 x hours to target."""
    demo = load_preset("demo")
    compare(demo, PlanRequest.for_laws(demo, TARGET, levels=100), ["planned"],
            SimConfig(eval_every=2e17, accelerators=2), out_dir=tmp_path, runs=2)
    columns, _ = table_with(markdown_tables((tmp_path / "report.md").read_text()),
                            "policy", "reached")
    for hours, accelerator_hours in zip(columns["time to target (h)"],
                                        columns["accelerator-hours"], strict=True):
        np.testing.assert_allclose(mean_and_range(accelerator_hours),
                                   2 * np.array(mean_and_range(hours)), rtol=2e-3)
