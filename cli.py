"""The ``shapeshift`` command line: one click group, each command a thin wrapper.

Heavy imports (torch, matplotlib, simpy) happen inside the commands that need them, so that
``shapeshift --help`` and ``shapeshift search`` start fast.
"""

from __future__ import annotations

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


if __name__ == "__main__":
    sys.exit(main())
