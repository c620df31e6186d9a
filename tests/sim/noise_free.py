"""A noise-free run along a schedule of loss levels, walked one evaluation at a time.

The run's level is the median of its evaluations over the last tenth of its trained FLOPs
(``sim.level``), written out here: at evaluation k (k x dx trained FLOPs) the window holds
evaluations j = ceil(0.9 k) to k, and as a noise-free run's loss falls at every evaluation
(free switches keep the loss), its median is the middle of the window (the mean of the middle
two of an even count).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

Segment = tuple[Callable[[float], float], Callable[[float], float], float]


def walk(segments: Sequence[Segment], dx: float, target: float) -> tuple[list[int], int]:
    """Segments (loss(C), C(loss), loss level at which to leave it): the evaluations (counted
    from 1) after which the run leaves each segment but the last, landing on the next at the
    loss it had, and the first evaluation at or below ``target`` (where the run stops before
    asking anything)."""
    losses: list[float] = []
    switches: list[int] = []
    segment, position = 0, 0.0
    while True:
        loss, _, level = segments[segment]
        position += dx
        losses.append(loss(position))
        assert len(losses) < 2 or losses[-1] < losses[-2], "the middle is the median"
        k = len(losses)
        if losses[-1] <= target:
            return switches, k
        if segment < len(segments) - 1 and window_median(losses) <= level:
            switches.append(k)
            segment += 1
            position = segments[segment][1](losses[-1])


def window_median(losses: list[float]) -> float:
    """The median of the falling ``losses`` of evaluations ceil(0.9 k) to k (k = their
    count)."""
    k = len(losses)
    first = math.ceil(0.9 * k) - 1  # 0-based
    size = k - first
    return (losses[first + (size - 1) // 2] + losses[first + size // 2]) / 2.0
