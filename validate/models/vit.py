"""A FlexiViT (Beyer et al. 2023): one set of weights that runs at any patch size.

The patch embedding is stored at one underlying size ``base_patch`` and resized to the current
patch size p on every forward pass with the pseudo-inverse resize (PI-resize). Let B be the
linear map that resizes a ``base x base`` patch to ``p x p``. For p >= base, PI-resize picks the
new weights w' = pinv(B^T) w, the smallest ones with <B x, w'> = <x, w> for every patch x: a
patch seen enlarged with the enlarged weights gives the same token. Here B is the *area* resize
(each output pixel averages the input area it covers; for whole-number factors that is
nearest-neighbour upsampling), so an image upsampled k times by nearest neighbour and seen with
patch k*p gives exactly the tokens of the original with patch p whenever base divides p. For
p < base PI-resize is the least-squares fit of the same equation.

The position embedding is stored on a ``grid x grid`` token grid and resized (bilinear) to the
current one, H/p x W/p. The patch size is an argument of ``forward``, not a parameter: changing
it leaves the parameters, and so the optimizer state, untouched.

``resize="merge"`` replaces the area resize B by the *tiling* map (a base patch repeated k x k
times) and the bilinear position resize by averaging; patch sizes are then the multiples k*base
that divide the image. PI-resize of a tiling is the tiled weights divided by k^2, so a patch-k*base
token is exactly the mean of the k x k base-patch tokens it covers, position included. A coarse
model is a fine model that merges its tokens: growing the patch size finer splits each token into
the tokens it was the mean of, which keeps what a token stands for (the scale it sees), where
PI-resize's coarse tokens see a downsampled image and its fine ones the full one.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from validate.models.transformer import Block


def area_resize_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """The matrix B (float64) that area-resizes a flattened square patch: x_out = B x_in.

    >>> area_resize_matrix(1, 2).tolist()  # one pixel upsampled to four
    [[1.0], [1.0], [1.0], [1.0]]
    >>> area_resize_matrix(2, 1).tolist()  # four pixels averaged into one
    [[0.25, 0.25, 0.25, 0.25]]
    """
    edges_in = torch.arange(size_in + 1, dtype=torch.float64) / size_in
    edges_out = torch.arange(size_out + 1, dtype=torch.float64) / size_out
    overlap = (
        torch.minimum(edges_out[1:, None], edges_in[None, 1:])
        - torch.maximum(edges_out[:-1, None], edges_in[None, :-1])
    ).clamp(min=0)
    one_dim = overlap * size_out  # rows average: each output cell has length 1/size_out
    return torch.kron(one_dim, one_dim)


@functools.lru_cache(maxsize=64)
def _pi_resize_matrix(base: int, patch: int) -> torch.Tensor:
    return torch.linalg.pinv(area_resize_matrix(base, patch).T)


@torch.compiler.disable  # else torch.compile traces through the cache and runs pinv every step
def _pi_resize_matrix_like(base: int, patch: int, like: torch.Tensor) -> torch.Tensor:
    return _pi_resize_matrix(base, patch).to(like)


RESIZES = ("pi", "merge")


def merge_resize(weight: torch.Tensor, factor: int) -> torch.Tensor:
    """PI-resize of base-patch weights for the map that tiles a base patch ``factor`` times.

    >>> merge_resize(torch.ones(1, 1, 1, 1), 2).flatten().tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    return weight.repeat(1, 1, factor, factor) / factor**2


def pi_resize(weight: torch.Tensor, patch: int) -> torch.Tensor:
    """Patch-embedding weights (dim, channels, b, b) resized to (dim, channels, patch, patch)."""
    dim, channels, base, _ = weight.shape
    if patch == base:
        return weight
    matrix = _pi_resize_matrix_like(base, patch, weight)
    return (weight.flatten(2) @ matrix.T).view(dim, channels, patch, patch)


class FlexiViT(nn.Module):
    """A classifier over square images at any patch size; ``model(images, patch)``.

    >>> model = FlexiViT(channels=1, classes=10, dim=16, depth=1, heads=2)
    >>> model(torch.zeros(3, 1, 28, 28), patch=4).shape
    torch.Size([3, 10])
    """

    def __init__(
        self,
        channels: int,
        classes: int,
        dim: int,
        depth: int,
        heads: int,
        base_patch: int = 7,
        grid: int = 7,
        mlp_ratio: int = 4,
        resize: str = "pi",
    ) -> None:
        super().__init__()
        if resize not in RESIZES:
            raise ValueError(f"unknown resize {resize!r}; known: {', '.join(RESIZES)}")
        self.resize = resize
        self.patch_weight = nn.Parameter(torch.empty(dim, channels, base_patch, base_patch))
        self.patch_bias = nn.Parameter(torch.zeros(dim))
        nn.init.trunc_normal_(self.patch_weight, std=(channels * base_patch**2) ** -0.5)
        self.position = nn.Parameter(torch.randn(1, dim, grid, grid) * 0.02)
        self.blocks = nn.ModuleList(
            Block(dim, heads, mlp_ratio * dim, causal=False) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def embed(self, images: torch.Tensor, patch: int) -> torch.Tensor:
        """The tokens with their positions, (batch, dim, H/p, W/p)."""
        if self.resize == "merge":
            factor, rest = divmod(patch, self.patch_weight.shape[-1])
            if rest:
                raise ValueError(f"patch {patch} is not a multiple of the base patch "
                                 f"{self.patch_weight.shape[-1]}")
            weight, mode = merge_resize(self.patch_weight, factor), "area"
        else:
            weight, mode = pi_resize(self.patch_weight, patch), "bilinear"
        # The stride-p convolution as one matrix product over the image's p x p patches: the
        # same products (and FLOPs), but a convolution kernel as large as a 28x28 patch runs
        # several times slower than the product on this CPU.
        batch, channels, height, width = images.shape
        rows, cols = height // patch, width // patch
        patches = (images.view(batch, channels, rows, patch, cols, patch)
                   .permute(0, 2, 4, 1, 3, 5).reshape(batch, rows * cols, -1))
        tokens = F.linear(patches, weight.flatten(1), self.patch_bias)
        position = self.position
        if position.shape[-2:] != (rows, cols):
            position = F.interpolate(position, size=(rows, cols), mode=mode)
        tokens = tokens + position.flatten(2).transpose(1, 2)
        return tokens.transpose(1, 2).unflatten(2, (rows, cols))  # a view, no copy

    def forward(self, images: torch.Tensor, patch: int) -> torch.Tensor:
        x = self.embed(images, patch).flatten(2).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x.mean(dim=1)))
