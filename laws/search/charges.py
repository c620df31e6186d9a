"""Pricing switches by their measured transitions: the FLOPs a route's switches cost, settled
by searching again until the route pays what it is charged.

A measured transition (``laws.fit.transitions``, kept in the law file) costs a switch the extra
FLOPs the new shape needs, after it, to reach the end of its leg: the level of the next switch
or the target. That depends on where the route switches and how far it then trains, which the
graph's one cost per switch pair cannot hold; so the search starts with the transitions' FLOPs
per switch, charges the pairs of the route it finds what their transitions cost on that route,
and searches again, until the route it finds is charged what it was priced at (at most
``MAX_ROUNDS`` searches). A penalty still unpaid at the next switch is not carried over.

>>> from laws.lawset import MeasuredTransition, Transitions
>>> from laws.presets import load_preset
>>> from laws.search.problem import build_problem
>>> from laws.search.request import PlanRequest
>>> from dataclasses import replace
>>> demo = load_preset("demo")
>>> jump = MeasuredTransition("p16", "p8", "constant-flops", {"flops": 1e16})
>>> laws = replace(demo, transitions=Transitions(measured=(jump,)))
>>> settle_charges(laws, build_problem(laws, PlanRequest.for_laws(laws, 2.0, levels=200))).charged
{(1, 2): 1e+16}
"""

from __future__ import annotations

from itertools import pairwise

from laws.lawset import LawSet
from laws.search.problem import Problem, build_problem
from laws.search.solvers import Route, solve
from laws.transitions import extra_compute, ordered_params

MAX_ROUNDS = 8


def route_charges(laws: LawSet, problem: Problem, route: Route) -> dict[tuple[int, int], float]:
    """What each measured switch of ``route`` costs in FLOPs: the extra FLOPs its transition
    needs to reach the end of the leg after it, from the level where the switch fired (the
    highest charge where a pair recurs)."""
    measured = laws.transitions.measured_pairs
    charges: dict[tuple[int, int], float] = {}
    for (source, _, fired), (destination, _, end) in pairwise(route.legs):
        transition = measured.get((problem.names[source], problem.names[destination]))
        if transition is None:
            continue
        charge = extra_compute(transition.model, laws.shapes[destination].law,
                               float(problem.grid[fired]), float(problem.grid[end]),
                               ordered_params(transition.model, transition.params))
        charges[source, destination] = max(charge, charges.get((source, destination), 0.0))
    return charges


def settle_charges(laws: LawSet, problem: Problem) -> Problem:
    """``problem`` (built by ``build_problem`` from ``laws``) with its measured pairs charged
    what they cost the route it leads to (or, after ``MAX_ROUNDS`` searches without settling,
    what they cost the last routes found); as it is where the request gives ``--switch-flops``
    (which then prices every switch) or no pair was measured."""
    if problem.request.switch_flops is not None or not laws.transitions.measured:
        return problem
    for _ in range(MAX_ROUNDS):
        update = route_charges(laws, problem, solve(problem))
        if all(problem.charged.get(pair) == charge for pair, charge in update.items()):
            return problem
        problem = build_problem(laws, problem.request, {**problem.charged, **update})
    return problem
