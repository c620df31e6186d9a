"""`shapeshift simulate`: output for people and machines, files, and exit code 2 on bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from laws.io.lawfile import read_law_file, write_law_file
from laws.search import PlanRequest, plan, write_plan
from tests.closed_forms import free_saving, power_params

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
    # Free transitions: the plan saves 1 - C*/C_static. The search is exact up to its grid, an
    # error that shrinks quadratically with the spacing (here about 1e-5 percentage points at
    # the default 2000 levels), so the printed one-decimal percentage is C*'s saving rounded:
    # half a unit of the last digit, plus a margin for a value that lies at a rounding edge.
    four = read_law_file(FOUR)
    start = plan(four, PlanRequest.for_laws(four, 1.45)).start_loss
    expected = 100 * free_saving(power_params(four), start, 1.45)
    (line,) = [line for line in lines if line.startswith("plan: saves ")]
    assert abs(float(line.split()[2].rstrip("%")) - expected) <= 0.05 + 1e-4


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


def test_the_documented_fixed_schedule_works_on_the_command_line():
    """Issue 17: ``fixed:SHAPE@FRACTION,...`` was split at its commas into two policies."""
    result = invoke(*BASE, "--policy", "fixed:w64@0,w512@0.3", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["policies"] == ["fixed", "static:w512"]


def test_a_saved_plan_is_followed(tmp_path):
    path = tmp_path / "plan.json"
    four = read_law_file(FOUR)
    write_plan(plan(four, PlanRequest.for_laws(four, 1.45)), path)
    result = invoke(*BASE, "--policy", "planned", "--plan", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["planned"]["switches"]["mean"] == 3


@pytest.fixture
def other_plan(tmp_path) -> str:
    laws = read_law_file(FOUR)
    other = tmp_path / "other.json"
    write_law_file(replace(laws, name="other"), other)
    path = tmp_path / "plan.json"
    other_laws = read_law_file(other)
    write_plan(plan(other_laws, PlanRequest.for_laws(other_laws, 1.45)), path)
    return str(path)


@pytest.mark.parametrize("args, message", [
    (["--policy", "bogus"], "unknown policy 'bogus'"),
    (["--policy", "static:w9"], "unknown shape 'w9'"),
    (["--mtbf", "-3"], "--mtbf must be a positive number of hours"),
    (["--gpus", "0"], "--gpus must be at least 1 accelerator"),
    (["--gpus", "2", "--gpus-per-run", "4"], "asks for 4 accelerators but the cluster has only 2"),
    (["--noise", "-0.1"], "--noise must be a finite number >= 0"),
    # Issue 17: non-finite numbers were tracebacks.
    (["--noise", "inf"], "--noise must be a finite number >= 0"),
    (["--max-compute", "inf"], "--max-compute must be a finite, positive number"),
    (["--eval-every", "inf"], "--eval-every must be a finite, positive number"),
    (["--switch-flops", "nan"], "--switch-flops must be a finite number >= 0"),
    (["--policy", "fixed:w64@0,w512@x"], "is not SHAPE@FRACTION"),
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
    assert_one_error_line(result, "plan was made for other laws ('other', digest")


@pytest.mark.parametrize("search, message", [
    # The reproducer of issue 18: a plan searched for 1.6 run with --target 1.45.
    (["--target", "1.6"], "plan was made for target 1.6, this command asks for target 1.45"),
    (["--target", "1.45", "--max-switches", "1"],
     "plan was made for max switches 1, this command asks for max switches none"),
])
def test_a_plan_for_another_request_is_refused_naming_both_values(tmp_path, search, message):
    path = tmp_path / "plan.json"
    assert invoke("search", str(FOUR), *search, "-o", str(path)).exit_code == 0
    result = invoke(*BASE, "--plan", str(path))
    assert result.exit_code == 2
    assert_one_error_line(result, message)


def test_a_plan_is_accepted_with_the_options_it_was_made_with(tmp_path):
    path = tmp_path / "plan.json"
    options = ["--max-switches", "1", "--switch-flops", "1e3"]
    assert invoke("search", str(FOUR), "--target", "1.45", *options, "-o", str(path)).exit_code == 0
    assert invoke(*BASE, "--plan", str(path), *options).exit_code == 0


def test_a_sweep_run_larger_than_the_cluster_is_refused(tmp_path):
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps({"runs": [{"policy": "planned", "accelerators": 16}]}))
    result = invoke(*BASE, "--sweep", str(sweep), "--gpus", "8")
    assert result.exit_code == 2
    assert_one_error_line(result, "asks for 16 accelerators but the cluster has only 8")


def test_a_budget_below_the_plans_compute_is_warned_on_stderr(tmp_path):
    four = read_law_file(FOUR)
    needed = plan(four, PlanRequest.for_laws(four, 1.45)).optimal.compute
    result = invoke(*BASE, "--max-compute", f"{0.8 * needed:.6g}", "--json")
    assert result.exit_code == 0, result.output
    warnings = [x for x in result.stderr.splitlines() if x.startswith("warning:")]
    assert len(warnings) == 1 and f"{needed:.3e} FLOPs" in warnings[0]
    data = json.loads(result.stdout)
    assert data["budget_warning"] == warnings[0]
    assert data["summary"]["planned"]["reached"] == 0.0  # as warned
    result = invoke(*BASE, "--max-compute", f"{1.2 * needed:.6g}")
    assert result.exit_code == 0 and "warning:" not in result.stderr


def test_hours_say_which_throughputs_they_assume(tmp_path):
    laws = tmp_path / "laws.json"
    laws.write_text(json.dumps({"name": "bare", "shapes": [
        {"name": "a", "form": "power", "params": {"a": 4.0, "b": 0.5, "c": 1.0}}]}))
    result = invoke("simulate", str(laws), "--target", "1.5", "--runs", "2",
                    "--policy", "static")
    assert result.exit_code == 0, result.output
    assert ("hours: at an assumed 1e+15 FLOP/s peak x 0.4 utilisation for a (the law file has "
            "no throughputs): illustrative") in result.stdout
    # C_a(1.5) = (4 / 0.5)^2 = 64 FLOPs at 4e14 FLOP/s
    data = json.loads(invoke("simulate", str(laws), "--target", "1.5", "--runs", "2",
                             "--policy", "static", "--json").stdout)
    assert data["summary"]["static:a"]["time_to_target"]["mean"] == pytest.approx(64 / 4e14,
                                                                                  rel=1e-9)


def test_output_files_are_the_same_bytes_with_one_and_two_workers(tmp_path):
    files = []
    for workers in ("1", "2"):
        out = tmp_path / workers
        result = invoke(*BASE[:-1], "4", "--policy", "planned,random", "--noise", "0.02",
                        "--mtbf", "30", "--workers", workers, "-o", str(out))
        assert result.exit_code == 0, result.output
        files.append([(out / name).read_bytes()
                      for name in ("results.json", "runs.csv", "trajectories.csv")])
    assert files[0] == files[1]
    rows = [line.split(",") for line in files[0][2].decode().splitlines()[1:]]
    digits = [len(cell.split("e")[0].replace(".", "").strip("0")) for row in rows
              for cell in row[3:7]]  # time, compute, true and observed loss
    assert max(digits) == 12  # at most 12 significant digits, rounded, not truncated


def test_help_states_the_limits_on_evaluations_and_failures() -> None:
    from sim.setup import MAX_EVALUATIONS, MAX_FAILURES

    text = " ".join(CliRunner().invoke(main, ["simulate", "--help"]).output.split())
    assert f"at most {MAX_EVALUATIONS:,} evaluations" in text
    assert f"fail over {MAX_FAILURES:,} times" in text
