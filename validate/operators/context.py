"""Context length of a Hugging Face ``GPT2LMHeadModel``.

GPT-2 attends causally and adds one learned position row per position, so the outputs at
positions 0..T-1 depend on the tokens and position rows 0..T-1 only. Growing the context
appends rows drawn from N(0, 0.02^2) (GPT-2's ``initializer_range``) with zero optimizer state;
shrinking drops the last rows. Either way every position both contexts share computes what it
computed before. This is ``validate.models.lm.ByteLM.set_context`` applied to GPT-2's position
table (``transformer.wpe``); the config's ``n_positions`` follows.
"""

from __future__ import annotations

import torch
from torch import nn

from validate.models.lm import ByteLM
from validate.operators.base import Operator


class _PositionTable:
    """An ``nn.Embedding``'s weight under the name ``position``, as ``ByteLM`` keeps its own,
    so that ``ByteLM.set_context`` (and ``swap_parameter`` inside it) can replace it."""

    def __init__(self, embedding: nn.Embedding) -> None:
        self.embedding = embedding

    @property
    def position(self) -> nn.Parameter:
        return self.embedding.weight

    @position.setter
    def position(self, value: nn.Parameter) -> None:
        self.embedding.weight = value


class Gpt2Context(Operator):
    """The ``context`` axis of a ``GPT2LMHeadModel`` (or a bare ``GPT2Model``)."""

    def __init__(self, model: nn.Module, seed: int = 0) -> None:
        self.model = model
        self.generator = torch.Generator().manual_seed(seed)

    def apply(self, optimizer: torch.optim.Optimizer | None, old: int, new: int) -> None:
        body = getattr(self.model, "transformer", self.model)
        table = body.wpe
        if table.num_embeddings != old:
            raise ValueError(f"the model has {table.num_embeddings} positions, not {old}")
        ByteLM.set_context(_PositionTable(table), new, optimizer, self.generator)
        table.num_embeddings = new
        self.model.config.n_positions = new
