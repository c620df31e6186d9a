"""The commands over law sets: ``presets``, ``laws show``, ``fit`` and ``search``.

Each is a thin wrapper: parse, call a library function, print. Heavy imports (numpy, scipy)
happen inside the commands, so that ``shapeshift --help`` starts fast.
"""

from __future__ import annotations

import click

from laws.errors import InputError
from shapeshift.commands.options import (
    Group,
    echo_json,
    json_flag,
    key_values,
    laws_source,
    log_options,
    option_group,
    plan_request,
)


@click.command()
@json_flag()
def presets(as_json: bool) -> None:
    """List the built-in law sets."""
    from laws.presets import load_preset, preset_names

    rows = [(name, load_preset(name)) for name in preset_names()]
    if as_json:
        echo_json({"presets": [{"name": name, "shapes": len(laws.shapes),
                                "source": laws.provenance.get("source"),
                                "default_target": laws.extra.get("default_target")}
                               for name, laws in rows]})
        return
    width = max((len(name) for name, _ in rows), default=4)
    for name, laws in rows:
        source = laws.provenance.get("source", "")
        click.echo(f"{name:<{width}}  {len(laws.shapes):>3} shapes  {source}")


@click.group(name="laws", cls=Group)
def laws_group() -> None:
    """Inspect law files."""


@laws_group.command(name="show")
@laws_source
@json_flag("Print the law set as its law-file JSON.")
def laws_show(laws, source, as_json: bool) -> None:
    """Print the shapes, forms and parameters of a law file or preset."""
    from laws.io.lawfile import law_set_to_dict
    from laws.tables import format_law_set

    if as_json:
        echo_json(law_set_to_dict(laws))
    else:
        click.echo(format_law_set(laws))


@laws_group.command(name="anneal")
@laws_source
@click.argument("annealed_file", metavar="ANNEALED.json", type=click.Path(dir_okay=False))
@click.option("--cooldown", type=float, required=True, metavar="SHARE",
              help="The share of each run's FLOP budget its cool-down took when the annealed "
                   "losses were measured (0.2 for validate cooldown --share 0.2).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              metavar="OUT.json", help="The law file to write.")
@json_flag("Print what was written: the file, the shapes with and without annealed laws.")
def laws_anneal(laws, source, annealed_file: str, cooldown: float, output: str,
                as_json: bool) -> None:
    """Add to each shape of a law file its law after the anneal: the same-named shape's law in
    ANNEALED.json, fitted to losses after a final cool-down (for search --anneal, where a shape
    without one may be trained on the way but cannot end the run)."""
    from laws.io.atomic import check_not_input, check_writable
    from laws.io.lawfile import read_law_file, write_law_file

    check_writable(output)
    check_not_input(output, [source.path, annealed_file])
    annealed = laws.with_annealed(read_law_file(annealed_file), cooldown)
    write_law_file(annealed, output)
    without = [shape.name for shape in annealed.shapes if shape.annealed is None]
    if as_json:
        echo_json({"output": output, "cooldown": cooldown,
                   "annealed": [name for name in annealed.names if name not in without],
                   "without": without})
        return
    click.echo(f"{output}: {len(annealed.shapes) - len(without)} of {len(annealed.shapes)} "
               f"shapes with their annealed laws (cool-down {cooldown:g} of the budget)"
               + (f"; none for {', '.join(without)}" if without else ""))


def _column_map(*, shape_col, shape_name, groups, compute_col, tokens_col, params_col,
                loss_col, filters) -> object:
    from laws.io.curves import ColumnMap, LogBins

    given = (shape_col, shape_name, groups, compute_col, tokens_col, params_col, filters)
    if loss_col is None:
        if any(given):
            raise InputError("the column options need --loss-col")
        return None  # the curve.jsonl of shapeshift runs: laws.runcurves reads them as they are
    return ColumnMap(shape=shape_col, loss=loss_col, compute=compute_col, tokens=tokens_col,
                     params=params_col, filters=tuple(key_values(filters, "--filter")),
                     shape_name=shape_name, bins=tuple(LogBins.parse(g) for g in groups))


column_options = option_group([
    click.option("--shape-col", multiple=True, metavar="COL",
                 help="Column naming the shape; repeat for multi-axis shapes (width, depth)."),
    click.option("--shape-name", metavar="TEMPLATE",
                 help='Shape names from the shape columns, e.g. "w{width}-d{depth}".'),
    click.option("--group", "groups", multiple=True, metavar="COL[=K]",
                 help="Group the numeric shape column COL into K log-spaced bins per decade "
                      "(default 4), e.g. model sizes read off a figure (repeatable)."),
    click.option("--compute-col", metavar="COL", help="Training compute C (FLOPs)."),
    click.option("--tokens-col", metavar="COL", help="Tokens D; with --params-col, C = 6 N D."),
    click.option("--params-col", metavar="COL",
                 help="Parameters N (needed by --form chinchilla)."),
    click.option("--loss-col", metavar="COL",
                 help="Loss (needed with the column options; none for runs' curve.jsonl)."),
    click.option("--filter", "filters", multiple=True, metavar="COL=VALUE",
                 help="Keep only rows where COL equals VALUE (repeatable)."),
], _column_map, "columns")


def _fit_request(**options) -> object:
    import math

    from laws.fit.reduce import REDUCE_ABOVE, parse_threshold
    from laws.fit.request import FitRequest

    target = options["target_loss"]
    if target is not None and not 0 < target < math.inf:
        raise InputError(f"--target-loss {target}: must be a positive, finite loss")
    reduce_above = options.pop("reduce_above")
    return FitRequest(share=tuple(options.pop("share")),
                      reduce_above=REDUCE_ABOVE if reduce_above is None
                      else parse_threshold(reduce_above), **options)


fit_options = option_group([
    click.option("--form", type=click.Choice(["auto", "power", "saturating", "chinchilla"]),
                 default="auto", show_default=True,
                 help="Law form to fit; auto chooses power or saturating by how well each, "
                      "fitted below half of each curve's largest compute, predicts the rest: "
                      "for each shape, or for all with --share."),
    click.option("--strict", is_flag=True,
                 help="Fail (exit 2) on any fit warning: a parameter at a bound, an exponent "
                      "of 3 or more or a bootstrap that cannot settle it, too few points "
                      "(shapes left out), a poor extrapolation check, points the robust fit "
                      "discounted."),
    click.option("--share", multiple=True, type=click.Choice(["floor", "exponent", "alpha=beta"]),
                 help="Parameter shared by all shapes in a joint fit (repeatable); for "
                      "--form chinchilla, alpha=beta fits one exponent for N and D."),
    click.option("--drop-highest", type=click.IntRange(min=0), default=0, metavar="K",
                 help="Drop the points of the K highest losses first (Epoch AI's recipe: 5)."),
    click.option("--holdout-above", type=float, metavar="X",
                 help="Extrapolation check: fit on points with compute (or --holdout-col) <= "
                      "X, report the error above."),
    click.option("--holdout-col", "holdout_column", metavar="COL",
                 help="Column for --holdout-above (e.g. tokens)."),
    click.option("--bootstrap", type=click.IntRange(min=0), default=0, metavar="N",
                 help="Joint bootstrap resamples: intervals, and samples kept in the law file "
                      "for the search's uncertainty."),
    click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                 help="Bootstrap seed."),
    click.option("--target-loss", type=float, metavar="LOSS",
                 help="Loss for the compute interval (default: each shape's lowest loss)."),
    click.option("--time-col", "time_column", metavar="COL",
                 help="Seconds to reach each point (a product such as step*seconds_per_step "
                      "is allowed): gives each shape a throughput, compute per second."),
    click.option("--name", help="Name of the law set (default: the file's stem)."),
    click.option("--reduce-above", metavar="N|none",
                 help="Fit a curve of more than N points (a per-step log) on weighted points "
                      "kept from log-spaced bins of compute (a shape's own law is then "
                      "re-minimised on every row); none fits every row throughout (default: "
                      "2000; docs/FITTING.md)."),
], _fit_request, "request")


@click.command()
@click.argument("curves_files", metavar="CURVES...", nargs=-1, required=True,
                type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]),
              help="Input format (default: from the file suffix).")
@column_options
@log_options
@fit_options
@click.option("--provenance", "provenance_items", multiple=True, metavar="KEY=VALUE",
              help="Extra provenance entry, e.g. licence=MIT (repeatable).")
@click.option("--switch-runs", multiple=True, type=click.Path(), metavar="PATH",
              help="curve.jsonl files or folders of runs that switch shape (repeatable): fit "
                   "each switch pair's transition on the fitted laws and keep it in the law "
                   "file, with --bootstrap samples; the search then charges those switches.")
@json_flag()
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="LAWS.json",
              help="Write the fitted law file.")
def fit(curves_files, fmt, columns, logs, request, provenance_items, switch_runs, as_json,
        output) -> None:
    """Fit scaling laws to measured curves and write a law file.

    CURVES is one CSV or JSONL file with the column options, or, without them, the curve.jsonl
    files (or folders of them) of static shapeshift runs: the laws keep their shapes' axes;
    or training logs (trainer_state.json, metrics.csv, TensorBoard events, a W&B history),
    read with the log options, one shape per log (docs/FITTING.md#your-own-logs)."""
    import dataclasses

    from laws.fit.report import format_fit
    from laws.fit.request import fit_file
    from laws.fit.transitions import switches_in_files, with_measured_transitions
    from laws.io.atomic import check_not_input, check_writable
    from laws.io.lawfile import law_set_to_dict, write_law_file
    from laws.runcurves import fit_runs, one_curve_file
    from laws.tables import format_measured_transitions

    if output:
        check_writable(output)  # before the fit, which can take minutes with a bootstrap
        check_not_input(output, [*curves_files, *switch_runs])
    switches = switches_in_files(switch_runs) if switch_runs else []  # bad input: before the fit

    def progress(done: int, total: int) -> None:
        click.echo(f"\rbootstrap {done}/{total}", err=True, nl=done == total)

    provenance = dict(key_values(provenance_items, "--provenance"))
    if columns is not None and logs.options():
        raise InputError("the log options read training logs; the column options read one "
                         "CSV or JSONL file: give one kind")
    outcome = (fit_runs(curves_files, request, provenance, progress, logs) if columns is None
               else fit_file(one_curve_file(curves_files, columns), columns, request, fmt,
                             provenance, progress))
    if switch_runs:
        outcome = dataclasses.replace(outcome, laws=with_measured_transitions(
            outcome.laws, switches, request.bootstrap, request.seed))
    if output:
        write_law_file(outcome.laws, output)
    if as_json:
        echo_json({"laws": law_set_to_dict(outcome.laws), "fit": outcome.result.to_dict(),
                   "form_choice": None if outcome.choice is None else outcome.choice.to_dict(),
                   "holdout": None if outcome.holdout is None else outcome.holdout.to_dict(),
                   "warnings": [w.to_dict() for w in outcome.warnings]})
    else:
        click.echo("\n".join([format_fit(outcome.result, outcome.holdout, outcome.choice,
                                         outcome.warnings),
                              *format_measured_transitions(outcome.laws.transitions)]))


@click.command()
@plan_request()
@json_flag("Print the plan object as JSON.")
@click.option("--graphml", type=click.Path(dir_okay=False), help="Write the graph as GraphML.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="PLAN.json",
              help="Write the plan object to a file.")
@click.option("--strict", is_flag=True,
              help="Fail (exit 2), writing nothing, when the plan assumes a free switch (no "
                   "measured transition and no switch cost given).")
@click.option("--anneal", is_flag=True,
              help="--target is the loss after a final cool-down: switch in the stable phase, "
                   "then cool down on the last shape (needs the law file's annealed laws).")
def search(laws, source, request, as_json: bool, graphml: str | None,
           output: str | None, strict: bool, anneal: bool) -> None:
    """Find the schedule of shapes that reaches --target cheapest, and what it saves.

    A switch that costs the search nothing is listed in the plan as an assumption ("assumes a
    free switch A -> B")."""
    if anneal:
        _search_to_anneal(laws, source, request, as_json, output, graphml or strict)
        return
    from laws.io.atomic import check_not_input, check_writable
    from laws.search.assumptions import refuse_free_switches
    from laws.search.charges import settle_charges
    from laws.search.export import write_graphml
    from laws.search.planfile import write_plan
    from laws.search.plans import format_plan, plan_for_problem
    from laws.search.problem import build_problem

    for path, other in ((output, graphml), (graphml, None)):
        if path:
            check_writable(path)
            check_not_input(path, [source.path, other])
    problem = settle_charges(laws, build_problem(laws, request))  # the graph as searched
    result = plan_for_problem(laws, problem)
    if strict:
        refuse_free_switches(result.assumptions)
    if graphml:
        write_graphml(problem, graphml)
    if output:
        write_plan(result, output)
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(format_plan(result))


def _search_to_anneal(laws, source, request, as_json: bool, output: str | None,
                      other: object) -> None:
    """``search --anneal``: the plan that ends with a cool-down (``laws.search.cooldown``)."""
    from laws.io.atomic import check_not_input, check_writable
    from laws.search.cooldown import (
        format_cooldown_plan,
        plan_with_cooldown,
        write_cooldown_plan,
    )

    if other:
        raise InputError("--anneal plans with the annealed laws: --graphml and --strict apply "
                         "to plans without the cool-down")
    if output:
        check_writable(output)
        check_not_input(output, [source.path])
    result = plan_with_cooldown(laws, request)
    if output:
        write_cooldown_plan(result, output)
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(format_cooldown_plan(result))
