"""Patch size of a timm ``VisionTransformer``, changed mid-training (FlexiViT).

``validate.models.vit`` explains the method on the project's own ViT: the patch embedding is
stored at one base patch size and resized to the current patch on every forward pass (PI-resize,
or the tiling map with ``resize="merge"``), and the position embedding is stored on one base
grid and resized to the current token grid. ``VitPatch(model)`` does the same to timm's model
with two torch parametrizations (``torch.nn.utils.parametrize``): ``patch_embed.proj.weight``
and ``pos_embed`` become functions of the stored tensors, which keep their ``nn.Parameter``
objects. A patch-size change then only sets the parametrizations' sizes and timm's
bookkeeping (the convolution's stride, the grid): no parameter changes, so the optimizer's
state carries over untouched and nothing has to be told about it.

The base is the patch the model was built with: build it at the finest patch of the plan (for
``merge`` the others must be its multiples). Preserved at a change from patch p to k p (both
multiples of the base with PI-resize): an image upsampled k times by nearest neighbour, seen
with patch k p, gives the logits of the original at patch p, provided the grid is the same
(``set(k * p, image=k * size)``); with ``merge`` each patch-k p token (position included) is
the mean of the k x k patch-p tokens it covers. ``bake()`` turns the model back into a plain
timm model at its current patch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from validate.models.vit import RESIZES, merge_resize, pi_resize
from validate.operators.base import Operator


class _PatchWeight(nn.Module):
    """Base-patch weights (dim, channels, b, b) -> current-patch weights (dim, channels, p, p)."""

    def __init__(self, base: int, resize: str) -> None:
        super().__init__()
        self.base, self.patch, self.resize = base, base, resize

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.resize == "merge":
            return merge_resize(weight, self.patch // self.base)
        return pi_resize(weight, self.patch)


class _PositionGrid(nn.Module):
    """Position embedding on the base grid, (1, prefix + g0*g0, dim) -> (1, prefix + g*g, dim);
    the prefix rows (class and register tokens) pass through."""

    def __init__(self, prefix: int, grid: int, resize: str) -> None:
        super().__init__()
        self.prefix, self.base, self.grid = prefix, grid, grid
        self.mode = "area" if resize == "merge" else "bilinear"  # as FlexiViT.embed resizes

    def forward(self, position: torch.Tensor) -> torch.Tensor:
        if self.grid == self.base:
            return position
        head, cells = position[:, : self.prefix], position[:, self.prefix :]
        dim = cells.shape[-1]
        cells = cells.reshape(1, self.base, self.base, dim).permute(0, 3, 1, 2)  # (1, dim, g0, g0)
        cells = F.interpolate(cells, size=(self.grid, self.grid), mode=self.mode)
        cells = cells.permute(0, 2, 3, 1).reshape(1, self.grid * self.grid, dim)  # (1, g*g, dim)
        return torch.cat([head, cells], dim=1)


class VitPatch(Operator):
    """The ``patch`` axis of a timm ``VisionTransformer`` with square patches and images.

    ``resize`` is ``"pi"`` (FlexiViT's PI-resize) or ``"merge"`` (coarse tokens are means of
    base-patch tokens). Registering the parametrizations keeps the model's function: at the base
    patch the stored tensors are the ones used.
    """

    def __init__(self, model: nn.Module, resize: str = "pi") -> None:
        if resize not in RESIZES:
            raise ValueError(f"unknown resize {resize!r}; known: {', '.join(RESIZES)}")
        embed = model.patch_embed
        if getattr(model, "dynamic_img_size", False) or embed.patch_size[0] != embed.patch_size[1]:
            raise ValueError("VitPatch needs square patches and a fixed image size "
                             "(dynamic_img_size=False)")
        self.model, self.resize = model, resize
        self.base = embed.patch_size[0]
        self.weight = _PatchWeight(self.base, resize)
        parametrize.register_parametrization(embed.proj, "weight", self.weight, unsafe=True)
        self.position = None
        if model.pos_embed is not None:
            prefix = 0 if model.no_embed_class else model.num_prefix_tokens
            self.position = _PositionGrid(prefix, embed.grid_size[0], resize)
            parametrize.register_parametrization(model, "pos_embed", self.position, unsafe=True)

    @property
    def patch(self) -> int:
        return self.model.patch_embed.patch_size[0]

    def apply(self, optimizer: torch.optim.Optimizer | None, old: int, new: int) -> None:
        if old != self.patch:
            raise ValueError(f"the model's patch is {self.patch}, not {old}")
        self.set(new)

    def set(self, patch: int, image: int | None = None) -> None:
        """Patch ``patch`` on square images of side ``image`` (default: the current side)."""
        embed = self.model.patch_embed
        image = image or embed.img_size[0]
        if image % patch or (self.resize == "merge" and patch % self.base):
            raise ValueError(f"patch {patch} does not tile {image}x{image} images"
                             + (f" in base patches of {self.base}" if self.resize == "merge"
                                else ""))
        grid = image // patch
        self.weight.patch = patch
        if self.position is not None:
            self.position.grid = grid
        embed.proj.stride = embed.proj.kernel_size = embed.patch_size = (patch, patch)
        embed.img_size, embed.grid_size, embed.num_patches = (image, image), (grid, grid), grid**2

    def bake(self) -> None:
        """Make the current weights plain parameters again (new objects: rebuild the optimizer)."""
        parametrize.remove_parametrizations(self.model.patch_embed.proj, "weight")
        if self.position is not None:
            parametrize.remove_parametrizations(self.model, "pos_embed")
