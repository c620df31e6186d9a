"""`shapeshift search`: tables for people, the plan as JSON, files, and exit code 2 on bad input."""

from __future__ import annotations

import json
import math
from itertools import pairwise

import networkx as nx
import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from laws.io.lawfile import law_set_to_dict
from laws.presets import load_preset
from laws.search import Plan, read_plan
from tests.closed_forms import best_static, greedy_order, inverse, power_params


def run(*args: str):
    return CliRunner().invoke(main, ["search", *args])


def plan_printed(*args: str) -> Plan:
    """The plan ``search ... --json`` prints, read as a ``Plan`` (which checks every key)."""
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return Plan.from_dict(json.loads(result.output), "search --json")


def test_help():
    result = run("--help")
    assert result.exit_code == 0
    for option in ("--target", "--switch-penalty", "--allowed", "--max-switches", "--graphml"):
        assert option in result.output


def test_table_and_saving_line():
    result = run("--preset", "demo", "--target", "2.0")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    plan = plan_printed("--preset", "demo", "--target", "2.0")
    # One table row per shape the paper's rule follows (free transitions: it is optimal).
    params = power_params(load_preset("demo"))
    owners, _ = greedy_order(params, plan.start_loss, 2.0)
    first = next(i for i, line in enumerate(lines) if line.startswith("-----")) + 1
    assert [line.split()[0] for line in lines[first:first + len(owners)]] == owners
    assert lines[first + len(owners)] == ""
    assert lines[1] == "search options: default search options"
    saving = f"saves {100 * plan.saving_vs_static:.1f}%"
    best = f"(shape {best_static(params, 2.0)[0]})"
    assert any(line.startswith("optimal ") and best in line and saving in line
               for line in lines)


def test_json_output_file_and_graphml(tmp_path):
    out, graph = tmp_path / "plan.json", tmp_path / "g.graphml"
    result = run("--preset", "demo", "--target", "2.1", "--levels", "40", "--json",
                 "-o", str(out), "--graphml", str(graph), "--switch-flops", "1e17",
                 "--max-switches", "1")
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == json.loads(result.output)
    printed = read_plan(out)
    # The limit binds: without it the optimum switches twice (p32 > p16 > p8); with it, once,
    # at a cost between the unlimited optimum and the best static shape.
    free = plan_printed("--preset", "demo", "--target", "2.1", "--levels", "40",
                        "--switch-flops", "1e17")
    assert free.optimal.switches == 2
    assert printed.request.max_switches == 1 and printed.optimal.switches == 1
    assert (free.optimal.cost < printed.optimal.cost
            < printed.static_best.cost == free.static_best.cost)
    assert printed.request.switch_flops == 1e17
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


def test_repeated_allowed_pairs_add_up():
    demo = ("--preset", "demo", "--target", "2.0")
    repeated = plan_printed(*demo, "--allowed", "p32:p16", "--allowed", "p16:p8")
    assert repeated.request.allowed == (("p32", "p16"), ("p16", "p8"))
    assert repeated == plan_printed(*demo, "--allowed", "p32:p16,p16:p8")
    assert plan_printed(*demo, "--allowed", "p32:p16").request.allowed == (("p32", "p16"),)


def test_bad_input_exits_2_with_one_line(tmp_path):
    demo = ("--preset", "demo")
    message = bad(*demo, "--target", "1.2")
    assert "p32 > 2, p16 > 1.7, p8 > 1.5" in message
    assert "start loss" in bad(*demo, "--target", "2.0", "--start-loss", "1.9")
    assert "unknown shape 'p64'" in bad(*demo, "--target", "2.0", "--allowed", "p32:p64")
    assert "got 'all'" in bad(*demo, "--target", "2.0", "--allowed", "p32:p16", "--allowed", "all")
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


def test_free_switch_warning_in_table_and_json(tmp_path):
    # A law file with no transitions at all: every switch of the plan is priced at nothing.
    data = law_set_to_dict(load_preset("demo"))
    del data["transitions"]
    bare = tmp_path / "no-transitions.json"
    bare.write_text(json.dumps(data))
    plan = plan_printed(str(bare), "--target", "2.0")
    # The free optimum follows the paper's rule (least |dC/dE|): its switches, independently.
    owners, _ = greedy_order(power_params(load_preset("demo")), plan.start_loss, 2.0)
    expected = [f"assumes a free switch {a} -> {b}" for a, b in pairwise(owners)]
    assert len(expected) == 2 and list(plan.assumptions) == expected
    table = run(str(bare), "--target", "2.0")
    assert table.exit_code == 0, table.output
    warnings = [line for line in table.output.splitlines() if line.startswith("warning: ")]
    assert warnings == [f"warning: this plan {line} (no measured transition, no switch cost "
                        "given)" for line in expected]


def test_a_switch_cost_removes_the_warning():
    demo = ("--preset", "demo", "--target", "2.0")
    for given in (("--switch-flops", "1e16"), ("--switch-penalty", "0.001"),
                  ("--switch-seconds", "5", "--objective", "seconds")):
        plan = plan_printed(*demo, *given)
        assert plan.optimal.switches >= 1 and plan.assumptions == (), given
    # Seconds cost nothing to the FLOPs objective, which has no clock: still a free switch.
    plan = plan_printed(*demo, "--switch-seconds", "5")
    assert plan.assumptions and "warning: " in run(*demo, "--switch-seconds", "5").output


def test_strict_exits_2_on_a_free_switch_and_writes_nothing(tmp_path):
    out = tmp_path / "plan.json"
    message = bad("--preset", "demo", "--target", "2.0", "--strict", "-o", str(out))
    assert "--strict" in message
    assert "assumes a free switch p32 -> p16" in message and "p16 -> p8" in message
    assert not out.exists()
    costed = run("--preset", "demo", "--target", "2.0", "--strict", "--switch-flops", "1e16")
    assert costed.exit_code == 0, costed.output
    # A static plan switches nowhere, so it assumes nothing: --strict passes.
    static = run("--preset", "demo", "--target", "2.0", "--strict", "--max-switches", "0")
    assert static.exit_code == 0 and "warning" not in static.output, static.output


def _route_cost_by_grid(params, route: tuple[str, ...], start: float, target: float,
                        points: int = 1201) -> float:
    """The cheapest cost of following ``route`` from ``start`` to ``target``, by trying every
    switch loss (two at most) on an even grid: C_first(e1) + C_second(e2) - C_second(e1) + ...
    A law asked below its floor costs +inf, and so does any sum that meets one."""
    grid = np.linspace(start, target, points)
    laws = [np.array([inverse(params[name], e) for e in grid]) for name in route]
    with np.errstate(invalid="ignore"):
        if len(route) == 1:
            total = laws[0][-1:]
        elif len(route) == 2:
            total = laws[0] + laws[1][-1] - laws[1]
        else:
            first, middle, last = laws
            total = (first - middle)[:, None] + (middle - last)[None, :] + last[-1]
            total[np.tril_indices(points, -1)] = np.inf  # rows e1, columns e2: e2 <= e1
    return float(np.nan_to_num(total, nan=np.inf).min())


def test_depth_and_width_growth_plan_on_gemstones_against_brute_force():
    # The README tour's plan over depth: grow-only along depth and width, one axis a switch.
    laws = load_preset("gemstones-lm")
    params, axes = power_params(laws), {shape.name: shape.axes for shape in laws.shapes}
    target, start = 2.8, laws.measured_start_loss()
    plan = plan_printed("--preset", "gemstones-lm", "--target", str(target), "--only-grow",
                        "depth", "--only-grow", "width", "--allowed", "one-axis")
    # Every static shape's compute to the target, from its law in closed form.
    for name, abc in params.items():
        closed = inverse(abc, target)
        assert plan.static[name] == (None if math.isinf(closed) else pytest.approx(closed))
    best, best_compute = best_static(params, target)
    assert (plan.static_best.shape, plan.static_best.compute) == (
        best, pytest.approx(best_compute))

    def grows_one_axis(a: str, b: str) -> bool:
        changed = [axis for axis in ("width", "depth") if axes[a][axis] != axes[b][axis]]
        return len(changed) == 1 and axes[b][changed[0]] > axes[a][changed[0]]

    # Brute force over every route of up to three shapes that the options allow.
    routes = [(name,) for name in params]
    routes += [(a, b) for a in params for b in params if grows_one_axis(a, b)]
    routes += [(a, b, c) for a, b in routes[len(params):] for c in params if grows_one_axis(b, c)]
    costs = {route: _route_cost_by_grid(params, route, start, target) for route in routes}
    cheapest = min(costs, key=costs.get)
    schedule = plan.optimal.schedule
    assert plan.optimal.shapes == cheapest
    assert any(axes[a]["depth"] < axes[b]["depth"] for a, b in pairwise(cheapest))
    assert plan.optimal.cost == pytest.approx(costs[cheapest], rel=1e-4)
    assert costs[cheapest] < best_compute
    # Each segment costs what its law says between the losses where it starts and ends.
    assert schedule[0].compute == pytest.approx(inverse(params[cheapest[0]],
                                                        schedule[0].loss_to))
    for segment in schedule[1:]:
        law = params[segment.shape]
        assert segment.compute == pytest.approx(
            inverse(law, segment.loss_to) - inverse(law, segment.loss_from))
    saving = 1 - costs[cheapest] / best_compute
    assert plan.saving_vs_static == pytest.approx(saving, rel=1e-3)
    interval = plan.uncertainty.saving
    assert 0 < interval.p5 <= saving <= interval.p95


def test_a_first_segment_that_only_reaches_the_start_loss_reads_as_from_scratch():
    # The README tour's plan trains w384-d13 from scratch to the first measured loss, the
    # start loss, and switches there at once: its row must not read "3.607 -> 3.607".
    options = ("--preset", "gemstones-lm", "--target", "2.8", "--only-grow", "depth",
               "--only-grow", "width", "--allowed", "one-axis")
    plan = plan_printed(*options)
    lines = run(*options).output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("-----")) + 1
    rows = [line.split() for line in lines[first:first + len(plan.optimal.schedule)]]
    start = load_preset("gemstones-lm").measured_start_loss()
    assert plan.optimal.schedule[0].loss_to == start
    assert rows[0][:3] == ["w384-d13", "scratch", f"{start:.4g}"]
    assert all(row[1] != row[2] for row in rows)
