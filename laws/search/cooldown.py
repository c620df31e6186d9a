"""Plans that end with a cool-down: switches in the stable phase, then the final anneal.

A run under warm-up-stable-decay trains at its peak rate, switching shape as a plan says, and
decays the rate over the last share F of its FLOPs (``Annealed.cooldown``). Its loss at the
end is what the target is about, so the plan is made in two parts:

* a static run of shape Q with budget B ends at its annealed law's loss, L^a_Q(B); it reaches
  the target at B_Q = C^a_Q(target), leaving the peak rate at (1 - F) B_Q, where its constant-
  rate law says it has reached the stable loss e_Q = L_Q((1 - F) B_Q);
* a run that ends on Q is taken to anneal as Q's static runs do from where it stands on Q's
  law: once at e_Q, it cools down and ends at the target. Its cool-down lasts F / (1 - F) of
  the FLOPs it trained before (its own budget's last share F, as a cool-down branch of it
  measures, ``validate/cooldown.py``), at Q's throughput.

So for each last shape Q the plan is the cheapest route to e_Q that ends on Q (the ordinary
search, its last level reachable on Q alone) plus that cool-down, and the plan takes the
cheapest Q. For Q alone this is B_Q, so the plan never costs more than the best static shape.
The assumption to check against runs: a shape's anneal gives the same loss whatever shape the
run trained before (bench: the WSD confirmation loop).

>>> from laws.forms import PowerLaw
>>> from laws.lawset import Annealed, LawSet, Shape
>>> hot = PowerLaw(a=10.0, b=0.5, c=1.0)
>>> laws = LawSet("one", (Shape("a", {}, hot, annealed=Annealed(PowerLaw(a=8.0, b=0.5, c=1.0),
...                                                          0.2)),))
>>> result = plan_with_cooldown(laws, PlanRequest.for_laws(laws, 1.8, start_loss=3.0))
>>> round(result.static["a"], 6)     # 1 + 8 / sqrt(B) = 1.8 at B = 100
100.0
>>> round(result.stable_loss, 6)    # its constant-rate loss at 80: 1 + 10 / sqrt(80)
2.118034
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace

import numpy as np

from laws.errors import InputError, UnreachableTarget
from laws.io.atomic import write_text_atomic
from laws.lawset import LawSet
from laws.search.charges import settle_charges
from laws.search.grid import default_start_loss
from laws.search.planfile import PlannedRoute, StaticBest
from laws.search.plans import describe_route
from laws.search.problem import build_problem
from laws.search.request import PlanRequest
from laws.search.solvers import solve


@dataclass(frozen=True)
class Ending:
    """The cheapest run that ends on ``shape``: its stable phase (``route``, to ``stable_loss``
    on ``shape``, what ``request`` asks: ``plan(laws, request)`` is its ``Plan``), the
    cool-down's FLOPs, and the whole run's FLOPs and cost."""

    shape: str
    stable_loss: float
    request: PlanRequest
    route: PlannedRoute
    cooldown_compute: float
    compute: float
    cost: float


@dataclass(frozen=True)
class CooldownPlan:
    """The plan to ``target_loss`` after a cool-down of ``cooldown`` (see the module): the best
    ``ending``, every last shape's (``endings``), each shape's static budget to the target
    after its own anneal (``static``, None where its annealed law never reaches it), and the
    saving of the best ending over the best static shape."""

    target_loss: float
    start_loss: float
    cooldown: float
    objective: str
    ending: Ending
    endings: tuple[Ending, ...]
    static: dict[str, float | None]
    static_best: StaticBest
    saving_vs_static: float

    @property
    def stable_loss(self) -> float:
        """The constant-rate loss at which the plan's run starts its cool-down."""
        return self.ending.stable_loss

    def to_dict(self) -> dict:
        """The JSON object of ``search --anneal --json`` and ``cooldown_plan.json``."""
        return asdict(self)


def write_cooldown_plan(result: CooldownPlan, path: str | os.PathLike) -> None:
    """Write ``result.to_dict()`` to ``path`` atomically."""
    write_text_atomic(path, json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n")


def plan_with_cooldown(laws: LawSet, request: PlanRequest) -> CooldownPlan:
    """The plan of ``request`` whose run ends with a cool-down (module docstring):
    ``request.target`` is the loss after it. A shape without an annealed law may be trained on
    the way but cannot end the run, and has no static budget after the anneal (None); the
    annealed laws must share one cool-down share (``InputError`` otherwise, and when no shape
    has one); ``UnreachableTarget`` when no annealed law reaches the target."""
    share = _common_cooldown(laws)
    target = request.target
    budgets = {shape.name: float(shape.annealed.law.compute(target))
               if shape.annealed is not None else np.inf for shape in laws.shapes}
    reachable = [shape for shape in laws.shapes if np.isfinite(budgets[shape.name])]
    if not reachable:
        floors = ", ".join(f"{s.name} > {s.annealed.law.floor:.6g}" for s in laws.shapes
                           if s.annealed is not None)
        raise UnreachableTarget(f"target loss {target:g} is at or below every shape's annealed "
                                f"floor; lowest losses after a cool-down: {floors}")
    stable = {shape.name: float(shape.law.loss((1 - share) * budgets[shape.name]))
              for shape in reachable}
    start = request.start_loss
    if start is None:
        start = default_start_loss(laws, min(stable.values()))
    # A shape's own run reaches its stable loss, so every ending has a route.
    endings = tuple(_ending(laws, replace(request, target=stable[name], start_loss=start,
                                          end_on=name), share) for name in stable)
    best = min(endings, key=lambda ending: ending.cost)
    scale = build_problem(laws, best.request).scale
    static_cost = {shape.name: budgets[shape.name] * float(scale[i])
                   for i, shape in enumerate(laws.shapes)}
    best_static = min(static_cost, key=static_cost.get)
    return CooldownPlan(
        target_loss=target, start_loss=start, cooldown=share, objective=request.objective,
        ending=best, endings=endings,
        static={name: budget if np.isfinite(budget) else None
                for name, budget in budgets.items()},
        static_best=StaticBest(best_static, budgets[best_static], static_cost[best_static]),
        saving_vs_static=1.0 - best.cost / static_cost[best_static])


def _common_cooldown(laws: LawSet) -> float:
    """The one cool-down share of the shapes' annealed laws."""
    shares = {shape.annealed.cooldown for shape in laws.shapes if shape.annealed is not None}
    if not shares:
        raise InputError(f"planning to the loss after a cool-down needs annealed laws; law set "
                         f"{laws.name!r} has none (shapeshift laws anneal adds them)")
    if len(shares) > 1:
        raise InputError(f"law set {laws.name!r}: the annealed laws were measured with "
                         f"different cool-down shares ({', '.join(map(str, sorted(shares)))}); "
                         "a plan compares runs that anneal alike")
    return shares.pop()


def _ending(laws: LawSet, request: PlanRequest, share: float) -> Ending:
    """The cheapest run to ``request.target`` (a stable loss) that ends on ``request.end_on``,
    and its cool-down."""
    problem = settle_charges(laws, build_problem(laws, request))
    route = describe_route(problem, solve(problem))
    trained = sum(segment.compute for segment in route.schedule)
    cooldown = share / (1 - share) * trained
    scale = float(problem.scale[laws.names.index(request.end_on)])
    return Ending(request.end_on, request.target, request, route, cooldown,
                  route.compute + cooldown, route.cost + cooldown * scale)


def format_cooldown_plan(result: CooldownPlan) -> str:
    """The plan for people: the stable phase's schedule, the cool-down, and every ending."""
    from laws.tables import format_number, format_percent, format_table

    ending = result.ending
    rows = [[s.shape, s.loss_from, s.loss_to, s.compute + s.switch_compute]
            for s in ending.route.schedule]
    rows.append([f"{ending.shape} (cool-down)", ending.stable_loss, result.target_loss,
                 ending.cooldown_compute])
    best = result.static_best
    lines = [
        f"to loss {format_number(result.target_loss)} after a cool-down over the last "
        f"{format_percent(result.cooldown)} of the run's FLOPs (the annealed laws'), from loss "
        f"{format_number(result.start_loss)}",
        "",
        format_table(["shape", "loss from", "loss to", "compute (FLOPs)"], rows),
        "",
        f"optimal {format_number(ending.compute)} FLOPs vs best static "
        f"{format_number(best.compute)} FLOPs (shape {best.shape}, annealed): saves "
        f"{format_percent(result.saving_vs_static)}",
        "ending on each shape: " + ", ".join(
            f"{e.shape} {format_number(e.compute)} FLOPs (cool-down from loss "
            f"{format_number(e.stable_loss)})" for e in result.endings),
    ]
    return "\n".join(lines)
