"""A small byte-level causal transformer (nanoGPT-like) whose context length can change.

Attention is causal, so the output at position i depends on tokens 0..i and the learned
position embeddings 0..i only. Growing the context appends new position rows (fresh, with zero
optimizer state); shrinking drops the last rows. Either way every position both contexts share
computes exactly what it computed before.
"""

from __future__ import annotations

import torch
from torch import nn

from validate.models.transformer import Block
from validate.reshape import swap_parameter


class ByteLM(nn.Module):
    """``model(tokens)`` maps (batch, T <= context) byte ids to (batch, T, vocab) logits.

    >>> model = ByteLM(context=8, dim=16, depth=1, heads=2)
    >>> model(torch.zeros(2, 8, dtype=torch.long)).shape
    torch.Size([2, 8, 256])
    """

    def __init__(
        self, context: int, dim: int, depth: int, heads: int, mlp_hidden: int | None = None,
        vocab: int = 256,
    ) -> None:
        super().__init__()
        self.token = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(torch.randn(context, dim) * 0.02)
        self.blocks = nn.ModuleList(
            Block(dim, heads, mlp_hidden or 4 * dim, causal=True) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        nn.init.normal_(self.token.weight, std=0.02)
        self.head.weight = self.token.weight  # tied, as in GPT-2

    @property
    def context(self) -> int:
        return self.position.shape[0]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token(tokens) + self.position[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))

    @torch.no_grad()
    def set_context(
        self,
        context: int,
        optimizer: torch.optim.Optimizer | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        """Grow (new rows ~ N(0, 0.02^2)) or shrink the position table to ``context`` rows."""
        old = self.position
        if context <= old.shape[0]:
            swap_parameter(self, "position", old[:context], optimizer,
                           lambda state, power: state[:context])
            return
        fresh = torch.randn(context - old.shape[0], old.shape[1], generator=generator) * 0.02
        swap_parameter(self, "position", torch.cat([old, fresh.to(old)]), optimizer,
                       lambda state, power: torch.cat([state, state.new_zeros(fresh.shape)]))
