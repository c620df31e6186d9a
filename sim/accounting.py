"""Exact accounting of where a run's time and compute went.

Every stretch of work a run does is charged to one category, in seconds and in FLOPs (for
work that is not training, the FLOPs its accelerators could have done meanwhile: seconds x
throughput of the shape being trained). The categories:

- ``useful``: training that is part of the final model;
- ``eval``: evaluations whose result was kept;
- ``checkpoint``: saving checkpoints;
- ``transition``: switches between shapes (their FLOPs plus their seconds x throughput);
- ``lost``: everything a failure undid (all work since the last completed checkpoint, and the
  activity the failure interrupted);
- ``repair`` (seconds only): down time after a failure, accelerators held but idle.

Work is first charged as pending; a completed checkpoint (or the end of the run) commits it to
its category, a failure moves it all to ``lost``. Hence, at any time,

    spent = useful + eval + checkpoint + transition + lost      (seconds and FLOPs)
    run time = spent seconds + repair seconds

>>> ledger = Ledger()
>>> ledger.charge(USEFUL, 10.0, 100.0); ledger.checkpointed()
>>> ledger.charge(USEFUL, 5.0, 50.0); ledger.failed(2.0, 20.0); ledger.repaired(30.0)
>>> ledger.totals()["lost_flops"], ledger.totals()["spent_flops"], ledger.totals()["run_seconds"]
(70.0, 170.0, 47.0)
"""

from __future__ import annotations

USEFUL, EVAL, CHECKPOINT, TRANSITION = range(4)
CATEGORIES = ("useful", "eval", "checkpoint", "transition")


class Ledger:
    """Seconds and FLOPs per category, with pending work that a failure can still undo."""

    __slots__ = ("pending_s", "pending_f", "kept_s", "kept_f", "lost_s", "lost_f", "repair_s",
                 "spent_s", "spent_f")

    def __init__(self) -> None:
        self.pending_s = [0.0] * 4
        self.pending_f = [0.0] * 4
        self.kept_s = [0.0] * 4
        self.kept_f = [0.0] * 4
        self.lost_s = self.lost_f = self.repair_s = 0.0
        self.spent_s = self.spent_f = 0.0

    def charge(self, category: int, seconds: float, flops: float) -> None:
        """Work done: pending until the next checkpoint or failure."""
        self.pending_s[category] += seconds
        self.pending_f[category] += flops
        self.spent_s += seconds
        self.spent_f += flops

    def checkpointed(self) -> None:
        """A checkpoint completed: pending work can no longer be lost."""
        self.kept_s = [k + p for k, p in zip(self.kept_s, self.pending_s, strict=True)]
        self.kept_f = [k + p for k, p in zip(self.kept_f, self.pending_f, strict=True)]
        self.pending_s = [0.0] * 4
        self.pending_f = [0.0] * 4

    def failed(self, interrupted_seconds: float, interrupted_flops: float) -> None:
        """A failure: pending work and the interrupted activity are lost."""
        self.spent_s += interrupted_seconds
        self.spent_f += interrupted_flops
        self.lost_s += sum(self.pending_s) + interrupted_seconds
        self.lost_f += sum(self.pending_f) + interrupted_flops
        self.pending_s = [0.0] * 4
        self.pending_f = [0.0] * 4

    def repaired(self, seconds: float) -> None:
        self.repair_s += seconds

    def totals(self) -> dict[str, float]:
        """Committed plus pending per category (pending is kept when the run ends)."""
        out: dict[str, float] = {}
        for i, name in enumerate(CATEGORIES):
            out[f"{name}_seconds"] = self.kept_s[i] + self.pending_s[i]
            out[f"{name}_flops"] = self.kept_f[i] + self.pending_f[i]
        out.update(lost_seconds=self.lost_s, lost_flops=self.lost_f, repair_seconds=self.repair_s,
                   spent_seconds=self.spent_s, spent_flops=self.spent_f,
                   run_seconds=self.spent_s + self.repair_s)
        return out
