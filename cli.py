"""The ``shapeshift`` command line: one click group whose commands live in the packages they
drive and load on first use, so that ``shapeshift --help`` and ``shapeshift search`` start fast.
"""

from __future__ import annotations

import importlib
import sys

import click

from shapeshift.commands.options import Group

# command name -> "module:object"; the order is the order of --help.
COMMANDS = {
    "presets": "shapeshift.commands.planning:presets",
    "laws": "shapeshift.commands.planning:laws_group",
    "fit": "shapeshift.commands.planning:fit",
    "search": "shapeshift.commands.planning:search",
    "allocate": "shapeshift.commands.optimal:allocate",
    "isoflop": "shapeshift.commands.optimal:isoflop",
    "predict": "shapeshift.commands.optimal:predict",
    "simulate": "shapeshift.commands.simulation:simulate",
    "compare": "shapeshift.commands.simulation:compare",
    "validate": "shapeshift.commands.validation:validate_group",
    "measure": "shapeshift.commands.measure:measure_command",
}


class LazyGroup(Group):
    """Imports a command's module only when the command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, _, attribute = COMMANDS[name].partition(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shapeshift")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Plan, simulate and validate adaptive training across model shapes."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


if __name__ == "__main__":
    sys.exit(main())
