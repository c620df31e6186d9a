"""When a plan recommends training one shape alone: its optimal route makes no switch, or the
low end of its saving's interval reaches 0 (issue 23: "when no schedule beats static within
its interval, the plan recommends staying static and says why")."""

from __future__ import annotations

from dataclasses import replace

import pytest
from click.testing import CliRunner

from cli import main
from laws.presets import load_preset
from laws.search import PlanRequest, plan
from laws.search.planfile import Percentiles
from tests.closed_forms import best_static, power_params

VIT = load_preset("vit-patch-fmnist")  # carries bootstrap samples
SWITCHING = plan(VIT, PlanRequest.for_laws(VIT, 0.42, levels=300))


def test_a_plan_that_makes_no_switch_recommends_the_cheapest_shape_and_says_why():
    demo = load_preset("demo")
    # Switches that cost more than any shape's whole run leave every shape alone.
    result = CliRunner().invoke(main, ["search", "--preset", "demo", "--target", "2.0",
                                       "--switch-flops", "1e30"])
    assert result.exit_code == 0, result.output
    cheapest, _ = best_static(power_params(demo), 2.0)
    assert result.output.rstrip().endswith(
        f"recommendation: train {cheapest} alone (no schedule that switches is cheaper to the "
        "target)")


@pytest.mark.parametrize("low, recommended", [(-0.01, True), (0.0, True), (0.001, False)])
def test_a_switching_plan_recommends_static_where_its_interval_reaches_zero(low, recommended):
    assert SWITCHING.optimal.switches > 0 and SWITCHING.uncertainty is not None
    saving = Percentiles(low, 0.05, 0.1)
    doubtful = replace(SWITCHING, uncertainty=replace(SWITCHING.uncertainty,
                                                      plan_saving=saving))
    assert doubtful.recommends_static is recommended


def test_without_samples_a_switching_plan_is_followed():
    demo = load_preset("demo")
    point = plan(demo, PlanRequest.for_laws(demo, 2.0, levels=300))
    assert point.optimal.switches > 0 and point.uncertainty is None
    assert not point.recommends_static


def test_the_command_prints_the_low_end_it_judged():
    from laws.search.plans import format_plan

    doubtful = replace(SWITCHING, uncertainty=replace(
        SWITCHING.uncertainty, plan_saving=Percentiles(-0.073, 0.0, 0.027)))
    assert format_plan(doubtful).endswith(
        f"recommendation: train {SWITCHING.static_best.shape} alone (this plan's saving over it "
        "reaches -7.3% at the low end of its 90% interval: following it may lose to static)")
