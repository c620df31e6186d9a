"""Learning-rate schedules (validate/schedule.py): the rate against closed forms, the rate of
every step of a real run across a shape switch, kill -9 in the cool-down and resume, options."""

import doctest
import itertools
import math

import pytest
import torch
from click.testing import CliRunner
from torch.optim.optimizer import register_optimizer_step_pre_hook

import validate.schedule
from cli import main
from laws.errors import InputError
from tests.validate.test_train import _metrics, _switching_run, kill_at_first_checkpoint
from validate.config import LoopConfig, TrainConfig
from validate.schedule import lr_factor
from validate.switches import Switch
from validate.tasks import make_task
from validate.train import CHECKPOINT, train

ROOT_HALF = math.sqrt(2) / 2  # cos(pi / 4)


@pytest.mark.parametrize(("schedule", "step", "progress", "expected"), [
    # warm-up of 10 steps: (step + 1) / 10, then 1
    ("constant", 0, 0.0, 0.1),
    ("constant", 4, 0.5, 0.5),
    ("constant", 9, 0.5, 1.0),
    ("constant", 500, 0.999, 1.0),
    # wsd, cool-down 0.2: 1 up to progress 0.8, then (1 - progress) / 0.2
    ("wsd", 100, 0.5, 1.0),
    ("wsd", 100, 0.8, 1.0),
    ("wsd", 100, 0.9, 0.5),
    ("wsd", 100, 0.95, 0.25),
    ("wsd", 4, 0.9, 0.25),  # in the warm-up and the cool-down at once: 0.5 x 0.5
    # cosine: (1 + cos(pi progress)) / 2 from the first step
    ("cosine", 100, 0.0, 1.0),
    ("cosine", 100, 0.25, (1 + ROOT_HALF) / 2),
    ("cosine", 100, 0.5, 0.5),
    ("cosine", 100, 0.75, (1 - ROOT_HALF) / 2),
    ("cosine", 100, 1.0, 0.0),
    ("cosine", 4, 0.5, 0.25),  # warm-up ramp 0.5 times the cosine's 0.5
])
def test_the_rate_at_chosen_steps_matches_the_closed_forms(schedule, step, progress, expected):
    factor = lr_factor(schedule, step, progress, warmup_steps=10, cooldown=0.2)
    assert factor == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_the_docstring_examples_hold():
    assert doctest.testmod(validate.schedule).failed == 0


def test_unknown_schedules_and_cooldowns_outside_the_budget_are_refused():
    with pytest.raises(InputError, match="--schedule 'linear'"):
        TrainConfig(schedule="linear")
    for cooldown in (0.0, 1.5, math.nan):
        with pytest.raises(InputError, match="--cooldown"):
            TrainConfig(schedule="wsd", cooldown=cooldown)


def test_configs_written_before_schedules_load_as_constant_and_record_no_schedule():
    old = {"task": "t", "shapes": [{"a": 1}], "budget": 1.0,
           "train": {"evals": 8, "warmup_steps": 5, "task_options": {}}}
    assert LoopConfig.from_dict(old).train.schedule == "constant"
    assert "schedule" not in TrainConfig().recorded()  # as runs made before schedules recorded
    assert "cooldown" not in TrainConfig(schedule="cosine").recorded()  # cosine does not read it
    wsd = TrainConfig(schedule="wsd", cooldown=0.3)
    assert (wsd.recorded()["schedule"], wsd.recorded()["cooldown"]) == ("wsd", 0.3)
    assert LoopConfig.from_dict(LoopConfig("t", ({"a": 1},), 1.0, train=wsd).to_dict()).train == wsd


BUDGET, LR, WARMUP = 3e7, 1e-3, 20


@pytest.mark.parametrize(("schedule", "cooldown", "switch_at"), [
    ("wsd", 0.5, 0.6),  # the switch inside the cool-down
    ("cosine", 0.2, 0.4),
    ("constant", 0.2, 0.4),
])
def test_every_steps_rate_is_the_schedule_of_the_flops_spent_across_a_switch(
        schedule, cooldown, switch_at):
    """The rate of every optimizer step, read by a torch hook before the step, against the
    closed form at the FLOPs spent before it: width 8 costs 22528 FLOPs a step and width 20
    56320 (tasks.py's closed form), so the switch changes the steps left 2.5 times and a rate
    that counted steps would leave the closed form after it."""
    rates = []
    hook = register_optimizer_step_pre_hook(
        lambda optimizer, args, kwargs: rates.append(optimizer.param_groups[0]["lr"]))
    try:
        result = _switching_run(
            {"width": 8, "batch": 32}, BUDGET,
            [Switch({"width": 20}, at_flops=switch_at * BUDGET)],
            TrainConfig(lr=LR, warmup_steps=WARMUP, schedule=schedule, cooldown=cooldown, evals=6))
    finally:
        hook.remove()
    task = make_task("mlp-width")
    narrow, wide = (task.analytic_flops({"width": width, "batch": 32}) for width in (8, 20))
    switch_step = math.ceil(switch_at * BUDGET / narrow)  # the first step that reaches the level
    assert [s["step"] for s in result.switches] == [switch_step]
    spent = [narrow * min(step, switch_step) + wide * max(0, step - switch_step)
             for step in range(len(rates) + 1)]
    assert spent[-1] <= BUDGET < spent[-1] + wide  # stopped before the step past the budget
    expected = [LR * min(1, (step + 1) / WARMUP) * _closed_form(schedule, used / BUDGET, cooldown)
                for step, used in enumerate(spent[:-1])]
    assert rates == pytest.approx(expected, rel=1e-12, abs=1e-18)
    # Continuous across the switch: after the warm-up, neighbouring steps differ by at most
    # the decay's steepest slope (1 / cooldown for wsd, pi / 2 for cosine) over the share of
    # the budget that a wide step spends.
    slope = {"wsd": 1 / cooldown, "cosine": math.pi / 2, "constant": 0.0}[schedule]
    jumps = [abs(after - before) for before, after in itertools.pairwise(rates[WARMUP:])]
    assert max(jumps) <= LR * slope * wide / BUDGET * (1 + 1e-9)
    # Each evaluation logs the rate of the step after it.
    assert all(r["lr"] == rates[r["step"]] for r in result.curve if r["step"] < len(rates))


def _closed_form(schedule: str, progress: float, cooldown: float) -> float:
    if schedule == "wsd":
        return 1.0 if progress <= 1 - cooldown else (1 - progress) / cooldown
    if schedule == "cosine":
        return (1 + math.cos(math.pi * progress)) / 2
    return 1.0


# Width 8 to 12 at 30% of the budget, the cool-down over the last half: the first checkpoint,
# at step 700, lies in the cool-down (progress 0.64), 321 steps before the end.
RESUME_ARGS = ["mlp-width", "--shape", "width=8,batch=32", "--budget", "3e7", "--evals", "6",
               "--switch-at", "0.3:width=12", "--widen-noise", "0.05", "--schedule", "wsd",
               "--cooldown", "0.5", "--checkpoint-every", "700"]


def _wsd_api_run(run_dir, resume=False):
    config = TrainConfig(evals=6, checkpoint_every=700, schedule="wsd", cooldown=0.5,
                         task_options={"noise": 0.05})
    return _switching_run({"width": 8, "batch": 32}, 3e7,
                          [Switch({"width": 12}, at_flops=0.3 * 3e7)], config, run_dir=run_dir,
                          resume=resume)


@pytest.mark.slow
def test_killed_in_the_cooldown_a_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path):
    whole = _wsd_api_run(tmp_path / "whole")
    killed_dir = tmp_path / "killed"
    kill_at_first_checkpoint(RESUME_ARGS, killed_dir)
    saved = torch.load(killed_dir / CHECKPOINT, weights_only=False)["controller"]
    assert saved["steps"] == 700 and 0.5 < saved["trained_flops"] / 3e7 < 1  # in the cool-down

    resumed = _wsd_api_run(killed_dir, resume=True)
    assert resumed.resumed_from_step == 700 < resumed.final["step"]
    assert _metrics(resumed.curve) == _metrics(whole.curve)  # losses and rates, bit for bit
    assert resumed.switches == whole.switches
    # The rate at the end, by hand: (1 - progress) / cool-down of --lr.
    left = (3e7 - whole.final["flops"]) / 3e7
    assert whole.final["lr"] == pytest.approx(1e-3 * left / 0.5, rel=1e-12)


def test_a_run_resumes_only_with_the_schedule_it_started_with(tmp_path):
    config = TrainConfig(evals=2, checkpoint_every=5, schedule="wsd")
    train("mlp-width", {"width": 4, "batch": 8}, 2e5, config=config, run_dir=tmp_path,
          progress=False)
    with pytest.raises(InputError, match="another 'schedule'"):
        train("mlp-width", {"width": 4, "batch": 8}, 2e5, config=TrainConfig(
            evals=2, checkpoint_every=5, schedule="cosine"), run_dir=tmp_path, resume=True,
            progress=False)


def test_help_shows_the_schedule_options():
    result = CliRunner().invoke(main, ["validate", "train", "--help"])
    assert result.exit_code == 0
    assert "--schedule [constant|wsd|cosine]" in result.output and "--cooldown" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--schedule", "linear"], "'linear' is not one of 'constant', 'wsd', 'cosine'"),
    (["--schedule", "wsd", "--cooldown", "0"], "--cooldown 0.0: must be a share of the budget"),
])
def test_bad_schedule_options_exit_2(tmp_path, args, message):
    result = CliRunner().invoke(main, ["validate", "train", "mlp-width", "--budget", "1e6",
                                       *args, "-o", str(tmp_path / "run")])
    assert result.exit_code == 2 and message in result.output
