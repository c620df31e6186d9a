"""Replacing a parameter by one of another shape while the optimizer keeps its history.

A shape change (wider MLP, longer context) swaps ``nn.Parameter`` objects. The optimizer holds
the old objects and their state (Adam's moments), so each swap must put the new parameter in the
old one's place in ``param_groups`` and give it state of the new shape; otherwise the optimizer
would keep updating a tensor that the model no longer uses, or fail on a shape mismatch.

Each state tensor is transformed by a caller-given ``remap(tensor, power)``: ``power`` says how
the entry scales with the gradient (1 for a first moment, 2 for a second moment), so that a
change which scales a parameter's gradient by ``s`` can scale its state by ``s ** power``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# How each known optimizer state entry scales with the gradient (Adam, AdamW, SGD momentum).
_GRADIENT_POWER = {"exp_avg": 1, "exp_avg_sq": 2, "max_exp_avg_sq": 2, "momentum_buffer": 1}

StateRemap = Callable[[torch.Tensor, int], torch.Tensor]


def swap_parameter(
    module: nn.Module,
    name: str,
    value: torch.Tensor,
    optimizer: torch.optim.Optimizer | None,
    remap: StateRemap,
) -> nn.Parameter:
    """Set ``module.<name>`` to a new parameter holding ``value``; move its optimizer state.

    Scalar state (Adam's ``step``) is copied; every state tensor shaped like the old parameter
    goes through ``remap(tensor, power)``. The old parameter leaves the optimizer entirely.

    >>> lin = nn.Linear(2, 3)
    >>> opt = torch.optim.Adam(lin.parameters())
    >>> lin(torch.ones(1, 2)).sum().backward(); opt.step()
    >>> new = swap_parameter(lin, "bias", torch.zeros(5), opt,
    ...                      lambda t, power: torch.cat([t, t.new_zeros(2)]))
    >>> opt.state[new]["exp_avg"].shape, opt.param_groups[0]["params"][1] is new
    (torch.Size([5]), True)
    """
    old = getattr(module, name)
    new = nn.Parameter(value.detach().clone(), requires_grad=old.requires_grad)
    setattr(module, name, new)  # an existing key keeps its place: parameter order is unchanged
    if optimizer is None:
        return new
    for group in optimizer.param_groups:
        for index, param in enumerate(group["params"]):
            if param is old:
                group["params"][index] = new
                state = optimizer.state.pop(old, {})
                if state:
                    optimizer.state[new] = {
                        key: _remap_entry(key, tensor, old, remap) for key, tensor in state.items()
                    }
                return new
    raise ValueError(f"parameter {name!r} is not in the optimizer")


def _remap_entry(key: str, tensor, old: torch.Tensor, remap: StateRemap):
    if not torch.is_tensor(tensor) or tensor.shape != old.shape:
        return tensor.clone() if torch.is_tensor(tensor) else tensor
    if key not in _GRADIENT_POWER:
        raise NotImplementedError(f"optimizer state {key!r} cannot be moved to a new shape")
    return remap(tensor, _GRADIENT_POWER[key])


def batch_lr_scale(batch: int, base_batch: int, rule: str) -> float:
    """The factor on the learning rate after moving from ``base_batch`` to ``batch``.

    ``linear`` keeps the update per sample constant (Goyal et al. 2017); ``sqrt`` keeps the
    update's noise constant (Malladi et al. 2022, for Adam); ``none`` leaves it alone.

    >>> batch_lr_scale(256, 64, "linear"), batch_lr_scale(256, 64, "sqrt")
    (4.0, 2.0)
    """
    ratio = batch / base_batch
    scales = {"linear": ratio, "sqrt": ratio**0.5, "none": 1.0}
    if rule not in scales:
        raise ValueError(f"unknown learning-rate rule {rule!r}; known: {', '.join(scales)}")
    return scales[rule]
