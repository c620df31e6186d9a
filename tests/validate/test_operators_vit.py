"""Patch-size changes on timm's own VisionTransformer (random init), against the untouched model."""

import copy

import pytest
import torch

from tests.components import require
from validate.operators import VitPatch

try:
    from validate.operators.timm_import import import_timm

    timm = import_timm()
except ModuleNotFoundError as err:  # `make test` installs it; a bare core install does not
    require("timm", f"not installed ({err})")


def tiny_vit(patch=7, seed=0):
    torch.manual_seed(seed)
    model = timm.models.vision_transformer.VisionTransformer(
        img_size=28, patch_size=patch, in_chans=1, num_classes=10, embed_dim=32, depth=2,
        num_heads=2)
    return model.eval()


def upsample(images, k):
    """Nearest-neighbour upsampling by a whole factor, written out: each pixel a k x k block."""
    return images.repeat_interleave(k, dim=-2).repeat_interleave(k, dim=-1)


@pytest.fixture
def images():
    return torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_pi_resize_keeps_logits_on_upsampled_images(images):
    model = tiny_vit()
    with torch.no_grad():
        reference = model(images)  # the plain timm model, before any parametrization
        operator = VitPatch(model, "pi")
        assert torch.equal(model(images), reference)  # at the base patch nothing changes
        for k in (2, 4):
            operator.set(7 * k, image=28 * k)  # the same 4 x 4 token grid
            assert (model(upsample(images, k)) - reference).abs().max() < 1e-5
        operator.set(7, image=28)
        assert torch.equal(model(images), reference)  # parameters never changed


def test_pi_resize_weights_are_the_split_base_weights():
    """For an upsampling by k the pseudo-inverse spreads each base weight evenly over its k x k
    copies (B^T B = k^2 I for nearest-neighbour B): written out by hand."""
    model = tiny_vit()
    base = model.patch_embed.proj.weight.detach().clone()
    VitPatch(model, "pi").set(14)
    by_hand = upsample(base, 2) / 4
    assert model.patch_embed.proj.weight.shape == (32, 1, 14, 14)
    assert (model.patch_embed.proj.weight - by_hand).abs().max() < 1e-6


def merged_sequence(plain, images, k):
    """The plain patch-7 model's tokens (positions added), merged k x k by hand, with the class
    token in front: what a patch-7k model must feed its blocks."""
    tokens = plain.patch_embed(images) + plain.pos_embed[:, 1:]  # (B, 16, dim)
    batch, count, dim = tokens.shape
    side = int(count**0.5)
    grid = tokens.view(batch, side // k, k, side // k, k, dim)  # (B, row, dy, col, dx, dim)
    merged = grid.mean(dim=(2, 4)).reshape(batch, -1, dim)  # (B, 16 / k^2, dim)
    cls = plain.cls_token.expand(batch, -1, -1) + plain.pos_embed[:, :1]
    return torch.cat([cls, merged], dim=1)


def test_merge_tokens_are_means_of_base_tokens(images):
    plain = tiny_vit()
    model = copy.deepcopy(plain)
    operator = VitPatch(model, "merge")
    with torch.no_grad():
        for k in (2, 4):
            operator.set(7 * k)
            expected = merged_sequence(plain, images, k)
            tokens = model.patch_embed(images) + model.pos_embed[:, 1:]
            assert tokens.shape == (4, 16 // k**2, 32)
            assert (tokens - expected[:, 1:]).abs().max() < 1e-5
            assert torch.equal(model.pos_embed[:, :1], plain.pos_embed[:, :1])
            # The coarse model is the plain model fed the merged tokens.
            by_hand = plain.forward_head(plain.norm(plain.blocks(plain.norm_pre(expected))))
            assert (model(images) - by_hand).abs().max() < 1e-5


def test_patch_change_keeps_parameters_and_optimizer_state(images):
    model = tiny_vit().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    operator = VitPatch(model, "merge")
    operator.set(14)
    model(images).sum().backward()
    optimizer.step()
    params = list(model.parameters())
    state = {id(p): {k: v.clone() for k, v in optimizer.state[p].items()} for p in params}
    operator.apply(optimizer, 14, 7)
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    # (the optimizer was made before the parametrizations moved two parameters: other order)
    assert {id(p) for p in optimizer.param_groups[0]["params"]} == {id(p) for p in params}
    for p in params:
        for key, value in optimizer.state[p].items():
            assert torch.equal(value, state[id(p)][key])
    assert model.patch_embed.proj.weight.shape == (32, 1, 7, 7)


def test_bake_gives_a_plain_timm_model_with_the_same_logits(images):
    model = tiny_vit()
    operator = VitPatch(model, "pi")
    operator.set(14)
    with torch.no_grad():
        before = model(images)
        operator.bake()
        after = model(images)
    assert type(model.patch_embed.proj) is torch.nn.Conv2d
    assert model.patch_embed.proj.weight.shape == (32, 1, 14, 14)
    assert model.pos_embed.shape == (1, 1 + 4, 32)
    assert torch.equal(after, before)


def test_impossible_patches_are_refused():
    operator = VitPatch(tiny_vit(), "merge")
    with pytest.raises(ValueError, match="base patches of 7"):
        operator.set(4)
    with pytest.raises(ValueError, match="does not tile"):
        VitPatch(tiny_vit(), "pi").set(5)
    with pytest.raises(ValueError, match="not 28"):
        operator.apply(None, 28, 14)
