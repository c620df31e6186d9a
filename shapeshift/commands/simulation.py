"""The simulation commands: ``simulate`` (Monte Carlo of policies) and ``compare`` (a report).

Thin wrappers: the option groups build the ``PlanRequest`` and the ``SimConfig`` once, the
library does the work and writes the files. simpy and matplotlib load inside the commands.
"""

from __future__ import annotations

from typing import Any

import click

from shapeshift.commands.options import (
    all_of,
    echo_json,
    json_flag,
    option_group,
    plan_request,
    progress_bar,
)
from sim.executor import EXECUTORS


def _simulation_config(*, noise: float, eval_every: float | None,
                       eval_seconds: float, confirm: int, max_compute: float | None,
                       max_hours: float | None, penalty_decay: float | None,
                       mtbf: float | None, repair: float, ckpt_cost: float,
                       ckpt_interval: float | None, gpus: int | None,
                       gpus_per_run: int, truth_draw: str) -> Any:
    from sim import FaultModel, SimConfig

    faults = None if mtbf is None else FaultModel(mtbf, repair, ckpt_cost, ckpt_interval)
    return SimConfig(noise=noise, eval_every=eval_every, eval_seconds=eval_seconds,
                     confirm=confirm, max_compute=max_compute, max_hours=max_hours,
                     accelerators=gpus_per_run, gpus=gpus, penalty_decay_flops=penalty_decay,
                     faults=faults, truth_draw=truth_draw)


simulation_options = option_group([
    click.option("--noise", type=float, default=0.0, show_default=True, metavar="SIGMA",
                 help="Relative evaluation noise."),
    click.option("--eval-every", type=float, metavar="FLOPS",
                 help="Training FLOPs between evaluations (default: best static compute / "
                      "1000; at most 1,000,000 evaluations within the compute budget)."),
    click.option("--eval-seconds", type=float, default=0.0, show_default=True,
                 help="Wall time of one evaluation."),
    click.option("--confirm", type=int, default=3, show_default=True, metavar="K",
                 help="Consecutive evaluations at or below the target that stop a run."),
    click.option("--max-compute", type=float, metavar="FLOPS",
                 help="Compute budget per run (default: 10x the best static compute)."),
    click.option("--max-hours", type=float, metavar="H", help="Time budget per run."),
    click.option("--penalty-decay", type=float, metavar="FLOPS",
                 help="Switch loss penalty fades over this compute (default: it stays)."),
    click.option("--mtbf", type=float, metavar="H",
                 help="Mean time between failures per accelerator (refused when a run "
                      "would fail over 10,000 times: give --max-hours to bound it)."),
    click.option("--repair", type=float, default=0.0, show_default=True, metavar="H",
                 help="Hours to repair after a failure."),
    click.option("--ckpt-cost", type=float, default=0.0, show_default=True, metavar="S",
                 help="Seconds to save a checkpoint."),
    click.option("--ckpt-interval", type=float, metavar="S",
                 help="Seconds between checkpoints (default: Young/Daly sqrt(2 cost MTBF))."),
    click.option("--gpus", type=int, metavar="G", help="Cluster size; runs queue for "
                                                       "accelerators."),
    click.option("--gpus-per-run", type=int, default=1, show_default=True, metavar="N",
                 help="Accelerators each run asks for."),
    click.option("--truth-draw", default="point", show_default=True,
                 metavar="point|samples|widened:F",
                 help="What each replication's runs follow: the truth laws (--truth, default "
                      "the planning laws), one of their bootstrap samples drawn by the seed and "
                      "the replication, or that sample F times as far from the point laws (a "
                      "fit whose intervals are F times too narrow). All policies of a "
                      "replication follow the same draw."),
], _simulation_config, "config")


def monte_carlo_options(runs: int) -> Any:
    """Replications, seed, workers and where they run: how the simulation is run, not what it
    is (the results do not depend on the executor or the number of workers)."""
    return all_of([
        click.option("--runs", type=int, default=runs, show_default=True, metavar="R",
                     help="Monte Carlo replications."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True),
        click.option("--workers", type=int, default=1, show_default=True, metavar="W",
                     help="Worker processes (results do not depend on it)."),
        click.option("--executor", type=click.Choice(EXECUTORS), default="local",
                     show_default=True,
                     help="Where the workers run: a local process pool, a Dask "
                          "LocalCluster or Ray (the extras [dask], [ray])."),
    ])


def _own_folder(output: str, names: Any, inputs: list) -> None:
    """Before any work: the output folder is none of the inputs, may be replaced by ``names``,
    and is this command's until it ends (a second writer is refused, laws.io.lock)."""
    from laws.io.atomic import check_not_input, check_replaceable
    from laws.io.lock import claim

    check_replaceable(output, names)
    check_not_input(output, inputs)
    claim(output)


def truth_option(command: Any) -> Any:
    """``--truth TRUTH.json``: the command receives ``truth``, a ``LawSource`` or None."""
    def build(truth_file: str | None) -> Any:
        from laws.io.source import LawSource

        return None if truth_file is None else LawSource.named(truth_file, None)

    return option_group([
        click.option("--truth", "truth_file", type=click.Path(dir_okay=False),
                     metavar="TRUTH.json",
                     help="Laws the runs really follow (default: the planning laws)."),
    ], build, "truth")(command)


def plan_option(command: Any) -> Any:
    return click.option("--plan", "plan_file", type=click.Path(dir_okay=False),
                        metavar="PLAN.json",
                        help="Plan from `shapeshift search -o`, made for the same request "
                             "(default: run the search here).")(command)


@click.command()
@plan_request()
@click.option("--policy", "policy_texts", multiple=True, metavar="P",
              help="static[:SHAPE], planned, greedy, online, random or fixed:SHAPE@FRACTION,...; "
                   "repeatable or comma-separated (default: planned). The best static shape "
                   "always runs too, as the baseline.")
@plan_option
@truth_option
@simulation_options
@monte_carlo_options(runs=100)
@click.option("--sweep", "sweep_file", type=click.Path(dir_okay=False), metavar="SWEEP.json",
              help="Runs of one replication (policy, shape or plan, seed, accelerators).")
@json_flag("One JSON object on stdout (no trajectories).")
@click.option("-o", "--output", type=click.Path(file_okay=False), metavar="DIR",
              help="Write results.json, runs.csv and trajectories.csv into DIR.")
def simulate(laws, source, request, policy_texts, plan_file, truth, config, runs, seed,
             workers, executor, sweep_file, as_json, output) -> None:
    """Simulate training runs of each policy with noise, faults and a cluster (Monte Carlo)."""
    from dataclasses import replace

    from laws.search.planfile import read_plan
    from sim import simulate as run_simulation
    from sim.cluster import read_sweep
    from sim.policy_spec import split_policies, with_baseline
    from sim.results import RESULT_FILES, format_summary, rounded

    sweep = read_sweep(sweep_file) if sweep_file else None
    if output:
        _own_folder(output, RESULT_FILES, [source.path, plan_file, truth and truth.path,
                                           sweep_file, *(e.plan for e in sweep or ())])
    config = replace(config, trajectories=output is not None)
    policies = split_policies(policy_texts or ("planned",))
    if sweep is None:
        policies = with_baseline(policies)
    plans = {entry.plan: read_plan(entry.plan) for entry in sweep or () if entry.plan}
    with progress_bar(runs, "simulating") as progress:
        results = run_simulation(laws, request, policies, config, runs=runs, seed=seed,
                                 workers=workers, truth=truth and truth.load(),
                                 plan=read_plan(plan_file) if plan_file else None, sweep=sweep,
                                 plans=plans, progress=progress, executor=executor)
    warning = results.budget_warning()
    if warning:
        click.echo(warning, err=True)
    if output:
        results.write(output)
    if as_json:
        echo_json(rounded(results.to_dict(trajectories=False)))
    else:
        click.echo(format_summary(results))


@click.command()
@plan_request(target_default=True)
@click.option("--policies", "policy_text", default="static,greedy,planned,online,random",
              show_default=True, metavar="P,P,...",
              help="Policies to compare (as in `simulate --policy`); the best static shape "
                   "always runs too, as the baseline.")
@plan_option
@truth_option
@simulation_options
@monte_carlo_options(runs=20)
@json_flag("Print the report's summary.json on stdout too.")
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True, metavar="DIR",
              help="Report folder: report.md, report.html, figures/, summary.json, runs.csv.")
def compare(laws, source, request, policy_text, plan_file, truth, config, runs, seed,
            workers, executor, as_json, output) -> None:
    """Search, simulate every policy and write a report: should I train adaptively?"""
    from laws.search.planfile import read_plan
    from sim.policy_spec import split_policies
    from sim.report import compare as write_report
    from sim.report.compare import REPORT_FILES

    _own_folder(output, REPORT_FILES, [source.path, plan_file, truth and truth.path])
    sources = {"laws": source} if truth is None else {"laws": source, "truth": truth}
    with progress_bar(runs, "simulating") as progress:
        summary = write_report(laws, request, split_policies([policy_text]), config,
                               out_dir=output, runs=runs, seed=seed, workers=workers,
                               truth=truth and truth.load(),
                               plan_object=read_plan(plan_file) if plan_file else None,
                               sources=sources, progress=progress, executor=executor)
    if summary["simulation"]["budget_warning"]:
        click.echo(summary["simulation"]["budget_warning"], err=True)
    if as_json:
        echo_json(summary)
    click.echo(f"report: {output}/report.html", err=as_json)
