"""What a switch costs on the committed loops' adaptive runs: the transition models compared.

For each loop (its ``laws.json``, fitted to the static runs, and ``adaptive/seed*/curve.jsonl``)
this prints, per switch pair and pooled, the RMSE of log-loss over the evaluations after each
switch (until the next switch or the end) of ``free`` (the run continues on the new shape's
law from where that law reaches the loss that fired the switch), ``constant-flops`` (the same,
delayed by a constant number of FLOPs), ``transient-penalty`` (a loss jump of delta times
that loss, fading as exp(-FLOPs since the switch / tau)) and ``slowdown`` (the new shape's
law followed 1 + s times slower); each out of sample, leaving one seed
out (``laws.fit.transitions``). Beside each RMSE its 90% interval over the seeds resampled,
and the paired difference to ``transient-penalty``'s on the same resamples; then each pair's
parameters fitted to all seeds, with their 90% bootstrap intervals (switches resampled, each
resample on one of the law file's bootstrap law sets). Last, the loop's plan request
(``plan.json``) searched again with each model's fitted transitions in the law file, allowing
only the switches the loop made: the search charges each switch the extra FLOPs the model
needs to reach the end of the leg after it (``laws.search.charges``). It prints the plan, its
saving and its 90% interval over the law file's bootstrap samples, beside the saving the loop
measured.

Run: ``.venv/bin/python bench/bench_transitions.py`` (about a minute); ``--loop`` other loop
folders, ``--resamples`` the parameters' bootstrap (default 200, the law files' samples).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from laws.fit.transitions import (  # noqa: E402
    FITTED,
    PairTransition,
    as_measured,
    fit_transitions,
    leave_one_run_out,
    switches_in_run,
)
from laws.io.jsonfile import read_json_object  # noqa: E402
from laws.io.lawfile import read_law_file  # noqa: E402
from laws.lawset import LawSet  # noqa: E402
from laws.runcurves import read_run  # noqa: E402
from laws.search import plan, read_plan  # noqa: E402
from laws.tables import format_number, format_percent, format_table  # noqa: E402
from laws.transitions import MODELS, PARAMETERS  # noqa: E402

LOOPS = (REPO / "docs/examples/validate-vit-patch/merge-6e12-8seeds",
         REPO / "docs/examples/validate-lm-context/ctx-2e12-8seeds")
BEST = "transient-penalty"


def interval(pair: tuple[float, float]) -> str:
    return f"[{format_number(pair[0])}, {format_number(pair[1])}]"


def report(loop: Path, resamples: int, seed: int) -> None:
    laws = read_law_file(loop / "laws.json")
    switches = [switch for path in sorted(loop.glob("adaptive/seed*/curve.jsonl"))
                for switch in switches_in_run(path.parent.name, read_run(path))]
    started = time.perf_counter()
    comparison = leave_one_run_out(laws, switches)
    print(f"\n{loop.relative_to(REPO)}: {comparison.switches} switches, "
          f"{comparison.evaluations} evaluations after them, "
          f"{len(comparison.residuals[MODELS[0]])} seeds left out in turn")
    rows = [[f"{a} -> {b}", *(rmse[model] for model in MODELS)]
            for (a, b), rmse in comparison.pair_rmse.items()]
    rows.append(["all pairs", *(comparison.rmse(model) for model in MODELS)])
    print(format_table(["pair", *(f"RMSE {model}" for model in MODELS)], rows))
    print(format_table(["model", "RMSE", "90% over seeds", f"minus {BEST}'s, 90%"], [
        [model, comparison.rmse(model), interval(comparison.interval(model, seed=seed)),
         "" if model == BEST else interval(comparison.interval(model, BEST, seed=seed))]
        for model in MODELS]))
    fitted = fit_transitions(laws, switches, resamples, seed)
    rows = [[f"{pair.source} -> {pair.destination}", pair.switches, model, name, value,
             interval(bounds)]
            for pair in fitted for model in FITTED
            for name, value, bounds in zip(PARAMETERS[model], pair.params[model],
                                           pair.interval(model), strict=True)]
    print(format_table(["pair", "switches", "model", "parameter", "fitted",
                        f"90% over {resamples} resamples"], rows))
    print(plan_savings(loop, laws, fitted, comparison.pair_rmse))
    print(f"({time.perf_counter() - started:.1f} s)")


def plan_savings(loop: Path, laws: LawSet, fitted: list[PairTransition],
                 scores: dict[tuple[str, str], dict[str, float]]) -> str:
    """The loop's plan request searched again with each fitted model's transitions in the
    law file (``laws.search.charges``), its saving over the best static shape with the 90%
    interval over the law file's bootstrap samples, beside the saving the loop measured."""
    asked = read_plan(loop / "plan.json").request
    # Only the switches the loop made, whose transitions were measured: an unmeasured switch
    # would be free, and a route through it would dodge the charges compared here.
    asked = replace(asked, allowed=tuple((pair.source, pair.destination) for pair in fitted))
    summary = read_json_object(loop / "summary.json", "summary")
    rows = []
    for model in ("free", *FITTED):
        measured = () if model == "free" else as_measured(fitted, scores, model)
        charged = replace(laws, transitions=replace(laws.transitions, measured=measured))
        result = plan(charged, asked.for_other_laws(charged))
        spread = result.uncertainty.plan_saving
        rows.append([model, " > ".join(result.optimal.shapes),
                     format_percent(result.saving_vs_static),
                     f"[{format_percent(spread.p5)}, {format_percent(spread.p95)}]"])
    measured = summary["measured_saving_vs_planned"]
    return (format_table(["switches charged by", "plan", "predicted saving",
                          "90% over law samples"], rows)
            + f"\nmeasured saving over {measured['n']} seeds: {format_percent(measured['mean'])}"
            f" [{format_percent(measured['low'])}, {format_percent(measured['high'])}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", type=Path, action="append",
                        help="loop folder (repeatable; default: the two committed 8-seed loops)")
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for loop in args.loop or LOOPS:
        report(loop.resolve(), args.resamples, args.seed)


if __name__ == "__main__":
    main()
