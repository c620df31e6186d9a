"""`shapeshift simulate`: output for people and machines, files, and exit code 2 on bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from laws.io.lawfile import read_law_file, write_law_file
from laws.search import plan

FOUR = Path(__file__).parent / "sim" / "data" / "four_shapes.json"
BASE = ["simulate", str(FOUR), "--target", "1.45", "--runs", "3"]


def invoke(*args: str):
    return CliRunner().invoke(main, [*args])


def test_help_lists_the_options():
    result = invoke("simulate", "--help")
    assert result.exit_code == 0
    for option in ("--policy", "--plan", "--truth", "--noise", "--eval-every", "--mtbf",
                   "--repair", "--ckpt-cost", "--gpus", "--runs", "--seed", "--workers", "--json"):
        assert option in result.output


def test_table_shows_the_saving_per_policy_with_noise():
    result = invoke(*BASE, "--policy", "planned,greedy", "--noise", "0.01", "--mtbf", "30",
                    "--repair", "0.5", "--ckpt-cost", "60")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "saving vs static" in lines[0] and "of plan saving" in lines[0]
    rows = {line.split()[0]: line for line in lines[2:5]}
    assert set(rows) == {"planned", "greedy", "static:w512"}
    assert any(line.startswith("plan: saves 27.") for line in lines)


def test_json_and_output_folder(tmp_path):
    result = invoke(*BASE, "--policy", "planned", "--json", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["policies"] == ["planned", "static:w512"]
    assert len(data["runs"]) == 6 and data["runs"][0]["trajectory"] == []
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["summary"] == data["summary"]
    assert len(saved["runs"][0]["trajectory"]) == saved["runs"][0]["evaluations"]
    assert (tmp_path / "out" / "runs.csv").read_text().count("\n") == 7
    assert (tmp_path / "out" / "trajectories.csv").is_file()


def test_a_saved_plan_is_followed(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan(read_law_file(FOUR), 1.45)))
    result = invoke(*BASE, "--policy", "planned", "--plan", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["planned"]["switches"]["mean"] == 3


@pytest.fixture
def other_plan(tmp_path) -> str:
    laws = read_law_file(FOUR)
    other = tmp_path / "other.json"
    write_law_file(replace(laws, name="other"), other)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan(read_law_file(other), 1.45)))
    return str(path)


@pytest.mark.parametrize("args, message", [
    (["--policy", "bogus"], "unknown policy 'bogus'"),
    (["--policy", "static:w9"], "unknown shape 'w9'"),
    (["--mtbf", "-3"], "--mtbf must be a positive number of hours"),
    (["--gpus", "0"], "--gpus must be at least 1 accelerator"),
    (["--gpus", "2", "--gpus-per-run", "4"], "asks for 4 accelerators but the cluster has only 2"),
    (["--noise", "-0.1"], "--noise must be >= 0"),
    (["--runs", "0"], "--runs must be at least 1"),
    (["--plan", "missing.json"], "no such plan file"),
])
def test_bad_input_exits_2_with_one_clear_line(args, message):
    result = invoke(*BASE, *args)
    assert result.exit_code == 2, result.output
    assert_one_error_line(result, message)


def assert_one_error_line(result, message: str) -> None:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.output


def test_a_plan_for_other_laws_is_refused(other_plan):
    result = invoke(*BASE, "--plan", other_plan)
    assert result.exit_code == 2
    assert_one_error_line(result, "made for law set 'other', not for the given laws 'four-widths'")


def test_a_sweep_run_larger_than_the_cluster_is_refused(tmp_path):
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps({"runs": [{"policy": "planned", "accelerators": 16}]}))
    result = invoke(*BASE, "--sweep", str(sweep), "--gpus", "8")
    assert result.exit_code == 2
    assert_one_error_line(result, "asks for 16 accelerators but the cluster has only 8")
