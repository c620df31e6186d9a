"""Policies by name, as the command line and sweep files give them (``POLICY_SPECS``).

>>> from laws.presets import load_preset
>>> from laws.search.request import PlanRequest
>>> laws = load_preset("demo")
>>> context = PlanningContext(laws, PlanRequest.for_laws(laws, 2.0, levels=200))
>>> [make_policy(spec, context).name for spec in ("static", "planned", "fixed:p32@0,p8@0.5")]
['static:p8', 'planned', 'fixed']
"""

from __future__ import annotations

from laws.errors import InputError
from laws.lawset import LawSet
from sim.config import best_static_compute
from sim.online import Online
from sim.policies import Greedy, PlanningContext, Policy, RandomShape, Static, fixed, planned

POLICY_SPECS = "static[:SHAPE], planned, greedy, online, random, fixed:SHAPE@FRACTION,..."


def make_policy(spec: str, context: PlanningContext) -> Policy:
    """The policy named by ``spec`` (see ``POLICY_SPECS``); an ``InputError`` otherwise."""
    kind, colon, argument = spec.partition(":")
    if colon and not argument:
        raise InputError(f"policy {spec!r}: nothing after the ':'; expected one of "
                         f"{POLICY_SPECS}")
    laws = context.laws
    if kind == "static":
        shape = argument or best_static_compute(laws, context.target)[0]
        laws.shape(shape)
        return Static(shape)
    if kind == "planned" and not argument:
        return planned(context.the_plan(), laws)
    if kind == "greedy" and not argument:
        return Greedy(context.the_plan(), laws)
    if kind == "random" and not argument:
        return RandomShape(laws, context.target)
    if kind == "fixed" and argument:
        budget = context.budget or best_static_compute(laws, context.target)[1]
        return fixed(_fixed_steps(argument, laws), budget)
    if kind == "online" and not argument:
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


def split_policies(texts: tuple[str, ...] | list[str]) -> list[str]:
    """Policy names from comma-separated option values; the steps of a ``fixed:`` schedule
    (``SHAPE@FRACTION``) stay with it.

    >>> split_policies(["planned,fixed:p32@0,p8@0.5", "static"])
    ['planned', 'fixed:p32@0,p8@0.5', 'static']
    """
    specs: list[str] = []
    for text in texts:
        for item in (part.strip() for part in text.split(",")):
            if specs and specs[-1].startswith("fixed:") and "@" in item and ":" not in item:
                specs[-1] += f",{item}"
            elif item:
                specs.append(item)
    return specs


def with_baseline(specs: list[str] | tuple[str, ...]) -> list[str]:
    """``specs`` with the best static shape added when no static policy is among them: the
    baseline every saving is measured against.

    >>> with_baseline(["planned"]), with_baseline(["static:p8", "planned"])
    (['planned', 'static'], ['static:p8', 'planned'])
    """
    specs = list(specs)
    return specs if any(s.startswith("static") for s in specs) else [*specs, "static"]
