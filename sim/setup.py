"""What every run of one simulation shares, resolved once: the truth laws, the target, the
evaluation interval and budgets, throughputs, and what switches cost and where they may go.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from laws.errors import InputError
from laws.lawset import LawSet, Transitions
from laws.search.request import PlanRequest
from laws.search.switches import allowed_switches
from sim.config import DEFAULT_BUDGET_FACTOR, DEFAULT_EVALS_PER_RUN, SimConfig, best_static_compute
from sim.truth import TruthDraw

# Beyond these one run takes minutes to simulate and tells nothing new: the default is 10,000
# evaluations within the budget (10,000,000 kept in trajectories took 6 GB and over 100 s), and
# a run simulates about 5,000 failures a second (no training run survives 10,000 failures).
MAX_EVALUATIONS = 1_000_000
MAX_FAILURES = 10_000


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
    draw: TruthDraw = TruthDraw()

    def for_replication(self, replication: int, seed: int) -> RunSetup:
        """This setup with the truth that replication ``replication`` follows (``sim.truth``;
        ``seed`` the draw's: the first run's of the replication)."""
        if self.draw.kind == "point":
            return self
        return replace(self, truth=self.draw.laws(self.truth, seed, replication))


def make_setup(laws: LawSet, truth: LawSet | None, request: PlanRequest,
               config: SimConfig) -> RunSetup:
    """Resolve defaults (eval interval, budget) from the planning laws; check the truth laws.
    Switches cost what the request says (its overrides of the truth laws' transitions), and a
    pair whose transition the truth laws measured follows it after the switch (``sim.landing``).

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
    draw = TruthDraw.parse(config.truth_draw)
    draw.check(truth)
    transitions = request.transitions(truth)
    allowed = allowed_switches(truth, transitions.allowed)
    setup = RunSetup(
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
        draw=draw,
    )
    _check_effort(setup, best)
    return setup


def _check_effort(setup: RunSetup, best: float) -> None:
    """Refuse settings under which one run would take minutes or forever to simulate: more than
    ``MAX_EVALUATIONS`` evaluations within its compute budget, or more than ``MAX_FAILURES``
    expected failures (failures faster than an evaluation completes make no progress, and
    only the budget, spent crumb by crumb, would end the run).

    The failure count is a lower bound: work lost since a checkpoint is left out. Each
    evaluation of c seconds, restarted at every failure (rate r), takes expm1(r c) failures on
    average; a run reaches the target after ``best / eval_every`` of them, or stops at its
    budget after working min(max seconds, max compute / speed) seconds.
    """
    evaluations = setup.max_compute / setup.eval_every
    if evaluations > MAX_EVALUATIONS:
        raise InputError(f"--eval-every {setup.eval_every:g} FLOPs allows {evaluations:.3g} "
                         f"evaluations per run within its compute budget "
                         f"{setup.max_compute:.4g} (at most {MAX_EVALUATIONS:,}); give a larger "
                         "--eval-every or a smaller --max-compute")
    faults, config = setup.config.faults, setup.config
    if faults is None:
        return
    speed = max(setup.throughput.values()) * config.accelerators
    rate = 1.0 / faults.run_mtbf_seconds(config.accelerators)
    chunk = setup.eval_every / speed + config.eval_seconds
    to_target = best / setup.eval_every * math.expm1(min(rate * chunk, 700.0))
    to_budget = rate * min(setup.max_seconds, setup.max_compute / speed)
    failures = min(to_target, to_budget)
    # Repairs stretch the clock; where it passes 2^40 evaluations, rounding loses the time an
    # evaluation takes and the run stops advancing.
    slowest = min(setup.throughput.values()) * config.accelerators
    horizon = min(setup.max_seconds, setup.max_compute / slowest
                  + min(failures, MAX_FAILURES) * faults.repair_seconds)
    if horizon > chunk * 2.0 ** 40:
        raise InputError(f"--repair {faults.repair_hours:g} h: a run's clock would reach "
                         f"{horizon:.3g} s, too far to resolve its {chunk:.3g} s evaluations; "
                         "give a shorter --repair or a --max-hours")
    if failures > MAX_FAILURES:
        raise InputError(f"--mtbf {faults.mtbf_hours:g} h: a run on {config.accelerators} "
                         f"accelerator(s) would fail about {failures:.3g} times (at most "
                         f"{MAX_FAILURES:,}), once every {1.0 / rate:.3g} s against "
                         f"{chunk:.3g} s per evaluation; give a longer --mtbf, a smaller "
                         "--eval-every or a --max-hours")
