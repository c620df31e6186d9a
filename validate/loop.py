"""The confirmation loop: measure static runs, fit their laws, plan, train the plan, compare.

    config = LoopConfig("mlp-width", ({"width": 4}, {"width": 32}), budget=1e8)
    summary = run_loop(config, "runs/loop")
    summary["measured_saving"], summary["predicted_saving"]

Stages and the files they leave in the output folder (a stage whose file exists is not redone,
so a killed loop picks up where it stopped; an unfinished training run resumes from its
checkpoint):

1. ``static/<shape>/seed<k>/`` one training run per shape and seed to the budget;
2. ``laws.json`` the laws fitted to the seed-averaged eval curves (the form with the lowest
   held-out error), a valid law file with provenance; ``fit.json`` every candidate's errors;
3. ``plan.json`` the optimal schedule to the target (default: the best static final loss);
4. ``adaptive/seed<k>/`` the plan trained for real: a switch fires at the first evaluation at or
   below the planned loss level;
5. ``summary.json`` measured against predicted compute to the target, and ``report.md``.

Compute to the target is read off a measured curve at its first evaluation at or below the
target, interpolated (in log compute) from the evaluation before it.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from laws.errors import InputError
from laws.io.atomic import write_text_atomic
from laws.io.curves import Curve, Curves
from laws.io.lawfile import read_law_file, write_law_file
from laws.lawset import LawSet
from validate.tasks import Shape, make_task
from validate.train import CURVE, RESULT, Switch, train

STAGES = ("static", "fit", "plan", "adaptive", "report")
HOLDOUT_FRACTION = 0.5  # forms are fitted on each curve's first half of points, tested on the rest


@dataclass(frozen=True)
class LoopConfig:
    """What the loop measures: the task, its candidate shapes (partial, on top of ``common``),
    the FLOP budget of each static run, and the training options every run shares."""

    task: str
    shapes: tuple[Shape, ...]
    budget: float
    target: float | None = None
    seeds: int = 1
    device: str = "cpu"
    common: Shape = field(default_factory=dict)
    train_options: dict = field(default_factory=dict)
    task_options: dict = field(default_factory=dict)
    levels: int = 2000
    adaptive_budget: float | None = None  # default: the static budget

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))


def shape_names(shapes: list[Shape]) -> list[str]:
    """Short names from the axes that differ between the shapes.

    >>> shape_names([{"patch": 14, "dim": 64}, {"patch": 7, "dim": 64}])
    ['patch14', 'patch7']
    """
    varying = [axis for axis in shapes[0] if len({s[axis] for s in shapes}) > 1]
    return ["-".join(f"{axis}{s[axis]}" for axis in varying) or "only" for s in shapes]


def parse_shapes(texts: tuple[str, ...] | list[str]) -> tuple[Shape, ...]:
    """Shapes separated by ';' (or given as several texts), each ``AXIS=N,...``.

    >>> parse_shapes(["patch=14;patch=7", "patch=4"])
    ({'patch': 14}, {'patch': 7}, {'patch': 4})
    """
    from validate.tasks import parse_shape

    return tuple(parse_shape(part, "--shapes") for text in texts
                 for part in text.split(";") if part.strip())


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


class Loop:
    """One loop in its output folder; each stage method reuses what a previous run left."""

    def __init__(self, config: LoopConfig, out_dir: str | Path, progress: bool = True) -> None:
        if len(config.shapes) < 2:
            raise InputError("--shapes: give at least two candidate shapes")
        if config.seeds < 1:
            raise InputError(f"--seeds {config.seeds}: must be at least 1")
        self.config, self.out, self.progress = config, Path(out_dir), progress
        self.task = make_task(config.task, **config.task_options)
        self.shapes = [self.task.complete({**config.common, **s}) for s in config.shapes]
        self.names = shape_names(self.shapes)
        if len(set(self.names)) < len(self.names):
            raise InputError("--shapes: two candidate shapes are the same")
        for i, old in enumerate(self.shapes):  # every pair must switch one way or the other
            for new in self.shapes[i + 1:]:
                try:
                    self.task.check_change(old, new)
                except InputError:
                    self.task.check_change(new, old)
        self._check_folder()

    def _check_folder(self) -> None:
        saved_path = self.out / "loop.json"
        wanted = self.config.to_dict()
        if saved_path.is_file():
            saved = json.loads(saved_path.read_text())
            if saved != wanted:
                differs = next(k for k in wanted if saved.get(k) != wanted[k])
                raise InputError(f"{self.out} holds a loop made with another {differs!r}; "
                                 "rerun it with the same options or choose another folder")
        else:
            write_text_atomic(saved_path, json.dumps(wanted, indent=2) + "\n")

    def log(self, message: str) -> None:
        if self.progress:
            print(f"[loop] {message}", file=sys.stderr, flush=True)

    def _train(self, run_dir: Path, shape: Shape, budget: float, switches: list[Switch],
               seed: int) -> list[dict]:
        """The run's records in order (evaluations and switches), trained (or resumed) unless
        it already finished."""
        if not (run_dir / RESULT).is_file():
            resume = (run_dir / "checkpoint.pt").is_file()
            self.log(f"{'resuming' if resume else 'training'} {run_dir.relative_to(self.out)}")
            train(self.task, shape, budget, switches, run_dir=run_dir, resume=resume, seed=seed,
                  device=self.config.device, progress=self.progress, **self.config.train_options)
        return [json.loads(line) for line in (run_dir / CURVE).read_text().splitlines()]

    # --- 1. static runs ---
    def static(self, workers: int = 1) -> dict[str, list[list[dict]]]:
        """Eval curves per shape name, one per seed; ``workers`` processes train the runs that
        are not finished yet side by side (each with one torch thread)."""
        runs = [(name, shape, seed, self.out / "static" / name / f"seed{seed}")
                for name, shape in zip(self.names, self.shapes, strict=True)
                for seed in range(self.config.seeds)]
        pending = [run for run in runs if not (run[3] / RESULT).is_file()]
        if workers > 1 and len(pending) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.log(f"training {len(pending)} static runs in {workers} processes")
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(workers, len(pending)), mp_context=context) as pool:
                list(pool.map(_train_in_worker, [
                    (self.config, dir_, shape, seed) for _, shape, seed, dir_ in pending]))
        curves: dict[str, list[list[dict]]] = {name: [] for name in self.names}
        for name, shape, seed, run_dir in runs:
            curves[name].append(_evals(self._train(run_dir, shape, self.config.budget, [], seed)))
        return curves

    # --- 2. fit ---
    def fit(self, static: dict[str, list[list[dict]]]) -> LawSet:
        path = self.out / "laws.json"
        if path.is_file():
            return read_law_file(path)
        from laws.fit import choose_form, fit_curves

        curves = Curves(str(self.out / "static"), tuple(
            _mean_curve(name, shape, runs, self.config.train_options.get("warmup_steps", 50))
            for (name, runs), shape in zip(static.items(), self.shapes, strict=True)))
        chosen, reports = choose_form(curves, HOLDOUT_FRACTION, column="position")
        fitted = fit_curves(curves, chosen.form, chosen.share, name=f"{self.config.task}-loop")
        metrics = {"form": chosen.form, "share": list(chosen.share),
                   "holdout_after": HOLDOUT_FRACTION, "holdout": chosen.metrics,
                   "fit": fitted.metrics}
        laws = dataclasses.replace(fitted.laws, provenance={
            "source": f"shapeshift validate run {self.config.task}",
            "task": self.config.task, "device": self.config.device,
            "budget": self.config.budget, "seeds": self.config.seeds,
            "shapes": dict(zip(self.names, self.shapes, strict=True)),
            "train_options": self.config.train_options,
            "task_options": self.config.task_options,
            "date": datetime.date.today().isoformat(), "fit_metrics": metrics})
        write_text_atomic(self.out / "fit.json", json.dumps(
            {"chosen": chosen.to_dict(), "candidates": [r.to_dict() for r in reports],
             "fit": fitted.to_dict()}, indent=2) + "\n")
        write_law_file(laws, path)
        self.log(f"fitted {chosen.form} laws (share {list(chosen.share)}): held-out RMSE "
                 f"{chosen.metrics['all']['rmse']:.4f}, "
                 f"fit RMSE {fitted.metrics['all']['rmse']:.4f}")
        return laws

    # --- 3. plan ---
    def plan(self, laws: LawSet, static: dict[str, list[list[dict]]]) -> dict:
        path = self.out / "plan.json"
        if path.is_file():
            return json.loads(path.read_text())
        from laws.search import plan

        target = self.config.target
        if target is None:
            target = min(np.mean([run[-1]["eval_loss"] for run in runs])
                         for runs in static.values())
        only_grow = sorted(getattr(self.task, "grow_only", ()))
        result = plan(laws, float(target), levels=self.config.levels,
                      only_grow=[a for a in only_grow if a in laws.shapes[0].axes])
        write_text_atomic(path, json.dumps(result, indent=2, allow_nan=False) + "\n")
        steps = " -> ".join(f"{s['shape']} (to {s['loss_to']:.4f})"
                            for s in result["optimal"]["schedule"])
        self.log(f"plan to {target:.4f}: {steps}; predicted saving "
                 f"{100 * result['saving_vs_static']:.1f}%")
        return result

    # --- 4. adaptive runs ---
    def adaptive(self, plan: dict) -> list[list[dict]]:
        """The records (evaluations and switches) of the planned run, one list per seed."""
        by_name = dict(zip(self.names, self.shapes, strict=True))
        schedule = plan["optimal"]["schedule"]
        if not schedule:
            raise InputError(f"the plan reaches no target {plan['target_loss']:g}")
        switches = [Switch(by_name[s["shape"]], at_loss=s["loss_from"]) for s in schedule[1:]]
        budget = self.config.adaptive_budget or self.config.budget
        return [self._train(self.out / "adaptive" / f"seed{seed}", by_name[schedule[0]["shape"]],
                            budget, switches, seed)
                for seed in range(self.config.seeds)]

    # --- 5. comparison ---
    def compare(self, laws: LawSet, static: dict, plan: dict, adaptive: list[list[dict]]) -> dict:
        target = plan["target_loss"]
        rows = {}
        for name, runs in static.items():  # the seeds' mean curve: the curve that was fitted
            mean = [{**point, "eval_loss": float(np.mean([run[i]["eval_loss"] for run in runs])),
                     "time": float(np.mean([run[i]["time"] for run in runs]))}
                    for i, point in enumerate(runs[0])]
            rows[name] = _reached([mean], target) | {"predicted_flops": plan["static"][name]}
        rows["adaptive"] = _reached([_evals(run) for run in adaptive], target) | {
            "predicted_flops": plan["optimal"]["compute"]}
        reached = {n: r["flops"] for n, r in rows.items() if n != "adaptive" and r["flops"]}
        best = min(reached, key=reached.get) if reached else None
        measured_saving = (1 - rows["adaptive"]["flops"] / reached[best]
                           if best and rows["adaptive"]["flops"] else None)
        return {
            "task": self.config.task, "target_loss": target, "rows": rows,
            "best_static": best, "predicted_best_static": plan["static_best"]["shape"],
            "predicted_saving": plan["saving_vs_static"], "measured_saving": measured_saving,
            "switches": _switches(plan, adaptive, laws),
            "config": self.config.to_dict(),
            "shape_axes": dict(zip(self.names, self.shapes, strict=True)),
        }

    def run(self, until: str = "report", workers: int = 1) -> dict:
        """Every stage up to ``until`` (one of ``STAGES``); the summary when it gets there."""
        if until not in STAGES:
            raise InputError(f"unknown stage {until!r}; stages: {', '.join(STAGES)}")
        stop = STAGES.index(until)
        static = self.static(workers)
        if stop < 1:
            return {}
        laws = self.fit(static)
        if stop < 2:
            return {}
        plan = self.plan(laws, static)
        if stop < 3:
            return {}
        adaptive = self.adaptive(plan)
        summary = self.compare(laws, static, plan, adaptive)
        write_text_atomic(self.out / "summary.json",
                          json.dumps(summary, indent=2, allow_nan=False) + "\n")
        if stop >= 4:
            from validate.report import write_report

            write_report(self.out, summary, static, plan, adaptive, laws)
        return summary


def run_loop(config: LoopConfig, out_dir: str | Path, *, until: str = "report",
             workers: int = 1, progress: bool = True) -> dict:
    """Run (or continue) the loop of ``config`` in ``out_dir``; returns ``summary.json``'s
    content (empty when stopped before the comparison). ``workers`` processes train the static
    runs in parallel."""
    return Loop(config, out_dir, progress).run(until, workers)


def _train_in_worker(job: tuple) -> None:
    import torch

    torch.set_num_threads(1)
    config, run_dir, shape, seed = job
    Loop(config, run_dir.parent.parent.parent, progress=False)._train(
        run_dir, shape, config.budget, [], seed)


def _evals(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("event", "eval") == "eval"]


def _mean_curve(name: str, shape: Shape, runs: list[list[dict]], warmup_steps: int) -> Curve:
    """The seeds' eval losses averaged point by point (the seeds evaluate at the same FLOPs),
    leaving out the points before the learning-rate warm-up ends."""
    flops = np.array([p["flops"] for p in runs[0]], dtype=float)
    for run in runs[1:]:
        if len(run) != len(flops) or any(p["flops"] != f for p, f in zip(run, flops, strict=True)):
            raise InputError(f"static runs of {name} were evaluated at different FLOPs")
    loss = np.mean([[p["eval_loss"] for p in run] for run in runs], axis=0)
    keep = np.array([p["step"] >= max(1, warmup_steps) for p in runs[0]])
    position = np.linspace(0.0, 1.0, int(keep.sum()))  # where a point lies along its curve
    return Curve(name, shape, flops[keep], loss[keep], tuple(np.flatnonzero(keep).tolist()),
                 extra={"position": position})


def _reached(runs: list[list[dict]], target: float) -> dict:
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


def _switches(plan: dict, adaptive: list[list[dict]], laws: LawSet) -> list[dict]:
    """Each planned switch: its loss level, the predicted cumulative FLOPs there, and what the
    runs measured, as means over the seeds: the switch's FLOPs, the eval loss that fired it,
    and the first eval loss after it beside the one the new shape's law expects there (landing
    at the loss that fired the switch); their difference is the loss the switch cost."""
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
            after = next((r for r in run[fired[index] + 1:] if r.get("event") == "eval"), None)
            landing = law.compute(event["eval_loss"])
            expected = (float(law.loss(landing + after["flops"] - event["flops"]))
                        if after and np.isfinite(landing) else None)
            seen.append((event["flops"], event["eval_loss"],
                         after["eval_loss"] if after else None, expected))
        complete = len(seen) == len(adaptive)
        rows.append({
            "to": segment["shape"], "loss_level": segment["loss_from"],
            "predicted_flops": float(predicted[index]),
            **{key: (float(np.mean(values)) if complete and None not in values else None)
               for key, values in zip(("measured_flops", "measured_loss", "loss_after",
                                       "expected_loss_after"),
                                      zip(*seen, strict=True) if seen else [()] * 4,
                                      strict=True)},
        })
    return rows
