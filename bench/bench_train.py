"""Benchmark: training FLOP/s of the confirmation loops' shapes against a large matrix product.

For every shape the committed CPU loops train (vit-patch patch 28/14/7 with merged patches,
batch 128; lm-context context 8/16/32 at batch 16; mlp-width width 4/16/64 at batch 32; the
settings of docs/examples/validate-*/**/loop.json), it runs short real ``validate.train.train``
runs and prints, side by side with the FLOP/s of a 2048 x 2048 fp32 matrix product measured in
the same process right before and after each run:

- steps: training FLOP/s over the training steps alone (the controller's clock, which times
  each step from drawing its batch to the optimizer's update), and its ratio to the product;
- run: training FLOPs over the whole ``train`` call's wall time (model set-up, FLOP counting
  and evaluations included; the data set is loaded once per task, before), and its ratio.

Each run trains ``--share`` (0.1) of the loop run's budget for that shape, with that share of
its evaluations (at least 2, so tiny shares over-weight evaluations).

FLOPs per step are the project's exact counts (the controller's ``FlopCounterMode`` count, equal
to ``Task.analytic_flops``), never estimated from time. Each shape is measured ``--repeats``
times (medians printed): the machine is shared, so the product is measured beside every run and
only ratios from the same moment are compared. With ``--compile`` each shape also runs compiled
(``TrainConfig.compile``), its eager and compiled runs taking turns, a row for each; one run
that compiles the shape comes first and is not timed, so the compiled row is that of a run
whose shape is compiled already (a loop's runs after its first of each shape).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_train.py            # 4 to 8 minutes
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_train.py --tasks lm-context --share 0.02
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_train.py --tasks vit-patch,lm-context --compile

Expect the product at 50 to 150 GFLOP/s on one thread of this project's machine (it depends on
the other jobs), patch 7 and context 32 at about half of it, and the tiny shapes (patch 28,
context 8, every mlp-width) further below: their steps are bound by small kernels (attention
over 1 to 8 tokens, layer norms, the optimizer) and per-operation overhead, not by arithmetic.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from validate.config import TrainConfig
from validate.tasks import Task, make_task, shape_name
from validate.train import train

MATMUL_SIZE = 2048
# The loops' settings: task options, the axes every shape shares, the shapes, the budget of a
# loop run and its evaluations (docs/examples/validate-vit-patch/merge-6e12-2seeds, whose
# patch 28 the later loops leave out, with the 96 evaluations of merge-6e12-8seeds and -16seeds;
# validate-lm-context/ctx-2e12-8seeds, validate-mlp-width).
LOOPS = {
    "vit-patch": dict(options={"patch_resize": "merge", "eval_size": 3000}, common={},
                      shapes=[{"patch": 28}, {"patch": 14}, {"patch": 7}], budget=6e12,
                      config=TrainConfig(lr=1e-3, warmup_steps=50, evals=96)),
    "lm-context": dict(options={}, common={"batch": 16},
                       shapes=[{"context": 8}, {"context": 16}, {"context": 32}], budget=2e12,
                       config=TrainConfig(lr=2e-3, warmup_steps=50, evals=16)),
    "mlp-width": dict(options={"noise": 1.0}, common={"batch": 32},
                      shapes=[{"width": 4}, {"width": 16}, {"width": 64}], budget=2e8,
                      config=TrainConfig(lr=1e-3, warmup_steps=20, evals=24)),
}


def matmul_flops_per_second(repeats: int = 3) -> float:
    """The median FLOP/s of ``repeats`` 2048 x 2048 fp32 products (2 n^3 FLOPs each)."""
    a, b = torch.randn(MATMUL_SIZE, MATMUL_SIZE), torch.randn(MATMUL_SIZE, MATMUL_SIZE)
    a @ b  # the first call allocates and picks its kernel
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * MATMUL_SIZE**3 / statistics.median(times)


def loop_steps(task: Task, axes: dict, loop: dict) -> float:
    """The training steps of the loop's run of ``axes`` (its budget over a step's FLOPs)."""
    return loop["budget"] / task.analytic_flops(axes)


def run_once(task: Task, axes: dict, loop: dict, share: float,
             compile: bool = False) -> tuple[float, float, float]:
    """A run of ``share`` of the loop run's budget, with about as many evaluations per step as
    that run: (trained FLOPs, step seconds, wall seconds)."""
    evals = max(2, round(loop["config"].evals * share))
    config = TrainConfig(**{**loop["config"].to_dict(), "evals": evals, "compile": compile,
                            "task_options": loop["options"]})
    budget = share * loop["budget"]
    started = time.perf_counter()
    final = train(task, axes, budget, config=config, progress=False).final
    return final["flops"], final["time"], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per shape (medians)")
    parser.add_argument("--tasks", default=",".join(LOOPS), help="comma-separated tasks")
    parser.add_argument("--share", type=float, default=0.1,
                        help="each bench run trains this share of the loop run's budget")
    parser.add_argument("--compile", action="store_true",
                        help="also run each shape compiled, in turn with its eager runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    modes = ("eager", "compiled") if args.compile else ("eager",)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.repeats} "
          f"repeats (medians), runs of {args.share:g} x the loop run's budget")
    header = (f"{'task':<11} {'shape':<44} {'mode':<8} {'steps':>5} {'GFLOP/step':>10} "
              f"{'steps GF/s':>10} {'run GF/s':>9} {'matmul GF/s':>11} {'steps/mm':>8} "
              f"{'run/mm':>7}")
    print(header)
    for name in args.tasks.split(","):
        loop = LOOPS[name]
        task = make_task(name, **loop["options"])
        task.provenance()  # loads the data set once, outside the timed runs
        for shape in loop["shapes"]:
            axes = task.complete({**loop["common"], **shape})
            steps = round(args.share * loop_steps(task, axes, loop))
            if args.compile:
                run_once(task, axes, loop, args.share, compile=True)
            rows = {mode: [] for mode in modes}
            for _ in range(args.repeats):
                for mode in modes:
                    before = matmul_flops_per_second()
                    flops, seconds, wall = run_once(task, axes, loop, args.share,
                                                    compile=mode == "compiled")
                    matmul = (before + matmul_flops_per_second()) / 2
                    rows[mode].append((flops / seconds, flops / wall, matmul))
            for mode in modes:
                step_rate, run_rate, matmul = (statistics.median(column)
                                               for column in zip(*rows[mode], strict=True))
                ratios = [statistics.median(row[i] / row[2] for row in rows[mode])
                          for i in (0, 1)]
                print(f"{name:<11} {shape_name(axes):<44} {mode:<8} {steps:>5} "
                      f"{task.analytic_flops(axes) / 1e9:>10.4f} {step_rate / 1e9:>10.2f} "
                      f"{run_rate / 1e9:>9.2f} {matmul / 1e9:>11.1f} {ratios[0]:>8.3f} "
                      f"{ratios[1]:>7.3f}", flush=True)


if __name__ == "__main__":
    main()
