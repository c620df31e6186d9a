"""Policies: which shape a run trains next, decided from what the run has observed.

One interface: ``begin(run)`` names the first shape, ``decide(run)`` is called after every
evaluation and names the shape to train next (``None`` or the current one: stay). A policy
that knows it stays while the observed loss is above some level sets ``stay_above`` to it; the
run then skips the call until an evaluation reaches that level (the call is on the hot path:
it would run after every evaluation of every run).

A policy never sees the true loss, only ``run.observed`` (the last evaluation),
``run.lowest_observed``, ``run.trained_flops`` (useful training so far), ``run.evaluations``,
``run.shape_name`` and ``run.policy_rng``; ``run.history`` holds ``(shape, trained FLOPs,
observed loss)`` per evaluation for policies that set ``wants_history``. The run clones the
policy object at every checkpoint and restores the clone after a failure, so per-run state lives
in plain attributes set in ``begin``.

>>> from laws.forms import PowerLaw
>>> from laws.lawset import LawSet, Shape
>>> laws = LawSet("t", (Shape("a", {}, PowerLaw(4.0, 0.5, 1.0)),))
>>> make_policy("static", PlanningContext(laws, target=2.0)).name
'static:a'
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from laws.errors import InputError
from laws.graph import inverse_gradients
from laws.lawset import LawSet
from sim.config import best_static_compute

POLICY_SPECS = "static[:SHAPE], planned, greedy, online, random, fixed:SHAPE@FRACTION,..."


@dataclass
class PlanningContext:
    """What policies may know before the run: the planning laws, the target and the plan.

    ``plan`` is the JSON object of ``shapeshift search``; when a policy needs one and none was
    given, the search runs once here. ``budget`` is the compute the ``fixed`` policy's
    fractions refer to (default: the best static compute).
    """

    laws: LawSet
    target: float
    plan: dict[str, Any] | None = None
    budget: float | None = None
    search_options: dict[str, Any] = field(default_factory=dict)

    def the_plan(self) -> dict[str, Any]:
        if self.plan is None:
            from laws.search import plan

            self.plan = plan(self.laws, self.target, **self.search_options)
        return self.plan


class Policy(ABC):
    """Decides the shape of a run at each evaluation."""

    name: str
    wants_history = False
    stay_above = math.inf  # a hint: ``decide`` would stay while observed loss > this


    def clone(self) -> Policy:
        """A shallow copy: per-run state is plain attributes (cheaper than ``copy.copy``)."""
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        return twin

    @abstractmethod
    def begin(self, run: Any) -> str:
        """Reset per-run state and return the first shape."""

    @abstractmethod
    def decide(self, run: Any) -> str | None:
        """The shape to train next, after an evaluation."""


class Static(Policy):
    """One shape from start to finish."""

    def __init__(self, shape: str) -> None:
        self.shape = shape
        self.name = f"static:{shape}"

    def begin(self, run: Any) -> str:
        return self.shape

    def decide(self, run: Any) -> str | None:
        return None


class Scheduled(Policy):
    """Follows a schedule of (shape, loss at which to leave it): switches to the next shape
    the first time an evaluation observes a loss at or below the current segment's end."""

    def __init__(self, name: str, schedule: list[tuple[str, float]]) -> None:
        self.name = name
        self.schedule = schedule

    def begin(self, run: Any) -> str:
        self.segment = 0
        self.stay_above = self._level()
        return self.schedule[0][0]

    def decide(self, run: Any) -> str | None:
        last = len(self.schedule) - 1
        while self.segment < last and run.observed <= self.schedule[self.segment][1]:
            self.segment += 1
        self.stay_above = self._level()
        return self.schedule[self.segment][0]

    def _level(self) -> float:
        """The loss that ends the current segment (-inf on the last)."""
        last = len(self.schedule) - 1
        return -math.inf if self.segment == last else self.schedule[self.segment][1]


def planned(plan: dict[str, Any], laws: LawSet, which: str = "optimal") -> Scheduled:
    """The schedule of a plan (``optimal`` or ``greedy``) as a policy."""
    schedule = plan[which]["schedule"]
    for step in schedule:
        laws.shape(step["shape"])
    return Scheduled("planned", [(step["shape"], float(step["loss_to"])) for step in schedule])


class Greedy(Policy):
    """The paper's rule online: train the shape with the least |dC/dE| at the lowest loss
    observed so far (the lowest, so that noise cannot make it switch back and forth)."""

    name = "greedy"

    def __init__(self, laws: LawSet, target: float, start_loss: float) -> None:
        self.boundaries, self.owners = greedy_partition(laws, target, start_loss)

    def owner(self, loss: float) -> str:
        for boundary, owner in zip(self.boundaries, self.owners, strict=True):
            if loss >= boundary:
                return owner
        return self.owners[-1]

    def begin(self, run: Any) -> str:
        return self.owners[0]

    def decide(self, run: Any) -> str | None:
        return self.owner(run.lowest_observed)


def greedy_partition(laws: LawSet, target: float, start_loss: float,
                     levels: int = 4001) -> tuple[list[float], list[str]]:
    """Loss ranges owned by the shape of least |dC/dE|, from ``start_loss`` down past
    ``target``, as (lowest loss of each range, its shape), highest range first.

    >>> from laws.forms import PowerLaw
    >>> from laws.lawset import LawSet, Shape
    >>> laws = LawSet("t", (Shape("a", {}, PowerLaw(1.0, 1.0, 0.0)),
    ...                     Shape("b", {}, PowerLaw(4.0, 2.0, 0.0))))
    >>> greedy_partition(laws, 0.01, 10.0)[1]  # |dC/dE|: a E^-2, b E^-1.5: a wins above 1
    ['a', 'b']
    """
    floor = min(s.law.floor for s in laws.shapes)
    top, bottom = start_loss - floor, (target - floor) / 2
    grid = floor + np.geomspace(top, bottom, levels)
    best = np.argmin(inverse_gradients(laws, grid), axis=0)
    boundaries, owners = [], []
    for i, index in enumerate(best):
        name = laws.shapes[index].name
        if owners and owners[-1] == name:
            boundaries[-1] = float(grid[i])
        else:
            boundaries.append(float(grid[i]))
            owners.append(name)
    boundaries[-1] = -math.inf
    return boundaries, owners


class RandomShape(Policy):
    """FlexiViT-style: a shape drawn uniformly at random for every chunk."""

    name = "random"

    def __init__(self, laws: LawSet) -> None:
        self.names = laws.names

    def begin(self, run: Any) -> str:
        return self.names[int(run.policy_rng.integers(len(self.names)))]

    def decide(self, run: Any) -> str | None:
        return self.names[int(run.policy_rng.integers(len(self.names)))]


class Fixed(Policy):
    """A user schedule: shape i from fraction f_i of a compute budget (useful training FLOPs)."""

    name = "fixed"

    def __init__(self, steps: list[tuple[str, float]], budget: float) -> None:
        starts = [start for _, start in steps]
        if not steps or starts[0] != 0 or starts != sorted(set(starts)):
            raise InputError("fixed schedule: fractions must start at 0 and increase, "
                             "e.g. fixed:p16@0,p8@0.4")
        self.steps = steps
        self.budget = budget

    def begin(self, run: Any) -> str:
        return self.steps[0][0]

    def decide(self, run: Any) -> str | None:
        fraction = run.trained_flops / self.budget
        current = self.steps[0][0]
        for shape, start in self.steps:
            if fraction >= start:
                current = shape
        return current


def make_policy(spec: str, context: PlanningContext) -> Policy:
    """The policy named by ``spec`` (see ``POLICY_SPECS``); an ``InputError`` otherwise."""
    kind, _, argument = spec.partition(":")
    laws = context.laws
    if kind == "static":
        shape = argument or best_static_compute(laws, context.target)[0]
        laws.shape(shape)
        return Static(shape)
    if kind == "planned" and not argument:
        return planned(context.the_plan(), laws)
    if kind == "greedy" and not argument:
        return Greedy(laws, context.target, float(context.the_plan()["start_loss"]))
    if kind == "random" and not argument:
        return RandomShape(laws)
    if kind == "fixed" and argument:
        budget = context.budget or best_static_compute(laws, context.target)[1]
        return Fixed(_fixed_steps(argument, laws), budget)
    if kind == "online" and not argument:
        from sim.online import Online

        return Online(context)
    raise InputError(f"unknown policy {spec!r}; expected one of {POLICY_SPECS}")


def _fixed_steps(argument: str, laws: LawSet) -> list[tuple[str, float]]:
    steps = []
    for item in argument.split(","):
        shape, _, fraction = item.partition("@")
        laws.shape(shape)
        try:
            steps.append((shape, float(fraction)))
        except ValueError:
            raise InputError(f"fixed schedule: {item!r} is not SHAPE@FRACTION") from None
        if not 0 <= steps[-1][1] < 1:
            raise InputError(f"fixed schedule: fraction in {item!r} must lie in [0, 1)")
    return steps
