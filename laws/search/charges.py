"""Pricing switches by their measured transitions: the FLOPs a route's switches cost, settled
by searching again until the route pays what it is charged.

A measured transition (``laws.fit.transitions``, kept in the law file) costs a switch the extra
FLOPs the new shape needs, after it, to reach the end of its leg: the level of the next switch
or the target. That depends on where the route switches and how far it then trains, which the
graph's one cost per switch pair cannot hold; so the search starts with the transitions' FLOPs
per switch, charges the pairs of the route it finds what their transitions cost on that route,
and searches again, until the route it finds is charged what it was priced at (at most
``MAX_ROUNDS`` searches). A penalty still unpaid at the next switch is not carried over.

On the law set's bootstrap samples (``SampleCharges``) a measured switch of a route costs, on
sample k, what its transition's sample k (fitted on the laws' sample k) charges on the
destination's sample k: the interval of a plan then carries the switches' uncertainty too.

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

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from laws.errors import InputError
from laws.forms import Law
from laws.lawset import LawSet, MeasuredTransition
from laws.search.problem import Problem, build_problem
from laws.search.solvers import Route, solve
from laws.transitions import extra_compute, ordered_params

MAX_ROUNDS = 8


def charged_pairs(laws: LawSet, problem: Problem) -> dict[tuple[int, int], MeasuredTransition]:
    """The measured transitions that charge ``problem``'s switches, by (source, destination)
    index; none where the request gives ``--switch-flops`` (which then prices every switch)."""
    if problem.request.switch_flops is not None:
        return {}
    return {(problem.names.index(m.source), problem.names.index(m.destination)): m
            for m in laws.transitions.measured}


def switch_charge(transition: MeasuredTransition, law: Law, problem: Problem, fired: int,
                  end: int, params: Sequence[float]) -> float:
    """The FLOPs ``transition`` with ``params`` charges a switch fired at level ``fired`` of
    ``problem``'s grid onto a shape whose law is ``law``, its leg ending at level ``end``."""
    return extra_compute(transition.model, law, float(problem.grid[fired]),
                         float(problem.grid[end]), params)


def route_charges(laws: LawSet, problem: Problem, route: Route) -> dict[tuple[int, int], float]:
    """What each measured switch of ``route`` costs in FLOPs: the extra FLOPs its transition
    needs to reach the end of the leg after it, from the level where the switch fired (the
    highest charge where a pair recurs)."""
    measured = charged_pairs(laws, problem)
    charges: dict[tuple[int, int], float] = {}
    for (source, _, fired), (destination, _, end) in pairwise(route.legs):
        transition = measured.get((source, destination))
        if transition is None:
            continue
        charge = switch_charge(transition, laws.shapes[destination].law, problem, fired, end,
                               ordered_params(transition.model, transition.params))
        charges[source, destination] = max(charge, charges.get((source, destination), 0.0))
    return charges


def settle_charges(laws: LawSet, problem: Problem) -> Problem:
    """``problem`` (built by ``build_problem`` from ``laws``) with its measured pairs charged
    what they cost the route it leads to (or, after ``MAX_ROUNDS`` searches without settling,
    what they cost the last routes found); as it is where the request gives ``--switch-flops``
    (which then prices every switch) or no pair was measured."""
    if not charged_pairs(laws, problem):
        return problem
    for _ in range(MAX_ROUNDS):
        update = route_charges(laws, problem, solve(problem))
        if all(problem.charged.get(pair) == charge for pair, charge in update.items()):
            return problem
        problem = build_problem(laws, problem.request, {**problem.charged, **update})
    return problem


class SampleCharges:
    """What a route's switches cost on every bootstrap sample of ``laws``, in objective units.

    A switch whose transition carries samples costs, on sample k, ``switch_charge`` with the
    destination's law sample k and the transition's sample k, in place of the FLOPs ``problem``
    prices it at; any other switch costs ``problem.switch_cost`` on every sample.

    >>> from laws.forms import PowerLaw
    >>> from laws.lawset import Shape, Transitions
    >>> from laws.search.request import PlanRequest
    >>> def shape(name, a):
    ...     return Shape(name, {}, PowerLaw(a, 0.5, 1.0), samples=(PowerLaw(a, 0.5, 1.0),) * 2)
    >>> delay = MeasuredTransition("s", "b", "constant-flops", {"flops": 5.0}, ((3.0,), (9.0,)))
    >>> laws = LawSet("toy", (shape("s", 2.0), shape("b", 8.0)), transitions=Transitions(
    ...     measured=(delay,)))
    >>> problem = build_problem(laws, PlanRequest.for_laws(laws, 1.2, levels=10))
    >>> SampleCharges(laws, problem).cost(0, 1, 3, 9).tolist()   # the delay of each sample
    [3.0, 9.0]
    """

    def __init__(self, laws: LawSet, problem: Problem) -> None:
        count = len(laws.shapes[0].samples)
        self._pairs = {pair: m for pair, m in charged_pairs(laws, problem).items() if m.samples}
        for m in self._pairs.values():
            # Sample k of a transition is fitted on the laws' sample k: with another count
            # (another --bootstrap, or a law file whose fit left resamples out, as fits did
            # until 2026-12-07) the pairing is lost.
            if len(m.samples) != count:
                raise InputError(
                    f"measured transition {m.source} -> {m.destination} has {len(m.samples)} "
                    f"samples, the laws {count}: sample k of a transition must be fitted on the "
                    "laws' sample k (fit them together: `shapeshift fit --bootstrap N "
                    "--switch-runs ...`)")
        self._laws, self._problem = laws, problem
        self._known: dict[tuple[int, int, int, int], np.ndarray] = {}

    def cost(self, source: int, destination: int, fired: int, end: int) -> np.ndarray:
        """(samples,) or one value for all: the cost of a switch from ``source`` to
        ``destination`` fired at grid level ``fired``, its leg ending at level ``end``."""
        problem = self._problem
        priced = problem.switch_cost[source, destination]
        transition = self._pairs.get((source, destination))
        if transition is None:
            return np.asarray(priced)
        key = (source, destination, fired, end)
        if key not in self._known:
            flops = np.array([switch_charge(transition, law, problem, fired, end, params)
                              for law, params in zip(self._laws.shapes[destination].samples,
                                                     transition.samples, strict=True)])
            # The switch cost is linear in its FLOPs (build_problem: FLOPs at the destination's
            # scale, plus switch seconds): swap the FLOPs it was priced at for each sample's.
            charged = problem.charged.get((source, destination), problem.switch_flops)
            with np.errstate(invalid="ignore"):
                self._known[key] = priced + (flops - charged) * problem.scale[destination]
        return self._known[key]
