"""The plan file (laws/search/planfile.py): a ``Plan`` survives its JSON round trip, the plans
committed under docs/examples (written by earlier versions) read and write back as they are,
and a file that is not a plan, or a plan with a key missing or of the wrong type, is refused
naming the file and the key."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from laws.errors import BadInputFile
from laws.lawset import MeasuredTransition
from laws.presets import load_preset
from laws.search import Plan, PlanRequest, plan, read_plan, write_plan

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
COMMITTED = sorted(EXAMPLES.rglob("plan*.json"))
# Keys of plans from before the request was recorded, which the type leaves out.
RETIRED = {"options"}
# Keys of plans from before shapeshift listed them, which read as empty.
ADDED = {"assumptions": [], "measured_switches": []}


def demo_plans() -> dict[str, Plan]:
    demo = load_preset("demo")
    charged = replace(demo, transitions=replace(demo.transitions, measured=(
        MeasuredTransition("p16", "p8", "constant-flops", {"flops": 1e17}),)))
    vit = load_preset("vit-patch-fmnist")  # carries bootstrap samples
    return {
        "demo": plan(demo, PlanRequest.for_laws(demo, 2.2, levels=300)),
        "demo, a measured switch": plan(charged, PlanRequest.for_laws(
            charged, 2.0, levels=300, allowed=(("p32", "p16"), ("p16", "p8")))),
        "samples": plan(vit, PlanRequest.for_laws(vit, 0.42, levels=300)),
        "samples, robust": plan(vit, PlanRequest.for_laws(vit, 0.42, levels=300, robust=10.0,
                                                          switch_flops=1e11)),
    }


PLANS = demo_plans()


@pytest.mark.parametrize("name", PLANS)
def test_a_plan_survives_its_json_round_trip(name, tmp_path):
    made = PLANS[name]
    assert Plan.from_dict(json.loads(json.dumps(made.to_dict()))) == made
    write_plan(made, tmp_path / "plan.json")
    assert read_plan(tmp_path / "plan.json") == made


def test_the_round_trips_cover_every_optional_part():
    """Otherwise the test above would not reach the uncertainty, the robust choice or a
    measured switch, and a mistake in their types could pass it."""
    charged = PLANS["demo, a measured switch"].measured_switches
    assert [(m.from_shape, m.to_shape, m.flops) for m in charged] == [("p16", "p8", 1e17)]
    assert PLANS["demo"].uncertainty is None
    assert PLANS["samples"].uncertainty.samples > 0 and PLANS["samples"].uncertainty.robust is None
    assert PLANS["samples, robust"].uncertainty.robust.quantile == 10.0
    # A switch's keys in the file are "from" and "to" (the type's are not Python keywords).
    (written,) = PLANS["demo, a measured switch"].to_dict()["measured_switches"]
    assert written == {"from": "p16", "to": "p8", "model": "constant-flops", "flops": 1e17}


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_committed_plan_reads_and_writes_back_as_it_is(path):
    data = json.loads(path.read_text())
    if "request" not in data:  # the one plan from before the request was recorded
        with pytest.raises(BadInputFile, match="a plan from an older shapeshift"):
            read_plan(path)
        return
    written = read_plan(path).to_dict()
    assert written == {**ADDED, **{k: v for k, v in data.items() if k not in RETIRED}}
    assert set(written) - set(data) <= set(ADDED)


def test_committed_plans_include_old_and_new_formats():
    """The test above checks what it should only if both kinds are committed."""
    kinds = {("request" in data, "assumptions" in data, "options" in data)
             for data in (json.loads(path.read_text()) for path in COMMITTED)}
    assert {(False, False, True), (True, False, True), (True, True, False)} <= kinds


def without(data: dict, path: tuple) -> dict:
    """``data`` with the key at ``path`` (keys and list indices) removed."""
    changed = copy.deepcopy(data)
    *parents, last = path
    container = changed
    for step in parents:
        container = container[step]
    del container[last]
    return changed


@pytest.mark.parametrize("path, named", [
    (("static_best",), "'static_best'"),
    (("saving_vs_static",), "'saving_vs_static'"),
    (("optimal", "cost"), "'optimal.cost'"),
    (("optimal", "schedule", 1, "shape"), "'optimal.schedule[1].shape'"),
    (("laws", "digest"), "'laws.digest'"),
    (("uncertainty", "plan_saving", "p95"), "'uncertainty.plan_saving.p95'"),
    (("uncertainty", "robust", "schedule", 0, "loss_to"),
     "'uncertainty.robust.schedule[0].loss_to'"),
])
def test_a_missing_key_is_named_with_the_file(path, named):
    data = without(PLANS["samples, robust"].to_dict(), path)
    with pytest.raises(BadInputFile, match=rf"^plan\.json: no {re.escape(named)}"):
        Plan.from_dict(data, "plan.json")


@pytest.mark.parametrize("path, value, named, expected", [
    (("levels",), "300", "'levels'", "an integer"),
    (("levels",), True, "'levels'", "an integer"),
    (("target_loss",), None, "'target_loss'", "a number"),
    (("optimal", "schedule"), {}, "'optimal.schedule'", "a list"),
    (("static", "p16"), "far", "'static.p16'", "a number"),
    (("measured_switches", 0, "from"), 16, "'measured_switches[0].from'", "a string"),
])
def test_a_mistyped_key_is_named_with_the_file(path, value, named, expected):
    data = PLANS["demo, a measured switch"].to_dict()
    container = data
    for step in path[:-1]:
        container = container[step]
    container[path[-1]] = value
    with pytest.raises(BadInputFile, match=rf"^plan\.json: {re.escape(named)} must be {expected}"):
        Plan.from_dict(data, "plan.json")


def test_a_request_the_search_would_refuse_is_a_bad_file():
    data = PLANS["demo"].to_dict()
    data["request"]["levels"] = 1
    with pytest.raises(BadInputFile, match="levels must be an integer from 2"):
        Plan.from_dict(data, "plan.json")


def test_a_plan_without_its_request_is_from_an_older_shapeshift():
    data = without(PLANS["demo"].to_dict(), ("request",))
    with pytest.raises(BadInputFile, match=r"^plan\.json: no 'request'.*a plan from an older "
                                           r"shapeshift: run `search` again"):
        Plan.from_dict(data, "plan.json")


@pytest.mark.parametrize("file, kind", [
    ("validate-mlp-width/laws.json", "a law file"),
    ("validate-mlp-width/summary.json", "the summary.json of `validate run`"),
])
def test_a_law_file_or_a_summary_is_not_a_plan(file, kind):
    path = EXAMPLES / file
    with pytest.raises(BadInputFile, match=re.escape(f"{path} is {kind}, not a plan of "
                                                     "`shapeshift search`")):
        read_plan(path)
    result = CliRunner().invoke(main, ["simulate", "--preset", "demo", "--target", "2.1",
                                       "--plan", str(path)])
    assert result.exit_code == 2
    assert f"is {kind}, not a plan" in result.output and "Traceback" not in result.output
