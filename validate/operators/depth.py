"""Depth of a transformer: more blocks, either function-preserving or by stacking.

Both ways give the grown model copies of trained blocks; they differ in what a copy computes.

- ``init="zero"`` (function-preserving): a copy's two output projections (attention's
  out-projection and the MLP's down-projection, weights and biases) start at zero, so in a
  pre-norm residual block ``x + attn(ln(x))``, ``x + mlp(ln(x))`` the copy adds nothing: the
  residual stream, the logits and the loss are unchanged at the switch. Its other weights are
  those of the block it copies (a trained block's queries and features, rather than a fresh
  init's) and start learning once the projections move off zero. Adam's moments of the copy
  start at zero, and its step count is that of its source, as for the position rows a context
  change adds (``validate.operators.context``): every parameter keeps one step count, and the
  first updates of the new block are damped by the bias correction, a warm-up for free.
- ``init="stack"`` (G_stack, Du et al. 2024, "Stacking Your Transformers"): a copy is the
  trained block with its weights and copies of its Adam state. Not function-preserving: the
  grown model applies the blocks twice; the loss it costs at the switch is measured
  (``bench/bench_depth.py``, ``validate/README.md``).

``positions`` says where the copies go, as a layout of source blocks:
``"interleave"`` puts each block's copies right after it (2 -> 4: blocks 0 0' 1 1'),
``"append"`` puts copies of the stack, in order, on top of it (2 -> 4: 0 1 0' 1', G_stack's
layout). The default is ``interleave`` for ``zero``: each new block sits where the features it
copies are computed, and the new blocks are spread over the depth rather than all at the top;
``append`` for ``stack``, as in the paper.

The operator finds the block list (``blocks`` of the project's ViT, byte LM and of timm's
``VisionTransformer``; ``transformer.h`` of Hugging Face GPT-2; ``model.layers`` of a
Llama-style model) and each block's output projections by name, keeps a Hugging Face config's
``num_hidden_layers`` and each attention's ``layer_idx`` (the key-value cache's index) in step,
and adds every copy's parameters to the optimizer group of its source, in the model's parameter
order, so an optimizer built from ``model.parameters()`` after the change holds the same list
(what a resume, ``ShapeController.load_state_dict``, relies on).
"""

from __future__ import annotations

import copy
import functools

import torch
from torch import nn

from validate.operators.base import Operator

INITS = ("zero", "stack")
POSITIONS = ("interleave", "append")
_BLOCK_LISTS = ("blocks", "transformer.h", "model.layers")
# (attention, MLP) output projections: the project's and timm's, GPT-2's, Llama's.
_OUTPUT_PROJECTIONS = (("attn.proj", "mlp.fc_out"), ("attn.proj", "mlp.fc2"),
                       ("attn.c_proj", "mlp.c_proj"), ("self_attn.o_proj", "mlp.down_proj"))


def grown_layout(old: int, new: int, positions: str) -> list[int]:
    """The source block of each block of the grown model: the first entry of a source is that
    block itself, the later ones are its copies.

    >>> grown_layout(2, 4, "interleave"), grown_layout(2, 4, "append")
    ([0, 0, 1, 1], [0, 1, 0, 1])
    >>> grown_layout(3, 5, "interleave")  # the copies spread evenly over the depth
    [0, 1, 1, 2, 2]
    """
    if positions not in POSITIONS:
        raise ValueError(f"unknown positions {positions!r}; known: {', '.join(POSITIONS)}")
    if new < old:
        raise ValueError(f"depth can only grow: {old} -> {new} blocks")
    if positions == "append":
        return list(range(old)) + [index % old for index in range(new - old)]
    extra = new - old
    return [index for block in range(old)
            for index in [block] * (1 + (block + 1) * extra // old - block * extra // old)]


def _find(module: nn.Module, path: str) -> nn.Module | None:
    return functools.reduce(lambda found, name: getattr(found, name, None), path.split("."),
                            module)


def output_projections(block: nn.Module) -> tuple[nn.Module, nn.Module]:
    """The attention out-projection and the MLP down-projection of a transformer block."""
    for names in _OUTPUT_PROJECTIONS:
        found = tuple(_find(block, name) for name in names)
        if all(isinstance(layer, nn.Module) for layer in found):
            return found
    raise ValueError(f"no output projections ({', '.join(map(str, _OUTPUT_PROJECTIONS))}) "
                     f"in the block {type(block).__name__}")


class Depth(Operator):
    """The ``depth`` axis (number of blocks; only grows) of a transformer.

    >>> from validate.models.lm import ByteLM
    >>> model = ByteLM(context=8, dim=16, depth=2, heads=2)
    >>> tokens = torch.randint(256, (1, 8))
    >>> before = model(tokens)
    >>> Depth(model).apply(None, 2, 4)
    >>> len(model.blocks), torch.allclose(model(tokens), before, atol=1e-6)
    (4, True)
    """

    def __init__(self, model: nn.Module, init: str = "zero", positions: str | None = None) -> None:
        if init not in INITS:
            raise ValueError(f"unknown depth init {init!r}; known: {', '.join(INITS)}")
        self.positions = positions or ("interleave" if init == "zero" else "append")
        grown_layout(1, 1, self.positions)  # rejects unknown positions now, not at the switch
        config = getattr(model, "config", None)
        if getattr(config, "scale_attn_by_inverse_layer_idx", False):
            raise ValueError("attention scaled by 1/(layer index + 1) is fixed when a block is "
                             "built: its depth cannot change")
        self.model, self.init = model, init
        self.owner, self.attribute = self._block_list_owner()

    def _block_list_owner(self) -> tuple[nn.Module, str]:
        for path in _BLOCK_LISTS:
            head, _, attribute = path.rpartition(".")
            owner = _find(self.model, head) if head else self.model
            if isinstance(getattr(owner, attribute, None), nn.ModuleList | nn.Sequential):
                return owner, attribute
        raise ValueError(f"no block list ({', '.join(_BLOCK_LISTS)}) in the model "
                         f"{type(self.model).__name__}")

    @property
    def blocks(self) -> nn.ModuleList | nn.Sequential:
        return getattr(self.owner, self.attribute)

    @torch.no_grad()
    def apply(self, optimizer: torch.optim.Optimizer | None, old: int, new: int) -> None:
        blocks = self.blocks
        if len(blocks) != old:
            raise ValueError(f"the model has {len(blocks)} blocks, not {old}")
        layout = grown_layout(old, new, self.positions)
        grown, copies, seen = [], [], set()
        for source in layout:
            block = blocks[source]
            if source in seen:
                block = self._copy(block)
                copies.append((blocks[source], block))
            seen.add(source)
            grown.append(block)
        container = (nn.Sequential(*grown) if isinstance(blocks, nn.Sequential)
                     else nn.ModuleList(grown))
        setattr(self.owner, self.attribute, container)
        self._renumber(grown)
        if optimizer is not None:
            self._add_to_optimizer(optimizer, copies)

    def _copy(self, block: nn.Module) -> nn.Module:
        twin = copy.deepcopy(block)  # a parameter's deep copy has no gradient
        if self.init == "zero":
            for layer in output_projections(twin):
                for param in layer.parameters(recurse=False):
                    param.zero_()
        return twin

    def _renumber(self, grown: list[nn.Module]) -> None:
        for index, block in enumerate(grown):
            for module in block.modules():
                if hasattr(module, "layer_idx"):
                    module.layer_idx = index
        config = getattr(self.model, "config", None)
        if hasattr(config, "num_hidden_layers"):
            config.num_hidden_layers = len(grown)

    def _add_to_optimizer(self, optimizer: torch.optim.Optimizer,
                          copies: list[tuple[nn.Module, nn.Module]]) -> None:
        order = {param: index for index, param in enumerate(self.model.parameters())}
        added = []
        for source, twin in copies:
            for old, new in zip(source.parameters(), twin.parameters(), strict=True):
                group = next((g for g in optimizer.param_groups
                              if any(p is old for p in g["params"])), None)
                if group is None:
                    continue  # a frozen parameter the optimizer does not train
                added.append((order[new], group, new))
                if optimizer.state.get(old):
                    optimizer.state[new] = self._copied_state(optimizer.state[old], old)
        for position, group, new in sorted(added, key=lambda entry: entry[0]):
            params = group["params"]
            at = sum(1 for p in params if order.get(p, len(order)) < position)
            params.insert(at, new)

    def _copied_state(self, state: dict, param: torch.Tensor) -> dict:
        """Copies of the source's state, or zero moments (and its step count) for ``zero``."""
        def entry(value):
            if not torch.is_tensor(value):
                return value
            if self.init == "zero" and value.shape == param.shape:
                return torch.zeros_like(value)
            return value.clone()

        return {key: entry(value) for key, value in state.items()}
