"""Reading measured curves: the compute at which a run reaches a loss, and what each switch of
an adaptive run cost against the laws it was planned with.

A curve is a run's records in order: evaluations (``{"flops", "time", "eval_loss", ...}``) and,
for adaptive runs, switch events (``{"event": "switch", "flops", "eval_loss", ...}``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from laws.errors import InputError
from laws.io.curves import Curve
from laws.lawset import LawSet
from laws.search.planfile import Percentiles, Plan
from laws.stats import LEVEL, t_interval

# Reads a run's compute (or seconds, with key "time") to a target off its records.
Estimator = Callable[..., "float | None"]


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


# Half-width, in decades of compute, of the local fit of ``crossing``: chosen by its bias and
# spread on simulated curves with the loops' measured evaluation noise
# (bench/bench_crossing.py; docs/DESIGN.md, "Measuring a saving").
SPAN = 0.35
_MIN_POINTS = 3  # a line through fewer says nothing about the noise
_ITERATIONS = 5  # fits, each centred on the previous one's crossing


def crossing(curve: list[dict], target: float, key: str = "flops",
             span: float = SPAN) -> float | None:
    """``key`` (FLOPs or seconds) at which ``curve`` crosses ``target``, read off a straight
    line fitted in log-log to the evaluations within ``span`` decades of the crossing (at least
    three), all of the shape that crosses (an adaptive run's switch events and other shapes
    are left out). One noisy evaluation moves the first crossing (``reach``) far on a flat
    curve; it moves this line by a share of that. The first crossing places the first fit,
    each fit's crossing centres the next; the first crossing is returned where the shape has
    fewer than three evaluations or a line does not fall. None if no evaluation is at or below
    the target.

    >>> curve = [{"flops": 10.0 ** (k / 8), "eval_loss": 10.0 ** (-k / 32)} for k in range(64)]
    >>> round(crossing(curve, 10 ** -1.1), 6)  # on a power law the line is exact: 10^4.4
    25118.864315
    >>> curve[24]["eval_loss"] = 0.07  # one evaluation far too low, at 10^3 FLOPs
    >>> error = lambda flops: abs(math.log10(flops) - 4.4)  # decades from the true crossing
    >>> round(error(reach(curve, 10 ** -1.1)), 2), error(crossing(curve, 10 ** -1.1)) < 0.2
    (1.41, True)
    """
    evals = [r for r in curve if r.get("event", "eval") == "eval"]
    first = reach(evals, target, key)
    if first is None:
        return None
    at = next(i for i, r in enumerate(evals) if r["eval_loss"] <= target)
    shape = evals[at].get("shape")
    low, high = at, at
    while low > 0 and evals[low - 1].get("shape") == shape:
        low -= 1
    while high + 1 < len(evals) and evals[high + 1].get("shape") == shape:
        high += 1
    segment = [r for r in evals[low:high + 1] if r[key] > 0]
    if len(segment) < _MIN_POINTS:
        return first
    x = np.log([r[key] for r in segment])
    y = np.log([r["eval_loss"] for r in segment])
    centre, reach_ = math.log(first), span * math.log(10)
    for _ in range(_ITERATIONS):
        distance = np.abs(x - centre)
        near = distance <= max(reach_, np.sort(distance)[_MIN_POINTS - 1])
        slope, intercept = np.polyfit(x[near], y[near], 1)
        if not slope < 0:
            return first
        # Within the shape's evaluations: a line carried beyond its data says nothing.
        centre = float(np.clip((math.log(target) - intercept) / slope, x[0], x[-1]))
    return math.exp(centre)


def to_target(runs: list[list[dict]], target: float,
              estimator: Estimator | None = None) -> dict:
    """Mean FLOPs and seconds to the target over the runs, each read by ``estimator``
    (default ``crossing``); None if a run never got there."""
    estimator = estimator or crossing
    flops = [estimator(run, target) for run in runs]
    seconds = [estimator(run, target, "time") for run in runs]
    lowest = [min(run, key=lambda point: point["eval_loss"]) for run in runs]
    measured = {"final_loss": float(np.mean([run[-1]["eval_loss"] for run in runs])),
                "lowest_loss": float(np.mean([point["eval_loss"] for point in lowest])),
                "lowest_at": float(np.mean([point["flops"] for point in lowest])),
                "budget": runs[0][-1]["flops"]}
    if any(f is None for f in flops):
        return {"flops": None, "seconds": None, **measured}
    return {"flops": float(np.mean(flops)), "seconds": float(np.mean(seconds)), **measured}


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
                   target: float, planned: str, estimator: Estimator | None = None) -> dict:
    """Seed k's adaptive run against seed k's static runs, every run read alike by
    ``estimator`` (default ``crossing``). The best static shape is one for all seeds: the
    fewest FLOPs to ``target`` on the seeds' mean, among the shapes that reach it on every
    seed (a best chosen per seed would be the least of noisy values, too low on average, and
    so bias every saving down). Returns that shape (``best_static``, None when no shape reached
    the target on every seed), each seed's FLOPs and savings over it and over the ``planned``
    static shape (``seeds``), and the mean of each saving with its Student-t interval over the
    seeds (``saving``, ``saving_vs_planned``: ``mean_interval``)."""
    estimator = estimator or crossing
    flops = {name: [estimator(run, target) for run in runs] for name, runs in static.items()}
    complete = {name: float(np.mean(values)) for name, values in flops.items()
                if None not in values}
    best = min(complete, key=complete.get) if complete else None
    seeds = []
    for k, run in enumerate(adaptive):
        spent = estimator(run, target)
        shapes = {name: values[k] for name, values in flops.items()}
        seeds.append({"seed": k, "adaptive_flops": spent, "static_flops": shapes,
                      "best_static": best,
                      "saving": saving(spent, shapes[best]) if best else None,
                      "saving_vs_planned": saving(spent, shapes.get(planned))})
    return {"best_static": best, "seeds": seeds,
            "saving": mean_interval([seed["saving"] for seed in seeds]),
            "saving_vs_planned": mean_interval([seed["saving_vs_planned"] for seed in seeds])}


def compare_runs(static: dict[str, list[list[dict]]], adaptive: list[list[dict]],
                 target: float, planned: str, predicted: dict[str, float | None]) -> dict:
    """Static and adaptive runs to ``target``, every run read alike: ``rows`` per shape and
    ``adaptive`` (``to_target``, with the ``predicted`` FLOPs of the same key beside), the
    paired savings over the one best static shape (``paired_savings``: ``best_static``,
    ``measured_interval`` and its mean, ``measured_saving_vs_planned`` over the ``planned``
    static shape, ``seeds``), and the same read by the first crossing (``first_crossing``)."""
    rows = {name: to_target(runs, target) | {"predicted_flops": predicted[name]}
            for name, runs in static.items()}
    rows["adaptive"] = to_target(adaptive, target) | {"predicted_flops": predicted["adaptive"]}
    paired = paired_savings(static, adaptive, target, planned)
    first = paired_savings(static, adaptive, target, planned, reach)
    return {"rows": rows, "best_static": paired["best_static"],
            "predicted_best_static": planned, "measured_saving": paired["saving"]["mean"],
            "measured_interval": paired["saving"],
            "measured_saving_vs_planned": paired["saving_vs_planned"], "seeds": paired["seeds"],
            "first_crossing": {"best_static": first["best_static"],
                               "measured_interval": first["saving"],
                               "savings": [seed["saving"] for seed in first["seeds"]]}}


def intervals_overlap(measured: dict, predicted: Percentiles | None) -> bool | None:
    """Whether the measured saving's interval (``low``/``high``) and the predicted one
    (``p5``/``p95``) share a point; None when either is missing.

    >>> intervals_overlap({"low": 0.02, "high": 0.08}, Percentiles(0.07, 0.1, 0.12))
    True
    >>> intervals_overlap({"low": 0.02, "high": 0.06}, Percentiles(0.07, 0.1, 0.12))
    False
    """
    if predicted is None or predicted.p5 is None or measured.get("low") is None:
        return None
    return measured["low"] <= predicted.p95 and predicted.p5 <= measured["high"]


def mean_interval(values: list[float | None], level: float = LEVEL) -> dict:
    """The mean of ``values`` and its two-sided Student-t interval at ``level`` (a fraction) over
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
    mean, low, high = t_interval(values, level)
    return {**empty, "mean": mean, "low": low, "high": high}


def measured_switches(plan: Plan, adaptive: list[list[dict]], laws: LawSet) -> list[dict]:
    """Each planned switch: its loss level, the predicted cumulative FLOPs there, and what the
    runs measured, as means over the seeds: the switch's FLOPs, the eval loss that fired it,
    the first eval loss after it beside the one the new shape's law expects there (landing
    at the loss that fired the switch; their difference is the loss the switch cost), and how
    many FLOPs the run is behind that law at its last evaluation before the next switch or the
    end: FLOPs trained since the switch minus those the law needs from the loss that fired it
    to the loss measured there. That lag is what the switch cost in compute."""
    schedule = plan.optimal.schedule
    predicted = np.cumsum([s.compute + s.switch_compute for s in schedule])
    rows = []
    for index, segment in enumerate(schedule[1:]):
        law = laws.shape(segment.shape).law
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
            "to": segment.shape, "loss_level": segment.loss_from,
            "predicted_flops": float(predicted[index]),
            **{key: (float(np.mean(values)) if complete and None not in values else None)
               for key, values in zip(("measured_flops", "measured_loss", "loss_after",
                                       "expected_loss_after", "lag_flops"),
                                      zip(*seen, strict=True) if seen else [()] * 5,
                                      strict=True)},
        })
    return rows


# A static run on repeated data can overfit: its eval loss turns and rises, which no decreasing
# law follows. Ending this much above its lowest loss (well beyond the eval noise of a constant
# learning rate, a few percent) marks such a tail, which is left out of the fit.
OVERFIT_RISE = 0.05


def mean_curve(name: str, axes: dict[str, int], runs: list[list[dict]],
               warmup_steps: int) -> Curve:
    """The seeds' eval losses averaged point by point (the seeds evaluate at the same FLOPs),
    leaving out the points before the learning-rate warm-up ends, and those after the lowest
    loss when the curve ends more than ``OVERFIT_RISE`` above it (a rising tail)."""
    flops = np.array([p["flops"] for p in runs[0]], dtype=float)
    for run in runs[1:]:
        if len(run) != len(flops) or any(p["flops"] != f for p, f in zip(run, flops, strict=True)):
            raise InputError(f"static runs of {name} were evaluated at different FLOPs")
    loss = np.mean([[p["eval_loss"] for p in run] for run in runs], axis=0)
    keep = np.array([p["step"] >= max(1, warmup_steps) for p in runs[0]])
    lowest = int(np.argmin(np.where(keep, loss, np.inf)))
    if loss[-1] > (1 + OVERFIT_RISE) * loss[lowest]:
        keep[lowest + 1:] = False
    return Curve(name, axes, flops[keep], loss[keep], tuple(np.flatnonzero(keep).tolist()))
