"""The ``shapeshift`` command line: one click group whose commands live in the packages they
drive and load on first use, so that ``shapeshift --help`` and ``shapeshift search`` start fast.
"""

from __future__ import annotations

import importlib
import sys

import click

from laws.commandline import Group

# command name -> "module:object"; the order is the order of --help.
COMMANDS = {
    "presets": "laws.commands:presets",
    "laws": "laws.commands:laws_group",
    "fit": "laws.commands:fit",
    "search": "laws.commands:search",
    "allocate": "laws.optimal.commands:allocate",
    "isoflop": "laws.optimal.commands:isoflop",
    "predict": "laws.optimal.commands:predict",
    "simulate": "sim.commands:simulate",
    "compare": "sim.commands:compare",
    "validate": "validate.commands:validate_group",
    "measure": "validate.measure_command:measure_command",
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
