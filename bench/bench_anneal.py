"""Held-out prediction of Gemstones' annealed losses (issue 28): hot law, cool-down-branch law
and schedule-aware law, per shape, side by side.

Gemstones (McLeish et al. 2025, arXiv 2502.06857, MIT): a constant-rate run per width x depth
shape with a checkpoint every 10B tokens (``hot``), and from each checkpoint a cool-down that
decays the learning rate linearly to 0 over 10% of the steps so far (``cool_end``, the loss at
its end; the model cards of tomg-group-umd/Gemstone-*_cooldown). Each shape's methods are fitted
on the checkpoints up to ``--fit-up-to`` tokens (and the branches leaving there) and predict
the annealed losses of the later branches; the score is the RMSE of log-loss per shape, and the
table gives its mean over shapes with a 90% Student-t interval, and each method's paired
difference from the schedule-aware law. The warm-up (unknown here) is taken as 0 steps: it
moves S1 by half its length, under 1% of the first checkpoint's if it is under 50 steps.

    .venv/bin/python bench/bench_anneal.py [--fit-up-to 6.5e10] [--momentum 0.999]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from laws.errors import InputError
from laws.fit.anneal import MOMENTUM, CooldownBranches
from laws.fit.anneal import held_out_errors as fitted_errors
from laws.io.curves import ColumnMap, Curve, load_curves
from laws.stats import LEVEL, t_interval

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gemstones"
HOT = DATA / "wandb_df_for_fitting_hot.jsonl"
COOL = DATA / "wandb_df_for_fitting_cool_end.jsonl"
COLUMNS = ColumnMap(shape=("width", "depth"), loss="final_loss", tokens="tokens",
                    params="params_active_precise", extra=("step", "tokens"),
                    shape_name="w{width}-d{depth}")
COOLDOWN_FRACTION = 0.1  # of the steps before the branch
TOKENS_PER_STEP = 2048 * 2048  # Gemstones' batch: 2048 sequences of 2048 tokens, every shape


def gemstones_branches(momentum: float = MOMENTUM) -> dict[str, CooldownBranches]:
    """Each shape's hot checkpoints and cool-down branches; a branch leaves the run at the
    last hot checkpoint before its end, and must cool down 10% of the steps so far."""
    hot = {curve.name: curve for curve in load_curves(HOT, COLUMNS).curves}
    cool = {curve.name: curve for curve in load_curves(COOL, COLUMNS).curves}
    return {name: _branches(hot[name], curve, momentum) for name, curve in cool.items()}


def _branches(hot: Curve, cool: Curve, momentum: float) -> CooldownBranches:
    hot_steps, end_steps = hot.extra["step"], cool.extra["step"]
    for curve in (hot, cool):
        if not np.allclose(curve.extra["tokens"] / curve.extra["step"], TOKENS_PER_STEP):
            raise InputError(f"{curve.name}: not {TOKENS_PER_STEP} tokens per step")
    starts = np.searchsorted(hot_steps, end_steps) - 1
    branch_steps = hot_steps[np.maximum(starts, 0)]
    fraction = (end_steps - branch_steps) / branch_steps
    if np.any(starts < 0) or not np.allclose(fraction, COOLDOWN_FRACTION, atol=0.01):
        raise InputError(f"{cool.name}: cool-downs of {np.round(fraction, 3).tolist()} of the "
                         f"run, not {COOLDOWN_FRACTION}")
    return CooldownBranches(hot_steps, hot.loss, branch_steps, end_steps, cool.loss,
                            float(hot.compute[0] / hot_steps[0]), momentum=momentum)


def held_out_errors(branches: dict[str, CooldownBranches], fit_up_to_tokens: float
                    ) -> dict[str, np.ndarray]:
    """Per method, each shape's held-out RMSE of log-loss (shapes in ``branches``' order)."""
    return fitted_errors(branches, fit_up_to_tokens / TOKENS_PER_STEP)


def print_comparison(errors: dict[str, np.ndarray], unit: str) -> None:
    """Per method, the mean held-out RMSE over the ``unit``s (a shape, a seed) with its 90% t
    interval and median, and each method's difference from the schedule-aware law, paired."""
    print(f"RMSE of log-loss per {unit}: mean [{LEVEL:.0%} t interval over {unit}s]; "
          f"difference from the schedule-aware law, paired by {unit}")
    reference = errors["schedule-aware law"]
    for method, values in errors.items():
        mean, low, high = t_interval(values)
        line = f"  {method:<22} {mean:.4f} [{low:.4f}, {high:.4f}]  median {np.median(values):.4f}"
        if method != "schedule-aware law":
            diff, dlow, dhigh = t_interval(values - reference)
            line += (f"  minus schedule-aware {diff:+.4f} [{dlow:+.4f}, {dhigh:+.4f}], lower "
                     f"on {np.sum(values < reference)} of {values.size}")
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-up-to", type=float, default=6.5e10,
                        help="tokens: fit on checkpoints (and branches) up to here")
    parser.add_argument("--momentum", type=float, default=MOMENTUM,
                        help="the schedule-aware law's annealing momentum lambda, per step")
    args = parser.parse_args()
    start = time.perf_counter()
    branches = gemstones_branches(args.momentum)
    errors = held_out_errors(branches, args.fit_up_to)
    seconds = time.perf_counter() - start
    held = [shape.after(args.fit_up_to / TOKENS_PER_STEP)[2].size for shape in branches.values()]
    print(f"Gemstones cool_end, {len(branches)} shapes: fitted on budgets <= "
          f"{args.fit_up_to:.3g} tokens, {min(held)}-{max(held)} later branches held out per "
          f"shape; momentum {args.momentum}")
    print_comparison(errors, "shape")
    print(f"{seconds:.1f} s (load, fit and predict)")


if __name__ == "__main__":
    main()
