"""The cleaner evaluation: the power-function EMA of the weights (validate/average.py)."""

import pytest
import torch

from validate.average import PowerAverage
from validate.config import TrainConfig
from validate.switches import Switch, switch_schedule
from validate.tasks import make_task
from validate.train import train


def test_gamma_one_weighs_step_s_by_2s_minus_1():
    """For gamma = 1, beta_t = ((t-1)/t)^2, so the t-th average weighs update s by exactly
    (2s - 1) / t^2 (the product of the betas telescopes)."""
    live = torch.nn.Linear(1, 1, bias=False)
    average = PowerAverage(gamma=1.0)
    average.reset(live)
    values = [3.0, -1.0, 4.0, 1.0, 5.0, -9.0, 2.0]
    for value in values:
        live.weight.data.fill_(value)
        average.update(live)
    t = len(values)
    expected = sum((2 * s - 1) * v for s, v in enumerate(values, start=1)) / t**2
    # float32 weights: values up to 9 carry about 1e-6 of rounding per update
    assert average.model.weight.item() == pytest.approx(expected, abs=1e-5)
    assert average.model.weight.requires_grad is False


def _run(ema: float, switches=()):
    config = TrainConfig(lr=1e-2, warmup_steps=5, evals=10, ema=ema,
                         task_options={"noise": 0.05})
    task = make_task("mlp-width", **config.task_options)
    policy, shapes = switch_schedule(task, {"width": 8, "batch": 32}, list(switches))
    return train(task, {"width": 8, "batch": 32}, 4e6, policy, config, shapes=shapes,
                 progress=False)


def test_the_average_does_not_disturb_the_run():
    """The live model's losses of a run with the average are those of the same run without it,
    bit for bit; the averaged losses differ once the weights have moved."""
    plain, averaged = _run(0.0), _run(7.0)
    assert [r["eval_loss"] for r in plain.curve] == [r["raw_eval_loss"] for r in averaged.curve]
    assert all("raw_eval_loss" not in r for r in plain.curve)
    first, *later = averaged.curve
    assert first["eval_loss"] == first["raw_eval_loss"]  # step 0: no update folded in yet
    assert any(r["eval_loss"] != r["raw_eval_loss"] for r in later)


def test_a_switch_restarts_the_average_at_the_new_shape():
    """Across width switches (the weights change shape) the run trains on and evaluates the
    average of the new shape; its live losses follow the run without the average."""
    switches = [Switch({"width": 16}, at_flops=1e6), Switch({"width": 24}, at_flops=2.5e6)]
    plain, averaged = _run(0.0, switches), _run(7.0, switches)
    assert averaged.switches == plain.switches
    assert [r["eval_loss"] for r in plain.curve] == [r["raw_eval_loss"] for r in averaged.curve]
    assert {r["shape"]["width"] for r in averaged.curve} == {8, 16, 24}
