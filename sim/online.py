"""The ``online`` policy: update the plan's laws with the run's own evaluations and re-plan.

It starts on the plan's schedule. Every ``every`` evaluations (from ``min_points`` on; further
apart, a tenth of the evaluations so far, on a long run) it
weights the law file's joint bootstrap samples by the likelihood of everything the run has
observed (``sim.posterior``: each sample judged on its own account of where the run is, so a
switch needs no guess of where it landed), asks the search again from the loss the run is at
on the samples the posterior keeps, and adopts the posterior's best schedule only when it is
another route to the run and its expected saving exceeds that expectation's error
(``sim.replan``). A prior that cannot explain the run is widened and tempered.

Where the run is: the lowest level it has read (``RunView.level``: the median of its
evaluations over the last tenth of its compute, ``sim.level``). The schedule's segments end
at the first reading at or below theirs (``Scheduled``'s rule, as for every schedule), and a
segment passed stays passed, while the level itself rises again by noise; a re-plan from a
level above one the run already read would undo the switch that reading fired (on
gemstones-lm, point truth, 3% noise: 1.5 switches back per run in 60% of 30 runs, 0.85% more
compute than the plan). Another route: one that differs from the schedule followed by more
than the level's own noise (``sim.level.level_error``, ``sim.replan.indistinct``): a switch
moved by less, or a leg shorter than that, the run cannot follow apart from the schedule (the
same runs: 3 adoptions per run of switch levels a grid step from the plan's, none after).

Each update is noted on the run (``RunView.note``, event ``posterior``): the noise, the best
sample's misfit, the effective sample size before and after tempering, the widening, tau, the
expected gain of the best alternative and its error, and the schedule adopted (empty: kept).
The simulator keeps notes among the run's events, the real loop's controller in its curve log.
On laws without samples the prior is the point laws alone, and the policy follows the plan.
"""

from __future__ import annotations

import math

from sim.level import GROWTH, level_error
from sim.policies import PlanningContext, RunView, Scheduled, planned
from sim.posterior import Prior
from sim.replan import choose, remaining_problem

EVERY = 50
MIN_POINTS = 10


class Online(Scheduled):
    """Starts on the plan's schedule; re-plans on the posterior as evaluations come in."""

    def __init__(self, context: PlanningContext, every: int = EVERY,
                 min_points: int = MIN_POINTS, prior: Prior | None = None) -> None:
        """``prior``: what the posterior weighs, by default the planning laws' samples; another
        (a run's true laws as the one sample, ``bench/bench_online.py``) shows what re-planning
        gains where the posterior is right."""
        super().__init__("online", planned(context.the_plan(), context.laws).schedule)
        self.wants_history = True  # the posterior reads every evaluation, on any schedule
        self.context = context
        # Shared by the clones: its widened samples are cached.
        self.prior = prior if prior is not None else Prior(context.laws)
        self.penalty = context.request.transitions(context.laws).loss_penalty
        self.every, self.min_points = every, min_points
        self.initial = self.schedule

    def _set_hints(self, run: RunView) -> None:
        super()._set_hints(run)
        # Consult every evaluation: updates go by the count of evaluations.
        self.stay_above = self.stay_level_above = math.inf

    def begin(self, run: RunView) -> str:
        self.schedule = self.initial
        self.next_update = max(self.every, self.min_points)
        self.lowest_level = math.inf
        return super().begin(run)

    def decide(self, run: RunView) -> str | None:
        self.lowest_level = min(self.lowest_level, run.level)
        if run.evaluations >= self.next_update:
            # A run far over its plan (a truth much worse than the laws) would otherwise
            # update hundreds of times on an ever longer history: at least a tenth of the
            # evaluations so far apart.
            self.next_update = run.evaluations + max(self.every, int(GROWTH * run.evaluations))
            level = self.lowest_level
            if level > self.context.target:
                self._replan(run, level)
        return super().decide(run)

    def _replan(self, run: RunView, level: float) -> None:
        history = run.history
        posterior = self.prior.update(history, self.penalty)
        switches = sum(a[0] != b[0] for a, b in zip(history, history[1:], strict=False))
        problem = remaining_problem(self.context.request, self.context.laws, level, switches)
        ahead = [(shape, loss) for shape, loss, _ in self.schedule[self.segment:]]
        choice = choose(posterior, problem, run.shape_name, ahead, self.context.request.robust,
                        level_error(history, posterior.sigma))
        if choice.schedule is not None:
            self.schedule = [(shape, loss, math.inf) for shape, loss in choice.schedule]
            self.segment = 0
        adopted = " > ".join(f"{shape}@{loss:.4g}" for shape, loss in choice.schedule or ())
        run.note("posterior", {**posterior.record(), "level": level,
                               "gain": choice.expected_gain, "gain_error": choice.gain_error,
                               "adopted": adopted})
