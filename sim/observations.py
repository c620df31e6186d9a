"""What a simulated run (``sim.run``) has observed: the loss its last evaluation observed, the
lowest, its level (``sim.level``: the median of its evaluations over the last tenth of its
trained FLOPs) and, for a policy that ``wants_history``, its history.

The run observes its evaluations a stretch at a time from its look-ahead (``sim.lookahead``).
Evaluation i of a look-ahead is at the trained FLOPs where it starts + (i + 1) x
``eval_every``, computed once per look-ahead, when it starts (``look_ahead_from``): the
``EvaluationLog`` stages the whole look-ahead then, so that a stretch only moves its end, and
finding where the level reaches a policy's loss (``evaluations_to_level``) reads the same
FLOPs, to the last bit, as the log will hold once they completed.

>>> from sim.config import SimConfig
>>> from sim.policies import Static
>>> ahead = LookAhead(SimConfig(noise=0.0), 10.0, 1.0, None)
>>> ahead.observe(np.array([3.0, 2.0, 1.5, 2.5]), 0)
>>> observations = Observations(ahead, 10.0, target=1.0)
>>> observations.look_ahead_from(0.0)  # evaluations at 10, 20, 30, 40 FLOPs
>>> observations.observe(0, 4, 0, "a", Static("a"))  # the target streak after them
0
>>> observations.last, observations.lowest, observations.level  # the level: 40 x 0.9 on
(2.5, 1.5, 2.5)
"""

from __future__ import annotations

import math
from itertools import repeat

import numpy as np

from sim.level import EvaluationLog
from sim.lookahead import LookAhead, offsets
from sim.policies import Policy


class Observations:
    """One run's observations of its evaluations, looked ahead at by ``ahead``."""

    __slots__ = ("_ahead", "_offsets", "_target", "_last", "_lowest", "_log", "_history",
                 "_keeping", "_ahead_from")

    def __init__(self, ahead: LookAhead, eval_every: float, target: float) -> None:
        self._ahead, self._offsets, self._target = ahead, offsets(eval_every), target
        self._last = self._lowest = math.inf
        self._log = EvaluationLog()  # every evaluation, for the run's level
        self._history: list[tuple[str, float, float]] = []  # the same, for ``wants_history``
        self._keeping = True  # the log and the history, for a policy that may read them
        self._ahead_from = 0.0  # trained FLOPs where the look-ahead starts

    @property
    def last(self) -> float:
        """The loss the last evaluation observed (inf before the first)."""
        return self._last

    @property
    def lowest(self) -> float:
        """The lowest loss an evaluation observed (inf before the first)."""
        return self._lowest

    @property
    def level(self) -> float:
        """The run's level (``sim.level``; inf before the first evaluation)."""
        return self._log.level()

    @property
    def history(self) -> list[tuple[str, float, float]]:
        """(shape, trained FLOPs, observed loss) per evaluation, when the policy wants it."""
        return self._history

    @property
    def logged(self) -> int:
        """How many evaluations the log holds: all the run observed but those a restart
        dropped (none when it keeps nothing)."""
        return self._log.size

    def keep_nothing(self) -> None:
        """The run's policy is never consulted, so never reads the run's level or history:
        keep neither (the level stays inf)."""
        self._keeping = False

    def look_ahead_from(self, trained: float) -> None:
        """The look-ahead starts anew (filled, or restored from a checkpoint) at ``trained``
        FLOPs: its evaluations are staged in the log."""
        self._ahead_from = trained
        if self._keeping:
            observed = self._ahead.observed
            self._log.stage(trained + self._offsets[:len(observed)], observed)

    def observe(self, first: int, stop: int, streak: int, shape: str, policy: Policy) -> int:
        """Evaluations ``first`` to ``stop`` - 1 of the look-ahead observed, on ``shape``; the
        target streak after them (``streak`` before). (A policy consulted after every
        evaluation makes stretches of one: keep those cheap.)"""
        ahead, total = self._ahead, stop - first
        if total == 1:
            self._last = last = float(ahead.observed[first])
            self._lowest = min(self._lowest, last)
            streak = streak + 1 if last <= self._target else 0
        else:
            observed = ahead.observed[first:stop]
            self._last = float(observed[-1])
            if not ahead.lowest >= self._lowest:  # else none of the look-ahead is lower
                self._lowest = min(self._lowest, float(np.minimum.reduce(observed)))
            streak = ahead.streak_after(first, stop, streak)
        if not self._keeping:
            return streak
        self._log.advance(total)
        if policy.wants_history:
            trained = self._ahead_from + self._offsets[first:stop]
            self._history.extend(zip(repeat(shape, total), trained.tolist(),
                                     ahead.observed[first:stop].tolist(), strict=True))
        return streak

    def level_reachable(self, done: int, loss: float) -> bool:
        """Whether the run observed ``loss`` or less, or will from index ``done`` of the
        look-ahead on: until it does, its level cannot reach ``loss`` (nor is it worth the
        cost of ``evaluations_to_level``)."""
        if self._lowest <= loss:
            return True
        # As ``LookAhead.consults`` would answer, without its list: none at or below ``loss``
        # while the look-ahead's lowest is above it (or nan).
        ahead = self._ahead
        return ahead.lowest <= loss and float(np.minimum.reduce(ahead.observed[done:])) <= loss

    def evaluations_to_level(self, loss: float) -> int:
        """Evaluations from the next to the first at which the run's level is at or below
        ``loss``, or to the end of the look-ahead."""
        return self._log.evaluations_to(loss)

    def restore(self, lowest: float, logged: int) -> None:
        """Back to a checkpoint's: ``lowest`` observed, ``logged`` evaluations."""
        self._lowest = lowest
        del self._history[logged:]  # as long as the log, when kept
        self._log.truncate(logged)
