"""What a task is: its model, data, loss and the axes it can change while training.

A run's shape is given by its axes (``Axes``), a dict of whole numbers, e.g. ``{"patch": 7,
"batch": 128, "dim": 64, ...}``; a ``laws.lawset.Shape`` is such a configuration with its name
and fitted law. Every task has a ``batch`` axis; the others are the model's. Some axes can
change mid-run (a *switch*), the rest are fixed for the run:

| task        | model                      | changeable axes            | fixed axes       |
| ----------- | -------------------------- | -------------------------- | ---------------- |
| `vit-patch` | FlexiViT on Fashion-MNIST  | patch, depth (grows), batch| dim, heads       |
| `mlp-width` | MLP student of an MLP      | width (grows), batch       |                  |
| `lm-context`| byte-level causal LM       | context, mlp, depth (both  | dim, heads       |
|             |                            | grow), batch               |                  |

`vit-patch` takes ``patch_resize``: ``"pi"`` (FlexiViT's PI-resize, patches dividing 28) or
``"merge"`` (a coarse token is the mean of the 7x7-patch tokens it covers: patches 7, 14, 28).
Depth grows function-preservingly: new blocks copy their neighbours with zeroed output
projections (``validate.operators.depth``).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from laws.errors import InputError
from laws.io.atomic import file_sha256
from validate import data
from validate.flops import dense_train_flops, transformer_train_flops
from validate.models.lm import ByteLM
from validate.models.mlp import Mlp
from validate.models.vit import RESIZES, FlexiViT
from validate.operators.depth import Depth

Axes = dict[str, int]  # a run's shape as its axes: {"patch": 7, "batch": 128, ...}
Batch = tuple[torch.Tensor, torch.Tensor]


def parse_axes(text: str, option: str = "--shape") -> Axes:
    """``"patch=7,batch=64"`` -> ``{"patch": 7, "batch": 64}``.

    >>> parse_axes("patch=7, batch=64")
    {'patch': 7, 'batch': 64}
    """
    axes: Axes = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        axis, sep, value = item.partition("=")
        if not sep or not axis.strip() or not value.strip().isdigit():
            raise InputError(f"{option} {text!r}: {item!r} is not AXIS=WHOLE_NUMBER")
        axes[axis.strip()] = int(value)
    if not axes:
        raise InputError(f"{option} {text!r}: give at least one AXIS=VALUE")
    return axes


def shape_name(axes: Axes) -> str:
    """The name a shape given by its axes gets (in ``curve.jsonl``, and so in fitted laws).

    >>> shape_name({"width": 8, "batch": 32})
    'width8-batch32'
    """
    return "-".join(f"{axis}{value}" for axis, value in axes.items())


class Task:
    """Base of the tasks; a subclass fills in the model, data, loss and FLOP formula."""

    name = ""
    defaults: Axes = {}
    changeable: frozenset[str] = frozenset()
    grow_only: frozenset[str] = frozenset()
    options: tuple[str, ...] = ()

    def complete(self, partial: Axes, base: Axes | None = None) -> Axes:
        """``partial`` on top of ``base`` (or the defaults), checked."""
        unknown = sorted(set(partial) - set(self.defaults))
        if unknown:
            raise InputError(f"task {self.name} has no axis {unknown[0]!r}; "
                             f"axes: {', '.join(self.defaults)}")
        axes = {**(base or self.defaults), **partial}
        for axis, value in axes.items():
            if value < 1:
                raise InputError(f"{self.name}: {axis}={value} must be at least 1")
        self.check(axes)
        return axes

    def check(self, axes: Axes) -> None:
        """Raise ``InputError`` when a complete set of axes is impossible."""

    def check_change(self, old: Axes, new: Axes) -> None:
        """Raise ``InputError`` when the task cannot switch from ``old`` to ``new``."""
        for axis in old:
            if old[axis] == new[axis]:
                continue
            if axis not in self.changeable:
                raise InputError(f"task {self.name} cannot change {axis!r} during training; "
                                 f"it can change: {', '.join(sorted(self.changeable))}")
            if axis in self.grow_only and new[axis] < old[axis]:
                raise InputError(f"task {self.name}: {axis!r} can only grow "
                                 f"({old[axis]} -> {new[axis]})")

    # --- what each task defines ---
    def build(self, axes: Axes) -> nn.Module:
        raise NotImplementedError

    def loss_sum(self, model: nn.Module, batch: Batch, axes: Axes) -> tuple[torch.Tensor, int]:
        """Summed loss over the batch and the number of terms (samples or tokens)."""
        raise NotImplementedError

    def train_batch(self, axes: Axes, seed: int, position: int, rank: int, world: int) -> Batch:
        """This rank's slice of the global batch that starts at sample ``position``."""
        raise NotImplementedError

    def eval_batches(self, axes: Axes, rank: int, world: int) -> list[Batch]:
        """This rank's share of the fixed evaluation set."""
        raise NotImplementedError

    def change(self, model: nn.Module, optimizer: torch.optim.Optimizer, old: Axes, new: Axes,
               generator: torch.Generator) -> None:
        """Apply a checked switch to ``model`` (batch size is the training loop's business)."""

    def analytic_flops(self, axes: Axes) -> int:
        """Closed-form FLOPs of one training step on a global batch of ``axes["batch"]``."""
        raise NotImplementedError

    def provenance(self) -> dict:
        return {}


def _check_noise(noise: float) -> float:
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise < math.inf:
        raise InputError(f"--widen-noise {noise!r}: must be a finite number >= 0")
    return noise


def _grow_depth(model: nn.Module, optimizer: torch.optim.Optimizer, old: Axes,
                new: Axes) -> None:
    if new["depth"] != old["depth"]:
        Depth(model).apply(optimizer, old["depth"], new["depth"])


def _rank_slice(batch: Batch, rank: int, world: int) -> Batch:
    return tuple(tensor[rank::world] for tensor in batch)


def _chunks(batch: Batch, size: int) -> list[Batch]:
    return [tuple(t[i : i + size] for t in batch) for i in range(0, len(batch[0]), size)]


# Images a forward pass of an evaluation takes. At patch 7 (16 tokens an image) 500 took up to
# 60% longer than 250 on this project's shared machine (3,000 images between training steps:
# 0.29 to 0.49 s against 0.28 to 0.31 s), where patch 14 and 28 took as long either way; 128
# was no faster.
EVAL_IMAGES = 250


class VitPatch(Task):
    """A FlexiViT classifying Fashion-MNIST; the patch size can change."""

    name = "vit-patch"
    defaults = {"patch": 7, "batch": 128, "dim": 64, "depth": 4, "heads": 4}
    changeable = frozenset({"patch", "depth", "batch"})
    grow_only = frozenset({"depth"})
    options = ("data_dir", "eval_size", "patch_resize")
    image_size = 28
    base_patch = 7  # the stored patch embedding's size

    def __init__(self, data_dir: str | None = None, eval_size: int = 2000,
                 patch_resize: str = "pi") -> None:
        if patch_resize not in RESIZES:
            raise InputError(f"vit-patch: unknown patch resize {patch_resize!r}; "
                             f"known: {', '.join(RESIZES)}")
        if isinstance(eval_size, bool) or not isinstance(eval_size, int) or eval_size < 1:
            raise InputError(f"--eval-size {eval_size!r}: must be a whole number >= 1")
        self.data_dir, self.eval_size, self.patch_resize = data_dir, eval_size, patch_resize

    @functools.cached_property
    def images(self) -> data.ImageSet:
        return data.load_fashion_mnist(self.data_dir)

    def check(self, axes: Axes) -> None:
        size, patch = self.image_size, axes["patch"]
        merge = self.patch_resize == "merge"
        if size % patch or (merge and patch % self.base_patch):
            valid = ", ".join(str(p) for p in range(1, size + 1)
                              if size % p == 0 and not (merge and p % self.base_patch))
            raise InputError(f"vit-patch: patch={patch} does not divide the {size}x{size} "
                             f"images{' in base patches' if merge else ''}; valid patch sizes: "
                             f"{valid}")
        if axes["dim"] % axes["heads"]:
            raise InputError(f"vit-patch: dim={axes['dim']} is not a multiple of "
                             f"heads={axes['heads']}")

    def build(self, axes: Axes) -> nn.Module:
        # Merged tokens average the base tokens' positions: those live on the finest grid.
        grid = {"grid": self.image_size // self.base_patch} if self.patch_resize == "merge" else {}
        return FlexiViT(channels=1, classes=10, dim=axes["dim"], depth=axes["depth"],
                        heads=axes["heads"], base_patch=self.base_patch,
                        resize=self.patch_resize, **grid)

    def change(self, model, optimizer, old, new, generator):
        _grow_depth(model, optimizer, old, new)

    def loss_sum(self, model, batch, axes):
        images, labels = batch
        logits = model(data.normalize_images(images), axes["patch"])
        return F.cross_entropy(logits.float(), labels, reduction="sum"), len(labels)

    def train_batch(self, axes, seed, position, rank, world):
        index = data.epoch_indices(len(self.images.train_labels), seed, position, axes["batch"])
        return _rank_slice((self.images.train_images[index], self.images.train_labels[index]),
                           rank, world)

    def eval_batches(self, axes, rank, world):
        count = self.eval_size
        batch = (self.images.test_images[:count], self.images.test_labels[:count])
        return _chunks(_rank_slice(batch, rank, world), EVAL_IMAGES)

    def analytic_flops(self, axes):
        patch, dim = axes["patch"], axes["dim"]
        tokens = (self.image_size // patch) ** 2
        per_image = (
            # Patch embedding: a convolution with stride p, i.e. a dim x p^2 product per token
            # (one channel): 2 T p^2 dim forward (= 2 * 28^2 * dim at any p) and as much for the
            # weights' gradient; the pixels need none.
            dense_train_flops(tokens, patch**2, dim, input_needs_grad=False)
            # The blocks: 6 N T for the weights, 12 T^2 dim for attention (flops.py).
            + transformer_train_flops(tokens, dim, axes["depth"], 4 * dim)
            # The classifier on the mean-pooled token: 6 dim * 10 classes.
            + dense_train_flops(1, dim, 10))
        # PI-resize of the stored 7x7 patch embedding to p x p, once per step (not per image):
        # weight (dim x 49) @ resize matrix (49 x p^2) forward, 2 dim 49 p^2, and as much for
        # the gradient back to the stored weights (the matrix is a constant). Merging tiles
        # the weights: no multiplications. The position embedding's resize is elementwise.
        resized = patch != self.base_patch and self.patch_resize == "pi"
        resize = 4 * dim * self.base_patch**2 * patch**2 if resized else 0
        return axes["batch"] * per_image + resize

    def provenance(self):
        folder = self.images.source["dir"]
        return {**self.images.source, "patch_resize": self.patch_resize,
                "sha256": {name: file_sha256(f"{folder}/{name}") for name in data.FASHION_FILES}}


class MlpWidth(Task):
    """An MLP student regressing a fixed random MLP teacher; its hidden width can grow."""

    name = "mlp-width"
    defaults = {"width": 32, "batch": 128}
    changeable = frozenset({"width", "batch"})
    grow_only = frozenset({"width"})
    options = ("noise",)
    eval_size = 4096

    def __init__(self, noise: float = 0.0) -> None:
        self.teacher = data.Teacher()
        self.noise = _check_noise(noise)

    @functools.cached_property
    def eval_set(self) -> Batch:
        return self.teacher.sample(self.eval_size, torch.Generator().manual_seed(12345))

    def build(self, axes):
        return Mlp(self.teacher.d_in, axes["width"], self.teacher.net.fc_out.out_features)

    def loss_sum(self, model, batch, axes):
        inputs, targets = batch
        error = F.mse_loss(model(inputs).float(), targets, reduction="sum")
        return error / targets.shape[1], len(targets)

    def train_batch(self, axes, seed, position, rank, world):
        batch = self.teacher.sample(axes["batch"], data.batch_generator(seed, position))
        return _rank_slice(batch, rank, world)

    def eval_batches(self, axes, rank, world):
        return _chunks(_rank_slice(self.eval_set, rank, world), 1024)

    def change(self, model, optimizer, old, new, generator):
        model.widen(new["width"], optimizer, self.noise, generator)

    def analytic_flops(self, axes):
        d_in, d_out = self.teacher.d_in, self.teacher.net.fc_out.out_features
        return axes["batch"] * (dense_train_flops(1, d_in, axes["width"], False)
                                 + dense_train_flops(1, axes["width"], d_out))

    def provenance(self):
        return {"dataset": "teacher-student", "teacher": "Mlp(16, 64, 4), seed 0"}


class LmContext(Task):
    """A byte-level causal LM; its context length can change and its MLPs can grow."""

    name = "lm-context"
    defaults = {"context": 64, "batch": 32, "dim": 64, "depth": 2, "heads": 4, "mlp": 256}
    changeable = frozenset({"context", "mlp", "depth", "batch"})
    grow_only = frozenset({"mlp", "depth"})
    options = ("corpus", "eval_bytes", "noise")
    vocab = 256

    def __init__(self, corpus: str | None = None, eval_bytes: int = 1 << 16,
                 noise: float = 0.0) -> None:
        self.corpus_path, self.held_out, self.noise = corpus, eval_bytes, _check_noise(noise)

    @functools.cached_property
    def corpus(self) -> data.ByteCorpus:
        return data.load_corpus(self.corpus_path)

    @functools.cached_property
    def split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Training bytes and held-out bytes (the last ``eval_bytes``, at most a tenth)."""
        held_out = min(self.held_out, len(self.corpus.data) // 10)
        return self.corpus.data[:-held_out].long(), self.corpus.data[-held_out:].long()

    def check(self, axes):
        if axes["dim"] % axes["heads"]:
            raise InputError(f"lm-context: dim={axes['dim']} is not a multiple of "
                             f"heads={axes['heads']}")
        held_out = len(self.split[1])
        if axes["context"] >= held_out:
            raise InputError(f"lm-context: context={axes['context']} is longer than the "
                             f"{held_out} held-out bytes of the corpus")

    def build(self, axes):
        return ByteLM(axes["context"], axes["dim"], axes["depth"], axes["heads"], axes["mlp"])

    def loss_sum(self, model, batch, axes):
        inputs, targets = batch
        logits = model(inputs).float()
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
        return loss, targets.numel()

    def _windows(self, source: torch.Tensor, starts: torch.Tensor, context: int) -> Batch:
        windows = source[starts[:, None] + torch.arange(context + 1)]
        return windows[:, :-1], windows[:, 1:]

    def train_batch(self, axes, seed, position, rank, world):
        context = axes["context"]
        source = self.split[0]
        starts = torch.randint(len(source) - context - 1, (axes["batch"],),
                               generator=data.batch_generator(seed, position))
        return _rank_slice(self._windows(source, starts, context), rank, world)

    def eval_batches(self, axes, rank, world):
        context = axes["context"]
        source = self.split[1]
        starts = torch.arange(0, len(source) - context, context)
        return _chunks(_rank_slice(self._windows(source, starts, context), rank, world), 64)

    def change(self, model, optimizer, old, new, generator):
        if new["context"] != old["context"]:
            model.set_context(new["context"], optimizer, generator)
        if new["mlp"] != old["mlp"]:
            for block in model.blocks:
                block.mlp.widen(new["mlp"], optimizer, self.noise, generator)
        _grow_depth(model, optimizer, old, new)

    def analytic_flops(self, axes):
        context, dim = axes["context"], axes["dim"]
        per_sequence = (
            # The blocks: 6 N T for the weights, 12 T^2 dim for attention (flops.py).
            transformer_train_flops(context, dim, axes["depth"], axes["mlp"])
            # The LM head, tied to the token embedding: 6 T dim vocab. The embedding itself is
            # a lookup, and its part of the tied weight's gradient a scatter-add: no products.
            + dense_train_flops(context, dim, self.vocab))
        return axes["batch"] * per_sequence

    def provenance(self):
        return {"dataset": "bytes", "source": self.corpus.source, "sha256": self.corpus.sha256,
                "bytes": len(self.corpus.data)}


TASKS: dict[str, type[Task]] = {task.name: task for task in (VitPatch, MlpWidth, LmContext)}


def make_task(name: str, **options) -> Task:
    """The task called ``name``, given only the options it takes (None means default).

    >>> make_task("mlp-width").complete({"width": 64})
    {'width': 64, 'batch': 128}
    """
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    task = TASKS[name]
    given = {key: value for key, value in options.items() if value is not None}
    for key in given:
        if key not in task.options:
            raise InputError(f"task {name} takes no --{key.replace('_', '-')}")
    return task(**given)
