"""Does a simulated adaptive run follow what the real runs did after their switch?

The committed vit-patch loop (8 seeds, patch14 -> patch7) switched for real. This fits the
switch's transition as ``shapeshift fit ... --switch-runs adaptive`` does
(``with_measured_transitions``, on the loop's ``laws.json``, the laws its plan was made with),
simulates the loop's plan (``sim``: patch14 until the plan's switch level, then patch7; no
noise, an evaluation every ``--eval-every`` FLOPs) once on truth laws with that measured
transition and once on the same laws without it (today's free switch, loss preserved), and
scores each against every real evaluation after the switch, FLOPs since the switch against
FLOPs since the switch: RMSE of log(simulated true loss, interpolated) - log(real eval loss).
Beside each: the 90% interval over the seeds resampled, and the paired difference.

Three ways to get the transition: ``in sample`` (fitted on all 8 seeds, as the law file keeps
it), ``seed left out`` (fitted on the other 7 seeds for each seed scored: out of sample), and
``law samples`` (``--truth-draw samples``: each replication follows one of the law file's joint
bootstrap samples of the laws and the transition; the spread of the RMSE over replications).

Run: ``.venv/bin/python bench/bench_sim_transitions.py`` (about 20 s); ``--loop`` another
loop folder with one switch per adaptive run.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_transitions import interval  # noqa: E402  (beside this script)

from laws.fit.transitions import (  # noqa: E402
    Comparison,
    Switch,
    as_measured,
    fit_transitions,
    switches_in_run,
    with_measured_transitions,
)
from laws.io.lawfile import read_law_file  # noqa: E402
from laws.lawset import LawSet  # noqa: E402
from laws.runcurves import read_run  # noqa: E402
from laws.search import PlanRequest, read_plan  # noqa: E402
from laws.stats import percentile_interval  # noqa: E402
from laws.tables import format_number, format_table  # noqa: E402
from sim import SimConfig, simulate  # noqa: E402
from sim.policies import Scheduled  # noqa: E402

LOOP = REPO / "docs/examples/validate-vit-patch/merge-6e12-8seeds"
FREE, MEASURED = "free", "transient-penalty"
EARLY = 1e12  # FLOPs after the switch where the jump shows (tau is about 2.6e11)


def simulated_after_switch(truth: LawSet, loop: Path, eval_every: float, horizon: float,
                           runs: int = 1, truth_draw: str = "point"
                           ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each replication's FLOPs since its switch and true losses after it, following the
    loop's plan on ``truth`` without noise to ``horizon`` FLOPs (its target set at the last
    shape's floor, so that the run goes on to the horizon as the real runs did)."""
    optimal = read_plan(loop / "plan.json").optimal
    policy = Scheduled("planned", optimal.steps())
    last = truth.shape(optimal.shapes[-1]).law.floor
    request = PlanRequest.for_laws(truth, last + 1e-3 * abs(last))
    config = SimConfig(eval_every=eval_every, max_compute=horizon, truth_draw=truth_draw)
    results = simulate(truth, request, [policy], config, runs=runs)
    curves = []
    for run in results.runs:
        shapes = [row[4] for row in run.trajectory]
        first = shapes.index(optimal.shapes[-1])  # the first evaluation after the switch
        flops = np.array([row[1] for row in run.trajectory])
        curves.append((flops[first:] - flops[first - 1],
                       np.array([row[2] for row in run.trajectory[first:]])))
    return curves


def log_residuals(curve: tuple[np.ndarray, np.ndarray], switch: Switch) -> np.ndarray:
    """log(simulated) - log(real) at the real evaluations after ``switch``."""
    since, loss = curve
    if switch.since.max() > since.max():
        raise SystemExit(f"{switch.run}: the simulation ends before its last evaluation")
    return np.interp(switch.since, since, np.log(loss)) - np.log(switch.observed)


def scored(curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
           switches: list[Switch], early: bool = False) -> Comparison:
    """Each model's residuals per seed (``curves[model][seed]``: the simulated run its
    switch is scored on), over every evaluation after the switch or the ``EARLY`` ones."""
    residuals: dict[str, dict[str, np.ndarray]] = {model: {} for model in curves}
    for switch in switches:
        kept = switch.since <= EARLY if early else np.full(switch.since.shape, True)
        part = replace(switch, since=switch.since[kept], observed=switch.observed[kept])
        for model, by_seed in curves.items():
            residuals[model][switch.run] = log_residuals(by_seed[switch.run], part)
    return Comparison(residuals, {}, len(switches))


def rows_of(name: str, comparison: Comparison) -> list[list]:
    return [[name, model, comparison.evaluations, comparison.rmse(model),
             interval(comparison.interval(model)),
             "" if model == MEASURED else interval(comparison.interval(model, MEASURED))]
            for model in (FREE, MEASURED)]


def report(loop: Path, fitted: Path | None, eval_every: float, resamples: int,
           replications: int) -> None:
    started = time.perf_counter()
    runs = sorted(loop.glob("adaptive/seed*/curve.jsonl"))
    switches = [s for path in runs for s in switches_in_run(path.parent.name, read_run(path))]
    if len(switches) != len(runs):
        raise SystemExit("each adaptive run must switch once")
    horizon = max(s.since.max() for s in switches) * 1.5
    if fitted is None:
        laws = read_law_file(loop / "laws.json")
        measured = with_measured_transitions(laws, switches, resamples)
    else:
        measured = read_law_file(fitted)
        laws = replace(measured, transitions=replace(measured.transitions, measured=()))
    (transition,) = measured.transitions.measured
    print(f"{loop.relative_to(REPO)}: {len(switches)} switches {transition.source} -> "
          f"{transition.destination}, {sum(s.since.size for s in switches)} real evaluations "
          f"after them; fitted on all seeds: {transition.model} "
          + ", ".join(f"{k}={format_number(v)}" for k, v in transition.params.items()))
    free_curve = simulated_after_switch(laws, loop, eval_every, horizon)[0]
    in_sample = simulated_after_switch(measured, loop, eval_every, horizon)[0]
    held_out = {}
    for switch in switches:
        others = [s for s in switches if s.run != switch.run]
        fitted = replace(laws, transitions=replace(laws.transitions, measured=as_measured(
            fit_transitions(laws, others), {})))
        held_out[switch.run] = simulated_after_switch(fitted, loop, eval_every, horizon)[0]
    seeds = [s.run for s in switches]
    ways = {"in sample": {FREE: dict.fromkeys(seeds, free_curve),
                          MEASURED: dict.fromkeys(seeds, in_sample)},
            "seed left out": {FREE: dict.fromkeys(seeds, free_curve), MEASURED: held_out}}
    rows = []
    for early in (False, True):
        for name, curves in ways.items():
            window = f"first {format_number(EARLY)} FLOPs" if early else "all after switch"
            rows += rows_of(f"{name}, {window}", scored(curves, switches, early))
    print(format_table(["transition fitted", "simulated switch", "evaluations",
                        "RMSE log-loss", "90% over seeds", f"minus {MEASURED}'s, 90%"], rows))
    print(law_samples(laws, measured, loop, switches, eval_every, horizon, replications))
    print(f"({time.perf_counter() - started:.1f} s)")


def law_samples(laws: LawSet, measured: LawSet, loop: Path, switches: list[Switch],
                eval_every: float, horizon: float, replications: int) -> str:
    """The RMSE over all real evaluations after the switch of replications that follow the
    law file's joint samples (laws and transition), with and without the transition."""
    rows = []
    for model, truth in ((FREE, laws), (MEASURED, measured)):
        curves = simulated_after_switch(truth, loop, eval_every, horizon, replications,
                                        "samples")
        values = [math.sqrt(np.mean(np.concatenate([log_residuals(curve, s)
                                                    for s in switches]) ** 2))
                  for curve in curves]
        rows.append([model, replications, float(np.median(values)),
                     interval(percentile_interval(values))])
    return format_table(["law samples, simulated switch", "replications", "median RMSE",
                         "90% over replications"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", type=Path, default=LOOP)
    parser.add_argument("--laws", type=Path,
                        help="a law file that carries the loop's measured transition (`shapeshift "
                             "fit LOOP/static --switch-runs LOOP/adaptive`), instead of fitting "
                             "it on LOOP/laws.json")
    parser.add_argument("--eval-every", type=float, default=2e9,
                        help="simulated FLOPs between evaluations")
    parser.add_argument("--resamples", type=int, default=200,
                        help="bootstrap samples of the transition (the law file's count)")
    parser.add_argument("--replications", type=int, default=100)
    args = parser.parse_args()
    report(args.loop.resolve(), args.laws, args.eval_every, args.resamples, args.replications)


if __name__ == "__main__":
    main()
