"""The confirmation loop with a final anneal (``--schedule wsd``): runs that cool down at the
end, static and adaptive alike, measured after their anneal.

A wsd run of budget B trains at the peak rate until (1 - F) B, then decays; up to there it is
the constant-rate run, so the loop trains every run at the constant rate, keeps its state at
some of its evaluation levels, and cools each kept state down over the share F
(``validate/cooldown.py``: the branch from C FLOPs IS the wsd run of budget C / (1 - F)). A
run's annealed curve is those branches' final losses against the FLOPs they trained: its loss
after a wsd anneal at several budgets, read by the same estimator as any curve
(``measured.crossing``). An adaptive run's branch cools down on the shape it is on, switching
no more: the plan's switches belong to the stable phase.

The plan is made for the anneal (``laws.search.cooldown``): the laws of the static shapes'
annealed curves join the constant-rate laws in ``laws.json`` (``Shape.annealed``), the plan
to the target after the anneal is ``cooldown_plan.json``, and ``plan.json`` is its stable
phase, which the adaptive runs follow.

    keep_levels(TrainConfig(evals=24), 6e12)   # the evaluation levels whose states it keeps
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from laws.errors import InputError
from laws.lawset import LawSet
from validate.config import LoopConfig, TrainConfig
from validate.cooldown import ANNEALED, cool_down
from validate.train import RESULT

if TYPE_CHECKING:
    from laws.search import Plan, PlanRequest
    from laws.search.cooldown import CooldownPlan

# States are kept at up to ``KEEP_BRANCHES`` of the evaluation levels from ``KEEP_FROM`` of the
# budget on, spread evenly over them and always the last: a branch trains F / (1 - F) of the
# FLOPs before it, so branches from the whole curve would cost more than the run (six from 0.3
# of the budget cost about 0.8 of the run's FLOPs at F = 0.2); the target lies near TARGET_AT
# (0.7) of the budget, and a crossing is read off the branches within 0.35 decades of it.
KEEP_FROM = 0.3
KEEP_BRANCHES = 6
# Branches a run needs: each shape's annealed law is fitted to its seed-averaged branches,
# where at least MIN_ANNEALED_POINTS of them fall (the power law's 3 parameters and one more).
MIN_BRANCHES = 5
MIN_ANNEALED_POINTS = 4


def keep_levels(config: TrainConfig, budget: float) -> tuple[float, ...]:
    """The evaluation levels of a run of ``budget`` at which the loop keeps its state: up to
    ``KEEP_BRANCHES`` of those from ``KEEP_FROM`` of the budget to the last below it, evenly
    spread by index. Each is a level the run evaluates at anyway, so keeping there adds no
    evaluation (and nothing a policy could see).

    >>> import math
    >>> levels = keep_levels(TrainConfig(evals=17, first_eval=0.01), 1e8)  # 10^(6 + i/8)
    >>> [round(math.log10(level), 3) for level in levels]   # from 10^7.48, below 10^8
    [7.5, 7.625, 7.75, 7.875]
    >>> many = keep_levels(TrainConfig(evals=96), 1e8)    # 25 levels from 0.3 of it: six kept
    >>> len(many), many[-1] == TrainConfig(evals=96).eval_levels(1e8)[-2]
    (6, True)
    """
    levels = [level for level in config.eval_levels(budget)
              if KEEP_FROM * budget <= level < budget]
    if len(levels) <= KEEP_BRANCHES:
        return tuple(levels)
    picked = np.linspace(0, len(levels) - 1, KEEP_BRANCHES).round().astype(int)
    return tuple(levels[i] for i in picked)


def check_branches(config: LoopConfig) -> None:
    """Refuse, before any training, a loop whose runs keep too few states to fit an annealed
    law to (``MIN_BRANCHES``), for the static and the adaptive budget.

    >>> check_branches(LoopConfig("t", ({"a": 1},), 1e9, train=TrainConfig(evals=12)))
    Traceback (most recent call last):
    ...
    laws.errors.InputError: --schedule wsd: ... --evals 12 leaves 2 of them for --budget 1e+09; ...
    """
    for budget, option in ((config.budget, "--budget"),
                           (config.adaptive_budget, "--adaptive-budget")):
        kept = 0 if budget is None else len(keep_levels(config.train, budget))
        if budget is not None and kept < MIN_BRANCHES:
            raise InputError(f"--schedule wsd: a loop cools its runs down from their evaluation "
                             f"levels past {KEEP_FROM:g} of the budget, and --evals "
                             f"{config.train.evals} leaves {kept} of them for {option} "
                             f"{budget:g}; the annealed laws need {MIN_BRANCHES}: raise --evals")


def stable_phase(config: TrainConfig, budget: float) -> TrainConfig:
    """How the loop trains a run that ``config`` anneals (schedule wsd): at the constant rate,
    keeping its state at ``keep_levels``."""
    return dataclasses.replace(config, schedule="constant",
                               keep_at=keep_levels(config, budget))


def cooled_folder(run_dir: Path, share: float) -> Path:
    """Where ``cool_down`` puts a run's branches and ``annealed.jsonl``."""
    return run_dir / f"cooldown-{share:g}"


def finished(run_dir: Path, config: TrainConfig) -> bool:
    """Whether the run in ``run_dir`` is done: trained, and cooled down where ``config``
    anneals."""
    if not (run_dir / RESULT).is_file():
        return False
    return config.schedule != "wsd" or (cooled_folder(run_dir, config.cooldown)
                                        / ANNEALED).is_file()


def cool_run(run_dir: Path, config: TrainConfig, progress: bool) -> None:
    """Cool down every state the run kept (resuming a killed branch), unless done."""
    if config.schedule == "wsd" and not finished(run_dir, config):
        cool_down(run_dir, config.cooldown, device=config.device,
                  checkpoint_every=config.checkpoint_every, progress=progress)


def annealed_curve(run_dir: Path, share: float) -> list[dict]:
    """The run's annealed curve: per branch, in order, the FLOPs and seconds trained by the
    end of its cool-down, its final eval loss and the shape it cooled down on (records as a
    curve's, for ``measured``)."""
    folder = cooled_folder(run_dir, share)
    curve = []
    for line in (folder / ANNEALED).read_text().splitlines():
        row = json.loads(line)
        final = json.loads((folder / row["branch"] / RESULT).read_text())["final"]
        curve.append({"flops": row["annealed_flops"], "time": final["time"],
                      "eval_loss": row["annealed_loss"], "step": final["step"],
                      "shape": final["shape"], "budget": row["budget"]})
    return curve


def annealed_runs(out: Path, kind: str, names: list[str], seeds: int,
                  share: float) -> dict[str, list[list[dict]]]:
    """The annealed curves of the loop's runs of ``kind`` (static: one per shape and seed under
    ``static/<name>/seed<k>``; adaptive: ``adaptive/seed<k>``, ``names`` then ``["adaptive"]``)."""
    folder = out / kind
    return {name: [annealed_curve((folder / name if kind == "static" else folder)
                                  / f"seed{seed}", share) for seed in range(seeds)]
            for name in names}


def fit_annealed(laws: LawSet, static: dict[str, list[list[dict]]], axes: list[dict],
                 form: str, shared: tuple[str, ...], share: float, source: str) -> LawSet:
    """``laws`` with the law of each shape's seed-averaged annealed curve (``form``, sharing
    ``shared`` as the constant-rate fit did), for a cool-down of ``share``. A curve that rises
    after its lowest point (``measured.mean_curve`` leaves the rise out: an overfitting shape,
    whose anneal sharpens the rise) with fewer than ``MIN_ANNEALED_POINTS`` left gets no law:
    the plan may train that shape but not end on it."""
    from laws.fit import fit_curves
    from laws.io.curves import Curves
    from validate.measured import mean_curve

    curves = [mean_curve(name, shape, runs, warmup_steps=0)
              for (name, runs), shape in zip(static.items(), axes, strict=True)]
    kept = [curve for curve in curves if len(curve) >= MIN_ANNEALED_POINTS]
    if not kept:
        raise InputError(f"{source}: no shape's annealed curve falls over "
                         f"{MIN_ANNEALED_POINTS} branches: nothing to plan the anneal with")
    fitted = fit_curves(Curves(source, tuple(kept)), form, shared, name=laws.name)
    return laws.with_annealed(fitted.laws, share)


def plan_to_anneal(laws: LawSet, request: PlanRequest, path: Path) -> tuple[Plan, CooldownPlan]:
    """The plan of ``request`` to the loss after the anneal (``laws.search.cooldown``), written
    to ``path``, and the ``Plan`` of its stable phase: the route the adaptive runs follow."""
    from laws.search import plan
    from laws.search.cooldown import plan_with_cooldown, write_cooldown_plan

    cooldown = plan_with_cooldown(laws, request)
    write_cooldown_plan(cooldown, path)
    return plan(laws, cooldown.ending.request), cooldown


def compare_annealed(static: dict[str, list[list[dict]]], adaptive: list[list[dict]],
                     cooldown_plan: dict) -> dict:
    """Static and adaptive runs after their anneal, to the target of ``cooldown_plan``
    (``laws.search.cooldown``, as JSON), measured as the constant-rate comparison measures
    curves (``measured.compare_runs`` on the annealed curves), beside the saving that plan
    predicts from the annealed laws."""
    from validate.measured import compare_runs

    ending = cooldown_plan["ending"]
    compared = compare_runs(static, adaptive, cooldown_plan["target_loss"],
                            cooldown_plan["static_best"]["shape"],
                            {**cooldown_plan["static"], "adaptive": ending["compute"]})
    return {"share": cooldown_plan["cooldown"], "target_loss": cooldown_plan["target_loss"],
            **compared, "predicted_saving": cooldown_plan["saving_vs_static"],
            "plan": {"ending": ending["shape"], "stable_loss": ending["stable_loss"],
                     "schedule": [segment["shape"] for segment in ending["route"]["schedule"]]}}
