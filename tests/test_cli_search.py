"""`shapeshift search`: tables for people, the plan as JSON, files, and exit code 2 on bad input."""

from __future__ import annotations

import json

import networkx as nx
from click.testing import CliRunner

from cli import main
from laws.io.lawfile import law_set_to_dict
from laws.presets import load_preset
from tests.closed_forms import best_static, greedy_order, power_params


def run(*args: str):
    return CliRunner().invoke(main, ["search", *args])


def test_help():
    result = run("--help")
    assert result.exit_code == 0
    for option in ("--target", "--switch-penalty", "--allowed", "--max-switches", "--graphml"):
        assert option in result.output


def test_table_and_saving_line():
    result = run("--preset", "demo", "--target", "2.0")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    plan = json.loads(run("--preset", "demo", "--target", "2.0", "--json").output)
    # One table row per shape the paper's rule follows (free transitions: it is optimal).
    params = power_params(load_preset("demo"))
    owners, _ = greedy_order(params, plan["start_loss"], 2.0)
    first = next(i for i, line in enumerate(lines) if line.startswith("-----")) + 1
    assert [line.split()[0] for line in lines[first:first + len(owners)]] == owners
    assert lines[first + len(owners)] == ""
    assert lines[1] == "search options: default search options"
    saving = f"saves {100 * plan['saving_vs_static']:.1f}%"
    best = f"(shape {best_static(params, 2.0)[0]})"
    assert any(line.startswith("optimal ") and best in line and saving in line
               for line in lines)


def test_json_output_file_and_graphml(tmp_path):
    out, graph = tmp_path / "plan.json", tmp_path / "g.graphml"
    result = run("--preset", "demo", "--target", "2.1", "--levels", "40", "--json",
                 "-o", str(out), "--graphml", str(graph), "--switch-flops", "1e17",
                 "--max-switches", "1")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert json.loads(out.read_text()) == printed
    # The limit binds: without it the optimum switches twice (p32 > p16 > p8); with it, once,
    # at a cost between the unlimited optimum and the best static shape.
    free = json.loads(run("--preset", "demo", "--target", "2.1", "--levels", "40", "--json",
                          "--switch-flops", "1e17").output)
    assert free["optimal"]["switches"] == 2
    assert printed["request"]["max_switches"] == 1 and printed["optimal"]["switches"] == 1
    assert (free["optimal"]["cost"] < printed["optimal"]["cost"]
            < printed["static_best"]["cost"] == free["static_best"]["cost"])
    assert printed["request"]["switch_flops"] == 1e17
    assert nx.read_graphml(graph).number_of_nodes() == 2 + 3 * 40 * 2


def test_gemstones_preset_schedule():
    laws = load_preset("gemstones-lm")
    target = 0.5 * sum(sorted(s.law.floor for s in laws.shapes)[:2]) + 0.05
    result = run("--preset", "gemstones-lm", "--target", f"{target:.4f}")
    assert result.exit_code == 0, result.output
    assert "best static" in result.output and "saves" in result.output


def bad(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert message.startswith("error: ") and "\n" not in message and "Traceback" not in message
    return message


def test_bad_input_exits_2_with_one_line(tmp_path):
    demo = ("--preset", "demo")
    message = bad(*demo, "--target", "1.2")
    assert "p32 > 2, p16 > 1.7, p8 > 1.5" in message
    assert "start loss" in bad(*demo, "--target", "2.0", "--start-loss", "1.9")
    assert "unknown shape 'p64'" in bad(*demo, "--target", "2.0", "--allowed", "p32:p64")
    assert "--switch-flops" in bad(*demo, "--target", "2.0", "--switch-flops", "-1")
    assert "--switch-seconds" in bad(*demo, "--target", "2.0", "--switch-seconds", "-5")
    assert "--switch-penalty" in bad(*demo, "--target", "2.0", "--switch-penalty", "-0.1")
    assert "--max-switches" in bad(*demo, "--target", "2.0", "--max-switches", "-1")
    assert "objective" in bad(*demo, "--target", "2.0", "--objective", "joules")
    assert "--price-per-hour" in bad(*demo, "--target", "2.0", "--objective", "money")
    data = law_set_to_dict(load_preset("demo"))
    for shape in data["shapes"]:
        del shape["throughput"]
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(data))
    assert "missing for: p32, p16, p8" in bad(str(path), "--target", "2.0",
                                              "--objective", "seconds")
