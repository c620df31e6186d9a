"""Results of a simulation: one record per run, summaries per policy, JSON and CSV.

``SimResults.to_dict()`` is the contract the compare report reads: ``runs`` (every
``RunRecord.to_dict()``), ``summary`` (per policy), ``baseline`` and the settings.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from laws.stats import LEVEL, quantiles, t_interval, tails

SUMMARISED = ("compute_to_target", "true_compute_to_target", "time_to_target",
              "accelerator_hours", "true_loss_at_target", "switches", "lost_flops", "failures")
TRAJECTORY_COLUMNS = ("policy", "replication", "job", "time_s", "compute_flops", "true_loss",
                      "observed_loss", "shape")
RESULT_FILES = ("results.json", "runs.csv", "trajectories.csv")  # what ``write`` puts in a folder
# Floats in output files: 12 significant digits. A double carries 15 to 17, of which the last
# may differ between machines (numpy builds, libm); 12 digits keep every figure the report
# shows and make the files the same bytes unless a value lies within 1e-12 (relative) of a
# rounding boundary.
SIGNIFICANT = 12


@dataclass
class RunRecord:
    """What happened in one run.

    ``compute_to_target``: FLOPs spent (all ``Ledger`` categories) up to the evaluation at which
    the target was first observed in the confirming streak; ``true_compute_to_target``: the
    compute at which its true loss crossed the target (above ``compute_to_target`` when noise
    stopped it early, see ``sim.recording.true_crossing``); ``time_to_target``: seconds from
    submission (queueing included) to that evaluation; ``accelerator_hours``: accelerators x
    hours held until then. All four are None when the run stopped at a budget.
    ``trajectory``: (time, FLOPs spent, true loss, observed loss, shape) per evaluation;
    ``events``: (time, kind, detail) for start, switch, checkpoint, failure, restart, target,
    budget. ``switches`` counts the switches in the history of the final model.
    """

    policy: str
    replication: int
    job: int
    seed: int
    accelerators: int
    reached: bool
    compute_to_target: float | None
    true_compute_to_target: float | None
    time_to_target: float | None
    accelerator_hours: float | None
    true_loss_at_target: float | None
    final_true_loss: float | None  # None: the run never completed an evaluation
    switches: int
    failures: int
    evaluations: int
    queue_seconds: float
    ledger: dict[str, float]
    trajectory: list[tuple[float, float, float, float, str]] = field(repr=False)
    events: list[tuple[float, str, str]] = field(repr=False)

    def value(self, key: str) -> float | None:
        """A summarised quantity (see ``SUMMARISED``)."""
        return self.ledger["lost_flops"] if key == "lost_flops" else getattr(self, key)

    def to_dict(self, trajectory: bool = True) -> dict[str, Any]:
        out = asdict(self)
        out["trajectory"] = [list(row) for row in self.trajectory] if trajectory else []
        out["events"] = [list(row) for row in self.events]
        return out


def rounded(value: Any) -> Any:
    """``value`` with every finite float, also inside dicts, lists and tuples (which become
    lists), rounded to ``SIGNIFICANT`` significant digits: what output files hold.

    >>> rounded({"loss": [0.36519226067316446, 3], "flops": 4.995e12})
    {'loss': [0.365192260673, 3], 'flops': 4995000000000.0}
    """
    if isinstance(value, float):
        return float(format(value, f".{SIGNIFICANT}g")) if math.isfinite(value) else value
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item) for item in value]
    return value


def summarise(values: list[float]) -> dict[str, float | None]:
    """Mean, median and the ``LEVEL`` (90%) percentile range, ``p5`` to ``p95`` (None when
    there is nothing to summarise).

    >>> summarise([1.0, 2.0, 3.0])["median"]
    2.0
    """
    if not values:
        return {"mean": None, "median": None, "p5": None, "p95": None}
    low, high = tails(LEVEL)
    p5, median, p95 = quantiles(values, [low, 0.5, high])
    return {"mean": float(np.mean(values)), "median": float(median), "p5": float(p5),
            "p95": float(p95)}


@dataclass
class SimResults:
    """All runs of a simulation and what they add up to, per policy.

    ``baseline``: the static compute the savings are measured against (the simulated best
    static policy when it was among the policies, else the planning laws' closed form), as
    observed and at the true crossing; ``plan_saving`` and ``plan_compute``: the plan's own
    saving over the best static shape and its compute to the target (when there is a plan).
    """

    target: float
    policies: list[str]
    runs: list[RunRecord]
    settings: dict[str, Any]
    baseline: dict[str, Any]
    plan_saving: float | None = None
    plan_compute: float | None = None

    def runs_of(self, policy: str) -> list[RunRecord]:
        return [run for run in self.runs if run.policy == policy]

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per policy: runs, share that reached the target, and ``SUMMARISED`` statistics over
        the runs that reached it (lost work and failures over all runs), plus the saving of
        the mean compute over the baseline and the share of the plan's saving it keeps (as
        observed, and at the true crossing: ``true_...``)."""
        out = {}
        for policy in self.policies:
            runs = self.runs_of(policy)
            reached = [run for run in runs if run.reached]
            entry: dict[str, Any] = {"runs": len(runs),
                                     "reached": len(reached) / len(runs) if runs else 0.0}
            for key in SUMMARISED:
                pool = runs if key in ("lost_flops", "failures") else reached
                entry[key] = summarise([run.value(key) for run in pool])
            mean = entry["compute_to_target"]["mean"]
            saving = None if mean is None else 1.0 - mean / self.baseline["compute"]
            entry["saving_vs_static"] = saving
            true = entry["true_compute_to_target"]["mean"]
            base = self.baseline.get("true_compute")
            entry["true_saving_vs_static"] = None if true is None or not base else 1 - true / base
            entry["saving_kept"] = (None if saving is None or not self.plan_saving
                                    else saving / self.plan_saving)
            entry["true_saving_kept"] = (None if entry["true_saving_vs_static"] is None
                                         or not self.plan_saving
                                         else entry["true_saving_vs_static"] / self.plan_saving)
            entry["paired_saving"] = self.paired_saving(policy)
            entry["true_paired_saving"] = self.paired_saving(policy,
                                                             key="true_compute_to_target")
            out[policy] = entry
        return out

    def budget_warning(self) -> str | None:
        """One line when the compute budget per run lies below the plan's predicted compute
        to the target (runs that follow the plan cannot reach it), else None."""
        from laws.tables import format_number

        budget = self.settings["max_compute"]
        if self.plan_compute is None or budget >= self.plan_compute:
            return None
        return (f"warning: the compute budget per run ({format_number(budget)} FLOPs, "
                f"--max-compute) is below the plan's predicted compute to the target "
                f"({format_number(self.plan_compute)} FLOPs): runs that follow the plan "
                "cannot reach the target")

    def paired_saving(self, policy: str, level: float = LEVEL,
                      key: str = "compute_to_target") -> dict[str, Any] | None:
        """The saving of ``policy`` over the simulated best static shape, paired run by run
        (runs of one replication share their noise and failure streams): the mean of
        1 - compute / static compute (``key``: as observed, or ``true_compute_to_target``)
        over the pairs where both have it, with its ``level`` Student-t interval. None without
        a simulated baseline or two pairs."""
        baseline = f"static:{self.baseline['shape']}"
        if self.baseline["source"] != "simulated":
            return None
        static = {(r.replication, r.seed): getattr(r, key)
                  for r in self.runs_of(baseline) if getattr(r, key) is not None}
        savings = np.array([1.0 - getattr(r, key) / static[(r.replication, r.seed)]
                            for r in self.runs_of(policy)
                            if getattr(r, key) is not None and (r.replication, r.seed) in static])
        if savings.size < 2:
            return None
        mean, low, high = t_interval(savings, level)
        return {"mean": mean, "low": low, "high": high, "pairs": int(savings.size),
                "level": level}

    def to_dict(self, trajectories: bool = True) -> dict[str, Any]:
        return {
            "target_loss": self.target,
            "policies": self.policies,
            "settings": self.settings,
            "baseline": self.baseline,
            "plan_saving": self.plan_saving,
            "plan_compute": self.plan_compute,
            "budget_warning": self.budget_warning(),
            "summary": self.summary(),
            "runs": [run.to_dict(trajectory=trajectories) for run in self.runs],
        }

    def write(self, folder: str | os.PathLike) -> None:
        """The ``RESULT_FILES`` as the whole content of ``folder``, written as a unit."""
        from laws.io.atomic import write_folder_atomic

        results = json.dumps(rounded(self.to_dict()), indent=2, allow_nan=False) + "\n"
        write_folder_atomic(folder, dict(zip(RESULT_FILES, (results, self.runs_csv(),
                                                            self.trajectories_csv()),
                                             strict=True)))

    def trajectories_csv(self) -> str:
        """Every evaluation of every run, one row each (``TRAJECTORY_COLUMNS``)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(TRAJECTORY_COLUMNS)
        for run in self.runs:
            for time, flops, true_loss, observed, shape in run.trajectory:
                writer.writerow([run.policy, run.replication, run.job,
                                 *rounded([time, flops, true_loss, observed]), shape])
        return buffer.getvalue()

    def runs_csv(self) -> str:
        """One row per run: its outcome and ledger."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        scalar = [k for k in RunRecord.__dataclass_fields__
                  if k not in ("ledger", "trajectory", "events")]
        ledger_keys = list(self.runs[0].ledger) if self.runs else []
        writer.writerow(scalar + ledger_keys)
        for run in self.runs:
            writer.writerow(rounded([getattr(run, k) for k in scalar]
                                    + [run.ledger[k] for k in ledger_keys]))
        return buffer.getvalue()


def format_summary(results: SimResults) -> str:
    """The per-policy table people read: outcomes (mean and 5-95%) and savings; the share
    of the plan's saving is that at the true crossing, which the plan's exact laws predict."""
    from laws.tables import format_number, format_percent, format_spread, format_table

    def spread(stats: dict[str, float | None], scale: float = 1.0) -> str:
        return format_spread(stats, scale, missing="-", separator=", ")

    def percent(value: float | None) -> str:
        return format_percent(value, missing="-")

    rows = []
    for policy, s in results.summary().items():
        rows.append([policy, percent(s["reached"]), spread(s["compute_to_target"]),
                     s["true_compute_to_target"]["mean"], spread(s["time_to_target"], 3600.0),
                     spread(s["accelerator_hours"]), s["true_loss_at_target"]["mean"],
                     s["switches"]["mean"], s["failures"]["mean"], s["lost_flops"]["mean"],
                     percent(s["saving_vs_static"]), percent(s["true_saving_vs_static"]),
                     percent(s["true_saving_kept"])])
    headers = ["policy", "reached", "FLOPs to target [5%, 95%]", "at true crossing",
               "hours [5%, 95%]", "accel-hours [5%, 95%]", "true loss at target", "switches",
               "failures", "lost FLOPs", "saving vs static", "at true crossing",
               "of plan saving"]
    base = results.baseline
    lines = [format_table(headers, rows), "",
             f"baseline: static {base['shape']}, {format_number(base['compute'])} FLOPs "
             f"({base['source']})"]
    if results.plan_saving is not None:
        lines.append(f"plan: saves {percent(results.plan_saving)} over the best static shape "
                     "with exact laws and a perfect machine")
    hardware = results.settings["hardware"]
    lines.append({"law file": "hours: at the law file's throughputs",
                  "given": "hours: at the given FLOP/s"}.get(hardware["source"],
                 f"hours: at an assumed {hardware['note']} for "
                 f"{', '.join(hardware['assumed'])} (the law file has no throughputs): "
                 "illustrative"))
    return "\n".join(lines)
