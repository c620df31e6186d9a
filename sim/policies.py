"""Policies: which shape a run trains next, decided from what the run has observed.

One interface for simulated and real runs: ``begin(run)`` names the first shape, ``decide(run)``
is called after every evaluation and names the shape to train next (``None`` or the current one:
stay). ``run`` is anything that offers ``RunView``: the simulator's runs, and the controller of
a real training loop (``validate.controller``). A policy that knows it stays while the observed
loss is above some level sets ``stay_above`` to it; the run then skips the call until an
evaluation reaches that level (the call is on the hot path: it would run after every evaluation
of every run). A policy that knows it stays while the run's level (``sim.level``: the median
of its recent evaluations) is above some loss sets ``stay_level_above`` to it; a run that sees
its next evaluations ahead (the simulator's) then skips the call until that median reaches
it. A policy that switches at a FLOP level sets ``ask_at_flops`` to it; a run that
can stop between evaluations (the real loop's controller) then also asks once its trained FLOPs
reach that level, so the switch happens at the level rather than at the next evaluation.

A policy never sees the true loss, only what ``RunView`` offers; ``history`` is kept only for
policies that set ``wants_history``. The run clones the policy object at every checkpoint and
restores the clone after a failure, so per-run state lives in plain attributes set in
``begin``. ``sim.policy_spec.make_policy`` builds a policy from its name on the command line.

>>> from laws.forms import PowerLaw
>>> from laws.lawset import LawSet, Shape
>>> laws = LawSet("t", (Shape("a", {}, PowerLaw(4.0, 0.5, 1.0)),))
>>> Static("a").name
'static:a'
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from laws.errors import InputError, UnreachableTarget
from laws.lawset import LawSet
from laws.search.planfile import Plan
from laws.search.request import PlanRequest


class RunView(Protocol):
    """What a policy may read of a run, simulated or real."""

    @property
    def shape_name(self) -> str:
        """The shape the run trains now."""

    @property
    def observed(self) -> float:
        """The loss the last evaluation observed."""

    @property
    def lowest_observed(self) -> float:
        """The lowest loss any evaluation of the run has observed."""

    @property
    def trained_flops(self) -> float:
        """Useful training FLOPs so far."""

    @property
    def evaluations(self) -> int:
        """Evaluations so far."""

    @property
    def history(self) -> Sequence[tuple[str, float, float]]:
        """(shape, trained FLOPs, observed loss) per evaluation, for ``wants_history``."""

    @property
    def level(self) -> float:
        """The loss the run is at (``sim.level.current_level``): the median of its evaluations
        over the last tenth of its trained FLOPs; inf before the first."""

    @property
    def policy_rng(self) -> np.random.Generator:
        """The run's own random stream for policies that draw."""

    def note(self, event: str, fields: dict[str, float | str]) -> None:
        """Keep what a policy found (e.g. a posterior update) in the run's record."""


@dataclass
class PlanningContext:
    """What policies may know before the run: the planning laws, the request and its plan.

    ``plan`` is the plan of ``shapeshift search`` made for ``request``; when a policy
    needs one and none was given, the search runs once here. ``budget`` is the compute the
    ``fixed`` policy's fractions refer to (default: the best static compute).
    """

    laws: LawSet
    request: PlanRequest
    plan: Plan | None = None
    budget: float | None = None

    @property
    def target(self) -> float:
        return self.request.target

    def the_plan(self) -> Plan:
        if self.plan is None:
            from laws.search import plan

            self.plan = plan(self.laws, self.request)
        return self.plan


class Policy(ABC):
    """Decides the shape of a run at each evaluation."""

    name: str
    wants_history = False
    stay_above = math.inf  # a hint: ``decide`` would stay while observed loss > this
    stay_level_above = math.inf  # a hint: ``decide`` would stay while the run's level > this
    ask_at_flops = math.inf  # a hint: ask ``decide`` when the trained FLOPs reach this

    def clone(self) -> Policy:
        """A shallow copy: per-run state is plain attributes (cheaper than ``copy.copy``)."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        return twin

    @abstractmethod
    def begin(self, run: RunView) -> str:
        """Reset per-run state and return the first shape."""

    @abstractmethod
    def decide(self, run: RunView) -> str | None:
        """The shape to train next, after an evaluation (or at ``ask_at_flops``)."""


class Static(Policy):
    """One shape from start to finish."""

    stay_above = -math.inf  # never needs to be consulted

    def __init__(self, shape: str) -> None:
        self.shape = shape
        self.name = f"static:{shape}"

    def begin(self, run: RunView) -> str:
        return self.shape

    def decide(self, run: RunView) -> str | None:
        return None


class Scheduled(Policy):
    """Follows a schedule of segments, each (shape, loss level, FLOP level), or (shape, loss
    level) with no FLOP level: the run trains a segment's shape until the run's level reaches
    its loss level, or its trained FLOPs reach its FLOP level, whichever comes first (-inf and
    inf: never), then the next segment's; the last segment's levels are never used. The run's
    level (``RunView.level``, ``sim.level``) is the median of its evaluations over the last
    tenth of its trained FLOPs, so that one low draw does not end a segment (on a real run's
    sparse evaluations, its last one). ``planned`` schedules by loss, ``fixed`` by FLOPs;
    ``validate train --switch-at`` mixes the two; ``online`` re-plans its schedule.

    >>> policy = Scheduled("s", [("a", 1.0), ("b", -math.inf, 5e9), ("c", -math.inf)])
    >>> policy.schedule[1], policy.schedule[2]
    (('b', -inf, 5000000000.0), ('c', -inf, inf))
    """

    def __init__(self, name: str,
                 schedule: Sequence[tuple[str, float] | tuple[str, float, float]]) -> None:
        self.name = name
        self.schedule = [(step[0], float(step[1]), float(step[2]) if len(step) > 2 else math.inf)
                         for step in schedule]

    def begin(self, run: RunView) -> str:
        self.segment = 0
        self._set_hints(run)
        return self.schedule[0][0]

    def decide(self, run: RunView) -> str | None:
        last = len(self.schedule) - 1
        while self.segment < last and self._passed(run):
            self.segment += 1
        self._set_hints(run)
        return self.schedule[self.segment][0]

    def _passed(self, run: RunView) -> bool:
        """Whether the run is past the current segment's FLOP level or its level is at or
        below the segment's loss level (the level read only when a loss level asks for it)."""
        _, loss, flops = self.schedule[self.segment]
        return run.trained_flops >= flops or (loss > -math.inf and run.level <= loss)

    def _set_hints(self, run: RunView) -> None:
        """The last segment is never left. A FLOP level may have been passed at any
        evaluation. The run's level cannot reach a loss level while every loss the run
        observed lies above it; once one does not, it may at any evaluation (also one above
        the level: the median moves as its window drops the oldest evaluations)."""
        last = self.segment == len(self.schedule) - 1
        _, loss, flops = self.schedule[self.segment]
        by_loss = not last and flops == math.inf
        self.stay_above = (-math.inf if last else
                           loss if by_loss and run.lowest_observed > loss else math.inf)
        self.stay_level_above = loss if by_loss else math.inf
        self.ask_at_flops = math.inf if last else flops


def planned(plan: Plan, laws: LawSet, which: str = "optimal") -> Scheduled:
    """The schedule of a plan (``optimal`` or ``greedy``) as a policy. A plan made on other
    laws is refused (``check_plan_laws``); the policy keeps the plan (``plan_laws``), so that
    a controller given other laws refuses it too."""
    check_plan_laws(plan, laws)
    policy = Scheduled("planned", plan_schedule(plan, laws, which))
    # As JSON data: a training run's checkpoint keeps the policy's attributes, and torch
    # loads plain data only.
    policy.plan_laws = plan.to_dict()
    return policy


def check_plan_laws(plan: Plan, laws: LawSet) -> None:
    """Raise ``LawsMismatch`` (naming both digests) when ``plan`` was made on other laws than
    ``laws``: the command line's check (``Plan.check_request``), asked only about the laws."""
    plan.check_request(plan.request.for_other_laws(laws))


def plan_schedule(plan: Plan, laws: LawSet, which: str) -> list[tuple[str, float]]:
    """(shape, loss at which to leave it) along route ``which`` (``optimal`` or ``greedy``)
    of ``plan``."""
    route = getattr(plan, which)
    if not route.schedule:
        raise UnreachableTarget(f"the plan's {which} route does not reach the target "
                                f"{plan.target_loss:g}")
    for shape in route.shapes:
        laws.shape(shape)
    return route.steps()


class Greedy(Policy):
    """The paper's rule online: the plan's greedy route (the shape of least |dC/dE|, see
    ``laws.search.rules.greedy_route``) looked up at the lowest loss observed so far (the
    lowest, so that noise cannot make it switch back and forth)."""

    name = "greedy"

    def __init__(self, plan: Plan, laws: LawSet) -> None:
        route = plan_schedule(plan, laws, "greedy")
        self.owners = [shape for shape, _ in route]
        self.ends = [loss for _, loss in route]

    def owner(self, loss: float) -> str:
        """The shape the greedy route trains at ``loss``."""
        for end, owner in zip(self.ends, self.owners, strict=True):
            if loss > end:
                return owner
        return self.owners[-1]

    def begin(self, run: RunView) -> str:
        return self.owners[0]

    def decide(self, run: RunView) -> str | None:
        return self.owner(run.lowest_observed)


class RandomShape(Policy):
    """FlexiViT-style: a shape drawn uniformly at random for every chunk, among the shapes that
    can still reach ``target`` (floor below it; all shapes without a target). A shape whose
    floor is above the run's loss would throw the run back up to that floor.

    >>> from laws.forms import PowerLaw
    >>> from laws.lawset import LawSet, Shape
    >>> laws = LawSet("t", (Shape("a", {}, PowerLaw(4.0, 0.5, 1.0)),
    ...                     Shape("b", {}, PowerLaw(2.0, 0.5, 2.5))))
    >>> RandomShape(laws, 2.0).names, RandomShape(laws).names
    (['a'], ['a', 'b'])
    """

    name = "random"

    def __init__(self, laws: LawSet, target: float | None = None) -> None:
        self.names = [shape.name for shape in laws.shapes
                      if target is None or shape.law.floor < target]
        if not self.names:
            raise InputError(f"random policy: no shape's floor lies below the target {target:g}")

    def begin(self, run: RunView) -> str:
        return self.names[int(run.policy_rng.integers(len(self.names)))]

    def decide(self, run: RunView) -> str | None:
        return self.names[int(run.policy_rng.integers(len(self.names)))]


def fixed(steps: list[tuple[str, float]], budget: float) -> Scheduled:
    """A user schedule: shape i from fraction f_i of a compute budget (useful training FLOPs),
    as a schedule that leaves shape i at f_(i+1) x ``budget`` FLOPs.

    >>> fixed([("p16", 0.0), ("p8", 0.4)], 1e12).schedule
    [('p16', -inf, 400000000000.0), ('p8', -inf, inf)]
    """
    starts = [start for _, start in steps]
    if not steps or starts[0] != 0 or starts != sorted(set(starts)):
        raise InputError("fixed schedule: fractions must start at 0 and increase, "
                         "e.g. fixed:p16@0,p8@0.4")
    ends = [start * budget for start in starts[1:]] + [math.inf]
    return Scheduled("fixed", [(shape, -math.inf, end)
                               for (shape, _), end in zip(steps, ends, strict=True)])
