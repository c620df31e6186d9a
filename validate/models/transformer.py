"""The pre-LayerNorm transformer block shared by the ViT and the language model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from validate.models.mlp import Mlp


class Attention(nn.Module):
    """Multi-head self-attention; ``causal`` lets position i see positions <= i only."""

    def __init__(self, dim: int, heads: int, causal: bool) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not a multiple of {heads} heads")
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).view(batch, tokens, 3, self.heads, dim // self.heads).unbind(2)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=self.causal
        )
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Block(nn.Module):
    """``x + attn(ln(x))`` then ``x + mlp(ln(x))``; the MLP can widen (``block.mlp.widen``)."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int, causal: bool) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, causal)
        self.ln_mlp = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_attn(x))
        return x + self.mlp(self.ln_mlp(x))
