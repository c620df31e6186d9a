"""The ``online`` policy: refit the laws from the run's own evaluations and re-plan.

Every ``refit_every`` evaluations it fits a power law to each shape it has trained (at least
``min_points`` evaluations), replaces that shape's planning law, re-runs the search (the same
request, from the plan's start loss) and follows the new schedule from the loss the run is at
(the median of its last few evaluations). Positions on a curve are what a real run knows: exact
on the first shape (trained from scratch); after a switch, the planning law's C_Q(observed loss
at the switch) plus the compute trained since.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import replace

import numpy as np

from laws.errors import InputError
from laws.lawset import LawSet
from sim.policies import PlanningContext, RunView, Scheduled, planned

REFIT_EVERY = 150
MIN_POINTS = 10
RECENT = 9


class Online(Scheduled):
    """Starts on the plan's schedule; refits and re-plans as evaluations come in."""

    wants_history = True

    def __init__(self, context: PlanningContext, refit_every: int = REFIT_EVERY,
                 min_points: int = MIN_POINTS) -> None:
        first = context.the_plan()
        super().__init__("online", planned(first, context.laws).schedule)
        self.context = context
        self.start_loss = float(first["start_loss"])
        self.refit_every = refit_every
        self.min_points = min_points
        self.initial = self.schedule

    def _level(self) -> float:
        return math.inf  # consult every evaluation: refits go by the count of evaluations

    def begin(self, run: RunView) -> str:
        self.schedule = self.initial
        self.refits = 0
        self.fitted: dict = {}
        return super().begin(run)

    def decide(self, run: RunView) -> str | None:
        if run.evaluations % self.refit_every == 0:
            level = current_level(run.history)
            if level > self.context.target:
                self._replan(run, level)
                return self.schedule[self.segment][0]
        return super().decide(run)

    def _replan(self, run: RunView, level: float) -> None:
        from laws.search import plan

        laws = refit(self.context.laws, run.history, self.min_points, self.fitted)
        request = replace(self.context.request.for_other_laws(laws), start_loss=self.start_loss)
        try:
            schedule = planned(plan(laws, request), laws).schedule
        except InputError:
            schedule = []
        # When no refit route reaches the target (short, noisy stretches extrapolate badly),
        # fall back on the prior laws' plan rather than keep a stale refit.
        self.schedule = schedule or self.initial
        self.refits += bool(schedule)
        self.segment = 0
        while self.segment < len(self.schedule) - 1 and level <= self.schedule[self.segment][1]:
            self.segment += 1


def current_level(history: list[tuple[str, float, float]], window: int = RECENT) -> float:
    """The loss the run is at: the median of its last ``window`` evaluations, robust to noise
    (the lowest observation is not: one low draw would end refits and skip segments).

    >>> current_level([("a", 1.0, 3.0), ("a", 2.0, 1.0), ("a", 3.0, 2.0)])
    2.0
    """
    return float(np.median([observed for _, _, observed in history[-window:]]))


def refit(laws: LawSet, history: list[tuple[str, float, float]], min_points: int,
          fitted: dict | None = None) -> LawSet:
    """``laws`` with each shape that has ``min_points`` evaluations refit to them.

    ``history`` rows are (shape, useful FLOPs trained so far, observed loss), in run order;
    ``fitted`` caches fits by their data, so that shapes the run has left are not refit.
    """
    from laws.fit import fit_law

    fitted = {} if fitted is None else fitted
    points: dict[str, tuple[list[float], list[float]]] = {}
    stretch_start = None
    for i, (shape, trained, observed) in enumerate(history):
        if i == 0 or history[i - 1][0] != shape:
            landing = 0.0 if i == 0 else float(laws.shape(shape).law.compute(history[i - 1][2]))
            stretch_start = (landing, history[i - 1][1] if i else 0.0)
        positions, losses = points.setdefault(shape, ([], []))
        positions.append(stretch_start[0] + trained - stretch_start[1])
        losses.append(observed)
    shapes = []
    for shape in laws.shapes:
        positions, losses = points.get(shape.name, ((), ()))
        if len(positions) >= min_points and min(losses) > 0:
            key = (shape.name, len(positions), positions[-1], losses[-1])
            if key not in fitted:
                law = shape.law  # too little or degenerate data keeps the prior law
                with contextlib.suppress(InputError):
                    law = fit_law(np.asarray(positions), np.asarray(losses))
                fitted[key] = law
            shape = replace(shape, law=fitted[key])
        shapes.append(shape)
    return replace(laws, shapes=tuple(shapes))
