"""Depth growth (zero-init copies and stacking) on the project's ViT and byte LM, timm's
VisionTransformer and Hugging Face GPT-2, all tiny and random-initialised, trained two AdamW
steps before they grow from 2 to 4 blocks."""

from __future__ import annotations

import copy
import doctest
import io
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import validate.operators.depth as depth_module
from tests.components import require, require_module
from validate.flops import measure_flops, transformer_train_flops
from validate.models.lm import ByteLM
from validate.models.vit import FlexiViT
from validate.operators import Depth
from validate.operators.depth import grown_layout, output_projections
from validate.operators.timm_import import import_timm

transformers = require_module("transformers", "Hugging Face transformers",
                              "`make test` installs it")
try:
    timm = import_timm()
except ModuleNotFoundError as err:  # `make test` installs it; a bare core install does not
    require("timm", f"not installed ({err})")

DIM, BATCH, LR, DECAY = 16, 4, 1e-2, 0.1


@dataclass
class Model:
    """A tiny model of one kind: how to build it, feed it and count a training step by hand."""

    build: Callable[[], nn.Module]
    inputs: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]]
    logits: Callable[[nn.Module, torch.Tensor], torch.Tensor]
    tokens: int  # per sample, through the blocks
    mlp_hidden: int
    # FLOPs of a training step outside the blocks, by hand (embedding and head)
    outside_blocks: int

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        inputs, targets = batch
        logits = self.logits(model, inputs)
        return F.cross_entropy(logits.flatten(0, -2), targets.flatten())


def _images(generator):
    return torch.randn(BATCH, 1, 28, 28, generator=generator), torch.randint(10, (BATCH,),
                                                                             generator=generator)


def _text(vocab):
    def draw(generator):
        tokens = torch.randint(vocab, (BATCH, 17), generator=generator)
        return tokens[:, :-1], tokens[:, 1:]

    return draw


def tiny_gpt2():
    config = transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=DIM, n_layer=2,
                                     n_head=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                     bos_token_id=0, eos_token_id=0)
    return transformers.GPT2LMHeadModel(config)


# By hand, per sample: a patch embedding of 16 patches of 7 x 7 pixels (forward and weight
# gradient, 4 FLOPs per weight use: pixels need no gradient), a classifier on one pooled vector
# (6 per weight use), or a tied LM head on 16 positions.
MODELS = {
    "vit": Model(lambda: FlexiViT(channels=1, classes=10, dim=DIM, depth=2, heads=2, grid=4),
                 _images, lambda model, images: model(images, 7), tokens=16,
                 mlp_hidden=4 * DIM, outside_blocks=4 * 16 * 49 * DIM + 6 * DIM * 10),
    "lm": Model(lambda: ByteLM(context=16, dim=DIM, depth=2, heads=2), _text(256),
                lambda model, tokens: model(tokens), tokens=16, mlp_hidden=4 * DIM,
                outside_blocks=6 * 16 * DIM * 256),
    "timm": Model(lambda: timm.models.vision_transformer.VisionTransformer(
                      img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=DIM,
                      depth=2, num_heads=2, mlp_ratio=2.0),
                  _images, lambda model, images: model(images), tokens=17,  # class token
                  mlp_hidden=2 * DIM, outside_blocks=4 * 16 * 49 * DIM + 6 * DIM * 10),
    "gpt2": Model(tiny_gpt2, _text(64), lambda model, tokens: model(tokens).logits, tokens=16,
                  mlp_hidden=4 * DIM, outside_blocks=6 * 16 * DIM * 64),
}
KINDS = list(MODELS)


def blocks_of(model):
    return Depth(model).blocks


def trained(kind, seed=0):
    """The kind's model after two AdamW steps, its optimizer and its description."""
    spec = MODELS[kind]
    torch.manual_seed(seed)
    model = spec.build().train()  # no dropout in any of them: train mode is deterministic
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=DECAY)
    for step in (1, 2):
        train_step(spec, model, optimizer, step)
    return model, optimizer, spec


def train_step(spec, model, optimizer, seed):
    optimizer.zero_grad(set_to_none=True)
    spec.loss(model, spec.inputs(torch.Generator().manual_seed(seed))).backward()
    optimizer.step()


def adamw_by_hand(param, grad, exp_avg, exp_avg_sq, steps_before, lr=LR, weight_decay=DECAY,
                  beta1=0.9, beta2=0.999, eps=1e-8):
    """torch.optim.AdamW's update as its documentation writes it, for step t = steps_before + 1:
    theta <- theta - lr lambda theta; m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2;
    m_hat = m / (1 - b1^t); v_hat = v / (1 - b2^t); theta <- theta - lr m_hat / (sqrt(v_hat) + eps).
    """
    param, grad = param.double(), grad.double()
    exp_avg, exp_avg_sq = exp_avg.double(), exp_avg_sq.double()
    t = steps_before + 1
    param = param - lr * weight_decay * param
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    m_hat, v_hat = exp_avg / (1 - beta1**t), exp_avg_sq / (1 - beta2**t)
    return param - lr * m_hat / (v_hat.sqrt() + eps)


@pytest.mark.parametrize("positions", ["interleave", "append"])
@pytest.mark.parametrize("kind", KINDS)
def test_zero_growth_keeps_the_logits(kind, positions):
    model, optimizer, spec = trained(kind)
    probe, _ = spec.inputs(torch.Generator().manual_seed(9))
    with torch.no_grad():
        before = spec.logits(model, probe)
        Depth(model, "zero", positions).apply(optimizer, 2, 4)
        after = spec.logits(model, probe)
    assert len(blocks_of(model)) == 4
    assert (after - before).abs().max() < 1e-5
    held = [p for group in optimizer.param_groups for p in group["params"]]
    assert len(held) == len(list(model.parameters()))
    assert all(a is b for a, b in zip(held, model.parameters(), strict=True))


@pytest.mark.parametrize("kind", KINDS)
def test_stacking_copies_the_blocks_and_their_state(kind):
    model, optimizer, spec = trained(kind)
    probe, _ = spec.inputs(torch.Generator().manual_seed(9))
    with torch.no_grad():
        before = spec.logits(model, probe)
        Depth(model, "stack").apply(optimizer, 2, 4)
        after = spec.logits(model, probe)
    blocks = blocks_of(model)
    for copy_index, source_index in ((2, 0), (3, 1)):  # G_stack: 0 1 0' 1'
        for new, old in zip(blocks[copy_index].parameters(), blocks[source_index].parameters(),
                            strict=True):
            assert new is not old and torch.equal(new, old)
            for key in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(optimizer.state[new][key], optimizer.state[old][key])
                assert optimizer.state[new][key] is not optimizer.state[old][key]
    assert (after - before).abs().max() > 1e-3  # not function-preserving
    held = [p for group in optimizer.param_groups for p in group["params"]]
    assert all(a is b for a, b in zip(held, model.parameters(), strict=True))


@pytest.mark.parametrize(("init", "copy_index"), [("zero", 1), ("stack", 2)])
@pytest.mark.parametrize("kind", KINDS)
def test_next_adamw_step_matches_the_update_by_hand(kind, init, copy_index):
    """An old parameter continues from its own moments; a copy's parameters from zero moments
    (zero-init) or its source's (stacking), with the source's step count either way."""
    model, optimizer, spec = trained(kind)
    snapshot = {param: {key: value.clone() for key, value in state.items()}
                for param, state in optimizer.state.items()}
    Depth(model, init).apply(optimizer, 2, 4)
    blocks = blocks_of(model)
    source, twin = blocks[0], blocks[copy_index]  # both layouts: the copy of block 0
    old = output_projections(source)[1].weight  # the old MLP down-projection
    pairs = [(old, old)]
    pairs += [(output_projections(twin)[0].weight, output_projections(source)[0].weight)]
    pairs += [(next(twin.parameters()), next(source.parameters()))]  # a norm's weight
    for param, state in snapshot.items():  # the old parameters keep their state
        assert all(torch.equal(optimizer.state[param][key], state[key]) for key in state)

    optimizer.zero_grad(set_to_none=True)
    spec.loss(model, spec.inputs(torch.Generator().manual_seed(3))).backward()
    expected = []
    for param, origin in pairs:
        state = snapshot[origin]
        moments = ((torch.zeros_like(param), torch.zeros_like(param))
                   if init == "zero" and param is not origin
                   else (state["exp_avg"], state["exp_avg_sq"]))
        expected.append(adamw_by_hand(param.detach(), param.grad, *moments,
                                      steps_before=int(state["step"])))
    if init == "zero":
        assert output_projections(twin)[0].weight.grad.abs().max() > 0  # it starts learning
        assert not next(twin.parameters()).grad.any()  # behind a zero projection: no gradient
    optimizer.step()
    for (param, _), by_hand in zip(pairs, expected, strict=True):
        assert (param.double() - by_hand).abs().max() < 1e-6
        assert int(optimizer.state[param]["step"]) == 3


@pytest.mark.parametrize("init", ["zero", "stack"])
@pytest.mark.parametrize("kind", KINDS)
def test_resume_after_growth_continues_identically(kind, init):
    """Saved after a grown step, loaded into a fresh model brought to the grown depth the way
    the controller resumes (build at the start depth, apply, load): the next steps agree."""
    model, optimizer, spec = trained(kind)
    Depth(model, init).apply(optimizer, 2, 4)
    train_step(spec, model, optimizer, 3)
    saved = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, saved)

    torch.manual_seed(1)  # other weights: all of them must come from the checkpoint
    resumed = spec.build().train()
    resumed_optimizer = torch.optim.AdamW(resumed.parameters(), lr=LR, weight_decay=DECAY)
    Depth(resumed, init).apply(resumed_optimizer, 2, 4)
    saved.seek(0)
    checkpoint = torch.load(saved)
    resumed.load_state_dict(checkpoint["model"])
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    for seed in (4, 5):
        train_step(spec, model, optimizer, seed)
        train_step(spec, resumed, resumed_optimizer, seed)
    for name, param in model.named_parameters():
        assert torch.equal(param, dict(resumed.named_parameters())[name]), name


@pytest.mark.parametrize("kind", KINDS)
def test_flops_of_the_grown_model_are_counted_for_its_depth(kind):
    """Measured after growing 2 -> 4: by hand, each block has 4 d^2 + 2 d h weights used 6
    times per token, and attention's two tokens x tokens products 12 T^2 d (forward and
    backward); that is ``transformer_train_flops`` at depth 4."""
    model, optimizer, spec = trained(kind)
    Depth(model).apply(optimizer, 2, 4)
    t, h = spec.tokens, spec.mlp_hidden
    blocks_by_hand = 4 * (6 * (4 * DIM * DIM + 2 * DIM * h) * t + 12 * t * t * DIM)
    assert transformer_train_flops(t, DIM, 4, h) == blocks_by_hand
    batch = spec.inputs(torch.Generator().manual_seed(3))
    measured = measure_flops(lambda: spec.loss(model, batch).backward())
    assert measured == BATCH * (blocks_by_hand + spec.outside_blocks)


def test_gpt2_cache_and_config_follow_the_new_depth():
    """Each attention's ``layer_idx`` indexes the key-value cache: decoding one token from the
    cache gives the logits of the full forward pass only if the grown blocks are renumbered."""
    model, optimizer, spec = trained("gpt2")
    Depth(model, "stack").apply(optimizer, 2, 4)
    assert model.config.n_layer == 4
    assert [block.attn.layer_idx for block in model.transformer.h] == [0, 1, 2, 3]
    tokens, _ = spec.inputs(torch.Generator().manual_seed(7))
    model.eval()
    with torch.no_grad():
        prefix = model(tokens[:, :8], use_cache=True)
        step = model(tokens[:, 8:9], cache=prefix.cache).logits[:, -1]
        full = model(tokens[:, :9]).logits[:, -1]
    assert (step - full).abs().max() < 1e-5


@pytest.mark.parametrize("init", ["zero", "stack"])
def test_llama_style_models_grow_too(init):
    """``model.layers`` with ``o_proj`` and ``down_proj`` (no biases): zero-init keeps the
    logits, and cached decoding agrees with the full pass at the new depth."""
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=64, hidden_size=DIM, intermediate_size=2 * DIM,
                                      num_hidden_layers=2, num_attention_heads=2,
                                      num_key_value_heads=2, max_position_embeddings=16,
                                      bos_token_id=0, eos_token_id=0)
    model = transformers.LlamaForCausalLM(config).eval()
    tokens, _ = MODELS["gpt2"].inputs(torch.Generator().manual_seed(7))
    with torch.no_grad():
        before = model(tokens).logits
        Depth(model, init).apply(None, 2, 4)
        after = model(tokens).logits
        prefix = model(tokens[:, :8], use_cache=True)
        step = model(tokens[:, 8:9], cache=prefix.cache).logits[:, -1]
    assert model.config.num_hidden_layers == 4
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == [0, 1, 2, 3]
    assert (step - after[:, 8]).abs().max() < 1e-5
    assert ((after - before).abs().max() < 1e-5) == (init == "zero")


def test_new_parameters_join_their_sources_parameter_group():
    """Weight decay off for biases and norms, as the Hugging Face Trainer groups them."""
    torch.manual_seed(0)
    model = tiny_gpt2()
    params = list(model.parameters())
    optimizer = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2]},
                                   {"params": [p for p in params if p.dim() < 2],
                                    "weight_decay": 0.0}])
    Depth(model).apply(optimizer, 2, 4)
    decayed, plain = ({id(p) for p in group["params"]} for group in optimizer.param_groups)
    grown = list(model.parameters())
    assert len(decayed) + len(plain) == len(grown)
    assert all(id(p) in (decayed if p.dim() >= 2 else plain) for p in grown)
    order = {id(p): index for index, p in enumerate(grown)}
    for group in optimizer.param_groups:  # each group in the model's order
        indices = [order[id(p)] for p in group["params"]]
        assert indices == sorted(indices)


@pytest.mark.parametrize("init", ["zero", "stack"])
def test_copies_take_no_gradient_from_their_source(init):
    """Grown between a backward pass and the step: the copies hold no gradient, so the step
    leaves a zero-init copy's projections at zero (weight decay of zero is zero)."""
    model, optimizer, spec = trained("lm")
    spec.loss(model, spec.inputs(torch.Generator().manual_seed(3))).backward()
    Depth(model, init).apply(optimizer, 2, 4)
    twins = [model.blocks[i] for i in ((1, 3) if init == "zero" else (2, 3))]
    assert all(p.grad is None for twin in twins for p in twin.parameters())
    optimizer.step()
    if init == "zero":
        assert not any(output_projections(twin)[0].weight.any() for twin in twins)


def test_layouts_by_hand():
    assert grown_layout(2, 4, "interleave") == [0, 0, 1, 1]
    assert grown_layout(2, 3, "interleave") == [0, 1, 1]
    assert grown_layout(4, 6, "interleave") == [0, 1, 1, 2, 3, 3]
    assert grown_layout(2, 6, "append") == [0, 1, 0, 1, 0, 1]
    assert grown_layout(3, 4, "append") == [0, 1, 2, 0]
    assert grown_layout(3, 3, "interleave") == [0, 1, 2]


def test_wrong_requests_are_refused():
    model = MODELS["lm"].build()
    with pytest.raises(ValueError, match="only grow"):
        Depth(model).apply(None, 2, 1)
    with pytest.raises(ValueError, match="not 3"):
        Depth(model).apply(None, 3, 6)
    with pytest.raises(ValueError, match="unknown depth init"):
        Depth(model, "fresh")
    with pytest.raises(ValueError, match="unknown positions"):
        Depth(model, positions="middle")
    with pytest.raises(ValueError, match="no block list"):
        Depth(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="no output projections"):
        output_projections(nn.Linear(2, 2))
    config = copy.deepcopy(tiny_gpt2().config)
    config.scale_attn_by_inverse_layer_idx = True
    with pytest.raises(ValueError, match="layer index"):
        Depth(transformers.GPT2LMHeadModel(config))


def test_docstring_examples():
    assert doctest.testmod(depth_module).failed == 0
