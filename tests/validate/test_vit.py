"""FlexiViT: PI-resize and the patch-size change (Anagnostidis et al. 2024, Beyer et al. 2023)."""

import pytest
import torch
import torch.nn.functional as F

from validate.models.vit import FlexiViT, area_resize_matrix, pi_resize


@pytest.mark.parametrize(("size_in", "factor"), [(1, 3), (2, 2), (3, 4), (7, 2)])
def test_area_resize_is_nearest_neighbour_for_whole_factors(size_in, factor):
    patch = torch.randn(size_in, size_in, dtype=torch.float64)
    resized = area_resize_matrix(size_in, size_in * factor) @ patch.flatten()
    expected = F.interpolate(patch[None, None], scale_factor=factor, mode="nearest")
    torch.testing.assert_close(resized, expected.flatten(), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("size_in", "size_out"), [(8, 2), (6, 3)])
def test_area_resize_is_average_pooling_for_whole_factors(size_in, size_out):
    patch = torch.randn(size_in, size_in, dtype=torch.float64)
    resized = area_resize_matrix(size_in, size_out) @ patch.flatten()
    expected = F.adaptive_avg_pool2d(patch[None, None], size_out)
    torch.testing.assert_close(resized, expected.flatten(), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("size_in", "size_out"), [(7, 4), (4, 7), (5, 3)])
def test_area_resize_keeps_the_mean(size_in, size_out):
    patch = torch.randn(size_in, size_in, dtype=torch.float64)
    resized = area_resize_matrix(size_in, size_out) @ patch.flatten()
    assert resized.mean().item() == pytest.approx(patch.mean().item(), abs=1e-12)


@pytest.mark.parametrize(("base", "patch"), [(4, 7), (7, 14), (3, 8)])
def test_pi_resize_keeps_every_token_when_enlarging(base, patch):
    """The defining property: <B x, PI-resize(w)> = <x, w> for every base-size patch x."""
    weight = torch.randn(5, 2, base, base, dtype=torch.float64)
    patches = torch.randn(9, 2, base, base, dtype=torch.float64)
    enlarged = (patches.flatten(2) @ area_resize_matrix(base, patch).T).view(9, 2, patch, patch)
    before = torch.einsum("nchw,dchw->nd", patches, weight)
    after = torch.einsum("nchw,dchw->nd", enlarged, pi_resize(weight, patch))
    torch.testing.assert_close(after, before, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("base", "patch", "factor"), [(7, 7, 2), (4, 4, 3), (2, 4, 2), (7, 14, 2)])
def test_upsampled_image_with_larger_patch_gives_same_logits(base, patch, factor):
    """An image upsampled k x by nearest neighbour, seen with patch k*p, gives the logits of
    the original seen with patch p (fp32, 1e-5)."""
    torch.manual_seed(0)
    model = FlexiViT(channels=1, classes=10, dim=32, depth=2, heads=4, base_patch=base, grid=3)
    images = torch.randn(6, 1, 28, 28)
    upsampled = F.interpolate(images, scale_factor=factor, mode="nearest")
    with torch.no_grad():
        original = model(images, patch)
        seen_larger = model(upsampled, factor * patch)
    assert (original - seen_larger).abs().max().item() < 1e-5
    # And the check has teeth: another patch size does change the logits.
    with torch.no_grad():
        assert (model(images, 4 if patch != 4 else 7) - original).abs().max().item() > 1e-3
