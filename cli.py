"""The ``shapeshift`` command line: one click group, each command a thin wrapper.

Heavy imports (torch, matplotlib, simpy) happen inside the commands that need them, so that
``shapeshift --help`` and ``shapeshift search`` start fast.
"""

from __future__ import annotations

import contextlib
import json
import sys

import click

from laws.errors import InputError


class _Group(click.Group):
    """Turns an ``InputError`` anywhere below into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shapeshift")
def main() -> None:
    """Plan, simulate and validate adaptive training across model shapes."""


def laws_source(command):
    """Adds the ``LAWS.json | --preset NAME`` pair that every law-consuming command takes."""
    command = click.option("--preset", metavar="NAME", help="A built-in law set (see `presets`).")(
        command
    )
    return click.argument("laws_file", metavar="[LAWS.json]", required=False,
                          type=click.Path(dir_okay=False))(command)


def load_laws(laws_file: str | None, preset: str | None):
    """The law set named on the command line: a file or a preset, exactly one of them."""
    from laws.io.lawfile import read_law_file
    from laws.presets import load_preset

    if (laws_file is None) == (preset is None):
        raise InputError("give a law file or --preset NAME (exactly one of them)")
    return read_law_file(laws_file) if laws_file else load_preset(preset)


def echo_json(data: object) -> None:
    """One JSON object on stdout, for machines."""
    click.echo(json.dumps(data, indent=2, allow_nan=False))


@main.command()
def presets() -> None:
    """List the built-in law sets."""
    from laws.presets import load_preset, preset_names

    rows = [(name, load_preset(name)) for name in preset_names()]
    width = max((len(name) for name, _ in rows), default=4)
    for name, laws in rows:
        source = laws.provenance.get("source", "")
        click.echo(f"{name:<{width}}  {len(laws.shapes):>3} shapes  {source}")


@main.group(name="laws", cls=_Group)
def laws_group() -> None:
    """Inspect law files."""


@laws_group.command(name="show")
@laws_source
def laws_show(laws_file: str | None, preset: str | None) -> None:
    """Print the shapes, forms and parameters of a law file or preset."""
    from laws.tables import format_law_set

    click.echo(format_law_set(load_laws(laws_file, preset)))


def _key_values(items: tuple[str, ...], option: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"{option} {item!r}: expected KEY=VALUE")
        pairs.append((key, value))
    return pairs


@main.command()
@click.argument("curves_file", metavar="CURVES", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]),
              help="Input format (default: from the file suffix).")
@click.option("--shape-col", multiple=True, metavar="COL",
              help="Column naming the shape; repeat for multi-axis shapes (width, depth).")
@click.option("--shape-name", metavar="TEMPLATE",
              help='Shape names from the shape columns, e.g. "w{width}-d{depth}".')
@click.option("--compute-col", metavar="COL", help="Training compute C (FLOPs).")
@click.option("--tokens-col", metavar="COL", help="Tokens D; with --params-col, C = 6 N D.")
@click.option("--params-col", metavar="COL", help="Parameters N (needed by --form chinchilla).")
@click.option("--loss-col", required=True, metavar="COL", help="Loss.")
@click.option("--filter", "filters", multiple=True, metavar="COL=VALUE",
              help="Keep only rows where COL equals VALUE (repeatable).")
@click.option("--form", type=click.Choice(["power", "saturating", "chinchilla"]),
              default="power", show_default=True, help="Law form to fit.")
@click.option("--share", multiple=True, type=click.Choice(["floor", "exponent"]),
              help="Parameter shared by all shapes in a joint fit (repeatable).")
@click.option("--drop-highest", type=click.IntRange(min=0), default=0, metavar="K",
              help="Drop the points of the K highest losses first (Epoch AI's recipe: 5).")
@click.option("--holdout-above", type=float, metavar="X",
              help="Extrapolation check: fit on points with compute (or --holdout-col) <= X, "
                   "report the error above.")
@click.option("--holdout-col", metavar="COL", help="Column for --holdout-above (e.g. tokens).")
@click.option("--bootstrap", type=click.IntRange(min=0), default=0, metavar="N",
              help="Bootstrap resamples for confidence intervals.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--target-loss", type=float, metavar="LOSS",
              help="Loss for the compute interval (default: each shape's lowest loss).")
@click.option("--time-col", metavar="COL",
              help="Seconds to reach each point (a product such as step*seconds_per_step is "
                   "allowed): gives each shape a throughput, compute per second.")
@click.option("--name", help="Name of the law set (default: the file's stem).")
@click.option("--provenance", "provenance_items", multiple=True, metavar="KEY=VALUE",
              help="Extra provenance entry, e.g. licence=MIT (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="LAWS.json",
              help="Write the fitted law file.")
def fit(curves_file, fmt, shape_col, shape_name, compute_col, tokens_col, params_col, loss_col,
        filters, form, share, drop_highest, holdout_above, holdout_col, bootstrap, seed,
        target_loss, time_col, name, provenance_items, as_json, output) -> None:
    """Fit scaling laws to measured curves and write a law file."""
    from pathlib import Path

    from laws.fit import fit_curves, holdout_check
    from laws.fit.report import format_fit, with_provenance
    from laws.io.curves import ColumnMap, load_curves
    from laws.io.lawfile import law_set_to_dict, write_law_file

    filter_pairs = _key_values(filters, "--filter")
    extra = tuple(c for c in (holdout_col, time_col) if c)
    columns = ColumnMap(shape=shape_col, loss=loss_col, compute=compute_col, tokens=tokens_col,
                        params=params_col, filters=tuple(filter_pairs), extra=extra,
                        shape_name=shape_name)
    curves = load_curves(curves_file, columns, fmt)

    def progress(done: int, total: int) -> None:
        click.echo(f"\rbootstrap {done}/{total}", err=True, nl=done == total)

    result = fit_curves(curves, form, share, drop_highest, bootstrap, seed, target_loss,
                        time_column=time_col, name=name or Path(curves_file).stem,
                        progress=progress)
    holdout = None
    if holdout_above is not None:
        holdout = holdout_check(curves, holdout_above, holdout_col, form, share, drop_highest)
    options = {k: v for k, v in {
        "shape_col": list(shape_col), "shape_name": shape_name, "compute_col": compute_col,
        "tokens_col": tokens_col, "params_col": params_col, "loss_col": loss_col,
        "filter": [f"{k}={v}" for k, v in filter_pairs], "form": form, "share": list(share),
        "drop_highest": drop_highest, "holdout_above": holdout_above,
        "holdout_col": holdout_col, "bootstrap": bootstrap, "seed": seed,
        "target_loss": target_loss, "time_col": time_col}.items() if v not in (None, [])}
    laws = with_provenance(result, curves_file, options, holdout,
                           dict(_key_values(provenance_items, "--provenance")))
    if output:
        write_law_file(laws, output)
    if as_json:
        echo_json({"laws": law_set_to_dict(laws), "fit": result.to_dict(),
                   "holdout": None if holdout is None else holdout.to_dict()})
    else:
        click.echo(format_fit(result, holdout))


@main.command()
@laws_source
@click.option("--target", type=float, required=True, metavar="LOSS", help="Loss to reach.")
@click.option("--start-loss", type=float, metavar="E0",
              help="Loss where the schedule starts (default: where every shape's law starts).")
@click.option("--levels", type=int, default=2000, show_default=True, help="Loss grid levels.")
@click.option("--switch-flops", type=float, metavar="X", help="FLOPs per switch.")
@click.option("--switch-seconds", type=float, metavar="S",
              help="Seconds per switch (seconds and money objectives).")
@click.option("--switch-penalty", type=float, metavar="D", help="Loss added by a switch.")
@click.option("--allowed", metavar="SPEC", help="all, one-axis, or FROM:TO,FROM:TO,...")
@click.option("--only-grow", multiple=True, metavar="AXIS", help="Axis that may only grow.")
@click.option("--only-shrink", multiple=True, metavar="AXIS", help="Axis that may only shrink.")
@click.option("--max-switches", type=int, metavar="K", help="At most K switches.")
@click.option("--objective", default="flops", show_default=True,
              help="flops, seconds (needs throughputs) or money (needs --price-per-hour).")
@click.option("--price-per-hour", type=float, metavar="PRICE", help="Price per accelerator-hour.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan object as JSON.")
@click.option("--graphml", type=click.Path(dir_okay=False), help="Write the graph as GraphML.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="PLAN.json",
              help="Write the plan object to a file.")
def search(laws_file, preset, target, start_loss, levels, switch_flops, switch_seconds,
           switch_penalty, allowed, only_grow, only_shrink, max_switches, objective,
           price_per_hour, as_json, graphml, output) -> None:
    """Find the schedule of shapes that reaches --target cheapest, and what it saves."""
    from dataclasses import replace

    from laws.graph import build_problem, parse_allowed, write_graphml
    from laws.io.atomic import write_text_atomic
    from laws.search.plan import format_plan, plan_for_problem

    laws = load_laws(laws_file, preset)
    overrides = {"flops": switch_flops, "seconds": switch_seconds, "loss_penalty": switch_penalty,
                 "allowed": None if allowed is None else parse_allowed(allowed)}
    transitions = replace(laws.transitions,
                          **{k: v for k, v in overrides.items() if v is not None})
    problem = build_problem(laws, target, start_loss=start_loss, levels=levels,
                            transitions=transitions, only_grow=only_grow,
                            only_shrink=only_shrink, max_switches=max_switches,
                            objective=objective, price_per_hour=price_per_hour)
    result = plan_for_problem(laws, problem)
    if graphml:
        write_graphml(problem, graphml)
    if output:
        write_text_atomic(output, json.dumps(result, indent=2, allow_nan=False) + "\n")
    if as_json:
        echo_json(result)
    else:
        click.echo(format_plan(result))


def simulation_options(runs: int = 100):
    """The options that describe simulated runs, shared by ``simulate`` and ``compare``."""
    options = [
        click.option("--truth", "truth_file", type=click.Path(dir_okay=False),
                     metavar="TRUTH.json",
                     help="Laws the runs really follow (default: the planning laws)."),
        click.option("--noise", type=float, default=0.0, show_default=True, metavar="SIGMA",
                     help="Relative evaluation noise."),
        click.option("--eval-every", type=float, metavar="FLOPS",
                     help="Training FLOPs between evaluations (default: best static "
                          "compute / 1000)."),
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
                     help="Mean time between failures per accelerator."),
        click.option("--repair", type=float, default=0.0, show_default=True, metavar="H",
                     help="Hours to repair after a failure."),
        click.option("--ckpt-cost", type=float, default=0.0, show_default=True, metavar="S",
                     help="Seconds to save a checkpoint."),
        click.option("--ckpt-interval", type=float, metavar="S",
                     help="Seconds between checkpoints (default: Young/Daly "
                          "sqrt(2 cost MTBF))."),
        click.option("--gpus", type=int, metavar="G",
                     help="Cluster size; runs queue for accelerators."),
        click.option("--gpus-per-run", type=int, default=1, show_default=True, metavar="N",
                     help="Accelerators each run asks for."),
        click.option("--runs", type=int, default=runs, show_default=True, metavar="R",
                     help="Monte Carlo replications."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--workers", type=int, default=1, show_default=True, metavar="W",
                     help="Worker processes (results do not depend on it)."),
    ]
    return _all_of(options)


def _all_of(options: list):
    """One decorator that applies ``options`` in the order listed (as ``--help`` shows them)."""
    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@contextlib.contextmanager
def progress_bar(length: int, label: str):
    """A progress callback (items done so far) drawing a bar on stderr. The bar appears with
    the first report, so that an error found before any work stays the only line on stderr."""
    with contextlib.ExitStack() as stack:
        bar = None

        def update(done: int) -> None:
            nonlocal bar
            if bar is None:
                bar = stack.enter_context(click.progressbar(length=length, label=label,
                                                            file=sys.stderr))
            bar.update(done - bar.pos)

        yield update


def simulation_config(params: dict, trajectories: bool):
    """The ``SimConfig`` that the ``simulation_options`` of a command describe."""
    from sim import FaultModel, SimConfig

    faults = (None if params["mtbf"] is None else
              FaultModel(params["mtbf"], params["repair"], params["ckpt_cost"],
                         params["ckpt_interval"]))
    return SimConfig(noise=params["noise"], eval_every=params["eval_every"],
                     eval_seconds=params["eval_seconds"], confirm=params["confirm"],
                     max_compute=params["max_compute"], max_hours=params["max_hours"],
                     accelerators=params["gpus_per_run"], gpus=params["gpus"],
                     penalty_decay_flops=params["penalty_decay"], faults=faults,
                     trajectories=trajectories)


@main.command()
@laws_source
@click.option("--target", type=float, required=True, metavar="LOSS", help="Loss to reach.")
@click.option("--policy", "policy_texts", multiple=True, metavar="P",
              help="static[:SHAPE], planned, greedy, online, random or fixed:SHAPE@FRACTION,...; "
                   "repeatable or comma-separated (default: planned). The best static shape "
                   "always runs too, as the baseline.")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False), metavar="PLAN.json",
              help="Plan from `shapeshift search -o` (default: run the search here).")
@simulation_options()
@click.option("--sweep", "sweep_file", type=click.Path(dir_okay=False), metavar="SWEEP.json",
              help="Runs of one replication (policy, shape or plan, seed, accelerators).")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object on stdout (no trajectories).")
@click.option("-o", "--output", type=click.Path(file_okay=False), metavar="DIR",
              help="Write results.json, runs.csv and trajectories.csv into DIR.")
def simulate(laws_file, preset, target, policy_texts, plan_file, truth_file, sweep_file, runs,
             seed, workers, as_json, output, **_simulation) -> None:
    """Simulate training runs of each policy with noise, faults and a cluster (Monte Carlo)."""
    from pathlib import Path

    from laws.io.atomic import write_text_atomic
    from laws.io.jsonfile import read_json_object
    from laws.io.lawfile import read_law_file
    from sim import simulate as run_simulation
    from sim.cluster import read_sweep
    from sim.results import format_summary

    laws = load_laws(laws_file, preset)
    config = simulation_config(click.get_current_context().params,
                               trajectories=output is not None)
    policies = [p for text in policy_texts or ("planned",) for p in text.split(",") if p]
    if not any(p.startswith("static") for p in policies) and sweep_file is None:
        policies.append("static")
    sweep = read_sweep(sweep_file) if sweep_file else None
    plans = {entry.plan: read_json_object(entry.plan, "plan")
             for entry in sweep or () if entry.plan}
    with progress_bar(runs, "simulating") as progress:
        results = run_simulation(
            laws, target, policies, config, runs=runs, seed=seed, workers=workers,
            truth=read_law_file(truth_file) if truth_file else None,
            plan=read_json_object(plan_file, "plan") if plan_file else None, sweep=sweep,
            plans=plans, progress=progress)
    if output:
        folder = Path(output)
        write_text_atomic(folder / "results.json",
                          json.dumps(results.to_dict(), indent=2, allow_nan=False) + "\n")
        write_text_atomic(folder / "runs.csv", results.runs_csv())
        write_text_atomic(folder / "trajectories.csv", results.trajectories_csv())
    if as_json:
        echo_json(results.to_dict(trajectories=False))
    else:
        click.echo(format_summary(results))


@main.command()
@laws_source
@click.option("--target", type=float, metavar="LOSS",
              help="Loss to reach (default: the law set's default_target, when it has one).")
@click.option("--policies", "policy_text", default="static,greedy,planned,online,random",
              show_default=True, metavar="P,P,...",
              help="Policies to compare (as in `simulate --policy`); the best static shape "
                   "always runs too, as the baseline.")
@click.option("--levels", type=int, default=2000, show_default=True,
              help="Loss grid levels of the search.")
@simulation_options(runs=20)
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True, metavar="DIR",
              help="Report folder: report.md, report.html, figures/, summary.json, runs.csv.")
def compare(laws_file, preset, target, policy_text, levels, truth_file, runs, seed, workers,
            output, **_simulation) -> None:
    """Search, simulate every policy and write a report: should I train adaptively?"""
    from laws.io.lawfile import read_law_file
    from sim.report import compare as write_report

    laws = load_laws(laws_file, preset)
    policies = [p for p in policy_text.split(",") if p]
    sources = {"laws": laws_file or f"preset:{preset}"}
    if truth_file:
        sources["truth"] = truth_file
    config = simulation_config(click.get_current_context().params, trajectories=True)
    with progress_bar(runs, "simulating") as progress:
        report = write_report(laws, target, policies, config, out_dir=output, runs=runs,
                              seed=seed, workers=workers,
                              truth=read_law_file(truth_file) if truth_file else None,
                              search={"levels": levels}, sources=sources, progress=progress)
    click.echo(f"report: {report}")


# The options a task takes, shared by ``validate train`` and ``validate run``; the command
# receives them as ``task_flags`` for ``_task_options``.
task_options = _all_of([
    click.option("--eval-size", type=int, default=None,
                 help="vit-patch: test images evaluated (default 2000)."),
    click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                 help="vit-patch: folder with Fashion-MNIST's four .gz files."),
    click.option("--patch-resize", type=click.Choice(["pi", "merge"]), default=None,
                 help="vit-patch: pi (FlexiViT, the default) or merge (a coarse token is "
                      "the mean of the 7x7-patch tokens it covers; patches 7, 14, 28)."),
    click.option("--corpus", type=click.Path(dir_okay=False), default=None,
                 help="lm-context: text file to train on (default: the Python standard "
                      "library)."),
    click.option("--widen-noise", "noise", type=float, default=None,
                 help="mlp-width, lm-context: symmetry-breaking noise when widening."),
])


def _task_options(task_flags: dict) -> dict:
    """The task options given on the command line (unset ones take the task's defaults)."""
    return {key: value for key, value in task_flags.items() if value is not None}


@main.group(name="validate", cls=_Group)
def validate_group() -> None:
    """Real training with torch: models that change shape while they train."""


@validate_group.command(name="train")
@click.argument("task_name", metavar="TASK")
@click.option("--shape", "shape_text", default="", metavar="AXIS=N,...",
              help="Starting shape, e.g. patch=7,batch=128; unset axes take the task's defaults.")
@click.option("--switch-at", "switch_texts", multiple=True, metavar="WHEN:AXIS=N,...",
              help="Switch shape: 0.5:patch=4 (fraction of the budget), flops=3e12:patch=4, "
                   "or loss=0.6:patch=4 (first eval at or below). Repeatable, in order.")
@click.option("--budget", type=float, required=True, metavar="FLOPS", help="Training FLOPs.")
@click.option("-o", "--out", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder: curve.jsonl, checkpoint.pt, result.json.")
@click.option("--resume", is_flag=True, help="Continue the run saved in the run folder.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--compile", "use_compile", is_flag=True, help="torch.compile (CUDA only).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--warmup-steps", type=int, default=50, show_default=True)
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--batch-lr-rule", type=click.Choice(["sqrt", "linear", "none"]), default="sqrt",
              show_default=True, help="Learning-rate rescaling when the batch size changes.")
@click.option("--evals", type=click.IntRange(min=2), default=30, show_default=True,
              help="Evaluations, spaced geometrically from 1% of the budget to all of it.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=500, show_default=True,
              metavar="STEPS")
@task_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def validate_train(task_name, shape_text, switch_texts, budget, run_dir, resume, device,
                   use_compile, seed, lr, warmup_steps, weight_decay, batch_lr_rule, evals,
                   checkpoint_every, as_json, **task_flags) -> None:
    """Train TASK (vit-patch, mlp-width, lm-context) for --budget FLOPs and log its curve."""
    from dataclasses import asdict

    from validate.tasks import parse_shape
    from validate.train import format_result, parse_switch, train

    shape = parse_shape(shape_text) if shape_text else {}
    switches = [parse_switch(text, budget) for text in switch_texts]
    result = train(task_name, shape, budget, switches, run_dir=run_dir, resume=resume, seed=seed,
                   lr=lr, warmup_steps=warmup_steps, weight_decay=weight_decay,
                   batch_lr_rule=batch_lr_rule, evals=evals, checkpoint_every=checkpoint_every,
                   device=device, compile=use_compile,
                   task_options=_task_options(task_flags))
    if as_json:
        echo_json({**asdict(result), "run_dir": str(result.run_dir)})
    else:
        click.echo(format_result(result))


@validate_group.command(name="run")
@click.argument("task_name", metavar="TASK")
@click.option("--shapes", "shape_texts", required=True, multiple=True, metavar="AXIS=N,...;...",
              help="Candidate shapes, separated by ';' or given repeatedly, e.g. "
                   "'patch=14;patch=7;patch=4'.")
@click.option("--common", "common_text", default="", metavar="AXIS=N,...",
              help="Axes every shape shares, e.g. dim=64,depth=4 (else the task's defaults).")
@click.option("--budget", type=float, required=True, metavar="FLOPS",
              help="Training FLOPs of each static run.")
@click.option("--target", type=float, metavar="LOSS",
              help="Loss to reach (default: the best static run's final eval loss).")
@click.option("--seeds", type=int, default=1, show_default=True, help="Static runs per shape.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--compile", "use_compile", is_flag=True, help="torch.compile (CUDA only).")
@click.option("--adaptive-budget", type=float, metavar="FLOPS",
              help="Training FLOPs of the adaptive run (default: --budget).")
@click.option("--lr", type=float, default=1e-3, show_default=True,
              help="Constant after the warm-up, so every static curve is a law at every compute.")
@click.option("--warmup-steps", type=int, default=50, show_default=True)
@click.option("--evals", type=click.IntRange(min=4), default=30, show_default=True,
              help="Evaluations per run, spaced geometrically from 1% of its budget.")
@click.option("--levels", type=int, default=2000, show_default=True, help="Search loss levels.")
@task_options
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes that train the static runs side by side.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for torch (1 is fastest for small models on a busy machine).")
@click.option("--until", type=click.Choice(["static", "fit", "plan", "adaptive", "report"]),
              default="report", show_default=True, help="Stop after this stage.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Loop folder; rerunning with the same options continues it.")
@click.option("--json", "as_json", is_flag=True, help="The summary as one JSON object.")
def validate_run(task_name, shape_texts, common_text, budget, target, seeds, device, use_compile,
                 adaptive_budget, lr, warmup_steps, evals, levels, workers, threads, until,
                 out_dir, as_json, **task_flags) -> None:
    """Measure static runs of TASK, fit laws, plan, train the plan, and compare (resumable)."""
    import torch

    from validate.loop import LoopConfig, parse_shapes, run_loop
    from validate.report import format_summary
    from validate.tasks import parse_shape

    if threads:
        torch.set_num_threads(threads)
    options = {"lr": lr, "warmup_steps": warmup_steps, "evals": evals}
    if use_compile:
        options["compile"] = True
    config = LoopConfig(task_name, parse_shapes(shape_texts),
                        budget, target, seeds, device,
                        parse_shape(common_text, "--common") if common_text else {},
                        options, _task_options(task_flags), levels, adaptive_budget)
    summary = run_loop(config, out_dir, until=until, workers=workers)
    if as_json:
        echo_json(summary)
    elif summary:
        click.echo(format_summary(summary))


if __name__ == "__main__":
    sys.exit(main())
