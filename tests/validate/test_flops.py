"""Measured FLOPs (FlopCounterMode) against the closed forms, and the attention count itself.

The closed forms (``Task.analytic_flops``, ``validate/flops.py``) count every matrix product of
a training step: the patch embedding and its PI-resize, the blocks' weights, attention's scores
and weighted sums, the classifier or the LM head. They match the measured counts exactly; the
2% of the tolerance is there only for a future torch that counts elementwise work too.
"""

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import sdpa_backward_flop_count

from validate.flops import measure_flops
from validate.tasks import make_task


def _measured(task, axes):
    torch.manual_seed(0)
    model = task.build(axes)
    batch = task.train_batch(axes, 0, 0, 0, 1)

    def step():
        total, count = task.loss_sum(model, batch, axes)
        (total / count).backward()

    return measure_flops(step)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "text.txt"
    path.write_bytes(bytes(range(256)) * 64)
    return str(path)


@pytest.mark.parametrize("axes", [{"width": 4}, {"width": 8}, {"width": 32},
                                  {"width": 200, "batch": 7}])
def test_mlp_flops_match_the_closed_form(axes):
    task = make_task("mlp-width")
    axes = task.complete(axes)
    # By hand: 16 inputs -> width -> 4 outputs; the first layer's input is data.
    by_hand = axes["batch"] * (4 * 16 * axes["width"] + 6 * axes["width"] * 4)
    assert task.analytic_flops(axes) == by_hand
    assert _measured(task, axes) == pytest.approx(by_hand, rel=0.02)


@pytest.mark.parametrize("axes", [{"context": 8}, {"context": 64, "mlp": 96, "dim": 32},
                                  {"context": 256}, {"context": 128, "depth": 1, "heads": 2}])
def test_lm_flops_match_six_n_plus_attention_plus_head(axes, corpus):
    task = make_task("lm-context", corpus=corpus)
    axes = task.complete({"batch": 4, **axes})
    t, dim, mlp = axes["context"], axes["dim"], axes["mlp"]
    weights = 4 * dim * dim + 2 * dim * mlp
    by_hand = axes["batch"] * (axes["depth"] * (6 * weights * t + 12 * t * t * dim)
                               + 6 * t * dim * 256)  # blocks, attention, the tied LM head
    assert task.analytic_flops(axes) == by_hand
    assert _measured(task, axes) == pytest.approx(by_hand, rel=0.02)


def _vit_by_hand(patch, dim, depth, batch, pi_resized):
    tokens = (28 // patch) ** 2
    embed = 4 * tokens * patch * patch * dim  # forward and weight gradient; pixels need none
    blocks = depth * (6 * 12 * dim * dim * tokens + 12 * tokens * tokens * dim)
    head = 6 * dim * 10
    resize = 4 * dim * 49 * patch * patch if pi_resized else 0  # once per step
    return batch * (embed + blocks + head) + resize


@pytest.mark.parametrize(("resize", "patch"), [("pi", 2), ("pi", 4), ("pi", 7), ("pi", 14),
                                               ("pi", 28), ("merge", 7), ("merge", 14),
                                               ("merge", 28)])
@pytest.mark.parametrize("dim", [32, 48])
def test_vit_flops_match_the_closed_form_for_each_patch(resize, patch, dim):
    task = make_task("vit-patch", patch_resize=resize)
    task.images = _random_images()  # the counts do not depend on the pixels
    axes = task.complete({"patch": patch, "batch": 4, "dim": dim, "depth": 2})
    by_hand = _vit_by_hand(patch, dim, 2, 4, pi_resized=resize == "pi" and patch != 7)
    assert task.analytic_flops(axes) == by_hand
    assert _measured(task, axes) == pytest.approx(by_hand, rel=0.02)


def _random_images():
    from validate.data import ImageSet

    images = torch.randint(256, (16, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(10, (16,))
    return ImageSet(images, labels, images, labels)


def test_cpu_attention_is_counted():
    """2 * 2 * tokens^2 * head_dim per batch and head forward (scores and weighted sum)."""
    q = torch.randn(2, 3, 10, 4)
    expected = 2 * 2 * (2 * 3) * 10 * 10 * 4
    assert measure_flops(lambda: F.scaled_dot_product_attention(q, q, q)) == expected


@pytest.mark.parametrize("causal", [False, True])
def test_fused_attention_counts_what_the_math_kernel_multiplies(causal):
    """The fused (flash) kernel's training step is counted as the math kernel's, whose matrix
    products torch counts one by one: 3 x the forward. torch's own rule for fused backward
    passes adds the scores recomputed there, 2 T^2 head_dim per batch and head. Counted that
    way, as before, it was the whole gap to the closed forms: 2 B T^2 dim per block, at patch 2
    (dim 32, depth 2, batch 4) 2 * 4 * 196^2 * 32 * 2 = 19,668,992 FLOPs over a step of
    234,053,632 (8.40%), for the LM at context 64 (dim 32, mlp 96) 2,097,152 over 56,623,104
    (3.70%)."""
    query, key, value = (torch.randn(2, 3, 10, 4, requires_grad=True) for _ in range(3))

    def step():
        F.scaled_dot_product_attention(query, key, value, is_causal=causal).sum().backward()

    forward = 2 * 2 * (2 * 3) * 10 * 10 * 4
    fused = measure_flops(step)
    with sdpa_kernel(SDPBackend.MATH):
        math = measure_flops(step)
    assert fused == math == 3 * forward
    shapes = [tuple(t.shape) for t in (query, query, key, value)]
    recomputed_scores = 2 * (2 * 3) * 10 * 4 * 10
    assert sdpa_backward_flop_count(*shapes) == 2 * forward + recomputed_scores

