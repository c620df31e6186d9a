"""What every run of one simulation shares, resolved once: the truth laws, the target, the
evaluation interval and budgets, throughputs, and what switches cost and where they may go.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from laws.errors import InputError
from laws.lawset import LawSet, Transitions
from laws.search.request import PlanRequest
from laws.search.switches import allowed_switches
from sim.config import DEFAULT_BUDGET_FACTOR, DEFAULT_EVALS_PER_RUN, SimConfig, best_static_compute


@dataclass(frozen=True)
class RunSetup:
    """What every run of one simulation shares: truth laws, target, resolved settings."""

    truth: LawSet
    target: float
    config: SimConfig
    eval_every: float
    max_compute: float
    max_seconds: float
    throughput: dict[str, float]
    transitions: Transitions
    allowed: frozenset[tuple[str, str]]  # (from, to) shape names a run may switch between


def make_setup(laws: LawSet, truth: LawSet | None, request: PlanRequest,
               config: SimConfig) -> RunSetup:
    """Resolve defaults (eval interval, budget) from the planning laws; check the truth laws.
    Switches cost what the request says (its overrides of the truth laws' transitions).

    >>> from laws.forms import PowerLaw
    >>> from laws.lawset import LawSet, Shape
    >>> laws = LawSet("t", (Shape("a", {}, PowerLaw(4.0, 0.5, 1.0)),))
    >>> make_setup(laws, None, PlanRequest.for_laws(laws, 2.0), SimConfig()).eval_every
    0.016
    """
    truth = truth or laws
    missing = [name for name in laws.names if name not in truth.names]
    if missing:
        raise InputError(f"truth law set {truth.name!r} lacks shape(s) {', '.join(missing)} "
                         "of the planning laws")
    target = request.target
    best = best_static_compute(laws, target)[1]  # C_a(2) = 16 above: eval every 16 / 1000
    max_hours = config.max_hours
    transitions = request.transitions(truth)
    allowed = allowed_switches(truth, transitions.allowed)
    return RunSetup(
        truth=truth,
        target=target,
        config=config,
        eval_every=config.eval_every or best / DEFAULT_EVALS_PER_RUN,
        max_compute=config.max_compute or DEFAULT_BUDGET_FACTOR * best,
        max_seconds=math.inf if max_hours is None else max_hours * 3600.0,
        throughput=config.throughputs(truth),
        transitions=transitions,
        allowed=frozenset((p, q) for i, p in enumerate(truth.names)
                          for j, q in enumerate(truth.names) if allowed[i, j]),
    )
