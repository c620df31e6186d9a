"""The confirmation loop: measure static runs, fit their laws, plan, train the plan, compare.

    config = LoopConfig("mlp-width", ({"width": 4}, {"width": 32}), budget=1e8,
                        train=TrainConfig(evals=16))
    summary = run_loop(config, "runs/loop")
    summary["measured_saving"], summary["predicted_saving"]

Stages and the files they leave in the output folder (a stage whose file exists is not redone,
so a killed loop picks up where it stopped; an unfinished training run resumes from its
checkpoint):

1. ``static/<shape>/seed<k>/`` one training run per shape and seed to the budget;
2. ``laws.json`` the laws fitted to the seed-averaged eval curves (the form ``fit --form auto``
   chooses: ``laws.fit.choice``), a valid law file with provenance and ``bootstrap`` resampled
   laws (the plan's interval); ``fit.json`` every candidate's errors;
3. ``plan.json`` the optimal schedule to the target (default: ``measured.default_target``);
4. ``adaptive/seed<k>/`` the plan trained for real: a switch fires at the first evaluation at or
   below the planned loss level;
5. ``summary.json`` measured against predicted compute to the target, and ``report.md``.

With ``train.schedule == "wsd"`` every run also ends with a cool-down, and the loop compares
runs after their anneal (``validate/annealing.py``): each run keeps states at some evaluation
levels and cools each down (``<run>/cooldown-<share>/annealed.jsonl``), ``laws.json`` carries
each shape's law of its annealed curves, ``cooldown_plan.json`` is the plan to the target after
the anneal and ``plan.json`` its stable phase; ``summary.json`` adds ``anneal``.

Compute to the target is read off every measured curve alike: a straight line in log-log
through its evaluations around the crossing (``measured.crossing``); the first evaluation at or
below the target is reported beside it. Seed k's runs share their initial weights and data
order (seed ``train.seed + k``), so seed k's adaptive run follows seed k's static run of its
first shape exactly up to its first switch, and the saving is measured per seed, paired.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import sys
from pathlib import Path

import numpy as np

from laws.errors import InputError
from laws.io.atomic import write_text_atomic
from laws.io.curves import Curves
from laws.io.lawfile import read_law_file, write_law_file
from laws.io.lock import claim
from laws.lawset import LawSet
from laws.search.planfile import Plan, read_plan, write_plan
from sim.policies import Policy, Static, planned
from validate.annealing import (
    annealed_runs,
    check_branches,
    compare_annealed,
    cool_run,
    finished,
    fit_annealed,
    plan_to_anneal,
    stable_phase,
)
from validate.candidates import shape_names
from validate.config import LoopConfig
from validate.controller import CURVE
from validate.measured import (
    OVERFIT_RISE,
    SPAN,
    compare_runs,
    default_target,
    intervals_overlap,
    mean_curve,
    measured_switches,
)
from validate.preflight import check_loop_budgets
from validate.slurm import Run, SlurmConfig, SlurmRuns
from validate.tasks import Axes, make_task
from validate.train import RESULT, train

STAGES = ("static", "fit", "plan", "adaptive", "report")
COOLDOWN_PLAN = "cooldown_plan.json"  # with --schedule wsd: the plan to the target after the anneal


class Loop:
    """One loop in its output folder; each stage method reuses what a previous run left."""

    def __init__(self, config: LoopConfig, out_dir: str | Path, progress: bool = True,
                 slurm: SlurmConfig | None = None) -> None:
        if len(config.shapes) < 2:
            raise InputError("--shapes: give at least two candidate shapes")
        if config.seeds < 1:
            raise InputError(f"--seeds {config.seeds}: must be at least 1")
        if config.train.schedule == "cosine":  # a cosine curve is no law of compute
            raise InputError("--schedule cosine: a loop's runs train at a constant rate, or "
                             "anneal by cool-down branches of them (wsd)")
        self.config, self.out, self.progress = config, Path(out_dir), progress
        self.anneal = config.train.schedule == "wsd"  # runs cool down at the end (annealing.py)
        self.task = make_task(config.task, **config.train.task_options)
        # The candidate shapes' complete axes, and their names in the laws and the plan.
        self.candidates = [self.task.complete({**config.common, **axes})
                           for axes in config.shapes]
        self.names = shape_names(self.candidates)
        if len(set(self.names)) < len(self.names):
            raise InputError("--shapes: two candidate shapes are the same")
        for i, old in enumerate(self.candidates):  # every pair must switch one way or another
            for new in self.candidates[i + 1:]:
                try:
                    self.task.check_change(old, new)
                except InputError:
                    self.task.check_change(new, old)
        check_loop_budgets(self.task, config, dict(zip(self.names, self.candidates,
                                                       strict=True)))
        if self.anneal:
            check_branches(config)
        claim(self.out)  # one loop per folder (laws.io.lock); its workers and jobs share it
        self._check_folder()
        self.slurm = None  # with a SlurmConfig, Slurm jobs train the runs (validate/slurm.py)
        if slurm is not None:
            self.slurm = SlurmRuns(slurm, config, self.out, self.log, _train_in_job)

    def _check_folder(self) -> None:
        saved_path = self.out / "loop.json"
        wanted = self.config.to_dict()
        if saved_path.is_file():
            saved = LoopConfig.from_dict(json.loads(saved_path.read_text())).to_dict()
            if saved != wanted:
                differs = next(k for k in wanted if saved.get(k) != wanted[k])
                raise InputError(f"{self.out} holds a loop made with another {differs!r}; "
                                 "rerun it with the same options or choose another folder")
        else:
            write_text_atomic(saved_path, json.dumps(wanted, indent=2) + "\n")

    def log(self, message: str) -> None:
        if self.progress:
            print(f"[loop] {message}", file=sys.stderr, flush=True)

    def _train(self, run_dir: Path, axes: Axes, budget: float, policy: Policy | None,
               seed: int) -> list[dict]:
        """The records in order (evaluations and switches) of seed ``seed``'s run from ``axes``
        (static without a policy), trained (or resumed) unless it already finished. The
        candidates are its shapes, by their names in the laws and the plan."""
        if self.slurm is not None:  # a job trains it (none when it finished) while this waits
            self.slurm.train([Run((run_dir, axes, budget, policy, seed))])
        config = dataclasses.replace(self.config.train, seed=self.config.train.seed + seed)
        if not (run_dir / RESULT).is_file():
            resume = (run_dir / "checkpoint.pt").is_file() or (run_dir / CURVE).is_file()
            self.log(f"{'resuming' if resume else 'training'} {run_dir.relative_to(self.out)}")
            policy = policy or Static(self.names[self.candidates.index(axes)])
            train(self.task, axes, budget, policy,
                  stable_phase(config, budget) if self.anneal else config,
                  shapes=dict(zip(self.names, self.candidates, strict=True)), run_dir=run_dir,
                  resume=resume, progress=self.progress)
        cool_run(run_dir, config, self.progress)
        return [json.loads(line) for line in (run_dir / CURVE).read_text().splitlines()]

    # --- 1. static runs ---
    def _train_all(self, runs: list[Run], workers: int, stage: str) -> list[list[dict]]:
        """The records of each run (a ``Run``: ``_train``'s arguments), in order, after
        training the runs not finished yet: as one array of Slurm jobs, or in ``workers``
        processes side by side (each with one torch thread)."""
        pending = [run for run in runs if not finished(run.run_dir, self.config.train)]
        if self.slurm is not None:  # the runs below are then finished
            self.slurm.train(pending)
        elif workers > 1 and len(pending) > 1:
            import multiprocessing

            from sim.executor import LocalPool, abort

            self.log(f"training {len(pending)} {stage} runs in {workers} processes")
            # spawned, not forked: torch's threads do not survive a fork. The workers end with
            # the loop (Ctrl-C, SIGTERM, an error); their runs resume from their checkpoints.
            pool = LocalPool(min(workers, len(pending)), multiprocessing.get_context("spawn"))
            try:
                list(pool.map(_train_in_worker, [(self.config, self.out, run.arguments)
                                                 for run in pending]))
            except BaseException:
                abort(pool)
                raise
            pool.shutdown()
        return [self._train(*run.arguments) for run in runs]

    def static(self, workers: int = 1) -> dict[str, list[list[dict]]]:
        """Eval curves per shape name, one per seed."""
        seeds = range(self.config.seeds)
        runs = [Run((self.out / "static" / name / f"seed{seed}", axes, self.config.budget, None,
                     seed))
                for name, axes in zip(self.names, self.candidates, strict=True) for seed in seeds]
        records = iter(self._train_all(runs, workers, "static"))
        return {name: [_evals(next(records)) for _ in seeds] for name in self.names}

    # --- 2. fit ---
    def fit(self, static: dict[str, list[list[dict]]]) -> LawSet:
        path = self.out / "laws.json"
        if path.is_file():
            return read_law_file(path)
        from laws.fit import choose_auto, fit_curves

        curves = Curves(str(self.out / "static"), tuple(
            mean_curve(name, axes, runs, self.config.train.warmup_steps)
            for (name, runs), axes in zip(static.items(), self.candidates, strict=True)))
        left_out = {curve.name: len(static[curve.name][0]) - 1 - curve.lines[-1]
                    for curve in curves.curves}
        choice = choose_auto(curves)  # fit --form auto's choice; its held-out errors below
        held_out = choice.held_out()
        fitted = fit_curves(curves, choice.form, choice.share, bootstrap=self.config.bootstrap,
                            seed=self.config.train.seed, name=f"{self.config.task}-loop")
        metrics = {"form": choice.form, "share": list(choice.share),
                   "holdout_after": f"C_max/{choice.ratio:g}", "holdout": held_out,
                   "fit": fitted.metrics, "overfit_rise": OVERFIT_RISE,
                   "rising_tail_left_out": left_out}
        shapes = tuple(dataclasses.replace(shape, throughput=self._speed(shape.name))
                       for shape in fitted.laws.shapes)
        laws = dataclasses.replace(fitted.laws, shapes=shapes)
        if self.anneal:
            laws = fit_annealed(laws, self._annealed("static", self.names), self.candidates,
                                choice.form, choice.share, self.config.train.cooldown,
                                str(self.out / "static"))
        laws = dataclasses.replace(laws, provenance={
            "source": f"shapeshift validate run {self.config.task}",
            "task": self.config.task, "device": self.config.train.device,
            "budget": self.config.budget, "seeds": self.config.seeds,
            "shapes": dict(zip(self.names, self.candidates, strict=True)),
            "train": self.config.train.to_dict(),
            "task_options": self.config.train.task_options,
            "date": datetime.date.today().isoformat(), "fit_metrics": metrics,
            "throughput": "training FLOP/s of the static runs (evaluations left out), the seeds' "
                          "mean"})
        write_text_atomic(self.out / "fit.json", json.dumps(
            {"chosen": {"form": choice.form, "share": list(choice.share), "metrics": held_out},
             "choice": choice.to_dict(), "fit": fitted.to_dict()}, indent=2) + "\n")
        write_law_file(laws, path)
        self.log(f"fitted {choice.form} laws (share {list(choice.share)}; {choice.reason}): "
                 f"held-out RMSE {held_out.get('all', {}).get('rmse', float('nan')):.4f}, "
                 f"fit RMSE {fitted.metrics['all']['rmse']:.4f}")
        return laws

    def _speed(self, name: str) -> float:
        """The training FLOP/s of ``name``'s static runs, the seeds' mean."""
        results = [json.loads((self.out / "static" / name / f"seed{seed}" / RESULT).read_text())
                   for seed in range(self.config.seeds)]
        return float(np.mean([result["flops_per_second"] for result in results]))

    # --- 3. plan ---
    def plan(self, laws: LawSet, static: dict[str, list[list[dict]]]) -> Plan:
        path = self.out / "plan.json"
        if path.is_file():
            return read_plan(path)
        target = self.config.target
        if self.anneal:
            return self._plan_to_anneal(laws, target)
        if target is None:  # not the end of one curve by construction (measured.TARGET_AT)
            target = default_target(static, self.config.budget)
        result = self._search(laws, float(target))
        write_plan(result, path)
        steps = " -> ".join(f"{shape} (to {loss:.4f})" for shape, loss in result.optimal.steps())
        self.log(f"plan to {target:.4f}: {steps}; predicted saving "
                 f"{100 * result.saving_vs_static:.1f}%")
        return result

    def _request(self, laws: LawSet, target: float, switch_flops: float | None = None):
        """The loop's ``PlanRequest`` to ``target``; ``switch_flops`` overrides the switch
        cost."""
        from laws.search import PlanRequest

        only_grow = sorted(getattr(self.task, "grow_only", ()))
        return PlanRequest.for_laws(
            laws, target, levels=self.config.levels, switch_flops=switch_flops,
            only_grow=tuple(a for a in only_grow if a in laws.shapes[0].axes))

    def _search(self, laws: LawSet, target: float, switch_flops: float | None = None) -> Plan:
        """The optimal schedule to ``target``; ``switch_flops`` overrides the switch cost."""
        from laws.search import plan

        return plan(laws, self._request(laws, target, switch_flops))

    def _plan_to_anneal(self, laws: LawSet, target: float | None) -> Plan:
        """The plan to ``target`` after the anneal (default: ``default_target`` of the static
        runs' annealed curves) in ``cooldown_plan.json``; returns its stable phase, the plan
        the adaptive runs follow."""
        if target is None:
            annealed = self._annealed("static", self.names)
            target = default_target(annealed, max(run[-1]["flops"] for runs in annealed.values()
                                                  for run in runs))
        stable, cooldown = plan_to_anneal(laws, self._request(laws, float(target)),
                                          self.out / COOLDOWN_PLAN)
        write_plan(stable, self.out / "plan.json")
        steps = " -> ".join(f"{shape} (to {loss:.4f})" for shape, loss in stable.optimal.steps())
        self.log(f"plan to {target:.4f} after the anneal: {steps}, then the cool-down; "
                 f"predicted saving {100 * cooldown.saving_vs_static:.1f}%")
        return stable

    def _annealed(self, kind: str, names: list[str]) -> dict[str, list[list[dict]]]:
        return annealed_runs(self.out, kind, names, self.config.seeds, self.config.train.cooldown)

    # --- 4. adaptive runs ---
    def adaptive(self, plan: Plan, laws: LawSet, workers: int = 1) -> list[list[dict]]:
        """The records (evaluations and switches) of the planned run, one list per seed: the
        plan's ``planned`` policy (the object the simulator runs) switches at its loss levels."""
        policy = planned(plan, laws)  # refuses a plan that reaches no target
        start = self.candidates[self.names.index(policy.schedule[0][0])]
        budget = self.config.adaptive_budget or self.config.budget
        return self._train_all([Run((self.out / "adaptive" / f"seed{seed}", start, budget,
                                     policy, seed)) for seed in range(self.config.seeds)],
                               workers, "adaptive")

    # --- 5. comparison ---
    def compare(self, laws: LawSet, static: dict, plan: Plan, adaptive: list[list[dict]]) -> dict:
        """Both sides measured alike: every run (static and adaptive, each seed) read by the
        same estimator (``measured.crossing``, a local fit around the crossing; the first
        crossing, ``measured.reach``, beside it as ``first_crossing``); each seed's adaptive run
        against the same seed's runs of the one best static shape; the measured saving is the
        mean of those paired savings, with a Student-t interval over the seeds, set beside the
        predicted interval. Rows: the seeds' means of those crossings."""
        target = plan.target_loss
        fit = plan.uncertainty  # a plan on laws with bootstrap samples has one
        switches = measured_switches(plan, adaptive, laws)
        compared = compare_runs(static, [_evals(run) for run in adaptive], target,
                                plan.static_best.shape,
                                {**plan.static, "adaptive": plan.optimal.compute})
        measured = compared["measured_interval"]
        return {
            "task": self.config.task, "target_loss": target, **compared,
            "predicted_saving": plan.saving_vs_static,
            "estimator": {"name": "crossing", "span": SPAN},
            "predicted_interval": None if fit is None else dataclasses.asdict(fit.saving),
            "predicted_plan_interval": None if fit is None else dataclasses.asdict(fit.plan_saving),
            "intervals_overlap": intervals_overlap(measured, None if fit is None else fit.saving),
            "switches": switches, "replanned": self._replan(laws, target, switches),
            "config": self.config.to_dict(),
            "shape_axes": dict(zip(self.names, self.candidates, strict=True)),
            "anneal": self._compare_annealed() if self.anneal else None,
        }

    def _compare_annealed(self) -> dict:
        """Static and adaptive runs after their anneal (``annealing.compare_annealed``)."""
        cooldown = json.loads((self.out / COOLDOWN_PLAN).read_text())
        return compare_annealed(self._annealed("static", self.names),
                                self._annealed("adaptive", ["adaptive"])["adaptive"], cooldown)

    def _replan(self, laws: LawSet, target: float, switches: list[dict]) -> dict | None:
        """The plan again, with each switch costing the mean compute lag the adaptive run
        measured (none if it ran ahead of the laws); None when no lag was measured."""
        lags = [s["lag_flops"] for s in switches if s["lag_flops"] is not None]
        if not lags:
            return None
        switch_flops = max(0.0, float(np.mean(lags)))
        result = self._search(laws, target, switch_flops)
        return {"switch_flops": switch_flops, "saving": result.saving_vs_static,
                "compute": result.optimal.compute, "schedule": list(result.optimal.shapes)}

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
        adaptive = self.adaptive(plan, laws, workers)
        summary = self.compare(laws, static, plan, adaptive)
        write_text_atomic(self.out / "summary.json",
                          json.dumps(summary, indent=2, allow_nan=False) + "\n")
        if stop >= 4:
            from validate.report import write_report

            write_report(self.out, summary, static, plan, adaptive, laws)
        return summary


def run_loop(config: LoopConfig, out_dir: str | Path, *, until: str = "report",
             workers: int = 1, progress: bool = True, slurm: SlurmConfig | None = None) -> dict:
    """Run (or continue) the loop of ``config`` in ``out_dir``; returns ``summary.json``'s
    content (empty when stopped before the comparison). ``workers`` processes train the static
    runs, then the adaptive ones, side by side; with ``slurm``, Slurm jobs train every run."""
    return Loop(config, out_dir, progress, slurm).run(until, workers)


def _train_in_job(config: LoopConfig, out_dir: str, run: Run) -> None:
    """What a Slurm job of the loop runs (``validate.slurm.TrainingJob``)."""
    Loop(config, out_dir)._train(*run.arguments)


def _train_in_worker(job: tuple) -> None:
    import torch

    torch.set_num_threads(1)
    config, out, arguments = job
    Loop(config, out, progress=False)._train(*arguments)


def _evals(records: list[dict]) -> list[dict]:
    return [r for r in records if r.get("event", "eval") == "eval"]
