"""Width of MLP blocks (pairs of ``nn.Linear``): Net2WiderNet that keeps AdamW's next step.

``validate.models.mlp.Mlp.widen`` explains the method: new hidden units copy a source unit's
incoming weights, and a non-trainable per-unit ``fan_out_divisor`` shares the source's outgoing
weight among its copies; Adam's moments of a copy are its source's divided by the number of
copies (first moment) or its square (second), so the next step moves the wide network as it
would have moved the narrow one. Here the divisor divides the outgoing layer's input in a
forward pre-hook, which is that module's ``fc_out(act(fc_in(x)) / fan_out_divisor)`` for any
block ``fc_out(act(fc_in(x)))`` whose activation acts unit by unit (timm's ``Mlp``, GELU, ReLU),
and ``Mlp.widen`` itself does the widening on the block's two layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from validate.models.mlp import Mlp
from validate.operators.base import Operator


def _divide_input(module: nn.Linear, args: tuple) -> tuple:
    return (args[0] / module.fan_out_divisor, *args[1:])


class _LinearPair:
    """Two layers seen as ``Mlp`` sees its own (``fc_in``, ``fc_out``, ``fan_out_divisor``,
    ``width``), so that ``Mlp.widen`` can run on them. The divisor lives on ``fc_out`` as a
    buffer (it is saved with the model) and a pre-hook applies it."""

    def __init__(self, fc_in: nn.Linear, fc_out: nn.Linear) -> None:
        if fc_in.out_features != fc_out.in_features:
            raise ValueError(f"layers do not chain: {fc_in.out_features} outputs into "
                             f"{fc_out.in_features} inputs")
        self.fc_in, self.fc_out = fc_in, fc_out
        if not hasattr(fc_out, "fan_out_divisor"):
            fc_out.register_buffer("fan_out_divisor", fc_out.weight.new_ones(fc_in.out_features))
            fc_out.register_forward_pre_hook(_divide_input)

    @property
    def width(self) -> int:
        return self.fc_in.out_features

    @property
    def fan_out_divisor(self) -> torch.Tensor:
        return self.fc_out.fan_out_divisor

    @fan_out_divisor.setter
    def fan_out_divisor(self, value: torch.Tensor) -> None:
        self.fc_out.fan_out_divisor = value


def timm_mlp_layers(model: nn.Module) -> list[tuple[nn.Linear, nn.Linear]]:
    """``(fc1, fc2)`` of every timm ``Mlp`` block in ``model``; refuses blocks that put a norm
    between the two layers (the divisor would then not commute with it)."""
    pairs = []
    for module in model.modules():
        if isinstance(getattr(module, "fc1", None), nn.Linear) and hasattr(module, "fc2"):
            if not isinstance(getattr(module, "norm", nn.Identity()), nn.Identity):
                raise ValueError("an MLP block with a norm between its layers cannot be widened "
                                 "function-preservingly")
            pairs.append((module.fc1, module.fc2))
    if not pairs:
        raise ValueError("no MLP blocks (modules with Linear fc1 and fc2) found")
    return pairs


class MlpWidth(Operator):
    """The hidden width of the given ``(fc_in, fc_out)`` layer pairs (only grows).

    ``noise`` breaks the copies' symmetry without changing the function (see ``Mlp.widen``).

    >>> block = nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 2))
    >>> x = torch.randn(5, 3)
    >>> before = block(x)
    >>> MlpWidth([(block[0], block[2])]).apply(None, 4, 9)
    >>> block[0].out_features, torch.allclose(block(x), before, atol=1e-6)
    (9, True)
    """

    def __init__(self, layers: Sequence[tuple[nn.Linear, nn.Linear]], noise: float = 0.0,
                 seed: int = 0) -> None:
        self.pairs = [_LinearPair(fc_in, fc_out) for fc_in, fc_out in layers]
        self.noise = noise
        self.generator = torch.Generator().manual_seed(seed)

    def apply(self, optimizer: torch.optim.Optimizer | None, old: int, new: int) -> None:
        for pair in self.pairs:
            if pair.width != old:
                raise ValueError(f"an MLP block has {pair.width} hidden units, not {old}")
            Mlp.widen(pair, new, optimizer, self.noise, self.generator)
