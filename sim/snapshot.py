"""A simulated run's checkpoints (``sim.run``): how often they fall due and what each costs
(``FaultModel``), and the state the last one saved, which a failure restores."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.faults import FaultModel
from sim.policies import Policy


@dataclass(slots=True)
class Snapshot:
    """The state a checkpoint restores."""

    shape: str
    law: Any  # the truth followed on the shape: its law, or a measured switch's (``sim.landing``)
    position: float
    penalty: float
    penalty_from: float
    true_ahead: np.ndarray  # true losses of the evaluations after it, as looked ahead
    policy: Policy
    lowest_observed: float
    true_loss: float
    switches: int
    logged: int  # evaluations observed (``Observations.logged``)


class Checkpoints:
    """One run's checkpoint schedule (none without faults) and its last snapshot."""

    __slots__ = ("every", "seconds", "due", "last")

    def __init__(self, faults: FaultModel | None, accelerators: int) -> None:
        self.every = faults.checkpoint_interval(accelerators) if faults else math.inf
        self.seconds = faults.checkpoint_seconds if faults else 0.0  # what one costs
        self.due = 0.0  # when the next falls due
        self.last: Snapshot | None = None

    def saved(self, snapshot: Snapshot, end: float) -> None:
        """A checkpoint of ``snapshot`` completed at ``end``; the next falls due an interval
        later."""
        self.last, self.due = snapshot, end + self.every

    def restarted(self, now: float) -> None:
        """The run restarted from the last snapshot at ``now``: the interval starts again."""
        self.due = now + self.every
