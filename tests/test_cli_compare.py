"""`shapeshift compare`: the report folder, the options it shares with simulate, exit code 2."""

from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

from cli import main
from laws.search import read_plan
from shapeshift.commands.simulation import compare, simulate
from sim.results import rounded

FAST = ["--levels", "200", "--runs", "2", "--eval-every", "2e17"]


def invoke(*args: str):
    return CliRunner().invoke(main, [*args])


def test_help_lists_the_options():
    result = invoke("compare", "--help")
    assert result.exit_code == 0
    for option in ("--preset", "--target", "--policies", "--levels", "--noise", "--mtbf",
                   "--runs", "--seed", "--workers", "--output"):
        assert option in result.output


def test_shares_the_simulation_options_of_simulate():
    def options(command):
        return {param.name: (param.opts, param.default, param.help) for param in command.params}

    shared = options(simulate).keys() & options(compare).keys()
    assert {"noise", "eval_every", "mtbf", "repair", "ckpt_cost", "gpus", "gpus_per_run",
            "truth_file", "seed", "workers", "runs", "plan_file", "levels", "switch_flops",
            "switch_seconds", "switch_penalty", "allowed", "only_grow", "only_shrink",
            "max_switches", "objective", "price_per_hour", "start_loss"} <= shared
    # compare runs fewer by default, its target has a default, its output and JSON differ.
    for name in shared - {"runs", "target", "output", "as_json"}:
        assert options(simulate)[name] == options(compare)[name], name


def test_writes_the_report_for_the_preset_default_target(tmp_path):
    out = tmp_path / "report"
    result = invoke("compare", "--preset", "demo", "--policies", "planned", *FAST,
                    "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"report: {out / 'report.html'}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["options"]["target_loss"] == 2.1
    assert summary["options"]["policies"] == ["planned", "static"]
    assert summary["inputs"]["laws"]["source"] == "preset demo"
    assert (out / "report.md").is_file() and (out / "runs.csv").is_file()


def test_takes_every_search_option_and_a_saved_plan_and_states_them(tmp_path):
    """The plan is searched with a switch cost and a switch limit, saved, and given to compare
    with the same options: the report's runs follow it, and the report says which options."""
    search = ["--preset", "demo", "--target", "2.1", "--levels", "200", "--switch-flops",
              "3e17", "--max-switches", "1"]
    plan_file = tmp_path / "plan.json"
    assert invoke("search", *search, "-o", str(plan_file)).exit_code == 0
    saved = read_plan(plan_file)
    out = tmp_path / "report"
    result = invoke("compare", *search, "--policies", "planned", "--plan", str(plan_file),
                    "--runs", "2", "--eval-every", "2e17", "--json", "-o", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["plan"] == rounded(saved.to_dict())  # at the output files' fixed precision
    assert summary["options"]["search"]["switch_flops"] == 3e17
    assert summary["options"]["search"]["max_switches"] == 1
    # The planned runs pay the plan's one switch at the requested cost.
    assert summary["simulation"]["summary"]["planned"]["switches"]["mean"] == 1
    assert saved.optimal.switches == 1
    with (out / "runs.csv").open() as rows:
        planned = [row for row in csv.DictReader(rows) if row["policy"] == "planned"]
    assert [float(row["transition_flops"]) for row in planned] == [3e17, 3e17]
    report = (out / "report.md").read_text()
    assert "switch flops 3e+17, max switches 1" in report
    # Without the switch options the same plan is refused, naming both values.
    result = invoke("compare", *search[:6], "--plan", str(plan_file), "-o", str(out))
    assert result.exit_code == 2
    assert "plan was made for switch flops 3e+17, this command asks for switch flops none" in (
        result.stderr)


@pytest.mark.parametrize("args, message", [
    (["--preset", "demo", "--policies", "bogus"], "unknown policy 'bogus'"),
    (["--preset", "nope"], "unknown preset 'nope'"),
    (["--preset", "demo", "--noise", "-1"], "--noise must be a finite number >= 0"),
    (["--preset", "demo", "--mtbf", "-2"], "--mtbf must be a positive number"),
    (["--preset", "demo", "--target", "0.5"], "0.5"),
    (["--preset", "demo", "--runs", "0"], "--runs must be at least 1"),
    ([], "give a law file or --preset NAME"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    result = invoke("compare", *args, *FAST[:2], "-o", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "report.html").exists()


def test_a_law_file_without_default_target_needs_target(tmp_path):
    laws = tmp_path / "laws.json"
    laws.write_text(json.dumps({"name": "bare", "shapes": [
        {"name": "a", "form": "power", "params": {"a": 4.0, "b": 0.5, "c": 1.0}}]}))
    result = invoke("compare", str(laws), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "give --target LOSS (law set 'bare' has no default_target)" in result.stderr


def test_the_report_folder_is_required():
    result = invoke("compare", "--preset", "demo")
    assert result.exit_code == 2
    assert "--output" in result.output


def test_one_and_two_worker_processes_write_the_same_bytes(tmp_path):
    """Real worker processes, noise and failures: runs.csv and summary.json are identical."""
    common = ["compare", "--preset", "demo", "--levels", "200", "--runs", "4", "--seed", "5",
              "--eval-every", "2e17", "--noise", "0.02", "--mtbf", "20", "--repair", "0.5",
              "--policies", "planned,greedy,random"]
    written = []
    for workers in ("1", "2"):
        out = tmp_path / f"workers-{workers}"
        result = invoke(*common, "--workers", workers, "-o", str(out))
        assert result.exit_code == 0, result.output
        written.append([(out / name).read_bytes() for name in ("runs.csv", "summary.json")])
    assert written[0] == written[1]
    with (tmp_path / "workers-1" / "runs.csv").open() as rows:
        assert sum(int(row["failures"]) for row in csv.DictReader(rows)) > 0


def test_a_budget_below_the_plans_compute_is_warned_on_stderr_and_in_the_report(tmp_path):
    from laws.presets import load_preset
    from laws.search import PlanRequest, plan

    demo = load_preset("demo")
    needed = plan(demo, PlanRequest.for_laws(demo, 2.1, levels=200)).optimal.compute
    low, enough = f"{0.5 * needed:.6g}", f"{1.5 * needed:.6g}"
    result = invoke("compare", "--preset", "demo", "--policies", "planned", *FAST,
                    "--max-compute", low, "-o", str(tmp_path / "low"))
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("warning:")]
    assert "below the plan's predicted compute to the target" in line
    assert f"{0.5 * needed:.3e}" in line and f"{needed:.3e}" in line
    assert "**Warning: the compute budget per run" in (tmp_path / "low" / "report.md").read_text()
    result = invoke("compare", "--preset", "demo", "--policies", "planned", *FAST,
                    "--max-compute", enough, "-o", str(tmp_path / "enough"))
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.stderr
    assert "Warning" not in (tmp_path / "enough" / "report.md").read_text()
