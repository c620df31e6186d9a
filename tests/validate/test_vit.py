"""FlexiViT: PI-resize, merged tokens and the patch-size change (Anagnostidis et al. 2024, Beyer
et al. 2023)."""

import pytest
import torch
import torch.nn.functional as F

from validate.models.vit import FlexiViT, area_resize_matrix, merge_resize, pi_resize


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


def _tiling_matrix(base: int, factor: int) -> torch.Tensor:
    """B with B x = the base patch x repeated factor x factor times, built entry by entry."""
    size = base * factor
    matrix = torch.zeros(size * size, base * base, dtype=torch.float64)
    for row in range(size):
        for col in range(size):
            matrix[row * size + col, (row % base) * base + col % base] = 1.0
    return matrix


@pytest.mark.parametrize(("base", "factor"), [(7, 2), (7, 4), (3, 3)])
def test_merge_resize_is_pi_resize_of_the_tiling(base, factor):
    weight = torch.randn(5, 1, base, base, dtype=torch.float64)
    pinv = torch.linalg.pinv(_tiling_matrix(base, factor).T)
    expected = (weight.flatten(2) @ pinv.T).view(5, 1, base * factor, base * factor)
    torch.testing.assert_close(merge_resize(weight, factor), expected, rtol=0, atol=1e-12)


def _merge_model(**kwargs) -> FlexiViT:
    torch.manual_seed(0)
    return FlexiViT(channels=1, classes=10, dim=32, depth=2, heads=4, base_patch=7, grid=4,
                    resize="merge", **kwargs)


@pytest.mark.parametrize("factor", [2, 4])
def test_a_merged_token_is_the_mean_of_the_tokens_it_covers(factor):
    model = _merge_model()
    with torch.no_grad():
        model.position.normal_()  # positions as large as the tokens, so that they count
        images = torch.randn(3, 1, 28, 28)
        fine = model.embed(images, 7)
        coarse = model.embed(images, 7 * factor)
    torch.testing.assert_close(coarse, F.avg_pool2d(fine, factor), rtol=0, atol=1e-5)


def test_merged_model_is_the_fine_model_on_duplicated_mean_tokens():
    """Attention and mean pooling cannot tell k x k copies of a token from one: the patch-14
    model is the patch-7 model whose tokens are replaced by their 2 x 2 means."""
    model = _merge_model()
    images = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        fine = model.embed(images, 7)
        duplicated = F.interpolate(F.avg_pool2d(fine, 2), scale_factor=2, mode="nearest")
        x = duplicated.flatten(2).transpose(1, 2)
        for block in model.blocks:
            x = block(x)
        by_hand = model.head(model.norm(x.mean(dim=1)))
        coarse = model(images, 14)
    torch.testing.assert_close(coarse, by_hand, rtol=0, atol=1e-5)
    assert (model(images, 7) - coarse).abs().max().item() > 1e-3  # the fine tokens differ


def test_merge_rejects_a_patch_that_is_not_a_multiple_of_the_base():
    with pytest.raises(ValueError, match="not a multiple"):
        _merge_model()(torch.zeros(1, 1, 28, 28), 4)
