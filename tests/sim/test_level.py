"""The run's level (``sim.level``) against a walk one evaluation at a time."""

from __future__ import annotations

import statistics

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.level import EvaluationLog, current_level


def logged(trained: list[float], observed: list[float]) -> EvaluationLog:
    """A log of these evaluations."""
    log = EvaluationLog()
    log.stage(np.array(trained), np.array(observed))
    log.advance(len(trained))
    return log


def window(trained: list[float], observed: list[float], k: int) -> list[float]:
    """Evaluation k's window: the observed losses from 0.9 x its trained FLOPs on."""
    return [o for t, o in zip(trained[:k + 1], observed[:k + 1], strict=True)
            if t >= 0.9 * trained[k]]


@settings(max_examples=300, deadline=None)
@given(gaps=st.lists(st.integers(1, 6), min_size=2, max_size=80), data=st.data(),
       loss=st.sampled_from([0.5, 0.95, 1.0, 1.2, 2.0]))
def test_the_look_ahead_finds_the_evaluation_where_the_level_reaches_the_loss(gaps, data, loss):
    """Whole FLOPs, so that the window's edge is exact; the log holds the first ``known``
    evaluations, the rest are looked ahead (staged), then logged."""
    trained = np.cumsum(gaps).astype(float).tolist()
    observed = data.draw(st.lists(st.sampled_from([0.5, 0.9, 1.0, 1.1, 1.5]),
                                  min_size=len(gaps), max_size=len(gaps)))
    known = data.draw(st.integers(0, len(gaps) - 1))
    log = logged(trained[:known], observed[:known])
    log.stage(np.array(trained[known:]), np.array(observed[known:]))
    asked = log.evaluations_to(loss)
    reached = next((k - known + 1 for k in range(known, len(gaps))
                    if statistics.median(window(trained, observed, k)) <= loss),
                   len(gaps) - known)
    assert asked == reached
    log.advance(len(gaps) - known)
    history = [("a", t, o) for t, o in zip(trained, observed, strict=True)]
    assert log.level() == current_level(history) == statistics.median(
        window(trained, observed, len(gaps) - 1))


def test_an_even_window_reaches_the_loss_where_its_middle_two_average_to_it():
    """Evaluations at 10 and 11 FLOPs (the window of the second: from 9.9 on, both), 0.9 and
    1.1: the median is 1.0, at the loss 1.0 with only half of the window at or below it."""
    log = logged([10.0], [0.9])
    log.stage(np.array([11.0, 12.0]), np.array([1.1, 1.5]))
    assert log.evaluations_to(1.0) == 1
    log.advance(1)
    assert log.level() == 1.0
