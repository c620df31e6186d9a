"""The faster ways the models compute what they computed before (bench/bench_train.py).

The patch embedding is a matrix product over the image's patches instead of a strided
convolution, an MLP whose fan-out divisors are all 1 skips dividing by them, the training loop
clips the gradients' norm over their concatenation, and an evaluation runs in chunks: each
must give what the plain computation gives.
"""

import pytest
import torch
import torch.nn.functional as F

from validate.models.mlp import Mlp
from validate.models.vit import FlexiViT, merge_resize, pi_resize
from validate.tasks import EVAL_IMAGES, make_task
from validate.train import clip_gradient_norm


@pytest.mark.parametrize(("resize", "patch"), [("merge", 7), ("merge", 14), ("merge", 28),
                                               ("pi", 4), ("pi", 14)])
def test_patch_embedding_is_the_strided_convolution(resize, patch):
    torch.manual_seed(0)
    model = FlexiViT(channels=2, classes=10, dim=16, depth=1, heads=2, resize=resize, grid=4)
    with torch.no_grad():
        model.patch_bias.normal_()
        model.position.zero_()  # the convolution alone
        images = torch.randn(3, 2, 28, 28)
        weight = (merge_resize(model.patch_weight, patch // 7) if resize == "merge"
                  else pi_resize(model.patch_weight, patch))
        by_convolution = F.conv2d(images, weight, model.patch_bias, stride=patch)
        torch.testing.assert_close(model.embed(images, patch), by_convolution,
                                   rtol=0, atol=1e-5)


def test_an_mlp_divides_only_once_widened_and_remembers_it_when_loaded():
    torch.manual_seed(0)
    mlp, x = Mlp(3, 4, 2), torch.randn(5, 3)
    assert not mlp.divides
    # Dividing by ones changes no bit: skipping it is exact.
    assert torch.equal(mlp(x), mlp.fc_out(F.gelu(mlp.fc_in(x)) / mlp.fan_out_divisor))
    mlp.widen(7, generator=torch.Generator().manual_seed(0))
    assert mlp.divides
    assert torch.equal(mlp(x), mlp.fc_out(F.gelu(mlp.fc_in(x)) / mlp.fan_out_divisor))
    # A model built at the wide width learns from the saved divisors that it must divide.
    loaded = Mlp(3, 7, 2)
    loaded.load_state_dict(mlp.state_dict())
    assert loaded.divides and torch.equal(loaded(x), mlp(x))
    loaded.load_state_dict(Mlp(3, 7, 2).state_dict())  # and forgets it for a fresh one
    assert not loaded.divides


@pytest.mark.parametrize("scale", [0.01, 100.0])  # below the limit: untouched; above: clipped
def test_gradient_clipping_matches_torch(scale):
    torch.manual_seed(0)
    ours = [torch.zeros(shape, requires_grad=True) for shape in [(3, 4), (5,), (2, 2, 2)]]
    theirs = [torch.zeros_like(param, requires_grad=True) for param in ours]
    for mine, reference in zip(ours, theirs, strict=True):
        mine.grad = torch.randn(mine.shape) * scale
        reference.grad = mine.grad.clone()
    norm = clip_gradient_norm(ours, 1.0)
    torch.testing.assert_close(norm, torch.nn.utils.clip_grad_norm_(theirs, 1.0))
    for mine, reference in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine.grad, reference.grad, rtol=1e-6, atol=0)


def test_an_evaluation_in_chunks_is_one_pass_over_every_image():
    task = make_task("vit-patch", patch_resize="merge", eval_size=1010)  # a partial last chunk
    axes = task.complete({"patch": 7})
    torch.manual_seed(0)
    model = task.build(axes)
    chunks = task.eval_batches(axes, 0, 1)
    assert [len(images) for images, _ in chunks] == [EVAL_IMAGES] * 4 + [10]
    halves = [task.eval_batches(axes, rank, 2) for rank in (0, 1)]  # two DDP ranks
    assert sum(len(images) for half in halves for images, _ in half) == 1010
    with torch.no_grad():
        chunked = sum(float(task.loss_sum(model, chunk, axes)[0]) for chunk in chunks)
        whole = task.images.test_images[:1010], task.images.test_labels[:1010]
        once = float(task.loss_sum(model, whole, axes)[0])
    assert chunked == pytest.approx(once, rel=1e-6)  # float32 sums in another order
