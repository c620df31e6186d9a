"""Reading measured curves: the compute at which a run reaches a loss, and what each switch of
an adaptive run cost against the laws it was planned with.

A curve is a run's records in order: evaluations (``{"flops", "time", "eval_loss", ...}``) and,
for adaptive runs, switch events (``{"event": "switch", "flops", "eval_loss", ...}``).
"""

from __future__ import annotations

import math

import numpy as np

from laws.lawset import LawSet
from sim.results import t_interval


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


INTERVAL = 90  # the measured saving's interval over seeds, two-sided, in percent
# The default target: the lowest loss any static shape's seed-averaged curve reads at this
# fraction of the budget (interpolated in log FLOPs). The best static shape then crosses it
# inside its curve, about this far along, not at its last evaluation by construction (as the
# best final loss would have it), leaving the rest of the budget for the seed-to-seed noise of
# each run's own crossing on both sides. The highest of the shapes' final losses would also be
# crossed by every shape, but an overfitting shape's rising tail (patch 28 ending at 1.7 on
# Fashion-MNIST) makes it a loss every shape passes early and far from where curves cross.
TARGET_AT = 0.7


def default_target(static: dict[str, list[list[dict]]], budget: float) -> float:
    """The default target of a loop (``TARGET_AT``): the lowest loss of the static shapes'
    seed-averaged eval curves at ``TARGET_AT`` of ``budget``.

    >>> runs = [[{"flops": 1.0, "eval_loss": 2.0}, {"flops": 100.0, "eval_loss": 1.0}]]
    >>> round(default_target({"a": runs, "b": [[{**p, "eval_loss": p["eval_loss"] + 1}
    ...                                           for p in runs[0]]]}, 10 / 0.7), 6)
    1.5
    """
    losses = []
    for runs in static.values():
        points = [i for i, point in enumerate(runs[0]) if point["flops"] > 0]
        flops = np.log([runs[0][i]["flops"] for i in points])
        mean = np.mean([[run[i]["eval_loss"] for i in points] for run in runs], axis=0)
        losses.append(float(np.interp(math.log(TARGET_AT * budget), flops, mean)))
    return min(losses)


def saving(adaptive: float | None, static: float | None) -> float | None:
    """1 - adaptive / static compute, None unless both reached the target."""
    return None if adaptive is None or static is None else 1.0 - adaptive / static


def paired_savings(static: dict[str, list[list[dict]]], adaptive: list[list[dict]],
                   target: float, planned: str) -> list[dict]:
    """Per seed k, both sides measured alike (``reach`` on each run's own eval curve): the
    adaptive run of seed k against the static runs of seed k, its FLOPs to ``target`` and each
    shape's, the seed's best static shape (fewest FLOPs to the target), and the saving over it
    and over the ``planned`` static shape (the plan's predicted best)."""
    seeds = []
    for k, run in enumerate(adaptive):
        flops = reach([r for r in run if r.get("event", "eval") == "eval"], target)
        shapes = {name: reach(runs[k], target) for name, runs in static.items()}
        reached = {name: f for name, f in shapes.items() if f is not None}
        best = min(reached, key=reached.get) if reached else None
        seeds.append({"seed": k, "adaptive_flops": flops, "static_flops": shapes,
                      "best_static": best, "saving": saving(flops, reached.get(best)),
                      "saving_vs_planned": saving(flops, shapes.get(planned))})
    return seeds


def mean_interval(values: list[float | None], level: float = INTERVAL) -> dict:
    """The mean of ``values`` and its two-sided Student-t interval at ``level`` percent over
    them (``low``/``high``: None for a single value); all None when a value is None.

    >>> interval = mean_interval([0.12, 0.31])  # t(0.95, 1 dof) = 6.314, se = 0.095
    >>> round(interval["mean"], 3), round(interval["low"], 3), round(interval["high"], 3)
    (0.215, -0.385, 0.815)
    >>> mean_interval([0.2])["low"] is None
    True
    """
    empty = {"mean": None, "low": None, "high": None, "level": level, "n": len(values)}
    if not values or any(value is None for value in values):
        return empty
    if len(values) < 2:
        return {**empty, "mean": float(values[0])}
    mean, low, high = t_interval(values, level / 100)
    return {**empty, "mean": mean, "low": low, "high": high}


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
