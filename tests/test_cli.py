"""The command line as a whole: every command's --help, start-up imports, error convention."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from cli import main


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(_command_paths(command, (*prefix, name)))
    return paths


@pytest.mark.parametrize("path", [(), *_command_paths(main)], ids=lambda p: " ".join(p) or "main")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    assert " ".join(("main", *path)) in result.output


@pytest.mark.parametrize("argv", [["--help"], ["search", "--help"], ["presets"]])
def test_light_commands_do_not_import_heavy_libraries(argv: list[str]) -> None:
    probe = (
        "import sys; from cli import main\n"
        f"try: main({argv!r})\n"
        "except SystemExit: pass\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'simpy') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_bare_shapeshift_prints_its_help_and_exits_0() -> None:
    result = CliRunner().invoke(main, [])
    assert result.exit_code == 0
    assert "Usage: " in result.output and "search" in result.output


def test_commands_that_print_results_offer_json() -> None:
    context = click.Context(main)
    for path in _command_paths(main):
        group = main
        for name in path:
            command = group.get_command(context, name)
            group = command
        if isinstance(command, click.Group):
            continue
        assert any(param.name == "as_json" for param in command.params), path


def test_input_error_is_one_line_and_exit_2() -> None:
    result = CliRunner().invoke(main, ["laws", "show", "--preset", "no-such-preset"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown preset 'no-such-preset'")


def test_law_source_needs_exactly_one() -> None:
    result = CliRunner().invoke(main, ["laws", "show"])
    assert result.exit_code == 2
    assert "exactly one" in result.output
