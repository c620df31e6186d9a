"""What a simulated run (``sim.run``) keeps for its ``RunRecord``: its events, where it reached
the target, and, when trajectories are asked for, the legs of evaluations it completed. A leg
is kept as one row of arrays and expanded into a row per evaluation only at the end: most runs
never read their trajectory, and a tuple of Python floats per evaluation costs more than the
simulation of it."""

from __future__ import annotations

from itertools import chain, repeat
from typing import Any

import numpy as np

from sim.lookahead import Leg, compute_at, leg_end
from sim.results import RunRecord

Event = tuple[float, str, str]  # time, kind, detail


class Recording:
    """One run's record in the making; ``record`` completes it."""

    __slots__ = ("events", "reached_at", "_labels", "_accelerators", "_rows", "_granted",
                 "_submitted")

    def __init__(self, labels: dict[str, Any], accelerators: int) -> None:
        self._labels, self._accelerators = labels, accelerators
        self.events: list[Event] = []
        # (time, FLOPs spent, true loss) at the first evaluation of the streak that observes
        # the target (the model one keeps); None while no streak runs.
        self.reached_at: tuple[float, float, float] | None = None
        self._rows: list[tuple] = []
        self._granted = self._submitted = 0.0

    def start(self, granted: float, submitted: float) -> None:
        """The run got its accelerators at ``granted``, having asked at ``submitted``."""
        self._granted, self._submitted = granted, submitted

    def note(self, time: float, event: str, fields: dict[str, float | str]) -> None:
        """A policy's finding, kept among the events: ``key=value`` pairs."""
        detail = " ".join(f"{key}={value:.6g}" if isinstance(value, float) else f"{key}={value}"
                          for key, value in fields.items())
        self.events.append((time, event, detail))

    def legs(self, legs: list[Leg], first: int, seconds: float, flops: float, shape: str,
             true: np.ndarray, observed: np.ndarray) -> None:
        """Keep the evaluations of ``legs`` (one chunk of ``seconds`` and ``flops`` each) on
        ``shape``, the first of them at index ``first`` of the ``true`` and ``observed``
        losses looked ahead."""
        index = first
        for count, start, spent in legs:
            self._rows.append((start, seconds, spent, flops, count, shape,
                               true[index:index + count], observed[index:index + count]))
            index += count

    def reached(self, legs: list[Leg], index: int, seconds: float, flops: float,
                true_loss: float) -> None:
        """A streak that observes the target starts at evaluation ``index`` of ``legs``, at
        ``true_loss``."""
        self.reached_at = (*leg_end(legs, index, seconds, flops), true_loss)

    def record(self, *, reached: bool, true_compute: float | None,
               final_true_loss: float | None,
               switches: int, failures: int, evaluations: int,
               ledger: dict[str, float]) -> RunRecord:
        """The ``RunRecord`` of the run that ended so (``true_compute``: where its true loss
        crossed the target, ``true_crossing``)."""
        time_at, flops_at, loss_at = self.reached_at if reached else (None, None, None)
        return RunRecord(
            **self._labels,
            accelerators=self._accelerators,
            reached=reached,
            compute_to_target=flops_at,
            true_compute_to_target=true_compute,
            time_to_target=None if time_at is None else time_at - self._submitted,
            accelerator_hours=(None if time_at is None
                               else self._accelerators * (time_at - self._granted) / 3600.0),
            true_loss_at_target=loss_at,
            final_true_loss=final_true_loss,
            switches=switches,
            failures=failures,
            evaluations=evaluations,
            queue_seconds=self._granted - self._submitted,
            ledger=ledger,
            trajectory=self._trajectory(),
            events=self.events,
        )

    def _trajectory(self) -> list[tuple[float, float, float, float, str]]:
        """(time, FLOPs spent, true loss, observed loss, shape) per evaluation, for all legs at
        once: evaluation n of a leg at its start + n x one chunk (seconds and FLOPs)."""
        if not self._rows:
            return []
        since, seconds, spent, flops, counts, shapes, true, observed = zip(*self._rows,
                                                                            strict=True)
        sizes = np.array(counts)
        n = np.arange(1.0, sizes.sum() + 1.0) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        times = np.repeat(since, sizes) + np.repeat(seconds, sizes) * n
        spent_rows = np.repeat(spent, sizes) + np.repeat(flops, sizes) * n
        return list(zip(times.tolist(), spent_rows.tolist(), np.concatenate(true).tolist(),
                        np.concatenate(observed).tolist(),
                        chain.from_iterable(map(repeat, shapes, counts)), strict=True))


def true_crossing(law: Any, target: float, flops: float, loss: float, chunk_flops: float,
                  eval_every: float) -> float | None:
    """The compute at which the true loss crosses the target, from the stopping evaluation
    (``flops`` spent, true ``loss``) along ``law``, the truth law of the shape the run ended on:
    more than ``flops`` when noise stopped the run early, less when it stopped late (its FLOPs
    with the evaluations' share of each chunk: ``chunk_flops`` per ``eval_every`` trained).
    None when that law's floor is at or above the target."""
    if law.floor >= target:
        return None
    training = compute_at(law, target) - compute_at(law, loss)
    return flops + training * chunk_flops / eval_every
