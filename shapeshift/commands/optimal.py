"""The compute-optimal commands: ``allocate``, ``isoflop`` and ``predict``.

Thin wrappers over ``laws.optimal``: parse, call, print a table or one JSON object. Heavy
imports (numpy) happen inside the commands.
"""

from __future__ import annotations

import click

from laws.errors import InputError
from shapeshift.commands.options import echo_json, json_flag, key_values, laws_source


def numbers(values: tuple[str, ...], option: str) -> list[float]:
    """The numbers of a repeatable option whose values may also be comma-separated lists:
    ``--budget 1e21,1e22 --budget 1e23``; an ``InputError`` names a value that is not one."""
    out = []
    for value in values:
        for item in value.split(","):
            try:
                out.append(float(item))
            except ValueError:
                raise InputError(f"{option} {item.strip()!r}: not a number") from None
    return out


# The default is laws.stats.LEVEL, written out: importing it would load numpy.
level_option = click.option("--level", type=click.FloatRange(0.0, 1.0, min_open=True,
                                                             max_open=True),
                            default=0.9, show_default=True,
                            help="Interval level over the bootstrap samples.")


@click.command()
@laws_source
@click.option("--budget", "budgets", multiple=True, required=True, metavar="C[,C...]",
              help="Compute budget in FLOPs (repeatable, or a comma-separated list).")
@level_option
@json_flag()
def allocate(laws, source, budgets, level: float, as_json: bool) -> None:
    """Compute-optimal model size N and data D for each budget, from a chinchilla law file.

    N_opt ~ C^a and D_opt ~ C^b, with bootstrap intervals when the law file carries samples
    (fit --form chinchilla --bootstrap K).
    """
    from laws.optimal.allocate import allocate as allocate_budgets
    from laws.optimal.allocate import format_allocation

    result = allocate_budgets(laws, numbers(budgets, "--budget"), level)
    if as_json:
        echo_json({"laws": source.record(laws), **result.to_dict()})
    else:
        click.echo(format_allocation(result))


@click.command()
@laws_source
@click.option("--compute", "computes", multiple=True, required=True, metavar="C[,C...]",
              help="Training compute in FLOPs (repeatable, or a comma-separated list).")
@click.option("--shape", "shapes", multiple=True, metavar="NAME",
              help="Shape to predict (repeatable; default: every shape unless --params).")
@click.option("--params", "sizes", multiple=True, metavar="N[,N...]",
              help="Model size N for a chinchilla law file, any N (repeatable or a list).")
@level_option
@json_flag()
def predict(laws, source, computes, shapes, sizes, level: float, as_json: bool) -> None:
    """Loss of a shape (or, for chinchilla law files, a model of N parameters) at a compute,
    with an interval over the law file's bootstrap samples."""
    from laws.optimal.predict import format_predictions
    from laws.optimal.predict import predict as predict_losses

    rows = predict_losses(laws, numbers(computes, "--compute"), tuple(shapes),
                          tuple(numbers(sizes, "--params")), level)
    if as_json:
        echo_json({"laws": source.record(laws), "level": level,
                   "predictions": [row.to_dict() for row in rows]})
    else:
        click.echo(format_predictions(rows, level))


@click.command()
@click.argument("curves_file", metavar="CURVES", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]),
              help="Input format (default: from the file suffix).")
@click.option("--compute-col", metavar="COL", help="Compute budget C of the point (FLOPs).")
@click.option("--tokens-col", metavar="COL", help="Tokens D; with --params-col, C = 6 N D.")
@click.option("--params-col", required=True, metavar="COL", help="Model size N.")
@click.option("--loss-col", required=True, metavar="COL", help="Final loss of the run.")
@click.option("--group-col", "groups", multiple=True, metavar="COL",
              help="Column naming a separate sweep (repeatable: one fit per combination).")
@click.option("--filter", "filters", multiple=True, metavar="COL=VALUE",
              help="Keep only rows where COL equals VALUE (repeatable).")
@click.option("--method", type=click.Choice(["parabola", "porian"]), default="parabola",
              show_default=True,
              help="parabola: Hoffmann et al.'s approach 2; porian: Porian et al. 2024's "
                   "interpolation, seed-noise bootstrap and weighted power law.")
@click.option("--seed-noise", type=click.FloatRange(min=0.0), metavar="SD",
              help="Standard deviation of the loss between training seeds (needed by "
                   "--method porian; Porian et al. use 0.002 on RefinedWeb, 0.01 on "
                   "OpenWebText2).")
@click.option("--inside-only", is_flag=True,
              help="Leave out levels whose parabola minimum lies outside the sizes measured "
                   "there (an extrapolated minimum).")
@click.option("--bootstrap", type=click.IntRange(min=0), default=1000, show_default=True,
              metavar="N", help="Resamples of the points within each level for the interval "
                                "(porian: seed-noise draws).")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@level_option
@json_flag()
def isoflop(curves_file, fmt, compute_col, tokens_col, params_col, loss_col, groups, filters,
            method: str, seed_noise: float | None, inside_only: bool, bootstrap: int, seed: int,
            level: float, as_json: bool) -> None:
    """IsoFLOP method on a sweep: per compute level the loss's minimum in model size N, then
    N* = k C^a through the minima, with a bootstrap interval of a.

    Points of one level share their compute (to 4 significant digits). The parabola method
    fits a parabola of loss in log N per level; Porian et al.'s interpolates it (Akima) and
    weights the levels by their minimum's spread under seed noise (docs/OPTIMAL.md).
    """
    from laws.io.curves import ColumnMap, load_curves
    from laws.optimal.isoflop import format_isoflop, isoflop_fit
    from laws.optimal.porian import porian_fit

    if method == "porian" and seed_noise is None:
        raise InputError("--method porian needs --seed-noise SD, the standard deviation of the "
                         "loss between training seeds")
    if method == "porian" and inside_only:
        raise InputError("--inside-only is for --method parabola; porian always leaves out "
                         "levels whose minimum is at the edge of the sizes measured")
    if method == "parabola" and seed_noise is not None:
        raise InputError("--seed-noise is for --method porian")
    columns = ColumnMap(shape=tuple(groups), loss=loss_col, compute=compute_col,
                        tokens=tokens_col, params=params_col,
                        filters=tuple(key_values(filters, "--filter")))
    curves = load_curves(curves_file, columns, fmt)
    names = ["-".join(str(v) for v in curve.axes.values()) or "all" for curve in curves.curves]
    if method == "porian":
        fits = [porian_fit(curve.compute, curve.n_params, curve.loss, seed_noise, name,
                           bootstrap, seed, level)
                for curve, name in zip(curves.curves, names, strict=True)]
    else:
        fits = [isoflop_fit(curve.compute, curve.n_params, curve.loss, name, bootstrap, seed,
                            level, inside_only)
                for curve, name in zip(curves.curves, names, strict=True)]
    if as_json:
        echo_json({"source": curves_file, "sweeps": [fit.to_dict() for fit in fits]})
    else:
        click.echo(format_isoflop(fits))
