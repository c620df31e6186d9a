"""The domain errors: each raised where its case arises, each an ``InputError``, so that the
command line still answers it with one line and exit code 2."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli import main
from laws.errors import BadInputFile, InputError, UnreachableTarget
from laws.io.curves import ColumnMap, load_curves
from laws.io.lawfile import read_law_file
from laws.presets import load_preset
from laws.search import PlanRequest, plan
from laws.search.grid import loss_grid
from laws.search.planfile import read_plan


@pytest.mark.parametrize("error", [UnreachableTarget, BadInputFile])
def test_each_is_an_input_error(error):
    assert issubclass(error, InputError)


def test_a_target_below_every_floor_is_unreachable():
    laws = load_preset("demo")
    lowest = min(shape.law.floor for shape in laws.shapes)
    with pytest.raises(UnreachableTarget, match="floor"):
        plan(laws, PlanRequest.for_laws(laws, lowest - 0.1))
    with pytest.raises(UnreachableTarget, match="floor"):
        loss_grid(laws, lowest - 0.1, start=10.0)


def test_a_target_above_the_start_is_another_input_error():
    laws = load_preset("demo")
    with pytest.raises(InputError) as raised:
        loss_grid(laws, 3.0, start=2.0)
    assert not isinstance(raised.value, UnreachableTarget)


@pytest.mark.parametrize("text", ["{", "[1, 2]", '{"shapes": []}', '{"shapes": [{"name": 1}]}'])
def test_malformed_law_files_are_bad_input_files(tmp_path, text):
    path = tmp_path / "laws.json"
    path.write_text(text)
    with pytest.raises(BadInputFile, match="laws.json"):
        read_law_file(path)


def test_missing_and_malformed_plan_and_curve_files_are_bad_input_files(tmp_path):
    with pytest.raises(BadInputFile, match="no such plan file"):
        read_plan(tmp_path / "plan.json")
    (tmp_path / "plan.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(BadInputFile, match="not UTF-8"):
        read_plan(tmp_path / "plan.json")
    curves = tmp_path / "runs.csv"
    curves.write_text("shape,compute,loss\na,1e9,x\n")
    with pytest.raises(BadInputFile, match="line 2"):
        load_curves(curves, ColumnMap(shape=("shape",), loss="loss", compute="compute"))


def _one_line_exit_2(arguments: list[str]) -> str:
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    return result.output


def test_the_command_line_answers_each_with_one_line_and_exit_2(tmp_path):
    assert "floor" in _one_line_exit_2(["search", "--preset", "demo", "--target", "0.01"])
    (tmp_path / "laws.json").write_text("{")
    assert "not valid JSON" in _one_line_exit_2(["search", str(tmp_path / "laws.json"),
                                                 "--target", "2.0"])
    (tmp_path / "plan.json").write_text("[]")
    assert "plan" in _one_line_exit_2(["simulate", "--preset", "demo", "--target", "2.0",
                                       "--plan", str(tmp_path / "plan.json")])
