"""Changing the LM's context length keeps the loss of every shared position."""

import pytest
import torch
import torch.nn.functional as F

from validate.models.lm import ByteLM


def _per_position_loss(model, tokens):
    with torch.no_grad():
        logits = model(tokens[:, :-1])
    return F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none").mean(0)


@pytest.mark.parametrize(("context", "changed"), [(16, 40), (32, 8)])
def test_context_change_keeps_the_shared_prefix(context, changed):
    torch.manual_seed(0)
    model = ByteLM(context=context, dim=16, depth=2, heads=2)
    optimizer = torch.optim.AdamW(model.parameters())
    tokens = torch.randint(256, (4, max(context, changed) + 1))
    optimizer.zero_grad()
    F.cross_entropy(model(tokens[:, :context]).flatten(0, 1),
                    tokens[:, 1 : context + 1].flatten()).backward()
    optimizer.step()
    before = _per_position_loss(model, tokens[:, : context + 1])
    model.set_context(changed, optimizer, torch.Generator().manual_seed(0))
    after = _per_position_loss(model, tokens[:, : changed + 1])
    shared = min(context, changed)
    assert model.context == changed
    assert (after[:shared] - before[:shared]).abs().max().item() < 1e-5
    state = optimizer.state[model.position]
    assert state["exp_avg"].shape == model.position.shape
    if changed > context:  # the new rows start without history
        assert not state["exp_avg"][context:].any() and not state["exp_avg_sq"][context:].any()
