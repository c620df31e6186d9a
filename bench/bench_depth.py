"""Benchmark: the eval loss at a depth switch, zero-init growth beside stacking (G_stack).

Each of four models (the project's FlexiViT and byte LM, timm's VisionTransformer, Hugging
Face GPT-2; width 32, 2 heads) trains ``--steps`` AdamW steps at depth ``--depth`` on real data
(Fashion-MNIST for the ViTs, the standard library's Python sources as bytes for the LMs), then
the same trained model and optimizer state go three ways: kept at that depth, grown to twice
the depth with zero-init copies (``Depth(model, "zero")``, interleaved), or stacked
(``Depth(model, "stack")``, G_stack's layout). Each way then trains ``--after`` more steps on the
same batches. Printed per model: the eval loss just before the switch, just after it, and after
the further steps, as the mean over ``--seeds`` seeds, with the paired difference of the two
growths (stack minus zero) and its 95% t-interval over the seeds. The eval set is the same fixed
held-out set everywhere (2000 test images; 64 windows of the held-out bytes).

The comparison after the further steps is per step, not per FLOP: the grown models spend about
twice the block FLOPs per step (the FLOPs per step of both depths are printed, counted by
``validate.flops.measure_flops``).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_depth.py           # about 3 minutes
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_depth.py --models lm,gpt2 --seeds 2
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
from collections.abc import Callable

import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from validate.data import load_corpus, load_fashion_mnist, normalize_images
from validate.flops import measure_flops
from validate.models.lm import ByteLM
from validate.models.vit import FlexiViT
from validate.operators import Depth

DIM, HEADS, CONTEXT, LR, DECAY = 32, 2, 64, 2e-3, 0.05
IMAGE_BATCH, TEXT_BATCH, EVAL_IMAGES, EVAL_WINDOWS = 64, 32, 2000, 64
WAYS = ("kept", "zero", "stack")

Batch = tuple[torch.Tensor, torch.Tensor]


def _timm_vit(depth: int) -> nn.Module:
    from validate.operators.timm_import import import_timm

    return import_timm().models.vision_transformer.VisionTransformer(
        img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=DIM, depth=depth,
        num_heads=HEADS, mlp_ratio=4.0)


def _gpt2(depth: int) -> nn.Module:
    import transformers

    config = transformers.GPT2Config(vocab_size=256, n_positions=CONTEXT, n_embd=DIM,
                                     n_layer=depth, n_head=HEADS, resid_pdrop=0.0,
                                     embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0,
                                     eos_token_id=0)
    return transformers.GPT2LMHeadModel(config)


# model kind -> (build at a depth, logits of a model on inputs, data: "images" or "bytes")
MODELS: dict[str, tuple[Callable[[int], nn.Module], Callable, str]] = {
    "vit": (lambda depth: FlexiViT(channels=1, classes=10, dim=DIM, depth=depth, heads=HEADS,
                                   grid=4),
            lambda model, x: model(x, 7), "images"),
    "timm": (_timm_vit, lambda model, x: model(x), "images"),
    "lm": (lambda depth: ByteLM(CONTEXT, DIM, depth, HEADS), lambda model, x: model(x), "bytes"),
    "gpt2": (_gpt2, lambda model, x: model(x).logits, "bytes"),
}


class Images:
    """Fashion-MNIST batches drawn with a seed; the first test images to evaluate on."""

    def __init__(self) -> None:
        data = load_fashion_mnist()
        self.images, self.labels = data.train_images, data.train_labels
        self.eval = (normalize_images(data.test_images[:EVAL_IMAGES]),
                     data.test_labels[:EVAL_IMAGES])

    def batch(self, generator: torch.Generator) -> Batch:
        index = torch.randint(len(self.labels), (IMAGE_BATCH,), generator=generator)
        return normalize_images(self.images[index]), self.labels[index]


class Bytes:
    """Windows of the standard library's sources: all but the last 64 KiB to train on, windows
    of those 64 KiB to evaluate on (next-byte prediction)."""

    def __init__(self) -> None:
        data = load_corpus().data.long()
        self.train, held_out = data[: -(1 << 16)], data[-(1 << 16):]
        starts = torch.linspace(0, len(held_out) - CONTEXT - 2, EVAL_WINDOWS).long()
        self.eval = self._windows(held_out, starts)

    @staticmethod
    def _windows(data: torch.Tensor, starts: torch.Tensor) -> Batch:
        windows = data[starts[:, None] + torch.arange(CONTEXT + 1)]
        return windows[:, :-1], windows[:, 1:]

    def batch(self, generator: torch.Generator) -> Batch:
        starts = torch.randint(len(self.train) - CONTEXT - 1, (TEXT_BATCH,), generator=generator)
        return self._windows(self.train, starts)


def loss(logits_of: Callable, model: nn.Module, batch: Batch) -> torch.Tensor:
    inputs, targets = batch
    logits = logits_of(model, inputs)
    return F.cross_entropy(logits.flatten(0, -2), targets.flatten())


def train(logits_of: Callable, model: nn.Module, optimizer: torch.optim.Optimizer, data,
          steps: int, generator: torch.Generator) -> None:
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss(logits_of, model, data.batch(generator)).backward()
        optimizer.step()


@torch.no_grad()
def eval_loss(logits_of: Callable, model: nn.Module, data) -> float:
    return loss(logits_of, model, data.eval).item()


def _optimizer(model: nn.Module) -> torch.optim.AdamW:
    return torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=DECAY)


def one_seed(kind: str, data, seed: int, depth: int, steps: int, after: int) -> dict:
    """Eval losses of one seed: ``before``, and per way ``<way>_switch`` and ``<way>_after``."""
    build, logits_of, _ = MODELS[kind]
    torch.manual_seed(seed)
    model = build(depth).train()
    optimizer = _optimizer(model)
    train(logits_of, model, optimizer, data, steps, torch.Generator().manual_seed(seed))
    losses = {"before": eval_loss(logits_of, model, data)}
    for way in WAYS:
        grown = copy.deepcopy(model)
        grown_optimizer = _optimizer(grown)
        grown_optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))
        if way != "kept":
            Depth(grown, way).apply(grown_optimizer, depth, 2 * depth)
        losses[f"{way}_switch"] = eval_loss(logits_of, grown, data)
        # the same further batches for every way: a stream seeded apart from the first one
        train(logits_of, grown, grown_optimizer, data, after,
              torch.Generator().manual_seed(10_000 + seed))
        losses[f"{way}_after"] = eval_loss(logits_of, grown, data)
    return losses


def step_flops(kind: str, data, depth: int) -> int:
    build, logits_of, _ = MODELS[kind]
    model = build(depth)
    batch = data.batch(torch.Generator().manual_seed(0))
    return measure_flops(lambda: loss(logits_of, model, batch).backward())


def interval(values: list[float]) -> str:
    """Mean and its 95% t-interval."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:+.4f}"
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return f"{mean:+.4f} [{mean - half:+.4f}, {mean + half:+.4f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300, help="steps before the switch")
    parser.add_argument("--after", type=int, default=100, help="steps after the switch")
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sources = {"images": Images, "bytes": Bytes}
    loaded = {}
    print(f"depth {args.depth} -> {2 * args.depth}; {args.steps} steps before, {args.after} "
          f"after; AdamW lr {LR}, weight decay {DECAY}; means over {args.seeds} seeds")
    print(f"{'model':6} {'before':>7} | {'switch: zero':>12} {'stack':>7} | "
          f"{'+' + str(args.after) + ': kept':>12} {'zero':>7} {'stack':>7} | "
          f"stack - zero at +{args.after} (95% CI)   GFLOP/step d, 2d")
    for kind in args.models.split(","):
        source = MODELS[kind][2]
        data = loaded.setdefault(source, sources[source]())
        runs = [one_seed(kind, data, seed, args.depth, args.steps, args.after)
                for seed in range(args.seeds)]
        mean = {key: statistics.fmean(run[key] for run in runs) for key in runs[0]}
        flops = [step_flops(kind, data, d) / 1e9 for d in (args.depth, 2 * args.depth)]
        gap = interval([run["stack_after"] - run["zero_after"] for run in runs])
        print(f"{kind:6} {mean['before']:7.4f} | {mean['zero_switch']:12.4f} "
              f"{mean['stack_switch']:7.4f} | "
              f"{mean['kept_after']:12.4f} {mean['zero_after']:7.4f} {mean['stack_after']:7.4f} "
              f"| {gap}   {flops[0]:.3f}, {flops[1]:.3f}")
        jump = interval([run["stack_switch"] - run["before"] for run in runs])
        print(f"{'':6} stacking's loss change at the switch: {jump}")


if __name__ == "__main__":
    main()
