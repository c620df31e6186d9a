"""Counting training FLOPs: measured with ``FlopCounterMode`` and predicted in closed form.

The measured count is what every logged point carries (cumulative FLOPs); the closed forms are
the independent check (tests compare the two) and a quick estimate before building a model.
Both count matrix multiplications only (2 FLOPs per multiply-add); elementwise work is left out,
as usual. A training step is the forward pass plus the backward pass, which costs twice the
forward pass for a layer whose input needs a gradient and once for the first layer, whose input
is data.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

_aten = torch.ops.aten


def _cpu_attention(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_attention_backward(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


# torch counts the CUDA attention kernels but not the CPU one; count it the same way.
_CPU_ATTENTION = {
    _aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention,
    _aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_attention_backward,
}


def measure_flops(work: Callable[[], object]) -> int:
    """FLOPs that ``work()`` performs, as ``FlopCounterMode`` counts them.

    >>> a, b = torch.ones(4, 5), torch.ones(5, 6)
    >>> measure_flops(lambda: a @ b)  # 2 * 4 * 5 * 6
    240
    """
    with FlopCounterMode(display=False, custom_mapping=_CPU_ATTENTION) as counter:
        work()
    return counter.get_total_flops()


def dense_train_flops(rows: int, d_in: int, d_out: int, input_needs_grad: bool = True) -> int:
    """A linear layer applied to ``rows`` vectors, forward and backward.

    >>> dense_train_flops(1, 10, 10), dense_train_flops(1, 10, 10, input_needs_grad=False)
    (600, 400)
    """
    return 2 * rows * d_in * d_out * (3 if input_needs_grad else 2)


def transformer_train_flops(tokens: int, dim: int, depth: int, mlp_hidden: int) -> int:
    """The blocks of a transformer on one sequence: 6 N per token plus attention.

    N = 4 dim^2 + 2 dim mlp_hidden weights per block; the two attention products (scores and
    the weighted sum) cost 2 * 2 * tokens^2 * dim forward per block, counted in full even when
    causal (as torch counts them), and twice that backward.

    >>> transformer_train_flops(tokens=1, dim=1, depth=1, mlp_hidden=4)  # 6*12 + 3*4
    84
    """
    weights = 4 * dim * dim + 2 * dim * mlp_hidden
    attention = 2 * 2 * tokens * tokens * dim
    return depth * (6 * weights * tokens + 3 * attention)
