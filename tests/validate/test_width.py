"""Net2WiderNet growth of an MLP: exact function, and Adam's next step unchanged."""

import copy

import pytest
import torch

from validate.models.lm import ByteLM
from validate.models.mlp import Mlp


def _trained(width: int):
    torch.manual_seed(0)
    mlp = Mlp(6, width, 3)
    optimizer = torch.optim.AdamW(mlp.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(5):
        _step(mlp, optimizer, torch.randn(32, 6))
    return mlp, optimizer


@pytest.mark.parametrize(("width", "grown", "noise"), [(4, 5, 0.0), (4, 13, 0.0), (8, 16, 0.1),
                                                       (3, 5, 0.5)])
def test_widening_keeps_the_function(width, grown, noise):
    mlp, optimizer = _trained(width)
    inputs = torch.randn(50, 6)
    with torch.no_grad():
        before = mlp(inputs)
        mlp.widen(grown, optimizer, noise=noise, generator=torch.Generator().manual_seed(1))
        after = mlp(inputs)
    assert mlp.width == grown
    assert (after - before).abs().max().item() < 1e-5
    # Every copy fires like its source; with noise its outgoing weights differ from the
    # source's (the symmetry is broken), without noise they are equal.
    source = (mlp.fc_in.weight[width:, None] == mlp.fc_in.weight[None, :width]).all(-1)
    source = source.float().argmax(1)
    same = torch.isclose(mlp.fc_out.weight[:, width:], mlp.fc_out.weight[:, source]).all(0)
    assert bool(same.all()) == (noise == 0)


def _step(model, optimizer, inputs):
    optimizer.zero_grad()
    ((model(inputs) - inputs[:, :3].sin()) ** 2).mean().backward()
    optimizer.step()


@pytest.mark.parametrize("move_moments", [True, False])
def test_widening_keeps_adams_next_step(move_moments):
    """The wide network after one more AdamW step computes what the narrow one computes after
    the same step, when Adam's moments move with the units; a fresh optimizer does not.
    The one inexact term: Adam's eps acts as n*eps on a unit with n copies (negligible beside
    the square root of the second moment here)."""
    narrow, narrow_opt = _trained(5)
    before_step = copy.deepcopy(narrow)
    wide, wide_opt = copy.deepcopy((narrow, narrow_opt))  # the copy steps the copied weights
    if move_moments:
        wide.widen(12, wide_opt, generator=torch.Generator().manual_seed(2))
    else:
        wide.widen(12, generator=torch.Generator().manual_seed(2))
        wide_opt = torch.optim.AdamW(wide.parameters(), lr=1e-2, weight_decay=0.1)

    inputs, probe = torch.randn(32, 6), torch.randn(40, 6)
    _step(narrow, narrow_opt, inputs)
    _step(wide, wide_opt, inputs)
    with torch.no_grad():
        moved = (narrow(probe) - before_step(probe)).abs().max().item()
        difference = (wide(probe) - narrow(probe)).abs().max().item()
    assert moved > 1e-3  # the step did change the function ...
    if move_moments:
        assert difference < 1e-5  # ... and both networks changed it alike
    else:
        assert difference > 1e-3


def test_widening_a_transformer_mlp_keeps_the_logits():
    torch.manual_seed(0)
    model = ByteLM(context=16, dim=16, depth=2, heads=2, mlp_hidden=24)
    tokens = torch.randint(256, (3, 16))
    with torch.no_grad():
        before = model(tokens)
        for block in model.blocks:
            block.mlp.widen(40, noise=0.05, generator=torch.Generator().manual_seed(0))
        after = model(tokens)
    assert (after - before).abs().max().item() < 1e-5


def test_shrinking_is_refused():
    with pytest.raises(ValueError, match="only grow"):
        Mlp(2, 8, 2).widen(4)
