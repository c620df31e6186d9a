"""Keep points and cool-down branches of a run that switches shape (validate/cooldown.py): keep
points at evaluation levels leave the run's curve and switches as they were; a branch cools
down at the shape the run is on at its kept state, with no further switch, and ends bit for
bit like the straight wsd run of its budget with the run's switches up to there; killed, it
resumes exactly."""

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from cli import main
from laws.errors import InputError
from laws.forms import PowerLaw
from laws.lawset import LawSet, Shape
from sim.policies import RandomShape
from tests.validate.test_cooldown import (
    AXES,
    BUDGET,
    SETTINGS,
    SHARE,
    STEP_FLOPS,
    _assert_same_tensors,
    kill_in_branch,
)
from tests.validate.test_train import _metrics, _switching_run
from validate.checkpoints import CHECKPOINT, kept_state_path, kept_state_paths
from validate.config import TrainConfig
from validate.cooldown import ANNEALED, branch_policy, cool_down, parse_keep_at
from validate.switches import Switch
from validate.train import RESULT, train

# mlp-width at width 8, batch 32: 22528 FLOPs a step; at width 16: 45056 (tasks.py's closed
# form, linear in the width; checked below). The run switches to width 16 after the step
# that reaches 1.8e6 FLOPs: step ceil(1.8e6 / 22528) = 80, at 80 x 22528 = 1,802,240. It keeps
# its state at two of its own evaluation levels, 1e7 x 0.01^(1 - i/5) for i = 3, 4:
# 1,584,893 (step ceil(70.35) = 71, before the switch, C = 1,599,488) and 3,981,071 (step
# 80 + ceil((3,981,071 - 1,802,240) / 45056) = 80 + 49 = 129, C = 4,009,984).
SWITCH = Switch({"width": 16}, at_flops=1.8e6)
WIDE_STEP_FLOPS, SWITCH_STEP = 45056, 80
KEEP_AT = tuple(BUDGET * 0.01 ** (1 - i / 5) for i in (3, 4))
KEPT_STEPS = (71, 129)
FIRST, WIDE = "width8-batch32", "width16-batch32"


@pytest.fixture(scope="module")
def switching(tmp_path_factory):
    """The switching run with its two kept states, and its branches at SHARE."""
    run_dir = tmp_path_factory.mktemp("switching") / "run"
    _switching_run(AXES, BUDGET, [SWITCH], TrainConfig(**SETTINGS, keep_at=KEEP_AT),
                   run_dir=run_dir)
    rows = cool_down(run_dir, SHARE, run_dir / "branches", progress=False)
    return run_dir, rows


def _read(path):
    return [json.loads(line) for line in path.open()]


def test_keep_points_at_evaluation_levels_leave_the_curve_and_switches_as_they_were(tmp_path):
    # A switch by loss: the policy reads every evaluation, so an added one could move it.
    switches = [Switch({"width": 16}, at_loss=0.3)]
    levels = parse_keep_at("auto:5", BUDGET, 0.01)
    assert levels == tuple(BUDGET * 0.01 ** (1 - i / 5) for i in range(5))
    assert set(levels) < set(TrainConfig(**SETTINGS).eval_levels(BUDGET))
    plain = _switching_run(AXES, BUDGET, switches, TrainConfig(**SETTINGS))
    kept = _switching_run(AXES, BUDGET, switches, TrainConfig(**SETTINGS, keep_at=levels),
                          run_dir=tmp_path / "kept")
    assert len(kept_state_paths(tmp_path / "kept")) == 5
    assert _metrics(kept.curve) == _metrics(plain.curve) and kept.switches == plain.switches
    assert len(plain.switches) == 1
    # A keep point between evaluation levels adds an evaluation, which the policy sees: at
    # 4e5 FLOPs (step ceil(4e5 / 22528) = 18, between the levels at steps 12 and 29) the
    # loss is below 0.3 already, and the switch fires there instead of at the next level.
    off = _switching_run(AXES, BUDGET, switches, TrainConfig(**SETTINGS, keep_at=(4e5,)),
                         run_dir=tmp_path / "off")
    first_below = next(r for r in off.curve if r["eval_loss"] <= 0.3)
    assert first_below["step"] == off.switches[0]["step"] == 18 < plain.switches[0]["step"]


def test_a_branch_after_the_switch_ends_bit_for_bit_like_the_straight_wsd_run_with_it(
        switching, tmp_path):
    run_dir, rows = switching
    kept = torch.load(kept_state_path(run_dir, 1), weights_only=False)["controller"]
    assert kept["step_flops"] == {FIRST: STEP_FLOPS, WIDE: WIDE_STEP_FLOPS}
    assert [row["step"] for row in rows] == list(KEPT_STEPS)
    flops = SWITCH_STEP * STEP_FLOPS + 49 * WIDE_STEP_FLOPS
    budget = flops / (1 - SHARE)
    assert (rows[1]["flops"], rows[1]["budget"]) == (flops, budget) == (4009984.0, 5012480.0)
    straight_dir = tmp_path / "straight"
    straight = _switching_run(AXES, budget, [SWITCH], TrainConfig(
        **SETTINGS, schedule="wsd", cooldown=SHARE), run_dir=straight_dir)
    branch_dir = run_dir / "branches" / "branch-1"
    branch_state, straight_state = (torch.load(folder / CHECKPOINT, weights_only=False)
                                    for folder in (branch_dir, straight_dir))
    _assert_same_tensors(branch_state, straight_state)
    # The last whole step within B: 129 + floor((5,012,480 - 4,009,984) / 45056) = 151.
    assert straight.final["step"] == KEPT_STEPS[1] + 22 == 151
    assert rows[1]["annealed_flops"] == straight.final["flops"] == (
        SWITCH_STEP * STEP_FLOPS + (151 - SWITCH_STEP) * WIDE_STEP_FLOPS) == 5001216.0
    assert rows[1]["annealed_loss"] == straight.final["eval_loss"]  # bit for bit
    assert rows[1]["shape"] == WIDE == straight.final["shape_name"]
    # The branch records the settings and the switch of the straight run, and its policy ends
    # in the same state: the schedule up to C, on its last segment.
    branch_result, straight_result = (json.loads((folder / RESULT).read_text())
                                      for folder in (branch_dir, straight_dir))
    assert branch_result["config"] == straight_result["config"]
    assert branch_result["config"]["policy"] == {
        "name": "switch-at", "schedule": [[FIRST, None, 1.8e6], [WIDE, None, None]]}
    assert branch_result["switches"] == straight.switches
    assert [(s["step"], s["flops"]) for s in straight.switches] == [(80, 1802240.0)]
    assert branch_state["controller"]["policy"] == straight_state["controller"]["policy"]
    after = [{k: v for k, v in r.items() if k != "train_loss"}
             for r in _metrics(_read(branch_dir / "curve.jsonl")) if r["step"] > KEPT_STEPS[1]]
    assert after == [{k: v for k, v in r.items() if k != "train_loss"}
                     for r in _metrics(straight.curve) if r["step"] > KEPT_STEPS[1]]


def test_a_branch_before_the_switch_cools_down_at_the_first_shape_and_never_switches(
        switching, tmp_path):
    run_dir, rows = switching
    flops = KEPT_STEPS[0] * STEP_FLOPS
    budget = flops / (1 - SHARE)
    assert (rows[0]["flops"], rows[0]["budget"]) == (flops, budget) == (1599488.0, 1999360.0)
    # B lies past the switch: the straight wsd run of B with the switch would switch after
    # step 80 and train on at width 16.
    assert budget >= SWITCH_STEP * STEP_FLOPS + WIDE_STEP_FLOPS
    branch_dir = run_dir / "branches" / "branch-0"
    curve = _read(branch_dir / "curve.jsonl")
    assert not [r for r in curve if r["event"] == "switch"]
    ends = [r for r in curve if r["step"] > KEPT_STEPS[0]]
    assert ends and {r["shape_name"] for r in ends} == {FIRST}
    result = json.loads((branch_dir / RESULT).read_text())
    assert result["switches"] == [] and result["final"]["shape_name"] == FIRST == rows[0]["shape"]
    assert result["final"]["step"] == math.floor(budget / STEP_FLOPS) == 88
    assert result["config"]["policy"] == {"name": "switch-at",
                                          "schedule": [[FIRST, None, None]]}
    # It is the straight wsd run of B at the first shape, bit for bit.
    static = _switching_run(AXES, budget, [], TrainConfig(**SETTINGS, schedule="wsd",
                                                          cooldown=SHARE),
                            run_dir=tmp_path / "static")
    _assert_same_tensors(torch.load(branch_dir / CHECKPOINT, weights_only=False),
                         torch.load(tmp_path / "static" / CHECKPOINT, weights_only=False))
    assert rows[0]["annealed_loss"] == static.final["eval_loss"]
    assert _read(run_dir / "branches" / ANNEALED) == rows


@pytest.mark.slow
def test_killed_in_a_branch_after_the_switch_the_rerun_ends_exactly_like_a_whole_one(
        switching, tmp_path):
    run_dir, _ = switching
    whole = cool_down(run_dir, 0.5, tmp_path / "whole", progress=False)
    out = tmp_path / "killed"
    kill_in_branch(run_dir, 0.5, out / "branch-1", KEPT_STEPS[1])
    assert cool_down(run_dir, 0.5, out, progress=False) == whole
    for branch in ("branch-0", "branch-1"):
        _assert_same_tensors(torch.load(out / branch / CHECKPOINT, weights_only=False),
                             torch.load(tmp_path / "whole" / branch / CHECKPOINT,
                                        weights_only=False))
    resumed = json.loads((out / "branch-1" / RESULT).read_text())
    assert resumed["resumed_from_step"] > KEPT_STEPS[1]  # from its own checkpoint
    assert resumed["final"]["shape_name"] == WIDE and len(resumed["switches"]) == 1


def test_the_command_keeps_states_of_a_run_that_switches(tmp_path):
    result = CliRunner().invoke(main, ["validate", "train", "mlp-width", "--budget", "5e6",
                                       "--shape", "width=8", "--switch-at", "0.5:width=12",
                                       "--keep-at", "1e6,3e6", "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert [path.name for path in kept_state_paths(tmp_path / "run")] == [
        "branch-0.pt", "branch-1.pt"]


def test_a_state_of_a_policy_that_is_no_schedule_is_refused_before_any_branch_trains(tmp_path):
    # A shape drawn at random at every evaluation, among two batch sizes (the batch changes
    # both ways; a width only grows).
    laws = LawSet("t", (Shape(FIRST, {}, PowerLaw(4.0, 0.5, 0.1)),
                        Shape("width8-batch64", {}, PowerLaw(2.0, 0.5, 0.1))))
    run_dir = tmp_path / "random"
    train("mlp-width", AXES, 4e5, RandomShape(laws), TrainConfig(evals=3, keep_at=(2e5,)),
          shapes={FIRST: AXES, "width8-batch64": {**AXES, "batch": 64}}, run_dir=run_dir,
          progress=False)
    result = CliRunner().invoke(main, ["validate", "cooldown", str(run_dir), "--share", "0.5"])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [
        f"error: {run_dir / 'branch-0.pt'}: its policy 'random' is neither static nor a "
        "schedule followed as given up to the kept state; a branch cannot tell which shapes "
        "it trains"]
    assert not (run_dir / "cooldown-0.5").exists()


def test_a_schedule_replanned_before_the_kept_state_is_refused():
    # As ``online`` leaves its schedule after a re-plan: the route ahead, from segment 0.
    record = {"name": "online", "schedule": [[FIRST, 0.3, None], [WIDE, None, None]]}
    live = {"schedule": [(WIDE, -math.inf, math.inf)], "segment": 0}
    with pytest.raises(InputError, match="its policy 'online' is neither static nor a schedule"):
        branch_policy(record, live, WIDE, Path("branch-0.pt"))
