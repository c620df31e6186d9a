"""A one-hidden-layer MLP that grows wider mid-training without changing what it computes.

Net2WiderNet (Chen, Goodfellow, Shlens 2016): each new hidden unit copies an existing unit's
incoming weights, so it fires exactly like its source; the source's outgoing weight is shared
among its n copies, so their sum is unchanged. Here the sharing is a non-trainable per-unit
``fan_out_divisor`` instead of dividing the stored weights. Then every gradient of a copy
(incoming and outgoing) is its source's gradient divided by n, and scaling Adam's moments the
same way (first moment / n, second / n^2) makes the next Adam step move the wide network exactly
as it would have moved the narrow one (up to Adam's eps). With divided stored weights the
outgoing gradients would not shrink and the next step would overshoot n-fold.

Identical copies stay identical forever; ``noise`` breaks the symmetry by adding to the copies'
outgoing weights noise that sums to zero within each group of copies, which keeps the function
exact, since copies have identical activations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from validate.reshape import swap_parameter


class Mlp(nn.Module):
    """``d_in -> hidden (GELU) -> d_out``; the transformer blocks use it too.

    >>> mlp = Mlp(3, 4, 2)
    >>> x = torch.randn(5, 3)
    >>> before = mlp(x)
    >>> mlp.widen(9, generator=torch.Generator().manual_seed(0))
    >>> mlp.width, torch.allclose(mlp(x), before, atol=1e-6)
    (9, True)
    """

    def __init__(self, d_in: int, hidden: int, d_out: int) -> None:
        super().__init__()
        self.fc_in = nn.Linear(d_in, hidden)
        self.fc_out = nn.Linear(hidden, d_out)
        self.register_buffer("fan_out_divisor", torch.ones(hidden))
        # Whether any divisor differs from 1: dividing by ones changes no bit of the output or
        # its gradient, and skipping it saves two elementwise passes per step.
        self.divides = False
        self.register_load_state_dict_post_hook(Mlp._note_divisor)

    def _note_divisor(self, incompatible_keys: object = None) -> None:
        self.divides = bool((self.fan_out_divisor != 1).any())

    @property
    def width(self) -> int:
        return self.fc_in.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = F.gelu(self.fc_in(x))
        return self.fc_out(hidden / self.fan_out_divisor if self.divides else hidden)

    @torch.no_grad()
    def widen(
        self,
        width: int,
        optimizer: torch.optim.Optimizer | None = None,
        noise: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        """Grow the hidden layer to ``width`` units (function-preserving; see the module doc).

        ``noise`` is the symmetry-breaking noise's standard deviation relative to the outgoing
        weights' standard deviation; ``optimizer``'s state moves with the parameters.
        """
        old = self.width
        if width < old:
            raise ValueError(f"an MLP can only grow: {old} -> {width} units")
        device = self.fc_in.weight.device
        extra = torch.randint(old, (width - old,), generator=generator).to(device)
        source = torch.cat([torch.arange(old, device=device), extra])
        copies = torch.bincount(source, minlength=old)[source].to(self.fan_out_divisor.dtype)

        def by_source(dim: int):
            def remap(tensor: torch.Tensor, power: int) -> torch.Tensor:
                shape = [1] * tensor.dim()
                shape[dim] = width
                return tensor.index_select(dim, source) / copies.view(shape) ** power

            return remap

        outgoing = self.fc_out.weight[:, source]
        if noise > 0 and width > old:
            jitter = torch.randn(outgoing.shape, generator=generator).to(outgoing)
            jitter *= noise * self.fc_out.weight.std()
            group_sum = torch.zeros_like(self.fc_out.weight).index_add_(1, source, jitter)
            outgoing += jitter - group_sum[:, source] / copies

        swap_parameter(self.fc_in, "weight", self.fc_in.weight[source], optimizer, by_source(0))
        swap_parameter(self.fc_in, "bias", self.fc_in.bias[source], optimizer, by_source(0))
        swap_parameter(self.fc_out, "weight", outgoing, optimizer, by_source(1))
        self.fan_out_divisor = self.fan_out_divisor[source] * copies
        Mlp._note_divisor(self)  # self may be another module's layer pair (operators)
        self.fc_in.out_features = self.fc_out.in_features = width
