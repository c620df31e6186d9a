"""The loss grid, the switch rules, the plan request and the graph's networkx form."""

from __future__ import annotations

import re

import networkx as nx
import numpy as np
import pytest

from laws.errors import InputError
from laws.forms import PowerLaw, SaturatingLaw
from laws.lawset import LawSet, Shape
from laws.search.export import to_networkx, write_graphml
from laws.search.grid import START_COMPUTE_FRACTION, inverse_gradients, loss_grid
from laws.search.plans import plan
from laws.search.problem import build_problem
from laws.search.request import PlanRequest
from laws.search.switches import allowed_switches, landing_levels, parse_allowed


def two_shapes(**first) -> LawSet:
    return LawSet("two", (
        Shape("small", {"width": 256, "depth": 6}, PowerLaw(a=4e4, b=0.3, c=2.2), 3e14),
        Shape("large", {"width": 512, "depth": 6}, PowerLaw(a=9e4, b=0.3, c=1.9), 2e14),
    ))


def test_grid_runs_from_start_to_target_uniform_in_log_excess_over_the_lowest_floor():
    grid = loss_grid(two_shapes(), 2.0, 5.0, levels=50)
    assert grid[0] == 5.0 and grid[-1] == 2.0 and grid.size == 50
    steps = np.diff(np.log(grid - 1.9))
    assert np.allclose(steps, steps[0], rtol=1e-9)


def test_default_start_of_power_laws_is_where_the_quickest_has_spent_a_millionth():
    laws = two_shapes()
    grid = loss_grid(laws, 2.0)
    cheapest_static = min(s.law.compute(2.0) for s in laws.shapes if s.law.floor < 2.0)
    start_costs = [s.law.compute(grid[0]) for s in laws.shapes]
    assert min(start_costs) == pytest.approx(START_COMPUTE_FRACTION * cheapest_static, rel=1e-9)


def test_default_start_is_the_lowest_ceiling_of_saturating_laws():
    laws = LawSet("sat", (Shape("a", {}, SaturatingLaw(a=5.0, b=0.5, c=1.0, d=1.0)),
                          Shape("b", {}, SaturatingLaw(a=3.0, b=0.5, c=0.5, d=1.0))))
    assert loss_grid(laws, 1.2)[0] == pytest.approx(3.5, rel=1e-12)  # ceilings 6.0 and 3.5


def test_inverse_gradients_match_finite_differences():
    laws = two_shapes()
    grid = np.array([3.0, 2.5, 2.3])
    h = 1e-6
    for s, shape in enumerate(laws.shapes):
        numeric = (shape.law.compute(grid - h) - shape.law.compute(grid + h)) / (2 * h)
        assert inverse_gradients(laws, grid)[s] == pytest.approx(numeric, rel=1e-6)


def test_landing_rounds_up_to_the_next_higher_level():
    grid = np.linspace(3.0, 1.0, 21)  # spacing 0.1
    landing = landing_levels(grid, 0.25)
    for i, j in enumerate(landing):
        above = [k for k in range(21) if grid[k] >= grid[i] + 0.25 - 1e-12]
        assert j == (max(above) if above else 0)
    assert landing_levels(grid, 0.0).tolist() == list(range(21))


def test_switch_rules():
    laws = LawSet("grid", tuple(
        Shape(f"w{w}-d{d}", {"width": w, "depth": d}, PowerLaw(a=1.0, b=0.5, c=0.0))
        for w in (256, 512) for d in (6, 12)))
    names = laws.names  # w256-d6, w256-d12, w512-d6, w512-d12
    assert allowed_switches(laws).sum() == 12
    one_axis = allowed_switches(laws, "one-axis")
    assert not one_axis[names.index("w256-d6"), names.index("w512-d12")]
    assert one_axis[names.index("w256-d6"), names.index("w512-d6")]
    grow = allowed_switches(laws, "all", only_grow=("width",))
    assert not grow[names.index("w512-d6"), names.index("w256-d12")]
    assert grow[names.index("w256-d12"), names.index("w512-d6")]
    shrink = allowed_switches(laws, "all", only_shrink=("depth",))
    assert not shrink[names.index("w256-d6"), names.index("w256-d12")]
    pairs = allowed_switches(laws, parse_allowed("w256-d6:w512-d6"))
    assert pairs.sum() == 1
    with pytest.raises(InputError, match="unknown shape 'w1024-d6'"):
        allowed_switches(laws, parse_allowed("w256-d6:w1024-d6"))
    with pytest.raises(InputError, match="--allowed"):
        parse_allowed("w256-d6")


def test_problem_costs_are_exact_law_differences_in_objective_units():
    laws = two_shapes()
    problem = build_problem(laws, PlanRequest.for_laws(
        laws, 2.3, start_loss=4.0, levels=30, objective="seconds", switch_flops=1e17,
        switch_seconds=60.0))
    e = problem.grid
    for s, shape in enumerate(laws.shapes):
        by_law = (shape.law.compute(e[1:]) - shape.law.compute(e[:-1])) / shape.throughput
        assert problem.train_cost[s] == pytest.approx(by_law, rel=1e-12)
    assert problem.switch_cost[0, 1] == pytest.approx(60.0 + 1e17 / 2e14)
    assert problem.switch_cost[1, 0] == pytest.approx(60.0 + 1e17 / 3e14)
    assert np.isinf(problem.switch_cost[0, 0])


@pytest.mark.parametrize("limit", [None, 2])
def test_networkx_graph_has_the_designed_nodes_and_edges(tmp_path, limit):
    laws = two_shapes()
    problem = build_problem(laws, PlanRequest.for_laws(
        laws, 2.3, start_loss=4.0, levels=12, max_switches=limit, switch_penalty=0.05))
    graph = to_networkx(problem)
    depth = 1 if limit is None else limit + 1
    levels = 12
    assert graph.number_of_nodes() == 2 + 2 * levels * depth
    switch_layers = depth if limit is None else depth - 1
    kinds = {}
    for _, _, kind in graph.edges(data="kind"):
        kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds == {"start": 2, "train": 2 * (levels - 1) * depth, "end": 2 * depth,
                     "switch": 2 * (levels - 1) * switch_layers}
    # Penalties jump back up in loss (cycles); counting switches makes the graph acyclic again.
    assert nx.is_directed_acyclic_graph(graph) == (limit is not None)
    path = tmp_path / "graph.graphml"
    write_graphml(problem, path)
    back = nx.read_graphml(path)
    assert back.number_of_nodes() == graph.number_of_nodes()
    assert back.number_of_edges() == graph.number_of_edges()
    assert "small@0" + ("" if limit is None else "#0") in back


def test_options_errors_are_one_line_input_errors():
    laws = two_shapes()
    cases = [
        (dict(target=1.8), "small > 2.2, large > 1.9"),
        (dict(target=float("nan")), "target loss must be a finite number"),
        (dict(target=2.0, start_loss=1.95), "start loss"),
        (dict(target=2.0, switch_flops=-1.0), "--switch-flops"),
        (dict(target=2.0, switch_seconds=float("inf")), "--switch-seconds"),
        (dict(target=2.0, switch_penalty=-0.1), "--switch-penalty"),
        (dict(target=2.0, objective="money"), "--price-per-hour"),
        (dict(target=2.0, objective="speed"), "objective must be one of"),
        (dict(target=2.0, max_switches=-1), "--max-switches"),
        (dict(target=2.0, max_switches=True), "--max-switches"),
        (dict(target=2.0, levels=1), "levels"),
        (dict(target=2.0, only_grow=("patch",)), "no numeric axis 'patch'"),
    ]
    for options, fragment in cases:
        with pytest.raises(InputError, match=fragment.replace("+", r"\+")) as err:
            build_problem(laws, PlanRequest.for_laws(laws, **options))
        assert "\n" not in str(err.value)
    no_throughput = LawSet("bare", (Shape("a", {}, PowerLaw(a=1.0, b=0.5, c=0.0)),))
    with pytest.raises(InputError, match="throughput .* missing for: a"):
        build_problem(no_throughput, PlanRequest.for_laws(no_throughput, 0.5,
                                                          objective="seconds"))


def test_a_request_survives_its_json_round_trip_and_names_what_differs():
    laws = two_shapes()
    request = PlanRequest.for_laws(laws, 2.3, levels=40, allowed=(("small", "large"),),
                                   only_grow=("width",), switch_flops=1e15)
    assert PlanRequest.from_dict(request.to_dict()) == request
    made = plan(laws, request)
    made.check_request(request)
    for change, message in [
        (dict(target=2.4), "plan was made for target 2.3, this command asks for target 2.4"),
        (dict(levels=41), "made for levels 40, this command asks for levels 41"),
        (dict(switch_flops=None), "switch flops 1e+15, this command asks for switch flops "
                                  "none (the law set's)"),
        (dict(laws_digest="0" * 64), "made for other laws"),
    ]:
        with pytest.raises(InputError, match=re.escape(message)):
            made.check_request(PlanRequest(**{**request.__dict__, **change}))


def test_a_problem_refuses_a_request_for_other_laws():
    laws = two_shapes()
    other = LawSet("other", laws.shapes[:1])
    with pytest.raises(InputError, match="other laws than 'two'"):
        build_problem(laws, PlanRequest.for_laws(other, 2.3))
