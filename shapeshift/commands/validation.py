"""The ``validate`` commands: real training with torch (``train``), cool-down branches from
a constant-rate run's kept states (``cooldown``) and the whole measure -> fit -> search ->
train -> compare loop (``run``). torch loads inside the commands.

The training options build one ``TrainConfig`` (``validate train`` receives it as ``config``),
``validate train``'s ``--switch-at`` options or ``--policy online`` one policy
(``validate.switches``), and ``validate run``'s options one ``LoopConfig`` holding its
``TrainConfig``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import click

from laws.errors import InputError
from shapeshift.commands.options import (
    Group,
    echo_json,
    json_flag,
    levels_option,
    option_group,
    target_option,
)
from validate.config import SEED_MAX, SEEDS, LoopConfig, TrainConfig
from validate.schedule import SCHEDULES
from validate.slurm import SlurmConfig, executor_config

if TYPE_CHECKING:
    from validate.tasks import Axes
    from validate.train import RunResult

# The options a task takes, for `validate train` and `validate run` alike.
TASK_OPTIONS = [
    click.option("--eval-size", type=int, default=None,
                 help="vit-patch: test images evaluated (default 2000)."),
    click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                 help="vit-patch: folder with Fashion-MNIST's four .gz files."),
    click.option("--patch-resize", type=click.Choice(["pi", "merge"]), default=None,
                 help="vit-patch: pi (FlexiViT, the default) or merge (a coarse token is "
                      "the mean of the 7x7-patch tokens it covers; patches 7, 14, 28)."),
    click.option("--corpus", type=click.Path(dir_okay=False), default=None,
                 help="lm-context: text file to train on (default: the Python standard "
                      "library)."),
    click.option("--widen-noise", "noise", type=float, default=None,
                 help="mlp-width, lm-context: symmetry-breaking noise when widening."),
]
# Where a run executes and how fast it learns, for both commands.
DEVICE_OPTIONS = [
    click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu",
                 show_default=True),
    click.option("--compile", "compile", is_flag=True,
                 help="torch.compile (on CPU it needs g++); each shape a run takes is "
                      "compiled once per process."),
]
LEARNING_RATE_OPTIONS = [
    click.option("--lr", type=float, default=1e-3, show_default=True,
                 help="The peak rate, reached at the end of the warm-up; constant from then "
                      "on unless --schedule decays it (a loop's runs keep it constant, so "
                      "every static curve is a law at every compute)."),
    click.option("--warmup-steps", type=int, default=50, show_default=True),
    click.option("--ema", type=float, default=0.0, show_default=True, metavar="GAMMA",
                 help="Evaluate the weights' power-function EMA of exponent GAMMA (7: half "
                      "its weight on the last 8% of the steps since the last switch), the "
                      "live model's loss beside it; 0: the live model."),
]
SCHEDULE_OPTIONS = [
    click.option("--schedule", type=click.Choice(SCHEDULES), default="constant",
                 show_default=True,
                 help="The rate, times the warm-up's ramp. constant: --lr; wsd: --lr, then "
                      "linear to 0 over the last --cooldown of the budget; cosine: half a "
                      "cosine from --lr to 0 over the whole budget. Progress is the share of "
                      "the FLOP budget spent: the rate runs on smoothly across a shape switch. "
                      "A loop (validate run) takes constant or wsd: with wsd its runs train at "
                      "--lr, keep states and cool each down (their loss after a wsd anneal at "
                      "several budgets), and are compared after the anneal."),
    click.option("--cooldown", type=float, default=0.2, show_default=True, metavar="SHARE",
                 help="wsd: the share of the FLOP budget over which the rate decays to 0."),
]
TRAIN_OPTIONS = [
    *DEVICE_OPTIONS,
    click.option("--seed", type=click.IntRange(min=0, max=SEED_MAX), default=0,
                 show_default=True),
    *LEARNING_RATE_OPTIONS,
    *SCHEDULE_OPTIONS,
    click.option("--weight-decay", type=float, default=0.0, show_default=True),
    click.option("--batch-lr-rule", type=click.Choice(["sqrt", "linear", "none"]),
                 default="sqrt", show_default=True,
                 help="Learning-rate rescaling when the batch size changes."),
    click.option("--evals", type=click.IntRange(min=2), default=30, show_default=True,
                 help="Evaluations, spaced geometrically from 1% of the budget to all of it."),
    click.option("--checkpoint-every", type=click.IntRange(min=1), default=500,
                 show_default=True, metavar="STEPS"),
    *TASK_OPTIONS,
]
LOOP_OPTIONS = [
    click.argument("task_name", metavar="TASK"),
    click.option("--shapes", "shape_texts", required=True, multiple=True,
                 metavar="AXIS=N,...;...",
                 help="Candidate shapes, separated by ';' or given repeatedly, e.g. "
                      "'patch=14;patch=7;patch=4'."),
    click.option("--common", "common_text", default="", metavar="AXIS=N,...",
                 help="Axes every shape shares, e.g. dim=64,depth=4 (else the task's "
                      "defaults)."),
    click.option("--budget", type=float, required=True, metavar="FLOPS",
                 help="Training FLOPs of each static run."),
    target_option("Loss to reach (default: the lowest loss a static shape's seed-mean curve "
                  "reads at 70% of the budget)."),
    click.option("--seeds", type=int, default=SEEDS, show_default=True,
                 help="Paired seeds: seed k's static run of every shape and its adaptive run "
                      "share initial weights and batch order."),
    click.option("--adaptive-budget", type=float, metavar="FLOPS",
                 help="Training FLOPs of the adaptive run (default: --budget)."),
    levels_option(),
    click.option("--bootstrap", type=click.IntRange(min=0), default=200, show_default=True,
                 metavar="N", help="Fit resamples, for the predicted saving's interval."),
    # The training options of the loop's runs (the rest take TrainConfig's defaults).
    *DEVICE_OPTIONS,
    *LEARNING_RATE_OPTIONS,
    *SCHEDULE_OPTIONS,
    click.option("--evals", type=click.IntRange(min=4), default=30, show_default=True,
                 help="Evaluations per run, spaced geometrically from 1% of its budget."),
    *TASK_OPTIONS,
]


def _train_config(*, eval_size: int | None, data_dir: str | None, patch_resize: str | None,
                  corpus: str | None, noise: float | None, **settings) -> TrainConfig:
    """The training options as one config; task options left unset take the task's defaults."""
    given = {"eval_size": eval_size, "data_dir": data_dir, "patch_resize": patch_resize,
             "corpus": corpus, "noise": noise}
    return TrainConfig(**settings, task_options={key: value for key, value in given.items()
                                                 if value is not None})


def _loop_config(task_name: str, shape_texts: tuple[str, ...], common_text: str, budget: float,
                 target: float | None, seeds: int, adaptive_budget: float | None, levels: int,
                 bootstrap: int, **training) -> LoopConfig:
    """The loop's options as one ``LoopConfig`` (with the ``TrainConfig`` of its runs)."""
    from validate.candidates import parse_candidates
    from validate.tasks import parse_axes

    common = parse_axes(common_text, "--common") if common_text else {}
    if target is not None and not 0 < target < math.inf:
        raise InputError(f"--target {target}: must be a positive, finite loss")
    return LoopConfig(task_name, parse_candidates(shape_texts), budget, target=target,
                      seeds=seeds, common=common, train=_train_config(**training),
                      levels=levels, adaptive_budget=adaptive_budget, bootstrap=bootstrap)


@click.group(name="validate", cls=Group)
def validate_group() -> None:
    """Real training with torch: models that change shape while they train."""


@validate_group.command(name="train")
@click.argument("task_name", metavar="TASK")
@click.option("--shape", "shape_text", default="", metavar="AXIS=N,...",
              help="Starting shape, e.g. patch=7,batch=128; unset axes take the task's defaults.")
@click.option("--switch-at", "switch_texts", multiple=True, metavar="WHEN:AXIS=N,...",
              help="Switch shape: 0.5:patch=4 (fraction of the budget), flops=3e12:patch=4, "
                   "or loss=0.6:patch=4 (first eval at or below). Repeatable, in order.")
@click.option("--policy", "policy_name", type=click.Choice(["switch-at", "online"]),
              default="switch-at", show_default=True,
              help="switch-at: the --switch-at schedule (static without one); online: start "
                   "on the plan of --laws or --preset and re-plan on their posterior as the "
                   "evaluations come in (the simulator's `online`; its updates go into "
                   "curve.jsonl).")
@click.option("--laws", "laws_file", type=click.Path(dir_okay=False), metavar="LAWS.json",
              help="online: the law set (best fitted with --bootstrap) whose shapes the run "
                   "may take.")
@click.option("--preset", metavar="NAME", help="online: a built-in law set (see `presets`).")
@target_option("online: loss to reach (default: the law set's default_target).")
@click.option("--update-every", type=click.IntRange(min=1), default=5, show_default=True,
              metavar="EVALS",
              help="online: evaluations between posterior updates (from the 10th on).")
@click.option("--budget", type=float, required=True, metavar="FLOPS", help="Training FLOPs.")
@click.option("-o", "--out", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder: curve.jsonl, checkpoint.pt, result.json.")
@click.option("--resume", is_flag=True, help="Continue the run saved in the run folder.")
@click.option("--keep-at", "keep_text", metavar="F1,F2,...|auto:K",
              help="A constant-rate run (static or switching) evaluates and keeps its whole state "
                   "(branch-<index>.pt) at the first step at or past each FLOP level (auto:K: "
                   "K levels spaced geometrically from the first evaluation, below the "
                   "budget), for `validate cooldown`.")
@option_group(TRAIN_OPTIONS, _train_config, "config")
@json_flag("One JSON object on stdout.")
def validate_train(task_name: str, shape_text: str, switch_texts: tuple[str, ...],
                   policy_name: str, laws_file: str | None, preset: str | None,
                   target: float | None, update_every: int, budget: float, run_dir: str,
                   resume: bool, keep_text: str | None, config: TrainConfig,
                   as_json: bool) -> None:
    """Train TASK (vit-patch, mlp-width, lm-context) for --budget FLOPs and log its curve."""
    from dataclasses import asdict, replace

    from laws.io.source import LawSource
    from validate.cooldown import parse_keep_at
    from validate.switches import online_policy, parse_switch, switch_schedule
    from validate.tasks import make_task, parse_axes
    from validate.train import train

    if keep_text is not None:
        config = replace(config, keep_at=parse_keep_at(keep_text, budget, config.first_eval))
    axes = parse_axes(shape_text) if shape_text else {}
    switches = [parse_switch(text, budget) for text in switch_texts]
    task = make_task(task_name, **config.task_options)
    if policy_name == "online":
        if switches:
            raise InputError("--switch-at writes a schedule: it goes with --policy switch-at")
        policy, shapes = online_policy(LawSource.named(laws_file, preset).load(), target,
                                       update_every)
        axes = axes or shapes[policy.schedule[0][0]]  # where the plan starts
    elif laws_file or preset or target is not None:
        raise InputError("--laws, --preset and --target are for --policy online")
    else:
        policy, shapes = switch_schedule(task, axes, switches)
    result = train(task, axes, budget, policy, config, shapes=shapes, run_dir=run_dir,
                   resume=resume)
    if as_json:
        echo_json({**asdict(result), "run_dir": str(result.run_dir)})
    else:
        click.echo(format_result(result))


@validate_group.command(name="cooldown")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(file_okay=False))
@click.option("--share", type=float, default=0.2, show_default=True,
              help="The cool-down's share of each branch's budget: the branch from a state at "
                   "C trained FLOPs trains to C / (1 - SHARE), its rate linear from --lr at C "
                   "to 0 there (the wsd run of that budget, exactly).")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder of the branches (branch-<index>/, each a run folder) and "
                   "annealed.jsonl (default RUN_DIR/cooldown-SHARE); rerunning continues it.")
@DEVICE_OPTIONS[0]
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=500,
              show_default=True, metavar="STEPS")
@json_flag("The rows of annealed.jsonl as one JSON list.")
def validate_cooldown(run_dir: str, share: float, out_dir: str | None, device: str,
                      checkpoint_every: int, as_json: bool) -> None:
    """Cool down every state RUN_DIR kept (validate train --keep-at): annealed losses."""
    from laws.tables import format_table
    from validate.cooldown import cool_down

    rows = cool_down(run_dir, share, out_dir, device=device, checkpoint_every=checkpoint_every)
    if as_json:
        echo_json(rows)
        return
    keys = ["branch", "step", "flops", "budget", "constant_loss", "annealed_loss", "shape"]
    click.echo(format_table(keys, [[row[key] for key in keys] for row in rows]))


# Where the loop's runs train: here, or each as a Slurm job (validate/slurm.py).
EXECUTOR_OPTIONS = [
    click.option("--executor", type=click.Choice(["local", "slurm"]), default="local",
                 show_default=True,
                 help="local: this machine's processes; slurm: every run a Slurm job "
                      "(submitit), the static runs one job array."),
    click.option("--partition", default=None, help="slurm: partition of the jobs."),
    click.option("--account", default=None, help="slurm: account charged for the jobs."),
    click.option("--time-limit", type=int, default=60, show_default=True, metavar="MINUTES",
                 help="slurm: time limit per job; a job reaching it is requeued and resumes."),
    click.option("--cpus-per-job", type=int, default=1, show_default=True,
                 help="slurm: CPUs per process of a job (and torch's threads)."),
    click.option("--gpus-per-job", type=int, default=0, show_default=True,
                 help="slurm: GPUs per job (use with --device cuda)."),
    click.option("--tasks-per-job", type=int, default=1, show_default=True,
                 help="slurm: processes per job; more than one train in DDP."),
]


@validate_group.command(name="run")
@option_group(LOOP_OPTIONS, _loop_config, "config")
@option_group(EXECUTOR_OPTIONS, executor_config, "slurm")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes that train the static runs side by side (--executor local).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for torch (1 is fastest for small models on a busy machine).")
@click.option("--until", type=click.Choice(["static", "fit", "plan", "adaptive", "report"]),
              default="report", show_default=True, help="Stop after this stage.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Loop folder; rerunning with the same options continues it.")
@json_flag("The summary as one JSON object.")
def validate_run(config: LoopConfig, slurm: SlurmConfig | None, workers: int,
                 threads: int | None, until: str, out_dir: str, as_json: bool) -> None:
    """Measure static runs of TASK, fit laws, plan, train the plan, and compare (resumable)."""
    import torch

    from laws.io.atomic import check_writable
    from validate.loop import run_loop
    from validate.report import format_summary

    check_writable(Path(out_dir) / "loop.json")
    if threads:
        torch.set_num_threads(threads)
    summary = run_loop(config, out_dir, until=until, workers=workers, slurm=slurm)
    if as_json:
        echo_json(summary)
    elif summary:
        click.echo(format_summary(summary))


def format_result(result: RunResult) -> str:
    """The curve as an aligned table, then the switches and the FLOP/s reached."""
    from laws.tables import format_table

    def axes(values: Axes) -> str:
        return ",".join(f"{k}={v}" for k, v in values.items())

    rows = [[r["step"], r["flops"], r["train_loss"], r["eval_loss"], axes(r["shape"])]
            for r in result.curve]
    lines = [format_table(["step", "flops", "train_loss", "eval_loss", "shape"], rows)]
    lines += [f"switch at step {s['step']} ({s['flops']:.3e} FLOPs): {axes(s['from'])} -> "
              f"{axes(s['to'])}" for s in result.switches]
    lines.append(f"FLOP/s reached: {result.flops_per_second:.3e}")
    return "\n".join(lines)
