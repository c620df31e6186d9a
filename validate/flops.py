"""Counting training FLOPs: measured with ``FlopCounterMode`` and predicted in closed form.

The measured count is what every logged point carries (cumulative FLOPs); the closed forms are
the independent check (tests compare the two, exactly) and a quick estimate before building a
model. Both count the model's matrix products only, at 2 FLOPs per multiply-add: linear
layers, the patch-embedding convolution, and attention's two products (scores Q K^T and the
weighted sum P V). Elementwise work (biases, layer norms, GELU, softmax, residual additions,
position-embedding resizes, pooling, the loss, the optimizer) is left out, as usual: it is
O(tokens x dim) per layer beside the products' O(tokens x dim^2). A training step is the forward
pass plus the backward pass, which costs twice the forward pass for a product whose inputs both
need a gradient, and once for one whose input is data (the first layer).

Fused attention kernels recompute the scores Q K^T in their backward pass (flash attention keeps
no tokens x tokens matrix), and torch counts that recomputation for the CUDA kernels. It is the
kernel's way of saving memory, not the model's compute: the same step through the math kernel
does not recompute, and scaling laws and model-FLOP utilisation count model FLOPs. So every fused
attention backward is counted here as the math kernel's, twice its forward.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

_aten = torch.ops.aten


def _attention(query, key, value, *args, out_shape=None, **kwargs) -> int:
    """Scores Q K^T and the weighted sum P V: 2 * batch * heads * T_q * T_k * head_dim each."""
    return sdpa_flop_count(query, key, value)


def _attention_backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    """dV = P^T dO, dP = dO V^T, dQ = dS K and dK = dS^T Q: twice the forward products, without
    the forward's scores recomputed (torch's count for fused kernels adds them)."""
    return 2 * sdpa_flop_count(query, key, value)


# torch counts no CPU attention kernel at all, and the CUDA ones with the recomputed scores.
_ATTENTION = {
    _aten._scaled_dot_product_flash_attention_for_cpu: _attention,
    _aten._scaled_dot_product_flash_attention_for_cpu_backward: _attention_backward,
    _aten._scaled_dot_product_flash_attention_backward: _attention_backward,
    _aten._scaled_dot_product_efficient_attention_backward: _attention_backward,
    _aten._scaled_dot_product_cudnn_attention_backward: _attention_backward,
}


def flop_counter() -> FlopCounterMode:
    """torch's FLOP counter with attention counted as above: the one way this project
    measures FLOPs (``with flop_counter() as counter: ...; counter.get_total_flops()``)."""
    return FlopCounterMode(display=False, custom_mapping=_ATTENTION)


def measure_flops(work: Callable[[], object]) -> int:
    """FLOPs that ``work()`` performs, as ``FlopCounterMode`` counts them (attention as above).

    >>> a, b = torch.ones(4, 5), torch.ones(5, 6)
    >>> measure_flops(lambda: a @ b)  # 2 * 4 * 5 * 6
    240
    """
    with flop_counter() as counter:
        work()
    return counter.get_total_flops()


def dense_train_flops(rows: int, d_in: int, d_out: int, input_needs_grad: bool = True) -> int:
    """A linear layer applied to ``rows`` vectors, forward and backward: 2 rows d_in d_out
    forward, as much for the weights' gradient, and as much again for the input's gradient
    unless the input is data.

    >>> dense_train_flops(1, 10, 10), dense_train_flops(1, 10, 10, input_needs_grad=False)
    (600, 400)
    """
    return 2 * rows * d_in * d_out * (3 if input_needs_grad else 2)


def attention_train_flops(tokens: int, dim: int) -> int:
    """Attention's two products in one block on one sequence, forward and backward.

    The scores Q K^T (tokens x tokens, summed over the heads' dim coordinates) and the weighted
    sum P V cost 2 tokens^2 dim each forward; the backward's four products (dV, dP, dQ, dK)
    twice that: 3 x 4 tokens^2 dim. Counted in full even when causal, as torch and the usual
    model-FLOP counts do (a causal kernel may skip the masked half: hardware efficiency).

    >>> attention_train_flops(tokens=2, dim=1)  # 3 * 4 * 2^2 * 1
    48
    """
    return 3 * 2 * 2 * tokens * tokens * dim


def transformer_train_flops(tokens: int, dim: int, depth: int, mlp_hidden: int) -> int:
    """The blocks of a transformer on one sequence: 6 N per token plus attention.

    N = 4 dim^2 (query, key, value, output projections) + 2 dim mlp_hidden (the MLP's two
    layers) weights per block, each used once per token: 2 N forward, 4 N backward.

    >>> transformer_train_flops(tokens=1, dim=1, depth=1, mlp_hidden=4)  # 6*12 + 12
    84
    """
    weights = 4 * dim * dim + 2 * dim * mlp_hidden
    return depth * (6 * weights * tokens + attention_train_flops(tokens, dim))
