"""Held-out prediction of annealed losses on the project's own runs (issue 28): hot law,
cool-down-branch law and schedule-aware law, per seed, side by side.

Per seed, one constant-rate run of one static shape keeps its state at ``--keep`` FLOP levels
(``TrainConfig.keep_at``, spaced geometrically from ``Setting.first_keep`` of the budget, past
the warm-up, up to the budget), and ``validate.cooldown.cool_down`` cools each kept state down
over the last ``--share`` of a budget C / (1 - share): the wsd run of that budget, bit for
bit. Each seed's ``CooldownBranches`` is read back from the run folder as a user would: the
hot points are the constant run's evaluations at the keep points (``curve.jsonl``), the
branches' ends ``annealed.jsonl``'s, the steps the FLOPs over the static shape's FLOPs per
step (``result.json``), the warm-up the run's. The three methods are fitted on the keep points
before the last ``--held-out`` and the branches leaving there, and predict the annealed
losses of the last ``--held-out`` branches; the score is the RMSE of log-loss per seed, and
the table gives its mean over seeds with a 90% Student-t interval and each method's paired
difference from the schedule-aware law (``bench/bench_anneal.py``'s table, there over
Gemstones' shapes).

The schedule of ``schedule_areas`` is the run's up to one step: a wsd cool-down of K steps
takes its first step at the peak rate and its last at 1/K of it, ``schedule_areas``'s at
(K - 1)/K and 0, so S1 here falls 1 to 1.25 peak steps short of the run's (3% of the first
mlp-width branch's, 0.1% to 0.24% of the held-out ones') and S2 lies about one drop's
momentum above it (5.48 against 4.49 for the first branch, 2% or less for the held-out ones).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_anneal_own.py [--task mlp-width lm-context]
        [--seeds 8] [--keep 10] [--held-out 3] [--share 0.2] [--momentum 0.999] [--out DIR]

takes about 3.5 minutes on 2 shared cores (mlp-width: 8 seeds of a 3e7-FLOP run, 1331
steps, and its 10 branches, 21 s; lm-context: 8 seeds of 2e11 FLOPs, 1097 steps, 174 s), and
the same numbers each time (CPU training is deterministic). On 2026-12-07 it printed, per
task, the RMSE of log-loss of the last 3 branches, mean over 8 seeds [90% t interval]:

    mlp-width   hot law 0.1822 [0.1466, 0.2178], cool-down-branch law 0.0409 [0.0137, 0.0680],
                schedule-aware law 0.2821 [0.1909, 0.3732]
    lm-context  hot law 0.0267 [0.0193, 0.0341], cool-down-branch law 0.0083 [0.0048, 0.0117],
                schedule-aware law 0.0092 [0.0044, 0.0140]

(the whole table, the paired differences and what they show: docs/FITTING.md "Annealed
losses").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_anneal import print_comparison  # noqa: E402  (shared with the Gemstones bench)
from laws.errors import InputError  # noqa: E402
from laws.fit.anneal import MOMENTUM, CooldownBranches, held_out_errors  # noqa: E402
from validate.config import TrainConfig  # noqa: E402
from validate.controller import CURVE  # noqa: E402
from validate.cooldown import ANNEALED, cool_down, parse_keep_at  # noqa: E402
from validate.tasks import Axes  # noqa: E402
from validate.train import RESULT, train  # noqa: E402


@dataclass(frozen=True)
class Setting:
    """One task's constant-rate run: its static shape, budget and training settings, and the
    first keep point as a share of the budget (past the warm-up, so that every branch
    leaves the peak rate)."""

    axes: Axes
    budget: float
    first_keep: float
    config: TrainConfig = field(default_factory=TrainConfig)


# mlp-width at --lr 3e-2 sits on its noise floor from about 3e6 FLOPs, where a cool-down
# lowers the loss (validate/README.md "Cool-down branches"); lm-context as its committed loop
# trains (docs/examples/validate-lm-context), at a tenth of its budget.
SETTINGS = {
    "mlp-width": Setting({"width": 8, "batch": 32}, 3e7, 0.03,
                         TrainConfig(lr=3e-2, warmup_steps=20, evals=6)),
    "lm-context": Setting({"context": 16, "batch": 16}, 2e11, 0.06,
                          TrainConfig(lr=2e-3, warmup_steps=50, evals=6)),
}


def branch_run(task: str, setting: Setting, seed: int, keep: int, share: float,
               folder: Path) -> Path:
    """Train seed ``seed``'s constant-rate run into ``folder`` keeping ``keep`` states, and
    cool each down over ``share``; the folder of the branches (``annealed.jsonl``)."""
    keep_at = parse_keep_at(f"auto:{keep}", setting.budget, setting.first_keep)
    config = replace(setting.config, seed=seed, keep_at=keep_at)
    train(task, setting.axes, setting.budget, config=config, run_dir=folder, progress=False)
    cooled = folder / f"cooldown-{share:g}"
    cool_down(folder, share, cooled, progress=False)
    return cooled


def read_branches(run_dir: Path, cooled: Path, momentum: float = MOMENTUM) -> CooldownBranches:
    """The ``CooldownBranches`` of a static constant-rate run folder and the folder of its
    cool-down branches, read from their files; refused (``InputError``) unless every
    evaluation lies on one shape's FLOPs per step and each branch leaves at an evaluation."""
    result = json.loads((run_dir / RESULT).read_text())
    flop_per_step = result["final"]["flops"] / result["final"]["step"]
    evaluations = {record["step"]: record for record in _lines(run_dir / CURVE)
                   if record["event"] == "eval"}
    if any(record["flops"] != step * flop_per_step for step, record in evaluations.items()):
        raise InputError(f"{run_dir}: not a static run of {flop_per_step:g} FLOPs per step")
    rows = _lines(cooled / ANNEALED)
    if any(row["step"] not in evaluations for row in rows):
        raise InputError(f"{cooled}: a branch leaves {run_dir} where it did not evaluate")
    steps = np.array([row["step"] for row in rows], dtype=float)
    return CooldownBranches(
        hot_steps=steps,
        hot_loss=np.array([evaluations[row["step"]]["eval_loss"] for row in rows]),
        branch_steps=steps,
        end_steps=np.array([row["annealed_flops"] for row in rows]) / flop_per_step,
        annealed_loss=np.array([row["annealed_loss"] for row in rows]),
        flop_per_step=flop_per_step, warmup_steps=result["config"]["warmup_steps"],
        momentum=momentum)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def seed_branches(task: str, seeds: int, keep: int, share: float, out: Path,
                  momentum: float = MOMENTUM) -> dict[str, CooldownBranches]:
    """Seeds 0 to ``seeds`` - 1 of ``task``'s run and branches, trained into ``out/seed-<k>``
    and read back."""
    runs = {}
    for seed in range(seeds):
        folder = out / f"seed-{seed}"
        print(f"seed {seed}: {folder}", file=sys.stderr, flush=True)
        cooled = branch_run(task, SETTINGS[task], seed, keep, share, folder)
        runs[f"seed-{seed}"] = read_branches(folder, cooled, momentum)
    return runs


def fit_cut(runs: dict[str, CooldownBranches], held_out: int) -> float:
    """The step up to which every seed is fitted: its branch ``held_out`` + 1 from the end,
    the same for every seed (one shape, one FLOPs per step, the same keep points)."""
    cuts = {float(run.branch_steps[-held_out - 1]) for run in runs.values()}
    if len(cuts) != 1:
        raise InputError(f"the seeds' keep points differ: {sorted(cuts)}")
    return cuts.pop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", nargs="+", choices=sorted(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--keep", type=int, default=10, help="keep points (branches) a run")
    parser.add_argument("--held-out", type=int, default=3, help="last branches held out")
    parser.add_argument("--share", type=float, default=0.2, help="cool-down share of a budget")
    parser.add_argument("--momentum", type=float, default=MOMENTUM,
                        help="the schedule-aware law's annealing momentum lambda, per step")
    parser.add_argument("--out", type=Path, help="keep the runs here, a folder per task "
                        "(default: a temporary folder, removed at the end)")
    args = parser.parse_args()
    if not 1 <= args.held_out < args.keep:
        parser.error("--held-out must lie in [1, --keep)")
    with tempfile.TemporaryDirectory(prefix="bench_anneal_own-") as scratch:
        for task in args.task:
            start = time.perf_counter()
            runs = seed_branches(task, args.seeds, args.keep, args.share,
                                 (args.out or Path(scratch)) / task, args.momentum)
            trained = time.perf_counter() - start
            _report(task, runs, args)
            print(f"{trained:.0f} s training, {time.perf_counter() - start - trained:.1f} s "
                  "fitting\n")


def _report(task: str, runs: dict[str, CooldownBranches], args: argparse.Namespace) -> None:
    cut = fit_cut(runs, args.held_out)
    errors = held_out_errors(runs, cut)
    setting, first = SETTINGS[task], next(iter(runs.values()))
    axes = ",".join(f"{key}={value}" for key, value in setting.axes.items())
    print(f"{task} {axes}, {len(runs)} seeds: {setting.budget:.3g} FLOPs at lr "
          f"{setting.config.lr:g} (warm-up {setting.config.warmup_steps} steps), {args.keep} "
          f"keep points at steps {first.branch_steps[0]:.0f}-{first.branch_steps[-1]:.0f}, "
          f"cool-down {args.share:g}; fitted on branches from steps <= {cut:.0f}, the last "
          f"{args.held_out} held out; momentum {args.momentum}")
    gain = np.concatenate([run.annealed_loss / run.hot_loss for run in runs.values()])
    print(f"annealed loss / constant loss at the branch point: {np.min(gain):.3f} to "
          f"{np.max(gain):.3f}, median {np.median(gain):.3f}")
    print_comparison(errors, "seed")


if __name__ == "__main__":
    main()
