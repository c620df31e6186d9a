"""Reading measured curves: the compute at which a run reaches a loss, and what each switch of
an adaptive run cost against the laws it was planned with.

A curve is a run's records in order: evaluations (``{"flops", "time", "eval_loss", ...}``) and,
for adaptive runs, switch events (``{"event": "switch", "flops", "eval_loss", ...}``).
"""

from __future__ import annotations

import math

import numpy as np

from laws.lawset import LawSet


def reach(curve: list[dict], target: float, key: str = "flops") -> float | None:
    """``key`` (FLOPs or seconds) at which ``curve`` first reaches ``target``, interpolated in
    log ``key`` between the evaluation before and the first one at or below; None if never.

    >>> curve = [{"flops": 0, "eval_loss": 2.0}, {"flops": 100, "eval_loss": 1.0},
    ...          {"flops": 400, "eval_loss": 0.5}]
    >>> round(reach(curve, 0.75), 6)  # halfway in loss from 100 to 400: 200 in log FLOPs
    200.0
    >>> reach(curve, 0.4) is None
    True
    """
    for before, point in zip([None, *curve], curve, strict=False):
        if point["eval_loss"] > target:
            continue
        if before is None or before[key] <= 0:
            return float(point[key])
        share = (before["eval_loss"] - target) / (before["eval_loss"] - point["eval_loss"])
        return float(math.exp(math.log(before[key])
                              + share * (math.log(point[key]) - math.log(before[key]))))
    return None


def to_target(runs: list[list[dict]], target: float) -> dict:
    """Mean FLOPs and seconds to the target over the runs; None if a run never got there."""
    flops = [reach(run, target) for run in runs]
    seconds = [reach(run, target, "time") for run in runs]
    lowest = [min(run, key=lambda point: point["eval_loss"]) for run in runs]
    measured = {"final_loss": float(np.mean([run[-1]["eval_loss"] for run in runs])),
                "lowest_loss": float(np.mean([point["eval_loss"] for point in lowest])),
                "lowest_at": float(np.mean([point["flops"] for point in lowest])),
                "budget": runs[0][-1]["flops"]}
    if any(f is None for f in flops):
        return {"flops": None, "seconds": None, **measured}
    return {"flops": float(np.mean(flops)), "seconds": float(np.mean(seconds)), **measured}


def measured_switches(plan: dict, adaptive: list[list[dict]], laws: LawSet) -> list[dict]:
    """Each planned switch: its loss level, the predicted cumulative FLOPs there, and what the
    runs measured, as means over the seeds: the switch's FLOPs, the eval loss that fired it,
    the first eval loss after it beside the one the new shape's law expects there (landing
    at the loss that fired the switch; their difference is the loss the switch cost), and how
    many FLOPs the run is behind that law at its last evaluation before the next switch or the
    end: FLOPs trained since the switch minus those the law needs from the loss that fired it
    to the loss measured there. That lag is what the switch cost in compute."""
    schedule = plan["optimal"]["schedule"]
    predicted = np.cumsum([s["compute"] + s["switch_compute"] for s in schedule])
    rows = []
    for index, segment in enumerate(schedule[1:]):
        law = laws.shape(segment["shape"]).law
        seen = []
        for run in adaptive:
            fired = [i for i, r in enumerate(run) if r.get("event") == "switch"]
            if len(fired) <= index:
                continue
            event = run[fired[index]]
            until_next = fired[index + 1] if index + 1 < len(fired) else len(run)
            evals = [{**r, "flops": r["flops"] - event["flops"]}
                     for r in run[fired[index] + 1:until_next] if r.get("event") == "eval"]
            after = evals[0] if evals else None
            landing = law.compute(event["eval_loss"])
            reachable = after is not None and np.isfinite(landing)
            expected = float(law.loss(landing + after["flops"])) if reachable else None
            lag = (evals[-1]["flops"] - float(law.compute(evals[-1]["eval_loss"]) - landing)
                   if reachable and np.isfinite(law.compute(evals[-1]["eval_loss"])) else None)
            seen.append((event["flops"], event["eval_loss"],
                         after["eval_loss"] if after else None, expected, lag))
        complete = len(seen) == len(adaptive)
        rows.append({
            "to": segment["shape"], "loss_level": segment["loss_from"],
            "predicted_flops": float(predicted[index]),
            **{key: (float(np.mean(values)) if complete and None not in values else None)
               for key, values in zip(("measured_flops", "measured_loss", "loss_after",
                                       "expected_loss_after", "lag_flops"),
                                      zip(*seen, strict=True) if seen else [()] * 5,
                                      strict=True)},
        })
    return rows
