"""``shapeshift measure``: what one's own runs saved (``validate.savings``), as a table or
one JSON object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from shapeshift.commands.options import echo_json, json_flag, log_options, target_option

if TYPE_CHECKING:
    from laws.io.logs import LogSpec


@click.command(name="measure")
@click.argument("curves", metavar="CURVES...", nargs=-1, required=True, type=click.Path())
@target_option("The eval loss to reach.", required=True)
@click.option("--adaptive", "adaptive", multiple=True, type=click.Path(), metavar="PATH",
              help="Runs (files or folders) of the adaptive set, whether or not they switched "
                   "(repeatable; default: the runs that switch shape).")
@log_options
@json_flag()
def measure_command(curves: tuple[str, ...], target: float, adaptive: tuple[str, ...],
                    logs: LogSpec, as_json: bool) -> None:
    """Compute to --target from your runs' curve.jsonl (files or folders) or training logs
    (trainer_state.json, metrics.csv, TensorBoard events, a W&B history; see the log options),
    and the paired saving of adaptive runs over static ones, per seed with its interval."""
    from validate.savings import format_measure, measure

    result = measure(curves, target, adaptive, logs)
    if as_json:
        echo_json(result)
    else:
        click.echo(format_measure(result))
