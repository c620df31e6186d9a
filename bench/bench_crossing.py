"""How well a loop measures compute to a target, and how often its saving interval is right.

A confirmation loop reads each run's compute to the target off a noisy eval curve. This bench
simulates such curves from a committed loop's own fitted laws, at that loop's evaluation
FLOPs, with the evaluation noise its static curves showed, and prints:

1. per shape, the noise measured on the loop's curves: each evaluation's residual from a
   quadratic in log-log through it and its four neighbours, divided by sqrt(1 - 17/35) (the
   middle point's leverage in such a fit, so that the residual's spread is the noise's);
2. per estimator (``reach``: the first evaluation at or below the target; ``crossing`` with
   half-widths of 0.1 to 0.5 decades), the error of a static run's compute to the target against
   its law's (bias and spread, in log compute), and of an adaptive run's (the plan followed,
   each switch at the first evaluation at or below its planned loss level, landing on the new
   shape's law at the true loss there);
3. for the loop's estimator, the coverage of the loop's 90% Student-t interval of the saving
   over ``--seeds`` paired seeds, over ``--loops`` simulated loops: how often it contains the
   true saving, the seeds' mean of 1 - (adaptive run's true compute to the target) / (best
   static shape's), estimated once from 20,000 simulated adaptive runs.

Run: ``.venv/bin/python bench/bench_crossing.py`` (about a minute); ``--loop`` another loop
folder, ``--evals`` denser evaluations than the loop's (what more evaluations would buy),
``--noise`` a relative noise in place of the measured one, ``--lag1`` correlated noise
(successive evaluations of a run at a constant learning rate are not independent). Expected on
the default (docs/examples/validate-vit-patch/merge-6e12-2seeds): noise 1.7-3.4% per shape;
``crossing`` spreads about 0.7 times as much as ``reach`` on the flat patch-7 curve (0.4 times
with ``--evals 96``); coverage within 80-97%.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from laws.io.lawfile import read_law_file  # noqa: E402
from laws.search.planfile import Plan, read_plan  # noqa: E402
from validate.config import LoopConfig, TrainConfig  # noqa: E402
from validate.measured import crossing, paired_savings, reach  # noqa: E402

DEFAULT_LOOP = REPO / "docs/examples/validate-vit-patch/merge-6e12-2seeds"
SPANS = (0.1, 0.15, 0.25, 0.35, 0.5)  # decades
LEVERAGE = 17 / 35  # the middle point's in a least-squares quadratic through 5 equally spaced x
TRUTH_RUNS = 20_000


def measured_noise(loop: Path, names: list[str]) -> dict[str, float]:
    """Each shape's evaluation noise (sigma of log loss) on the loop's static curves."""
    noise = {}
    for name in names:
        residuals = []
        for path in sorted((loop / "static" / name).glob("seed*/curve.jsonl")):
            records = [json.loads(line) for line in path.read_text().splitlines()]
            points = np.array([(r["flops"], r["eval_loss"]) for r in records
                               if r.get("event", "eval") == "eval" and r["flops"] > 0])
            x, y = np.log(points[:, 0]), np.log(points[:, 1])
            for i in range(2, len(x) - 2):
                fit = np.polyfit(x[i - 2:i + 3], y[i - 2:i + 3], 2)
                residuals.append(y[i] - np.polyval(fit, x[i]))
        noise[name] = float(np.std(residuals) / math.sqrt(1 - LEVERAGE))
    return noise


def standard_noise(rng: np.random.Generator, size: int, lag1: float) -> np.ndarray:
    """``size`` draws of a stationary AR(1) process with unit variance and lag-1 ``lag1``."""
    shocks = rng.standard_normal(size)
    noise = np.empty(size)
    noise[0] = shocks[0]
    for i in range(1, size):
        noise[i] = lag1 * noise[i - 1] + math.sqrt(1 - lag1**2) * shocks[i]
    return noise


class Simulator:
    """Noisy eval curves of the laws at the loop's evaluation FLOPs: each evaluation's log loss
    off by sigma (the shape's noise) times an AR(1) draw with lag-1 ``lag1``."""

    def __init__(self, laws, plan: Plan, levels: np.ndarray, noise: dict[str, float],
                 lag1: float = 0.0) -> None:
        self.laws, self.levels, self.noise, self.lag1 = laws, levels, noise, lag1
        self.schedule = plan.optimal.steps()
        self.target = plan.target_loss

    def static(self, name: str, rng: np.random.Generator) -> list[dict]:
        loss = self.laws.shape(name).law.loss(self.levels)
        draws = standard_noise(rng, loss.size, self.lag1)
        observed = loss * np.exp(self.noise[name] * draws)
        return [{"flops": f, "eval_loss": e, "shape": name}
                for f, e in zip(self.levels, observed, strict=True)]

    def adaptive(self, rng: np.random.Generator) -> tuple[list[dict], float]:
        """The plan followed on noisy evaluations, and its true compute to the target."""
        records, segment = [], 0
        name, level = self.schedule[0]
        law = self.laws.shape(name).law
        start, offset = 0.0, 0.0  # FLOPs where the shape began; its law's compute there
        draws = standard_noise(rng, self.levels.size, self.lag1)
        for flops, draw in zip(self.levels, draws, strict=True):
            true = float(law.loss(offset + flops - start))
            observed = true * math.exp(self.noise[name] * draw)
            records.append({"flops": flops, "eval_loss": observed, "shape": name})
            if observed <= level and segment + 1 < len(self.schedule):
                segment += 1
                name, level = self.schedule[segment]
                law = self.laws.shape(name).law
                start, offset = flops, float(law.compute(true))
        if segment + 1 < len(self.schedule):
            return records, math.inf  # a switch never fired: the plan's route was not taken
        true_flops = start + float(law.compute(self.target)) - offset
        return records, true_flops


def errors(simulator: Simulator, estimators: dict, rng: np.random.Generator,
           draws: int) -> dict[str, dict[str, np.ndarray]]:
    """Log errors of each estimator's compute to the target, per static shape and adaptive."""
    target = simulator.target
    out: dict[str, dict[str, list[float]]] = {key: {} for key in estimators}
    for name in [s.name for s in simulator.laws.shapes]:
        truth = float(simulator.laws.shape(name).law.compute(target))
        if not truth < simulator.levels[-1]:
            continue  # the shape does not reach the target within the budget
        curves = [simulator.static(name, rng) for _ in range(draws)]
        for key, estimate in estimators.items():
            values = [estimate(curve, target) for curve in curves]
            out[key][name] = [math.log(v / truth) for v in values if v is not None]
    runs = [simulator.adaptive(rng) for _ in range(draws)]
    for key, estimate in estimators.items():
        values = [(estimate(records, target), true) for records, true in runs]
        out[key]["adaptive"] = [math.log(v / true) for v, true in values
                                if v is not None and math.isfinite(true)]
    return {key: {name: np.array(v) for name, v in rows.items()} for key, rows in out.items()}


def true_saving(simulator: Simulator, rng: np.random.Generator) -> float:
    """The seeds' mean of 1 - adaptive / best static true compute to the target."""
    static = min(float(s.law.compute(simulator.target)) for s in simulator.laws.shapes)
    adaptive = np.array([simulator.adaptive(rng)[1] for _ in range(TRUTH_RUNS)])
    return float(np.mean(1 - adaptive / static))


def coverage(simulator: Simulator, seeds: int, loops: int, rng: np.random.Generator,
             truth: float) -> tuple[float, float, float]:
    """Share of simulated loops whose 90% interval holds ``truth``; mean half-width; share
    of loops that gave an interval at all."""
    names = [s.name for s in simulator.laws.shapes]
    planned = min(names, key=lambda n: float(simulator.laws.shape(n).law.compute(
        simulator.target)))
    held, widths, given = 0, [], 0
    for _ in range(loops):
        static = {name: [simulator.static(name, rng) for _ in range(seeds)] for name in names}
        adaptive = [simulator.adaptive(rng)[0] for _ in range(seeds)]
        interval = paired_savings(static, adaptive, simulator.target, planned)["saving"]
        if interval["low"] is None:
            continue
        given += 1
        held += interval["low"] <= truth <= interval["high"]
        widths.append((interval["high"] - interval["low"]) / 2)
    return held / max(1, given), float(np.mean(widths)) if widths else math.nan, given / loops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loop", type=Path, default=DEFAULT_LOOP)
    parser.add_argument("--evals", type=int, default=None, help="default: the loop's")
    parser.add_argument("--noise", type=float, default=None, help="default: measured")
    parser.add_argument("--lag1", type=float, default=0.0,
                        help="lag-1 correlation of successive evaluations' noise (0: none)")
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--loops", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    config = LoopConfig.from_dict(json.loads((args.loop / "loop.json").read_text()))
    laws = read_law_file(args.loop / "laws.json")
    plan = read_plan(args.loop / "plan.json")
    train = TrainConfig(evals=args.evals or config.train.evals,
                        first_eval=config.train.first_eval)
    levels = np.array(train.eval_levels(config.budget))
    noise = measured_noise(args.loop, list(laws.names))
    if args.noise is not None:
        noise = dict.fromkeys(noise, args.noise)
    simulator = Simulator(laws, plan, levels, noise, args.lag1)
    rng = np.random.default_rng(args.seed)

    print(f"loop {args.loop.relative_to(REPO) if args.loop.is_relative_to(REPO) else args.loop}"
          f": target {simulator.target:.4f}, {len(levels)} evaluations to "
          f"{config.budget:.3g} FLOPs, plan {' -> '.join(n for n, _ in simulator.schedule)}")
    print("evaluation noise (sigma of log loss): "
          + ", ".join(f"{name} {sigma:.4f}" for name, sigma in noise.items())
          + f"; lag-1 correlation {args.lag1:g}")
    estimators = {"reach (first)": reach,
                  **{f"crossing {s:g}": partial(crossing, span=s) for s in SPANS}}
    table = errors(simulator, estimators, rng, args.draws)
    print(f"\nlog error of compute to the target over {args.draws} curves: bias / spread "
          "(RMSE) in percent")
    names = list(next(iter(table.values())))
    print(f"{'estimator':<16}" + "".join(f"{name:>24}" for name in names))
    for key, rows in table.items():
        cells = [f"{100 * v.mean():+7.2f} / {100 * v.std():5.2f} "
                 f"({100 * np.sqrt(np.mean(v**2)):5.2f})" for v in rows.values()]
        print(f"{key:<16}" + "".join(f"{c:>24}" for c in cells))

    truth = true_saving(simulator, rng)
    print(f"\ntrue saving (the seeds' mean, {TRUTH_RUNS} simulated adaptive runs): "
          f"{100 * truth:.2f}% (plan: {100 * plan.saving_vs_static:.2f}%)")
    share, half, given = coverage(simulator, args.seeds, args.loops, rng, truth)
    print(f"loop's 90% interval over {args.seeds} paired seeds, {args.loops} simulated loops "
          f"(crossing, its default span): holds the truth in {100 * share:.1f}% "
          f"(mean half-width {100 * half:.2f} points; {100 * given:.0f}% of loops gave an "
          "interval)")


if __name__ == "__main__":
    main()
