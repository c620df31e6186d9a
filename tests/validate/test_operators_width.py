"""Net2WiderNet on the MLP blocks of timm's VisionTransformer (random init)."""

import copy

import pytest
import torch
import torch.nn.functional as F

from tests.components import require
from validate.operators import MlpWidth
from validate.operators.mlp_width import timm_mlp_layers

try:
    from validate.operators.timm_import import import_timm

    timm = import_timm()
except ModuleNotFoundError as err:  # `make test` installs it; a bare core install does not
    require("timm", f"not installed ({err})")


def tiny_vit():
    torch.manual_seed(0)
    return timm.models.vision_transformer.VisionTransformer(
        img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=32, depth=2,
        num_heads=2, mlp_ratio=2.0)  # MLP blocks 32 -> 64 -> 32


def batch(seed):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(8, 1, 28, 28, generator=generator)
    return images, torch.randint(10, (8,), generator=generator)


def adamw_step(model, optimizer, images, labels):
    optimizer.zero_grad()
    F.cross_entropy(model(images), labels).backward()
    optimizer.step()


@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_widening_keeps_the_logits(noise):
    model = tiny_vit().eval()
    images, _ = batch(0)
    with torch.no_grad():
        before = model(images)
        MlpWidth(timm_mlp_layers(model), noise=noise).apply(None, 64, 100)
        after = model(images)
    assert [block.mlp.fc1.out_features for block in model.blocks] == [100, 100]
    assert [block.mlp.fc2.weight.shape[1] for block in model.blocks] == [100, 100]
    assert (after - before).abs().max() < 1e-5


def test_widening_keeps_adamw_next_step():
    """The wide network after one AdamW step computes what the narrow network computes after
    the same step; with the optimizer state thrown away it does not."""
    narrow = tiny_vit().train()  # no dropout in this model: train mode is deterministic
    optimizer = torch.optim.AdamW(narrow.parameters(), lr=1e-2, weight_decay=0.1)
    for seed in (1, 2):
        adamw_step(narrow, optimizer, *batch(seed))
    wide, fresh = copy.deepcopy(narrow), copy.deepcopy(narrow)
    wide_optimizer = torch.optim.AdamW(wide.parameters(), lr=1e-2, weight_decay=0.1)
    # (a deep copy: load_state_dict would otherwise share the moment tensors of both optimizers)
    wide_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    MlpWidth(timm_mlp_layers(wide), noise=0.01).apply(wide_optimizer, 64, 100)
    MlpWidth(timm_mlp_layers(fresh)).apply(None, 64, 100)
    fresh_optimizer = torch.optim.AdamW(fresh.parameters(), lr=1e-2, weight_decay=0.1)
    images, labels = batch(3)
    for model, opt in ((narrow, optimizer), (wide, wide_optimizer), (fresh, fresh_optimizer)):
        adamw_step(model, opt, images, labels)
    probe, _ = batch(4)
    with torch.no_grad():
        reference = narrow.eval()(probe)
        assert (wide.eval()(probe) - reference).abs().max() < 1e-5
        assert (fresh.eval()(probe) - reference).abs().max() > 1e-3


def test_copies_get_their_sources_moments_split():
    """By hand: a unit with n copies gives each copy its first moment / n, second / n^2."""
    model = tiny_vit()
    optimizer = torch.optim.AdamW(model.parameters())
    adamw_step(model, optimizer, *batch(1))
    fc1, fc2 = model.blocks[0].mlp.fc1, model.blocks[0].mlp.fc2
    m_in, v_in = (optimizer.state[fc1.weight][k].clone() for k in ("exp_avg", "exp_avg_sq"))
    m_out = optimizer.state[fc2.weight]["exp_avg"].clone()
    MlpWidth(timm_mlp_layers(model)).apply(optimizer, 64, 100)
    divisor = fc2.fan_out_divisor
    new_in, new_out = optimizer.state[fc1.weight], optimizer.state[fc2.weight]
    for unit in range(100):
        # the source is the old unit whose incoming weights this unit copies
        source = next(s for s in range(64) if torch.equal(fc1.weight[unit], fc1.weight[s]))
        copies = divisor[unit]
        assert copies == sum(torch.equal(fc1.weight[unit], fc1.weight[u]) for u in range(100))
        assert torch.allclose(new_in["exp_avg"][unit], m_in[source] / copies)
        assert torch.allclose(new_in["exp_avg_sq"][unit], v_in[source] / copies**2)
        assert torch.allclose(new_out["exp_avg"][:, unit], m_out[:, source] / copies)
    assert divisor.max() > 1  # some unit was copied


def test_narrowing_and_wrong_widths_are_refused():
    operator = MlpWidth(timm_mlp_layers(tiny_vit()))
    with pytest.raises(ValueError, match="only grow"):
        operator.apply(None, 64, 32)
    with pytest.raises(ValueError, match="not 128"):
        operator.apply(None, 128, 256)
