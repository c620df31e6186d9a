"""Measured FLOPs (FlopCounterMode) against the closed forms, and the counter itself."""

import pytest
import torch
import torch.nn.functional as F

from validate.flops import measure_flops
from validate.tasks import make_task


def _measured(task, shape):
    torch.manual_seed(0)
    model = task.build(shape)
    batch = task.train_batch(shape, 0, 0, 0, 1)

    def step():
        total, count = task.loss_sum(model, batch, shape)
        (total / count).backward()

    return measure_flops(step)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    path.write_bytes(bytes(range(256)) * 64)
    return str(path)


@pytest.mark.parametrize("shape", [{"width": 8}, {"width": 200, "batch": 7}])
def test_mlp_flops_match_the_closed_form(shape):
    task = make_task("mlp-width")
    shape = task.complete(shape)
    assert _measured(task, shape) == pytest.approx(task.analytic_flops(shape), rel=0.15)


@pytest.mark.parametrize("shape", [{"context": 8}, {"context": 64, "mlp": 96, "dim": 32}])
def test_lm_flops_match_six_n_plus_attention(shape, corpus):
    task = make_task("lm-context", corpus=corpus)
    shape = task.complete({"batch": 4, **shape})
    assert _measured(task, shape) == pytest.approx(task.analytic_flops(shape), rel=0.15)


@pytest.mark.parametrize(("resize", "patches"), [("pi", (2, 4, 7, 14)), ("merge", (7, 14, 28))])
def test_vit_flops_match_six_n_plus_attention_for_each_patch(resize, patches):
    task = make_task("vit-patch", patch_resize=resize)
    task.images = _random_images()  # the counts do not depend on the pixels
    for patch in patches:
        shape = task.complete({"patch": patch, "batch": 4, "dim": 32, "depth": 2})
        assert _measured(task, shape) == pytest.approx(task.analytic_flops(shape), rel=0.15)


def _random_images():
    from validate.data import ImageSet

    images = torch.randint(256, (16, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(10, (16,))
    return ImageSet(images, labels, images, labels)


def test_cpu_attention_is_counted():
    """2 * 2 * tokens^2 * dim per head group forward (scores and weighted sum)."""
    q = torch.randn(2, 3, 10, 4)
    expected = 2 * 2 * (2 * 3) * 10 * 10 * 4
    assert measure_flops(lambda: F.scaled_dot_product_attention(q, q, q)) == expected
