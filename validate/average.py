"""A cleaner evaluation: the loss of the run's weights averaged over its recent steps.

With a constant learning rate the weights keep moving around the valley floor, so the eval
loss of the live model jumps by a few hundredths from one evaluation to the next, which moves a
fitted law's crossing of a target by tens of percent of compute. The average of the recent
weights sits nearer the floor and moves less: it measures what the run has reached without
disturbing it (training never reads it; no random numbers are drawn).

The average is Karras et al. 2024's power-function EMA ("Analyzing and Improving the Training
Dynamics of Diffusion Models", EDM2): after t updates,

    average_t = beta_t average_(t-1) + (1 - beta_t) weights_t,   beta_t = (1 - 1/t)^(gamma + 1)

which weighs the weights of step s about in proportion to s^gamma: the same share of the run
at every length, whatever the number of steps (gamma = 7 puts half the weight on the last 8% of
the steps, 90% on the last 25%). It restarts at every shape switch, from the switched weights.
Its cost: one multiply-add per parameter per step, not counted in the training FLOPs, and a
second evaluation at every evaluation.

>>> live = torch.nn.Linear(1, 1, bias=False)
>>> average = PowerAverage(gamma=0.0)   # gamma 0: the plain mean of all updates
>>> average.reset(live)
>>> for value in (1.0, 2.0, 6.0):
...     _ = live.weight.data.fill_(value)
...     average.update(live)
>>> average.model.weight.item()
3.0
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class PowerAverage:
    """The power-function EMA (exponent ``gamma``) of a model's parameters; buffers follow the
    live model's."""

    def __init__(self, gamma: float) -> None:
        self.gamma = gamma
        self.model: nn.Module | None = None
        self.updates = 0

    def reset(self, model: nn.Module) -> None:
        """Start again from ``model``'s weights (the first update replaces them)."""
        self.model = copy.deepcopy(model).requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold in ``model``'s current weights (after an optimizer step)."""
        self.updates += 1
        beta = (1.0 - 1.0 / self.updates) ** (self.gamma + 1.0)
        for averaged, live in zip(self.model.parameters(), model.parameters(), strict=True):
            averaged.lerp_(live, 1.0 - beta)
        for averaged, live in zip(self.model.buffers(), model.buffers(), strict=True):
            averaged.copy_(live)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict, model: nn.Module) -> None:
        """Continue from ``state``; ``model`` is the live model at the saved shape."""
        self.reset(model)
        self.model.load_state_dict(state["model"])
        self.updates = state["updates"]
