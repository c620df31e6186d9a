"""Cool-down branches (validate/cooldown.py): a branch from a constant run's kept state ends bit
for bit like the straight wsd run of its budget; keep points and branches survive kill -9; the
options' refusals and help."""

import doctest
import json
import math
import signal
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner
from torch.optim.optimizer import register_optimizer_step_pre_hook

import validate.checkpoints
import validate.cooldown
from cli import main
from tests.validate.test_train import (
    ENV,
    REPO,
    _metrics,
    _switching_run,
    kill_at_first_checkpoint,
)
from validate.checkpoints import CHECKPOINT, kept_state_path
from validate.config import TrainConfig
from validate.cooldown import ANNEALED, cool_down
from validate.train import RESULT

# mlp-width at width 8, batch 32: 22528 FLOPs a step (tasks.py's closed form, checked below).
# At --lr 3e-2 the run sits on its noise floor, where a cool-down lowers the loss
# (validate/README.md, "Learning-rate schedules"). Keep points 3e6 and 3.8e6 fall on steps
# ceil(3e6 / 22528) = 134 and ceil(3.8e6 / 22528) = 169; the first checkpoint, at step 150,
# lies between them.
AXES, BUDGET, STEP_FLOPS = {"width": 8, "batch": 32}, 1e7, 22528
KEEP_AT, KEPT_STEPS = (3e6, 3.8e6), (134, 169)
SETTINGS = {"lr": 3e-2, "warmup_steps": 20, "evals": 6, "checkpoint_every": 150}
ARGS = ["mlp-width", "--shape", "width=8,batch=32", "--budget", "1e7", "--evals", "6",
        "--lr", "3e-2", "--warmup-steps", "20", "--checkpoint-every", "150",
        "--keep-at", "3e6,3.8e6"]
SHARE = 0.2


def _constant_run(run_dir, resume=False):
    """``validate train ARGS`` through the Python API (the same recorded settings)."""
    return _switching_run(AXES, BUDGET, [], TrainConfig(**SETTINGS, keep_at=KEEP_AT),
                          run_dir=run_dir, resume=resume)


@pytest.fixture(scope="module")
def constant(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cooldown") / "constant"
    _constant_run(run_dir)
    return run_dir


def _tensors(state):
    """Every tensor of a saved state's model and optimizer, by name."""
    optimizer = {f"{index}.{key}": value for index, slots in state["optimizer"]["state"].items()
                 for key, value in slots.items()}
    return {**{f"model.{k}": v for k, v in state["model"].items()},
            **{f"optimizer.{k}": v for k, v in optimizer.items()}}


def _assert_same_tensors(one, other):
    first, second = _tensors(one), _tensors(other)
    assert first.keys() == second.keys() and first
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name


def _with_rates(run):
    """``run()`` and the rate of every optimizer step it took, read by a torch hook."""
    rates = []
    hook = register_optimizer_step_pre_hook(
        lambda optimizer, args, kwargs: rates.append(optimizer.param_groups[0]["lr"]))
    try:
        return run(), rates
    finally:
        hook.remove()


def test_a_branch_ends_bit_for_bit_like_the_straight_wsd_run_of_its_budget(constant, tmp_path):
    rows, branch_rates = _with_rates(
        lambda: cool_down(constant, SHARE, tmp_path / "branches", progress=False))
    kept = torch.load(kept_state_path(constant, 0), weights_only=False)["controller"]
    assert kept["step_flops"] == {"width8-batch32": STEP_FLOPS}  # the closed form above
    assert [row["step"] for row in rows] == list(KEPT_STEPS)
    flops = KEPT_STEPS[0] * STEP_FLOPS  # 3,018,752: the step boundary at or past 3e6
    budget = flops / (1 - SHARE)
    assert (rows[0]["flops"], rows[0]["budget"]) == (flops, budget) == (kept["trained_flops"],
                                                                         3773440.0)
    straight_dir = tmp_path / "straight"
    straight, straight_rates = _with_rates(lambda: _switching_run(AXES, budget, [], TrainConfig(
        **SETTINGS, schedule="wsd", cooldown=SHARE), run_dir=straight_dir))
    # The straight run's rate at step 134 is (1 - C/B) / 0.2 of --lr, one rounding below the
    # constant run's: the branch sets it again. Every rate of the branch is the straight run's.
    assert (1 - flops / budget) / SHARE < 1
    assert branch_rates[:167 - 134] == straight_rates[134:]
    assert straight_rates[134] < SETTINGS["lr"] == straight_rates[133]
    branch_dir = tmp_path / "branches" / "branch-0"
    _assert_same_tensors(torch.load(straight_dir / CHECKPOINT, weights_only=False),
                         torch.load(branch_dir / CHECKPOINT, weights_only=False))
    # It stops before the step past B: the last whole step, 167 x 22528 FLOPs.
    last_step = math.floor(budget / STEP_FLOPS)
    assert straight.final["step"] == last_step == 167
    assert rows[0]["annealed_flops"] == last_step * STEP_FLOPS == straight.final["flops"]
    assert rows[0]["annealed_loss"] == straight.final["eval_loss"]  # bit for bit
    # After C the branch evaluates where the straight run does, at the same rates (the train
    # loss averages other steps: the constant run evaluated at C).
    branch_curve = [json.loads(line) for line in (branch_dir / "curve.jsonl").open()]
    after = [{k: v for k, v in r.items() if k != "train_loss"}
             for r in _metrics(branch_curve) if r["step"] > KEPT_STEPS[0]]
    assert after == [{k: v for k, v in r.items() if k != "train_loss"}
                     for r in _metrics(straight.curve) if r["step"] > KEPT_STEPS[0]]
    # The constant run's loss at C is its evaluation there, the branch curve's last before C.
    curve = [json.loads(line) for line in (constant / "curve.jsonl").open()]
    at_c = next(r for r in curve if r["event"] == "eval" and r["step"] == KEPT_STEPS[0])
    assert rows[0]["constant_loss"] == at_c["eval_loss"]
    # The anneal helps on this task: below the constant run at C, and below it at the next
    # keep point, which has trained at least the branch's whole budget.
    assert rows[1]["flops"] >= rows[0]["budget"]
    assert rows[0]["annealed_loss"] < rows[1]["constant_loss"] < rows[0]["constant_loss"]
    written = [json.loads(line) for line in (tmp_path / "branches" / ANNEALED).open()]
    assert written == rows and [row["branch"] for row in rows] == ["branch-0", "branch-1"]


@pytest.mark.slow
def test_killed_and_resumed_a_run_keeps_every_point_once_and_exactly(constant, tmp_path):
    killed_dir = tmp_path / "killed"
    kill_at_first_checkpoint(ARGS, killed_dir)
    assert torch.load(killed_dir / CHECKPOINT, weights_only=False)["controller"]["steps"] == 150
    assert kept_state_path(killed_dir, 0).exists()  # kept at step 134, before the kill
    _constant_run(killed_dir, resume=True)
    assert sorted(path.name for path in killed_dir.glob("branch-*.pt")) == [
        "branch-0.pt", "branch-1.pt"]
    for index, step in enumerate(KEPT_STEPS):
        whole, resumed = (torch.load(kept_state_path(folder, index), weights_only=False)
                          for folder in (constant, killed_dir))
        assert resumed["controller"]["steps"] == step
        _assert_same_tensors(whole, resumed)
        assert _metrics(resumed["controller"]["records"]) == _metrics(
            whole["controller"]["records"])


@pytest.mark.slow
def test_killed_in_a_branch_the_rerun_ends_exactly_like_an_uninterrupted_one(constant,
                                                                             tmp_path):
    whole = cool_down(constant, 0.5, tmp_path / "whole", progress=False)
    out = tmp_path / "killed"
    kill_in_branch(constant, 0.5, out / "branch-0", 134)  # its start is step 134
    assert cool_down(constant, 0.5, out, progress=False) == whole
    for branch in ("branch-0", "branch-1"):
        _assert_same_tensors(torch.load(out / branch / CHECKPOINT, weights_only=False),
                             torch.load(tmp_path / "whole" / branch / CHECKPOINT,
                                        weights_only=False))
    resumed = json.loads((out / "branch-0" / RESULT).read_text())["resumed_from_step"]
    assert resumed > 134  # continued from its own checkpoint, not from the kept state


def kill_in_branch(run_dir, share, branch_dir, start_step):
    """Start ``validate cooldown run_dir --share share -o branch_dir.parent`` (a checkpoint
    every 10 steps) in a subprocess and kill -9 it once the branch in ``branch_dir``, which
    starts at ``start_step``, has saved a step of its own; checks that it died before the
    end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "validate", "cooldown", str(run_dir), "--share",
         str(share), "--checkpoint-every", "10", "-o", str(branch_dir.parent)], cwd=REPO,
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint, deadline = branch_dir / CHECKPOINT, time.monotonic() + 60
    while time.monotonic() < deadline and not (
            checkpoint.exists()
            and torch.load(checkpoint, weights_only=False)["controller"]["steps"] > start_step):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL and not (branch_dir.parent / ANNEALED).exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--schedule", "wsd", "--keep-at", "1e6"],
     "--keep-at: only a constant-rate run keeps states to branch from"),
    (["--keep-at", "6e6"], "--keep-at 6e+06: must lie below the budget 5e+06"),
    (["--keep-at", "2e6,1e6"], "--keep-at 2000000.0,1000000.0: must be positive, finite FLOP "
                               "levels in increasing order"),
    (["--keep-at", "auto:x"], "--keep-at auto:x: auto:K takes a whole number K from 1 to 1000"),
    (["--keep-at", "auto:1001"],
     "--keep-at auto:1001: auto:K takes a whole number K from 1 to 1000"),
    (["--keep-at", "1e6,x"], "--keep-at 1e6,x: expected FLOP levels F1,F2,... or auto:K"),
])
def test_keep_points_a_run_cannot_keep_are_refused_in_one_line(tmp_path, args, message):
    result = CliRunner().invoke(main, ["validate", "train", "mlp-width", "--budget", "5e6",
                                       *args, "-o", str(tmp_path / "run")])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "run").exists()  # refused before any work


@pytest.mark.parametrize(("share", "message"), [
    ("1", "--share 1.0: must be a share of the budget in (0, 1)"),
    ("0", "--share 0.0: must be a share of the budget in (0, 1)"),
])
def test_a_share_outside_0_1_is_refused_in_one_line(constant, tmp_path, share, message):
    result = CliRunner().invoke(main, ["validate", "cooldown", str(constant), "--share", share,
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [f"error: {message}"]


def test_a_cooldown_without_a_whole_step_is_refused_before_any_branch_trains(tmp_path):
    # Kept at step ceil(5e4 / 22528) = 3, C = 67584: a share of 0.2 ends at B = 84480, short
    # of the next step's boundary 90112.
    run_dir = tmp_path / "early"
    _switching_run(AXES, 2e5, [], TrainConfig(evals=2, keep_at=(5e4,)), run_dir=run_dir)
    result = CliRunner().invoke(main, ["validate", "cooldown", str(run_dir), "--share", "0.2"])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [
        f"error: {run_dir / 'branch-0.pt'}: a cool-down of 0.2 from 6.758e+04 FLOPs holds no "
        "step of 2.253e+04; keep later points or give a larger --share"]
    assert not (run_dir / "cooldown-0.2").exists()


def test_a_folder_of_branches_with_another_share_is_refused_in_one_line(constant, tmp_path):
    cool_down(constant, 0.5, tmp_path / "out", progress=False)
    result = CliRunner().invoke(main, ["validate", "cooldown", str(constant), "--share", "0.3",
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [
        f"error: {tmp_path / 'out' / 'branch-0'} holds a branch made with other settings; "
        "choose another output folder"]


def test_a_run_folder_without_kept_states_is_refused_in_one_line(tmp_path):
    _switching_run(AXES, 2e5, [], TrainConfig(evals=2), run_dir=tmp_path / "plain")
    result = CliRunner().invoke(main, ["validate", "cooldown", str(tmp_path / "plain")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {tmp_path / 'plain'} holds no kept states (branch-<index>.pt); train the "
        "constant-rate run with --keep-at"]


def test_help_shows_the_cooldown_command_and_the_keep_option():
    result = CliRunner().invoke(main, ["validate", "cooldown", "--help"])
    assert result.exit_code == 0 and "RUN_DIR" in result.output and "--share" in result.output
    result = CliRunner().invoke(main, ["validate", "train", "--help"])
    assert result.exit_code == 0 and "--keep-at F1,F2,...|auto:K" in result.output


@pytest.mark.parametrize("module", [validate.cooldown, validate.checkpoints])
def test_the_docstring_examples_hold(module):
    assert doctest.testmod(module).failed == 0
