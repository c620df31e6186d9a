"""The plan's uncertainty: 1,000 bootstrap samples x 32 shapes x 2,000 levels at once, against
1,000 single searches in a loop, side by side in one run.

Goal: the vectorised report in at most 2 s on this project's 2-core machine, and at least 10x
faster than the loop (which answers the same question sample by sample with ``plan``). Free
transitions (the case the vectorised path covers; with switch costs each sample is solved by
the ordinary solver, as fast as the loop). Wall time, best of three for the report; the loop
runs once (it takes long) and its time per search is printed too.

    .venv/bin/python bench/bench_uncertainty.py [--samples 1000] [--loop 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from laws.forms import PowerLaw  # noqa: E402
from laws.lawset import LawSet, Shape  # noqa: E402
from laws.search import PlanRequest, build_problem, plan, plan_for_problem  # noqa: E402
from laws.search.uncertainty import plan_uncertainty  # noqa: E402

TARGET = 2.0
SHAPES = 32
LEVELS = 2000


def sampled(samples: int, seed: int = 0) -> LawSet:
    """The search bench's 32 crossing power laws, with a and the floor jittered per sample."""
    rng = np.random.default_rng(seed)
    size = np.linspace(0.0, 1.0, SHAPES)
    shapes = []
    for i, (x, b) in enumerate(zip(size, np.linspace(0.32, 0.24, SHAPES), strict=True)):
        floor, a = 1.9 - 0.6 * x, (3.0 + 1.5 * x - (1.9 - 0.6 * x)) * 1e17**b
        draws = tuple(PowerLaw(a * float(np.exp(rng.normal(0, 0.05))), b,
                               floor + float(rng.normal(0, 0.005))) for _ in range(samples))
        shapes.append(Shape(f"s{i}", {"size": i}, PowerLaw(a, b, floor), samples=draws))
    return LawSet("bench-uncertainty", tuple(shapes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--loop", type=int, default=1000, help="single searches to time")
    args = parser.parse_args()
    laws = sampled(args.samples)
    request = PlanRequest.for_laws(laws, TARGET, start_loss=6.0, levels=LEVELS)
    bare = replace(laws, shapes=tuple(replace(s, samples=()) for s in laws.shapes))
    problem = build_problem(bare, request.for_other_laws(bare))
    point = plan_for_problem(bare, problem)

    times = []
    for _ in range(3):
        started = time.perf_counter()
        report = plan_uncertainty(laws, problem, point)
        times.append(time.perf_counter() - started)
    vectorised = min(times)

    samples = laws.samples()[:args.loop]
    started = time.perf_counter()
    for sample in samples:
        plan(sample, replace(request.for_other_laws(sample), start_loss=point.start_loss))
    looped = time.perf_counter() - started
    per_search = looped / len(samples)

    saving = report.saving
    print(f"{args.samples} samples x {SHAPES} shapes x {LEVELS} levels, free transitions")
    print(f"  vectorised report: {vectorised:.2f} s  (goal <= 2 s); saving "
          f"{saving.p50:.2%} [{saving.p5:.2%}, {saving.p95:.2%}], "
          f"{len(report.schedules)} distinct optimal orders")
    print(f"  {len(samples)} single searches in a loop: {looped:.2f} s ({per_search * 1e3:.1f} ms "
          f"each; {per_search * args.samples:.1f} s for {args.samples})")
    print(f"  ratio: {per_search * args.samples / vectorised:.1f}x  (goal >= 10x)")


if __name__ == "__main__":
    main()
