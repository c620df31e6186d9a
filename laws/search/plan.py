"""The plan: the optimal schedule of shapes to a target loss, with what it is measured against.

>>> from laws.presets import load_preset
>>> result = plan(load_preset("demo"), 2.2, levels=500)
>>> [segment["shape"] for segment in result["optimal"]["schedule"]]
['p32', 'p16', 'p8']
>>> result["optimal"]["cost"] <= result["static_best"]["cost"]
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from laws.graph import Problem, build_problem
from laws.io.lawfile import law_set_to_dict
from laws.lawset import LawSet, Transitions
from laws.search.rules import greedy_route, lower_bound
from laws.search.solvers import Route, solve
from laws.version import shapeshift_version


def plan(laws: LawSet, target_loss: float, *, start_loss: float | None = None,
         levels: int = 2000, transitions: Transitions | None = None,
         only_grow: Sequence[str] = (), only_shrink: Sequence[str] = (),
         max_switches: int | None = None, objective: str = "flops",
         price_per_hour: float | None = None) -> dict[str, Any]:
    """The JSON-ready plan object of DESIGN.md ("File formats") for ``laws`` and ``target_loss``.

    ``transitions`` replaces the law set's own (cost in FLOPs and seconds, loss penalty, and
    ``allowed``: "all", "one-axis" or (from, to) pairs); ``only_grow``/``only_shrink`` name axes
    that may never decrease/increase; ``max_switches`` limits the switches (exactly);
    ``objective`` is "flops", "seconds" (needs every shape's throughput) or "money" (seconds
    times ``price_per_hour`` / 3600). Raises ``InputError`` on a bad option or unreachable target.
    """
    problem = build_problem(laws, target_loss, start_loss=start_loss, levels=levels,
                            transitions=transitions, only_grow=only_grow,
                            only_shrink=only_shrink, max_switches=max_switches,
                            objective=objective, price_per_hour=price_per_hour)
    return plan_for_problem(laws, problem)


def plan_for_problem(laws: LawSet, problem: Problem) -> dict[str, Any]:
    """The plan object for a problem built by ``laws.graph.build_problem`` from ``laws``."""
    optimal = solve(problem)
    static_cost = problem.scale * problem.compute[:, -1]
    best = int(np.argmin(static_cost))
    static = {name: _finite(c)
              for name, c in zip(problem.names, problem.compute[:, -1], strict=True)}
    return {
        "target_loss": float(problem.grid[-1]),
        "start_loss": float(problem.grid[0]),
        "objective": problem.options["objective"],
        "compute_unit": laws.compute_unit,
        "levels": int(problem.grid.size),
        "laws": {"name": laws.name, "shapes": list(problem.names), "digest": law_set_digest(laws)},
        "options": problem.options,
        "solver": "sparse-dijkstra" if problem.penalised else "layered-dp",
        "optimal": describe_route(problem, optimal),
        "greedy": describe_route(problem, greedy_route(problem)),
        "static": static,
        "static_best": {"shape": problem.names[best], "compute": static[problem.names[best]],
                        "cost": float(static_cost[best])},
        "saving_vs_static": 1.0 - optimal.cost / float(static_cost[best]),
        "lower_bound": lower_bound(laws, problem.scale, problem.grid),
        "produced_by": {"tool": "shapeshift search", "version": shapeshift_version()},
    }


def describe_route(problem: Problem, route: Route) -> dict[str, Any]:
    """A route as the plan shows it: cost, compute (FLOPs), switches and the schedule.

    Each segment's ``compute`` is the training FLOPs on its shape (the first from scratch, so it
    includes reaching the start loss); ``switch_compute`` is the FLOPs of the switch into it.
    ``compute`` of the route is the sum of both over the segments; ``cost`` per segment, in
    objective units, includes the switch into it.
    """
    if not np.isfinite(route.cost):
        return {"cost": None, "compute": None, "switches": None, "schedule": []}
    grid, compute = problem.grid, problem.compute
    schedule = []
    previous = None
    for shape, first, last in route.legs:
        trained = compute[shape, last] - (compute[shape, first] if previous is not None else 0.0)
        switch_cost = 0.0 if previous is None else float(problem.switch_cost[previous, shape])
        schedule.append({
            "shape": problem.names[shape],
            "loss_from": float(grid[first]),
            "loss_to": float(grid[last]),
            "compute": float(trained),
            "switch_compute": 0.0 if previous is None else problem.switch_flops,
            "cost": switch_cost + float(problem.scale[shape] * trained),
        })
        previous = shape
    total = sum(s["compute"] + s["switch_compute"] for s in schedule)
    return {"cost": route.cost, "compute": total, "switches": route.switches,
            "schedule": schedule}


def law_set_digest(laws: LawSet) -> str:
    """SHA-256 of the law set's canonical JSON: a plan names the exact laws it was made for."""
    canonical = json.dumps(law_set_to_dict(laws), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


_UNITS = {"flops": "FLOPs", "seconds": "s", "money": "money"}


def format_plan(result: dict[str, Any]) -> str:
    """The plan for people: the optimal schedule as a table, then how it compares."""
    from laws.tables import format_number, format_table

    optimal = result["optimal"]
    rows = [[s["shape"], s["loss_from"], s["loss_to"], s["compute"] + s["switch_compute"],
             f"{100 * (s['compute'] + s['switch_compute']) / optimal['compute']:.1f}%"]
            for s in optimal["schedule"]]
    unit = _UNITS[result["objective"]]
    best = result["static_best"]
    greedy = result["greedy"]["cost"]
    lines = [
        f"{result['laws']['name']}: from loss {format_number(result['start_loss'])} to "
        f"{format_number(result['target_loss'])}, {result['levels']} levels, objective "
        f"{result['objective']}, {optimal['switches']} switch(es)",
        "",
        format_table(["shape", "loss from", "loss to", "compute (FLOPs)", "share"], rows),
        "",
        f"optimal {format_number(optimal['cost'])} {unit} vs best static "
        f"{format_number(best['cost'])} {unit} (shape {best['shape']}): saves "
        f"{100 * result['saving_vs_static']:.1f}%",
        f"greedy rule {'stuck' if greedy is None else format_number(greedy) + ' ' + unit}; "
        f"lower bound C* {format_number(result['lower_bound'])} {unit}",
    ]
    return "\n".join(lines)
