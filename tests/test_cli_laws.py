"""`shapeshift presets` and `shapeshift laws show`: listing, showing, one-line errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import main
from laws.presets import load_preset


def test_presets_lists_gemstones_with_its_source() -> None:
    result = CliRunner().invoke(main, ["presets"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("gemstones-lm"))
    assert "22 shapes" in line and "Gemstones" in line


def test_laws_show_preset_lists_every_shape() -> None:
    result = CliRunner().invoke(main, ["laws", "show", "--preset", "gemstones-lm"])
    assert result.exit_code == 0, result.output
    for shape in load_preset("gemstones-lm").shapes:
        assert shape.name in result.output
    assert "licence: MIT" in result.output


def test_laws_show_file(tmp_path) -> None:
    path = tmp_path / "toy.json"
    path.write_text(json.dumps({"name": "toy", "shapes": [
        {"name": "p16", "axes": {"patch": 16}, "form": "power",
         "params": {"a": 31.2, "b": 0.21, "c": 0.42}}]}))
    result = CliRunner().invoke(main, ["laws", "show", str(path)])
    assert result.exit_code == 0, result.output
    assert "p16" in result.output and "patch=16" in result.output


@pytest.mark.parametrize(("content", "expected"), [
    ('{"name": "x", "shapes": [}', "not valid JSON"),
    ('{"name": "x"}', "missing field 'shapes'"),
    ('{"shapes": [{"name": "p", "form": "power", "params": {"a": 1, "b": 0.3}}]}',
     "missing parameter(s) c"),
    ('{"shapes": [{"name": "p", "form": "power", "params": {"a": 1, "b": -0.3, "c": 1}}]}',
     "b must be a positive"),
])
def test_laws_show_bad_file_is_one_line_and_exit_2(tmp_path, content, expected) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = CliRunner().invoke(main, ["laws", "show", str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and expected in lines[0]


def test_laws_show_needs_exactly_one_source(tmp_path) -> None:
    result = CliRunner().invoke(main, ["laws", "show"])
    assert result.exit_code == 2 and "exactly one" in result.output


@pytest.mark.parametrize("path", [["presets"], ["laws"], ["laws", "show"]])
def test_help(path) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
