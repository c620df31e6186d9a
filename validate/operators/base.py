"""The operator interface: one axis of a model's shape, changed at a switch."""

from __future__ import annotations

import torch


class Operator:
    """Changes one axis of a model's shape (see ``validate.operators``)."""

    def apply(self, optimizer: torch.optim.Optimizer | None, old: int, new: int) -> None:
        """Change the model from ``old`` to ``new`` on this operator's axis."""

    def lr_factor(self, old: int, new: int) -> float:
        """The factor on the learning rate that the change asks for."""
        return 1.0
