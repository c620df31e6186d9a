"""Context length of a Hugging Face GPT2LMHeadModel (tiny config, random init)."""

import pytest
import torch
import torch.nn.functional as F

from tests.components import require_module
from validate.operators import Gpt2Context

transformers = require_module("transformers", "Hugging Face transformers",
                              "`make test` installs it")


def tiny_gpt2(context=64):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=64, n_positions=context, n_embd=32, n_layer=2,
                                     n_head=2, bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(config)


def per_position_loss(model, tokens):
    logits = model(tokens).logits
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten(),
                           reduction="none").view(len(tokens), -1)


def test_growing_the_context_keeps_the_prefix_loss():
    model = tiny_gpt2(64)
    optimizer = torch.optim.AdamW(model.parameters())
    tokens = torch.randint(64, (3, 256), generator=torch.Generator().manual_seed(1))
    per_position_loss(model, tokens[:, :64]).mean().backward()
    optimizer.step()
    moments = optimizer.state[model.transformer.wpe.weight]["exp_avg"].clone()
    model.eval()
    with torch.no_grad():
        before = model(tokens[:, :64]).logits
        loss_before = per_position_loss(model, tokens[:, :64])
        Gpt2Context(model).apply(optimizer, 64, 256)
        after = model(tokens).logits
        loss_after = per_position_loss(model, tokens)
    assert model.config.n_positions == 256 and model.transformer.wpe.weight.shape == (256, 32)
    assert (after[:, :64] - before).abs().max() < 1e-5
    assert (loss_after[:, :63] - loss_before).abs().max() < 1e-5
    state = optimizer.state[model.transformer.wpe.weight]
    assert torch.equal(state["exp_avg"][:64], moments)
    assert not state["exp_avg"][64:].any() and not state["exp_avg_sq"][64:].any()
    assert any(p is model.transformer.wpe.weight for p in optimizer.param_groups[0]["params"])


def test_shrinking_the_context_drops_the_last_rows():
    model = tiny_gpt2(256).eval()
    rows = model.transformer.wpe.weight[:64].detach().clone()
    tokens = torch.randint(64, (2, 64), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before = model(tokens).logits
        Gpt2Context(model).apply(None, 256, 64)
        after = model(tokens).logits
    assert torch.equal(model.transformer.wpe.weight, rows)
    assert model.config.n_positions == 64
    assert (after - before).abs().max() < 1e-5
    with pytest.raises(ValueError, match="not 256"):
        Gpt2Context(model).apply(None, 256, 128)
