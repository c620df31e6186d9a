"""Failures and checkpoints: exponential failures (MTBF), repair time, periodic checkpoints.

A run on n accelerators fails at rate n / MTBF (each accelerator fails independently), but only
while it works: queueing and repair do not age it. A failure loses everything done since the
last completed checkpoint; the run restarts from that checkpoint after the repair time.

In the simulation a failure is a SimPy interrupt: ``FaultModel.failures`` is a process beside
the run's that waits an exponential working time, interrupts the run, and waits out the repair
with it (so that repair does not age the clock) before it draws the next working time.

>>> faults = FaultModel(mtbf_hours=10.0, repair_hours=0.5, checkpoint_seconds=60.0)
>>> round(faults.checkpoint_interval(accelerators=1))  # Young/Daly: sqrt(2 * 60 s * 36000 s)
2078
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from laws.errors import InputError


@dataclass(frozen=True)
class FaultModel:
    """How often a run fails, how long repair takes and how it protects itself.

    ``mtbf_hours`` is the mean time between failures of one accelerator; ``checkpoint_seconds``
    the cost of saving one checkpoint; ``interval_seconds`` the time between checkpoints
    (default: Young/Daly, sqrt(2 * save cost * run MTBF), the interval minimising expected
    overhead plus lost work to first order).
    """

    mtbf_hours: float
    repair_hours: float = 0.0
    checkpoint_seconds: float = 0.0
    interval_seconds: float | None = None

    def __post_init__(self) -> None:
        # In seconds the MTBF must stay finite too: an infinite one has no checkpoint interval.
        if not (math.isfinite(self.mtbf_hours * 3600.0) and self.mtbf_hours > 0):
            raise InputError(f"--mtbf must be a positive number of hours, finite in seconds, "
                             f"got {self.mtbf_hours}")
        if not (math.isfinite(self.repair_hours) and self.repair_hours >= 0):
            raise InputError(f"--repair must be >= 0 hours, got {self.repair_hours}")
        if not (math.isfinite(self.checkpoint_seconds) and self.checkpoint_seconds >= 0):
            raise InputError(f"--ckpt-cost must be >= 0 seconds, got {self.checkpoint_seconds}")
        if self.interval_seconds is not None and not (math.isfinite(self.interval_seconds)
                                                      and self.interval_seconds >= 0):
            raise InputError(f"--ckpt-interval must be a finite number of seconds >= 0, got "
                             f"{self.interval_seconds}")

    def run_mtbf_seconds(self, accelerators: int) -> float:
        """Mean working time between failures of a run that holds ``accelerators``."""
        return self.mtbf_hours * 3600.0 / accelerators

    def checkpoint_interval(self, accelerators: int) -> float:
        """Seconds of work between checkpoints (Young/Daly unless set)."""
        if self.interval_seconds is not None:
            return self.interval_seconds
        return math.sqrt(2.0 * self.checkpoint_seconds * self.run_mtbf_seconds(accelerators))

    @property
    def repair_seconds(self) -> float:
        return self.repair_hours * 3600.0

    def failures(self, env: simpy.Environment, run: simpy.Process, rng: np.random.Generator,
                 accelerators: int) -> Generator[simpy.Event, Any, None]:
        """The failure clock of ``run``, a SimPy process: interrupts it after exponential
        working times drawn from ``rng``; ends when it is interrupted itself (the run is over).

        The run, once interrupted, is down for ``repair_seconds`` and works again right after:
        the clock waits the same time, so it ages only while the run works.
        """
        mtbf, repair = self.run_mtbf_seconds(accelerators), self.repair_seconds
        try:
            while True:
                yield env.timeout(rng.exponential(mtbf))
                run.interrupt("failure")
                if repair:
                    yield env.timeout(repair)
        except simpy.Interrupt:
            return
