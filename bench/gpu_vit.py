"""ViT training-step time and model-FLOPs utilisation (MFU) for two patch sizes, side by side.

    python bench/gpu_vit.py          # CUDA: ViT-B, 224x224, bf16 autocast, eager and compiled
    python bench/gpu_vit.py --tiny   # CPU smoke run: a small ViT on 28x28 images

FLOPs per step come from FlopCounterMode (forward + backward, matrix multiplications; fused
attention without the scores its backward recomputes, validate/flops.py: model FLOPs); MFU is
achieved FLOP/s divided by --peak-tflops (989 = H100 SXM dense bf16). Images are synthetic
tensors: throughput does not depend on pixel values, and the GPU machine has no data sets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from laws.tables import format_table  # noqa: E402
from validate.flops import measure_flops  # noqa: E402
from validate.models.vit import FlexiViT  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small CPU-sized configuration")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--patches", default=None, help="two patch sizes, e.g. 16,32")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per configuration")
    parser.add_argument("--no-compile", action="store_true", help="eager mode only")
    return parser.parse_args()


def time_steps(model, images, labels, patch, steps, device) -> list[float]:
    """Seconds per training step (bf16 autocast on CUDA), after three warm-up steps."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    times = []
    for step in range(3 + steps):
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = F.cross_entropy(model(images, patch).float(), labels)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= 3:
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    args = parse_args()
    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    if args.tiny:
        config = dict(image=28, channels=1, classes=10, dim=64, depth=2, heads=4, base=7)
        patches, batch, steps = (4, 7), args.batch or 32, args.steps or 3
    else:
        config = dict(image=224, channels=3, classes=1000, dim=768, depth=12, heads=12, base=16)
        patches, batch, steps = (16, 32), args.batch or 256, args.steps or 20
    if args.patches:
        patches = tuple(int(p) for p in args.patches.split(","))
    modes = ["eager"] if args.no_compile or device.type == "cpu" else ["eager", "compile"]
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"device: {name}, torch {torch.__version__}, ViT dim {config['dim']} depth "
          f"{config['depth']} heads {config['heads']}, {config['image']}x{config['image']} "
          f"images, batch {batch}, peak {args.peak_tflops} TFLOP/s", flush=True)
    rows = []
    for patch in patches:
        torch.manual_seed(0)
        model = FlexiViT(config["channels"], config["classes"], config["dim"], config["depth"],
                         config["heads"], base_patch=config["base"],
                         grid=config["image"] // config["base"]).to(device)
        images = torch.randn(batch, config["channels"], config["image"], config["image"],
                             device=device)
        labels = torch.randint(config["classes"], (batch,), device=device)
        flops = measure_flops(
            lambda: F.cross_entropy(model(images, patch), labels).backward())  # noqa: B023
        for mode in modes:
            runner = torch.compile(model) if mode == "compile" else model
            seconds = statistics.median(time_steps(runner, images, labels, patch, steps, device))
            achieved = flops / seconds
            rows.append([patch, (config["image"] // patch) ** 2, mode, seconds * 1e3,
                         flops / 1e12, achieved / 1e12, 100 * achieved / (args.peak_tflops * 1e12)])
            print(f"patch {patch} {mode}: {seconds * 1e3:.2f} ms/step", file=sys.stderr,
                  flush=True)
    print(format_table(["patch", "tokens", "mode", "ms/step", "TFLOP/step", "TFLOP/s", "MFU %"],
                       rows))


if __name__ == "__main__":
    main()
