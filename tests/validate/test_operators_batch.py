"""The batch-size operator's learning-rate rule, with a scheduler, against rates by hand."""

import pytest
import torch

from validate.controller import scale_learning_rate
from validate.operators import BatchSize


def test_a_schedule_keeps_its_shape_at_the_new_scale():
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.AdamW([param], lr=0.01)
    warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 10))
    for _ in range(3):
        optimizer.step()
        warmup.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 4 / 10)
    scale_learning_rate(optimizer, BatchSize("sqrt").lr_factor(64, 256), warmup)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.02 * 4 / 10)
    for _ in range(3):
        optimizer.step()
        warmup.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.02 * 7 / 10)  # sqrt(256 / 64) = 2


def test_rules():
    assert BatchSize("linear").lr_factor(128, 512) == 4.0
    assert BatchSize("none").lr_factor(128, 512) == 1.0
    with pytest.raises(ValueError, match="unknown learning-rate rule"):
        BatchSize("cubic")
