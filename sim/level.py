"""The loss a run is at: what ends a schedule's loss-levelled segment, and where re-plans start.

A single evaluation is a poor reading of it: with evaluation noise one low draw would end a
segment early (and, for ``online``, a re-plan from the level above would undo that switch).
The run's level is the median of its evaluations over the last ``GROWTH`` share of its trained
FLOPs: a window that grows with the run keeps the median's noise below the ever smaller fall of
the loss between switch levels (a fixed number of evaluations does not), and its share of the
compute bounds how far the level lags the loss. A real run's evaluations are spaced
geometrically from 1% of its budget: with up to 44 of them (the default 30) they lie further
apart than that share and its level is its last evaluation; with more it is the median of the
last two or three (the vit-patch loops' 96 lie 5% apart).

A real run reads it from its history (``current_level``); the simulator keeps its evaluations
in arrays (``EvaluationLog``), staged a look-ahead at a time (``sim.lookahead``), and, as it
sees its next evaluations ahead, consults a policy only where the level reaches the policy's
loss.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from operator import itemgetter

import numpy as np

GROWTH = 0.1  # the share of the trained FLOPs the level is read over
# Entries a log holds before it grows: a look-ahead's most (2048, ``sim.lookahead``) staged after
# as many logged, so that most runs never copy their log.
_CAPACITY = 4096
_NEVER = np.array([math.inf])  # above every loss: a first step that every window cancels


def window_start(last_trained: float) -> float:
    """The trained FLOPs from which evaluations count towards the level of a run that has
    trained ``last_trained`` FLOPs at its last evaluation."""
    return (1.0 - GROWTH) * last_trained


def current_level(history: Sequence[tuple[str, float, float]],
                  window: int | None = None) -> float:
    """The median observed loss of the last ``window`` evaluations of ``history`` (shape,
    trained FLOPs, observed loss; in the order of the run, so trained FLOPs never fall), by
    default those from ``window_start`` of the last one's trained FLOPs on (at least the last
    one). inf before the first evaluation: the run is at no loss yet.

    >>> history = [("a", 80.0, 3.0), ("a", 90.0, 1.0), ("a", 95.0, 2.0), ("a", 100.0, 1.5)]
    >>> current_level(history, window=4), current_level(history)  # all; those from 90 FLOPs
    (1.75, 1.5)
    """
    if not history:
        return math.inf
    if window is None:
        window = window_size(history)
    return median([observed for _, _, observed in history[-window:]])


def window_size(history: Sequence[tuple[str, float, float]]) -> int:
    """How many of the last evaluations of ``history`` (not empty) ``current_level`` reads:
    those from ``window_start`` of the last one's trained FLOPs on."""
    return len(history) - bisect_left(history, window_start(history[-1][1]), key=itemgetter(1))


def level_error(history: Sequence[tuple[str, float, float]], noise: float) -> float:
    """The standard error of ``current_level`` (``history`` not empty) under relative
    evaluation noise ``noise``: the median of n draws of sd ``noise * level`` varies by
    sqrt(pi / 2) ``noise * level / sqrt(n)`` (its large-n form; for one evaluation it says
    1.25 times the draw's own sd, on the safe side).

    >>> history = [("a", float(flops), 3.0) for flops in range(1, 101)]  # 90 to 100 read
    >>> round(level_error(history, 0.01), 5)  # 1.2533 * 0.03 / sqrt(11)
    0.01134
    """
    return math.sqrt(math.pi / 2.0) * noise * current_level(history) / math.sqrt(
        window_size(history))


def median(values: Sequence[float] | np.ndarray) -> float:
    """The median of ``values`` (the mean of the middle two of an even count), as
    ``np.median`` gives it at a fraction of its cost on the few dozen values of a window.

    >>> median([3.0, 1.0, 2.0]), median(np.array([4.0, 1.0, 3.0, 2.0]))
    (2.0, 2.5)
    """
    ordered = np.array(values, dtype=float)
    ordered.sort()
    middle = len(ordered) // 2
    return float(ordered[middle] if len(ordered) % 2 else
                 (ordered[middle - 1] + ordered[middle]) / 2.0)


class EvaluationLog:
    """A simulated run's evaluations, trained FLOPs and observed losses, in arrays that grow
    as it evaluates. The run stages the evaluations it looks ahead at (``stage``) and logs
    them as they complete (``advance``), so that logging a stretch copies nothing; the first
    ``size`` entries count (a restart from a checkpoint drops the rest: ``truncate``).

    >>> log = EvaluationLog()
    >>> log.stage(np.array([80.0, 90.0, 95.0, 100.0]), np.array([3.0, 1.0, 2.0, 1.5]))
    >>> log.advance(4)
    >>> log.level()  # the evaluations from 90 FLOPs on, as ``current_level``
    1.5
    """

    __slots__ = ("_trained", "_observed", "_size", "_staged")

    def __init__(self) -> None:
        self._trained, self._observed = np.empty(_CAPACITY), np.empty(_CAPACITY)
        self._size = self._staged = 0  # entries logged; and staged, from the first on

    @property
    def size(self) -> int:
        """How many evaluations the log holds."""
        return self._size

    def stage(self, trained: np.ndarray, observed: np.ndarray) -> None:
        """The next evaluations, at ``trained`` FLOPs observing ``observed`` (those staged
        before are dropped). ``trained`` must be the FLOPs of the run to the last bit: the
        window's edge may fall on an evaluation."""
        size = self._size
        end = size + len(trained)
        if end > len(self._trained):
            capacity = max(end, 2 * len(self._trained))
            self._trained = _grown(self._trained, size, capacity)
            self._observed = _grown(self._observed, size, capacity)
        self._trained[size:end] = trained
        self._observed[size:end] = observed
        self._staged = end

    def advance(self, count: int) -> None:
        """The next ``count`` staged evaluations completed."""
        self._size += count

    def truncate(self, size: int) -> None:
        """Only the first ``size`` evaluations count (a restart from a checkpoint)."""
        self._size = self._staged = size

    def level(self) -> float:
        """The run's level: ``current_level`` of these evaluations."""
        size = self._size
        if not size:
            return math.inf
        start = self._trained[:size].searchsorted(window_start(self._trained[size - 1]))
        return median(self._observed[start:size])

    def evaluations_to(self, loss: float) -> int:
        """How many of the staged evaluations the run makes up to the first at which its level
        is at or below ``loss``; all of them when at none.

        >>> log = EvaluationLog()
        >>> log.stage(np.array([10.0, 20.0]), np.array([5.0, 5.0]))
        >>> log.advance(2)
        >>> log.stage(np.array([30.0, 40.0]), np.array([3.0, 1.0]))
        >>> log.evaluations_to(2.0)
        2
        """
        size, end = self._size, self._staged
        since = window_start(self._trained[size:end])
        first = int(self._trained[:size].searchsorted(since[0]))
        starts = self._trained[first:end].searchsorted(since)  # of each window, from first
        every_observed = self._observed[first:end]
        # balance[k] - balance[j]: how many of the evaluations j to k - 1 from ``first`` on are
        # at or below ``loss`` less how many are above (numpy methods on arrays only, few of
        # them: this runs at every stretch near a switch)
        balance = np.where(np.concatenate((_NEVER, every_observed)) <= loss, 1, -1).cumsum()
        known = size - first  # window k (from 0) ends after evaluation known + k from first
        margin = balance[known + 1:] - balance[starts]
        # The median of n losses is at or below ``loss`` when more than half of them are, and
        # never when fewer than half; with exactly half, the middle two decide.
        for index in (margin >= 0).nonzero()[0]:
            if margin[index] or median(every_observed[starts[index]:known + 1 + index]) <= loss:
                return int(index) + 1
        return end - size


def _grown(values: np.ndarray, size: int, capacity: int) -> np.ndarray:
    """``values`` in an array of ``capacity``, its first ``size`` entries kept."""
    grown = np.empty(capacity)
    grown[:size] = values[:size]
    return grown
