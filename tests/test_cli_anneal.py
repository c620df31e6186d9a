"""Annealed laws on the command line: `shapeshift laws anneal` adds them to a law file, and
`shapeshift search --anneal` plans to the loss after a final cool-down with them (a static
shape's figures from the closed form of its annealed law)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import main
from laws.forms import PowerLaw
from laws.io.lawfile import write_law_file
from laws.lawset import Annealed, LawSet, Shape

HOT = PowerLaw(a=10.0, b=0.5, c=1.0)
ANNEALED = PowerLaw(a=8.0, b=0.5, c=1.0)


@pytest.fixture
def law_file(tmp_path):
    path = tmp_path / "annealed.json"
    write_law_file(LawSet("one", (Shape("a", {}, HOT, annealed=Annealed(ANNEALED, 0.2)),)), path)
    return str(path)


def run(*args: str):
    return CliRunner().invoke(main, ["search", *args])


def test_help_names_the_flag():
    result = run("--help")
    assert result.exit_code == 0
    assert "--anneal" in result.output


def test_one_shape_from_its_annealed_law(law_file, tmp_path):
    """1 + 8 / sqrt(B) = 1.8 at B = 100; the stable phase ends at 80 FLOPs, at loss
    1 + 10 / sqrt(80), and the cool-down trains the other 20."""
    output = tmp_path / "plan.json"
    result = run(law_file, "--target", "1.8", "--start-loss", "3", "--anneal", "--json",
                 "-o", str(output))
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed == json.loads(output.read_text())
    ending = printed["ending"]
    assert ending["compute"] == pytest.approx(100.0, rel=1e-12)
    assert ending["cooldown_compute"] == pytest.approx(20.0, rel=1e-12)
    assert ending["stable_loss"] == pytest.approx(1 + 10 / 80**0.5, rel=1e-12)
    assert printed["static"] == {"a": pytest.approx(100.0, rel=1e-12)}
    table = run(law_file, "--target", "1.8", "--start-loss", "3", "--anneal")
    assert table.exit_code == 0, table.output
    assert "a (cool-down)" in table.output and "saves 0.0%" in table.output


def test_refusals_exit_2_with_one_line(law_file):
    result = run("--preset", "demo", "--target", "2.1", "--anneal")
    assert result.exit_code == 2
    assert "needs annealed laws; law set 'demo' has none" in result.output
    result = run(law_file, "--target", "1.8", "--anneal", "--strict")
    assert result.exit_code == 2
    assert "--graphml and --strict apply to plans without the cool-down" in result.output


def test_laws_anneal_adds_each_shapes_law_after_the_anneal(tmp_path):
    from laws.io.lawfile import read_law_file

    hot, cool = tmp_path / "hot.json", tmp_path / "cool.json"
    write_law_file(LawSet("hot", (Shape("a", {}, HOT), Shape("b", {}, HOT))), hot)
    write_law_file(LawSet("cool", (Shape("a", {}, ANNEALED),)), cool)
    out = tmp_path / "out.json"
    result = CliRunner().invoke(main, ["laws", "anneal", str(hot), str(cool), "--cooldown",
                                       "0.2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 of 2 shapes with their annealed laws" in result.output
    assert "none for b" in result.output
    laws = read_law_file(out)
    assert laws.shape("a").annealed == Annealed(ANNEALED, 0.2)
    assert laws.shape("b").annealed is None and laws.shape("b").law == HOT
    again = CliRunner().invoke(main, ["laws", "anneal", str(hot), str(cool), "--cooldown",
                                      "0.2", "-o", str(out), "--json"])
    assert json.loads(again.output) == {"output": str(out), "cooldown": 0.2,
                                        "annealed": ["a"], "without": ["b"]}
    bad = CliRunner().invoke(main, ["laws", "anneal", str(hot), str(cool), "--cooldown", "1",
                                    "-o", str(tmp_path / "bad.json")])
    assert bad.exit_code == 2 and "cooldown 1.0 must be a share" in bad.output
    other = tmp_path / "other.json"
    write_law_file(LawSet("other", (Shape("z", {}, ANNEALED),)), other)
    unrelated = CliRunner().invoke(main, ["laws", "anneal", str(hot), str(other),
                                          "--cooldown", "0.2", "-o", str(tmp_path / "u.json")])
    assert unrelated.exit_code == 2 and "have none of the shapes" in unrelated.output
