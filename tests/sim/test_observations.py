"""A run's observations (``sim.observations``) and its evaluation log (``sim.level``), against
lists kept one evaluation at a time."""

from __future__ import annotations

import math
import statistics

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.config import SimConfig
from sim.level import EvaluationLog
from sim.lookahead import LookAhead
from sim.observations import Observations
from sim.policies import Static

TARGET = 1.0


def level_of(trained: list[float], observed: list[float]) -> float:
    """The median of the observed losses from 0.9 x the last trained FLOPs on."""
    return statistics.median(o for t, o in zip(trained, observed, strict=True)
                             if t >= 0.9 * trained[-1])


class Historian(Static):
    """A policy that wants the run's history."""

    wants_history = True


@settings(max_examples=100, deadline=None)
@given(stretches=st.lists(st.tuples(st.integers(1, 150), st.integers(0, 3)), min_size=1,
                          max_size=12),
       losses=st.lists(st.sampled_from([0.8, 1.0, 1.3, 2.0, 3.0]), min_size=600, max_size=600))
def test_observing_stretches_keeps_what_one_evaluation_at_a_time_keeps(stretches, losses):
    """Look-aheads of ``size`` evaluations (one FLOP apart, from the FLOPs trained so far),
    observed in ``pieces`` + 1 stretches, more than the log's first arrays hold: the last and
    lowest loss, the target streak, the history and the level as lists give them."""
    ahead = LookAhead(SimConfig(noise=0.0), 1.0, TARGET, None)
    observations = Observations(ahead, 1.0, TARGET)
    trained: list[float] = []
    observed: list[float] = []
    streak, used = 0, 0
    for size, pieces in stretches:
        ahead.observe(np.array([losses[(used + i) % len(losses)] for i in range(size)]), 0)
        used += size
        observations.look_ahead_from(float(len(trained)))
        cuts = sorted({0, size, *(size * k // (pieces + 1) for k in range(1, pieces + 1))})
        for first, stop in zip(cuts[:-1], cuts[1:], strict=False):
            streak = observations.observe(first, stop, streak, "a", Historian("a"))
            for index in range(first, stop):
                trained.append(float(len(trained) + 1))
                observed.append(float(ahead.observed[index]))
        expected_streak = next((k for k, loss in enumerate(reversed(observed)) if loss > TARGET),
                               len(observed))
        assert streak == expected_streak
        assert (observations.last, observations.lowest) == (observed[-1], min(observed))
        assert observations.logged == len(observed)
        assert observations.history == [("a", t, o) for t, o in zip(trained, observed,
                                                                   strict=True)]
        assert observations.level == level_of(trained, observed)


def test_a_restore_drops_the_evaluations_after_the_checkpoint_from_level_and_history():
    """Evaluations at 1 to 10 FLOPs observing 10, 9, ..., 1; back to the first 5 (lowest 6),
    then 6 evaluations at 6 to 11 FLOPs observing 5.5, 5.0, ..., 3.0: the level is the median
    of those from 9.9 FLOPs on, 3.5 and 3.0 (before the restore, 10 FLOPs observed 1)."""
    ahead = LookAhead(SimConfig(noise=0.0), 1.0, TARGET, None)
    observations = Observations(ahead, 1.0, TARGET)
    ahead.observe(np.arange(10.0, 0.0, -1.0), 0)
    observations.look_ahead_from(0.0)
    observations.observe(0, 10, 0, "a", Historian("a"))
    assert observations.level == 1.5  # 9 and 10 FLOPs: 2 and 1
    observations.restore(6.0, 5)
    ahead.observe(np.array([5.5, 5.0, 4.5, 4.0, 3.5, 3.0]), 5)
    observations.look_ahead_from(5.0)
    observations.observe(0, 6, 0, "a", Historian("a"))
    assert observations.level == 3.25 and observations.lowest == 3.0
    assert observations.logged == 11
    assert observations.history == [("a", float(k), 11.0 - k) for k in range(1, 6)] + [
        ("a", float(k), 3.0 + 0.5 * (11 - k)) for k in range(6, 12)]


def test_the_level_is_reachable_only_once_a_loss_at_or_below_it_was_or_will_be_observed():
    ahead = LookAhead(SimConfig(noise=0.0), 1.0, TARGET, None)
    observations = Observations(ahead, 1.0, TARGET)
    ahead.observe(np.array([3.0, 2.0, 1.5, 2.5]), 0)
    observations.look_ahead_from(0.0)
    assert observations.level_reachable(0, 2.0) and observations.level_reachable(2, 2.0)
    assert not observations.level_reachable(3, 2.0)  # none at or below 2 from index 3 on
    assert not observations.level_reachable(0, 1.0)
    observations.observe(0, 2, 0, "a", Static("a"))
    assert observations.level_reachable(3, 2.0)  # observed now
    # At 3 FLOPs (window 2.7 to 3: 1.5) the level is 1.5; at 4 (3.6 to 4: 2.5) 2.5.
    assert observations.evaluations_to_level(1.5) == 1
    assert observations.evaluations_to_level(1.4) == 2  # never: to the end


def test_a_log_grown_past_its_first_arrays_keeps_its_entries():
    """6000 evaluations, more than a log holds before it grows, in two parts of 3000: the level
    and the look-ahead's answer as the median of the window, brute force; the second part's
    losses of 1.0 soon bring it to 1.95."""
    trained = np.arange(1.0, 6001.0)
    observed = np.concatenate((2.0 + np.cos(trained[:3000]), np.ones(3000)))
    log = EvaluationLog()
    log.stage(trained[:3000], observed[:3000])
    log.advance(3000)
    log.stage(trained[3000:], observed[3000:])
    loss = 1.95
    expected = next(k for k in range(3000, 6000)
                    if level_of(trained[:k + 1].tolist(), observed[:k + 1].tolist()) <= loss)
    assert 3000 < expected < 3100 and log.evaluations_to(loss) == expected - 2999
    log.advance(3000)
    assert log.level() == level_of(trained.tolist(), observed.tolist()) == 1.0
    log.truncate(3000)  # the level of the first part, entries copied as the log grew
    assert log.level() == level_of(trained[:3000].tolist(), observed[:3000].tolist())
    log.truncate(10)
    assert log.size == 10 and log.level() == level_of(trained[:10].tolist(),
                                                      observed[:10].tolist())
    assert math.isinf(EvaluationLog().level())


def test_for_a_policy_never_consulted_only_the_last_and_lowest_loss_and_the_streak_are_kept():
    ahead = LookAhead(SimConfig(noise=0.0), 1.0, TARGET, None)
    observations = Observations(ahead, 1.0, TARGET)
    observations.keep_nothing()
    ahead.observe(np.array([3.0, 0.9, 1.0, 2.0, 0.5]), 0)
    observations.look_ahead_from(0.0)
    assert observations.observe(0, 3, 0, "a", Historian("a")) == 2  # 0.9 and 1.0
    assert observations.observe(3, 4, 2, "a", Historian("a")) == 0
    assert observations.observe(4, 5, 0, "a", Historian("a")) == 1
    assert (observations.last, observations.lowest) == (0.5, 0.5)
    assert math.isinf(observations.level) and observations.logged == 0
    assert observations.history == []
