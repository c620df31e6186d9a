"""A run's look-ahead: its next evaluations on the shape it trains, computed before it waits.

While a run (``sim.run``) stays on one shape and its policy keeps one ``stay_above`` level,
nothing its next evaluations depend on changes: their true losses follow the shape's law from
where the run is (plus what is left of a decaying switch penalty), and evaluation i observes
true loss x (1 + noise x z_i), z_i the i-th draw of the run's noise stream. So the run need not
wait for each evaluation. ``LookAhead`` computes the next ones at once, in one numpy call of the
law (a call costs as much as a few dozen SimPy events, an evaluation in it 1-2% of one), with
where the target is observed and where the policy would be consulted (observed loss at or below
its level); ``LookAhead.stop`` finds the first evaluation at which anything can happen (the
policy is consulted or the target confirmed), and ``plan_legs`` splits the evaluations up to it
into legs at the checkpoints that fall due meanwhile and ends them at the budget or time limit.
The run then waits one SimPy timeout for the whole stretch. The rest follows a stretch once it
ran: the target streak after it (``LookAhead.streak_after``), when one of its evaluations ended
(``leg_end``), and what of it had completed when a failure interrupted it (``completed_legs``).

>>> plan_legs(10, 0.0, 0.0, 1.0, 2.0, 0.5, 1.0, 3.5, 3.0, math.inf, math.inf)
([(4, 0.0, 0.0), (3, 4.5, 9.0), (3, 8.0, 16.0)], 11.0)
"""

from __future__ import annotations

import math
from bisect import bisect_left
from functools import lru_cache
from typing import Any

import numpy as np

from sim.config import SimConfig

# Evaluations looked ahead per numpy call: few on a shape just entered (runs often leave their
# first shapes soon), four times as many each time the run gets to the end of a look-ahead.
_FIRST_LOOK, _LOOK = 128, 2048
STEPS = np.arange(1.0, _LOOK + 1.0)  # 1, 2, ...: evaluations after a point
_NOISE_BLOCK = 256  # noise draws per block, each used last to first (see ``_noise_factors``)
_NOTHING = np.empty(0)
Leg = tuple[int, float, float]  # evaluations, start time, FLOPs spent at the start


class LookAhead:
    """The next evaluations of a run from the point its look-ahead starts (index 0: the first
    evaluation after it): their true and observed losses (``true``, ``observed``), the lowest
    observed (``lowest``), and the indices at which the target is observed and at which the
    policy would be consulted (for the last level asked). Filled anew when the run enters a
    shape, restarts from a checkpoint, or gets to the end of it."""

    __slots__ = ("true", "observed", "lowest", "_hits", "_consults", "_level", "_offsets",
                 "_target", "_confirm", "_sigma", "_decay", "_rng", "_noise", "_noise_from")

    def __init__(self, config: SimConfig, eval_every: float, target: float,
                 rng: np.random.Generator | None) -> None:
        """``rng``: the run's noise stream (None without noise)."""
        self.true = self.observed = _NOTHING
        self.lowest = math.inf
        self._hits: list[int] = []  # indices at which the target is observed
        self._consults: list[int] = []  # indices at which the policy would be consulted
        self._level = math.nan  # the ``stay_above`` level ``_consults`` is for
        self._offsets = offsets(eval_every)  # of the evaluations looked ahead
        self._target, self._confirm = target, config.confirm
        self._sigma, self._decay = config.noise, config.penalty_decay_flops
        self._rng = rng
        self._noise, self._noise_from = _NOTHING, 0  # 1 + sigma z from draw number _noise_from

    def clear(self) -> None:
        """Nothing looked ahead (the run enters a shape)."""
        self.true = self.observed = _NOTHING

    def fill(self, law: Any, base: float, penalty: float, since: float,
             evaluations: int) -> None:
        """Look ahead from compute ``base`` on ``law``, a decaying ``penalty`` (fading from
        ``since``) added, the run having made ``evaluations`` evaluations so far."""
        size = min(max(4 * len(self.true), _FIRST_LOOK), _LOOK)
        positions = base + self._offsets[:size]
        true = np.asarray(law.loss(positions), dtype=float)
        if penalty:
            true = true + penalty_left(penalty, since, self._decay, positions)
        self.observe(true, evaluations)

    def observe(self, true: np.ndarray, evaluations: int) -> None:
        """Look ahead at evaluations of true losses ``true``, the first of them the run's
        evaluation number ``evaluations`` (counted from 0)."""
        observed = (true * self._noise_factors(len(true), evaluations) if self._rng is not None
                    else true)
        self.true, self.observed = true, observed
        self.lowest = lowest = float(np.minimum.reduce(observed))
        target = self._target
        self._hits = (observed <= target).nonzero()[0].tolist() if lowest <= target else []
        self._level = math.nan

    def _noise_factors(self, size: int, evaluations: int) -> np.ndarray:
        """1 + sigma z for the next ``size`` evaluations from evaluation ``evaluations``: draw
        i of the noise stream belongs to evaluation i, whatever a switch or failure discarded
        of a look-ahead. Each block of ``_NOISE_BLOCK`` draws is used last to first, as the
        simulator always has: seeded results stay as they were."""
        offset = evaluations - self._noise_from
        missing = offset + size - len(self._noise)
        if missing > 0:
            blocks = self._rng.standard_normal((-(-missing // _NOISE_BLOCK), _NOISE_BLOCK))
            factors = blocks[:, ::-1].ravel()  # a copy: the blocks reversed
            factors *= self._sigma
            factors += 1.0
            left = self._noise[offset:]
            self._noise = np.concatenate((left, factors)) if len(left) else factors
            self._noise_from, offset = evaluations, 0
        return self._noise[offset:offset + size]

    def consults(self, level: float) -> list[int]:
        """Indices at which the policy would be consulted at ``level`` (observed <= level)."""
        if level != self._level:
            self._consults = ((self.observed <= level).nonzero()[0].tolist()
                              if level >= self.lowest else [])
            self._level = level
        return self._consults

    def stop(self, done: int, level: float, streak: int) -> int:
        """Evaluations from index ``done`` to the first that consults the policy at ``level``
        or confirms the target (``streak`` evaluations before it observed the target), or to
        the end of the look-ahead."""
        consults = self.consults(level)
        first = bisect_left(consults, done)
        stop = consults[first] - done + 1 if first < len(consults) else len(self.true) - done
        return self.confirmation(done, stop, streak) or stop

    def confirmation(self, done: int, count: int, streak: int) -> int:
        """After how many of the ``count`` evaluations from index ``done`` the target is
        confirmed (0: not), when ``streak`` evaluations before them observed it."""
        hits, confirm, previous = self._hits, self._confirm, done - 1
        for i in range(bisect_left(hits, done), len(hits)):
            index = hits[i]
            if index >= done + count:
                break
            streak = streak + 1 if index == previous + 1 else 1
            if streak >= confirm:
                return index - done + 1
            previous = index
        return 0

    def streak_after(self, first: int, stop: int, streak: int) -> int:
        """Consecutive evaluations that observed the target after those of indices ``first``
        to ``stop`` - 1 (``streak`` before them)."""
        observed, target, trailing = self.observed[first:stop], self._target, 0
        for value in reversed(observed):
            if value > target:
                break
            trailing += 1
        return streak + trailing if trailing == len(observed) else trailing


@lru_cache(maxsize=8)
def offsets(eval_every: float) -> np.ndarray:
    """Compute from a look-ahead's start to each evaluation in it (shared, read-only): the
    run's trained FLOPs as it counts them (``sim.observations``), its position on the curve."""
    steps = eval_every * STEPS
    steps.flags.writeable = False
    return steps


def penalty_left(penalty: float, since: float, decay: float, positions: Any) -> Any:
    """What is left at ``positions`` of a switch ``penalty`` that fades linearly over
    ``decay`` FLOPs from ``since``."""
    faded = (positions - since) / decay
    return penalty * np.maximum(0.0, 1.0 - faded)


def compute_at(law: Any, loss: float) -> float:
    """Where a run at ``loss`` lands on ``law``; just above the floor if the loss is below it."""
    floor = law.floor
    return float(law.compute(max(loss, floor + 1e-9 * max(1.0, abs(floor)))))


def steps_to(start: float, step: float, level: float) -> int:
    """The least n >= 1 with start + n * step >= level (``_LOOK`` when that is further)."""
    if level - start >= _LOOK * step:
        return _LOOK
    n = max(1, math.ceil((level - start) / step))
    if n > 1 and start + (n - 1) * step >= level:
        return n - 1
    return n if start + n * step >= level else n + 1


def plan_legs(left: int, now: float, spent: float, seconds: float, flops: float,
              save_seconds: float, save_flops: float, due: float, every: float, budget: float,
              deadline: float) -> tuple[list[Leg], float]:
    """A stretch of ``left`` evaluations, each ``seconds`` and ``flops``, from time ``now``
    and ``spent`` FLOPs: its legs, a checkpoint (``save_seconds``, ``save_flops``) after each
    but the last, the first due at ``due`` and the next ``every`` seconds after each, and when
    it ends. It ends early at the evaluation that reaches the ``budget`` (FLOPs) or the
    ``deadline``, or after the leg whose checkpoint would (that checkpoint ends the run)."""
    legs: list[Leg] = []
    # Whether the budget or time limit can fall in this stretch (a checkpoint per evaluation
    # at most): mostly not, and then only checkpoints split it.
    limited = (spent + left * (flops + save_flops) >= budget
               or now + left * (seconds + save_seconds) >= deadline)
    while True:
        count = left if not limited else min(left, steps_to(spent, flops, budget),
                                             steps_to(now, seconds, deadline))
        checkpoint = steps_to(now, seconds, due)
        if checkpoint >= count:
            legs.append((count, now, spent))
            return legs, now + count * seconds
        legs.append((checkpoint, now, spent))
        now, spent = now + checkpoint * seconds, spent + checkpoint * flops
        left -= checkpoint
        if limited and (spent + save_flops >= budget or now + save_seconds >= deadline):
            return legs, now  # ``_step`` makes that checkpoint, which ends the run
        now, spent = now + save_seconds, spent + save_flops
        due = now + every


def leg_end(legs: list[Leg], index: int, seconds: float, flops: float) -> tuple[float, float]:
    """When evaluation ``index`` (from 0) of a stretch's ``legs`` ends: time, FLOPs spent."""
    leg = 0
    while index >= legs[leg][0]:
        index, leg = index - legs[leg][0], leg + 1
    _, start, spent = legs[leg]
    return start + (index + 1) * seconds, spent + (index + 1) * flops


def completed_legs(legs: list[Leg], now: float, seconds: float) -> tuple[list[Leg], float]:
    """What of a stretch's ``legs`` completed when a failure interrupted it at ``now``: the
    legs before the one under way (their checkpoints too) and that one's completed evaluations
    (but the last of the stretch, where something happens: it would come with the failure);
    and the seconds of the evaluation under way."""
    under_way = len(legs) - 1
    while under_way and legs[under_way][1] > now:
        under_way -= 1
    count, start, spent = legs[under_way]
    most = count - 1 if under_way == len(legs) - 1 else count
    completed = min(int((now - start) / seconds), most)
    return [*legs[:under_way], (completed, start, spent)], now - start - completed * seconds
