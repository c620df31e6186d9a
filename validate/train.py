"""The training loop: one run of a task under a FLOP budget, its shape chosen by a policy.

    result = train("vit-patch", {"patch": 7}, budget_flops=1e12,
                   config=TrainConfig(lr=1e-3, evals=20), run_dir="runs/a")
    result.curve   # [{"step", "flops", "time", "shape", "train_loss", "eval_loss", ...}, ...]

What to train is given directly: the task, the axes it starts at, the FLOP budget, and a
policy of ``sim.policies`` (the objects the simulator runs) choosing among named ``shapes``;
without one the run is static. ``validate train --switch-at`` writes a schedule
(``validate.switches.switch_schedule``); the confirmation loop passes ``planned(plan, laws)``.
How to train is one ``TrainConfig`` (``validate/config.py``).

Each step draws the global batch that starts at the current data position, runs forward and
backward (bf16 autocast on CUDA), clips the gradient norm to 1 and takes an AdamW step at the
rate of ``config.schedule`` (schedule.py). The eval loss is measured at the start, at ``evals``
FLOP levels spaced geometrically up to the budget, and at the end; the run stops before the step
that would exceed the budget. A ``validate.controller.ShapeController``, as in anyone's loop,
adds up each step's FLOPs (measured once per shape with ``FlopCounterMode``), asks the policy at
each evaluation (and at a FLOP level the policy names), applies a switch (``Task.change``; a
batch-size change rescales the learning rate) and writes ``curve.jsonl``.

With ``run_dir`` the run writes ``curve.jsonl`` (one line per evaluation or switch),
``checkpoint.pt`` every ``checkpoint_every`` steps and at the end (atomically), and
``result.json`` at the end. ``resume=True`` continues from the checkpoint; on CPU the resumed
run ends exactly where an uninterrupted one would. With ``config.keep_at`` a run, switching or
not, also evaluates and keeps its state at each keep point, for branches (cooldown.py). Under
``torchrun`` (WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel, each rank trains
on its slice of the same global batch, and only rank 0 writes.
"""

from __future__ import annotations

import copy
import gc
import json
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from laws.errors import InputError
from laws.io.atomic import check_writable, remove_stale_temporaries, write_text_atomic
from laws.io.lock import holding
from sim.policies import Policy, Static
from validate.average import PowerAverage
from validate.checkpoints import (
    CHECKPOINT,
    check_keep_points,
    kept_state_path,
    policy_record,
    read_state,
    write_state,
)
from validate.config import TrainConfig
from validate.controller import CURVE, ShapeController
from validate.devices import Devices
from validate.operators import BatchSize, Operator
from validate.preflight import check_budget, check_memory, check_route
from validate.reshape import batch_lr_scale
from validate.tasks import Axes, Task, make_task, shape_name

RESULT = "result.json"


@dataclass
class RunResult:
    """The curve (evaluations), the switches that fired, and the summary of one run."""

    curve: list[dict]
    switches: list[dict]
    final: dict
    flops_per_second: float
    resumed_from_step: int = 0  # 0 for a fresh run, else the checkpoint's step
    run_dir: Path | None = None
    provenance: dict = field(default_factory=dict)


def train(
    task: str | Task,
    axes: Axes,
    budget_flops: float,
    policy: Policy | None = None,
    config: TrainConfig | None = None,
    *,
    shapes: Mapping[str, Axes] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> RunResult:
    """Train one run from ``axes`` (unset axes take the task's defaults) for ``budget_flops``
    with ``config`` (default: ``TrainConfig()``), switching shape as ``policy`` decides among
    ``shapes`` (name -> axes, one of them the start; default: the start alone, named by
    ``shape_name``); see the module docstring. A ``Task`` object is used as given
    (``config.task_options`` are then only recorded). All user errors raise ``InputError`` up
    front."""
    config = config or TrainConfig()
    task = task if isinstance(task, Task) else make_task(task, **config.task_options)
    start = task.complete(axes)
    named = {name: task.complete(value) for name, value in
             (shapes if shapes is not None else {shape_name(start): start}).items()}
    first = next((name for name, value in named.items() if value == start), None)
    if first is None:
        raise InputError(f"the start shape {shape_name(start)} is none of the shapes "
                         f"{', '.join(named)}")
    policy = policy or Static(first)
    check_route(task, named, first, policy)
    batch_lr_scale(1, 1, config.batch_lr_rule)  # rejects an unknown rule before any work
    check_keep_points(config.keep_at, budget_flops, run_dir)
    recorded = {"task": task.name, "shape": start, "budget_flops": budget_flops,
                "shapes": named, "policy": policy_record(policy), **config.recorded()}
    devices = Devices(config.device, config.compile)
    run = _Run(task, config, recorded, first, policy, devices, run_dir, progress)
    check_memory(task, named, config.device)  # after _Run loaded the data: its absence first
    check_budget(task, start, budget_flops)
    if run_dir is None or devices.rank != 0:  # rank 0 alone writes, and owns the folder
        run.start(resume)
        return run.execute()
    check_writable(Path(run_dir) / CHECKPOINT)
    with holding(run_dir):  # a second run into this folder is refused (laws.io.lock)
        if not resume and (Path(run_dir) / CURVE).is_file():
            raise InputError(f"{run_dir} holds the records of another run (curve.jsonl); pass "
                             "--resume to continue it or choose another output folder")
        run.start(resume)
        return run.execute()


class _TaskAxis(Operator):
    """One axis of a task's own model, changed by ``Task.change`` from the run's current axes
    (``current()``) to the same axes with this one changed."""

    def __init__(self, task: Task, model: nn.Module, axis: str, generator: torch.Generator,
                 current: Callable[[], Axes]) -> None:
        self.task, self.model, self.axis = task, model, axis
        self.generator, self.current = generator, current

    def apply(self, optimizer: torch.optim.Optimizer | None, old: int, new: int) -> None:
        axes = self.current()
        self.task.change(self.model, optimizer, axes, {**axes, self.axis: new}, self.generator)


class _Run:
    """One run's state: ``config`` says how it trains, ``recorded`` what must match to resume
    it (the task, start, budget, shapes, policy and ``config.recorded()``); the controller holds
    the progress (steps, FLOPs, shape, curve), ``loop`` the evaluation progress."""

    def __init__(self, task: Task, config: TrainConfig, recorded: dict, first: str,
                 policy: Policy, devices: Devices, run_dir: str | Path | None,
                 progress: bool) -> None:
        self.task, self.config, self.recorded = task, config, recorded
        self.first, self.policy, self.devices = first, policy, devices
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.writes = self.run_dir is not None and devices.rank == 0
        self.progress = progress and devices.rank == 0
        self.provenance = task.provenance()  # loads the data: a missing data set fails here
        self.controller: ShapeController | None = None
        self.wrapped: nn.Module | None = None
        self.wrapped_shape: str | None = None
        self.train_loss: torch.Tensor | float = 0.0
        self.average = PowerAverage(config.ema) if config.ema else None
        self.averaged_shape: str | None = None  # the shape the average restarted at

    # --- set-up, checkpoints and resuming ---
    def start(self, resume: bool) -> None:
        checkpoint = self.run_dir / CHECKPOINT if self.run_dir else None
        if self.writes:
            remove_stale_temporaries(checkpoint)  # a killed run's half-written checkpoint
        exists = checkpoint is not None and checkpoint.is_file()
        if exists and not resume:
            raise InputError(f"{self.run_dir} already holds a run; pass --resume to continue "
                             "it or choose another output folder")
        saved = read_state(checkpoint, self.recorded) if exists else None
        config, start = self.config, self.recorded["shape"]
        torch.manual_seed(config.seed)
        self.model = self.task.build(start).to(self.devices.device)
        # fused: one kernel for every parameter's update instead of about ten small operations
        # per parameter, which small models would spend most of an update on.
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr,
                                           betas=(0.9, 0.95), weight_decay=config.weight_decay,
                                           fused=True)
        budget = self.recorded["budget_flops"]  # progress: its share spent (0 before any step)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: (
            config.lr_factor(step, getattr(self.controller, "trained_flops", 0) / budget)))
        self.generator = torch.Generator().manual_seed(config.seed + 1)
        self.controller = ShapeController(
            self.optimizer, self.policy, self.recorded["shapes"], self.operators(start),
            shape=self.first, run_dir=self.run_dir if self.writes else None,
            scheduler=self.scheduler, flops=self.step_flops, seed=config.seed)
        self.loop = saved["loop"] if saved else {"next_eval": 0, "train_sum": 0.0,
                                                 "train_steps": 0}
        if saved:
            self.controller.load_state_dict(saved["controller"])  # the model at the saved shape
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.scheduler.load_state_dict(saved["scheduler"])
            self.generator.set_state(saved["generator"])
            torch.set_rng_state(saved["torch_rng"])
            if self.average is not None:
                self.average.load_state_dict(saved["average"], self.model)
                self.averaged_shape = self.controller.shape_name
        self.resumed_from_step = self.controller.steps

    def operators(self, start: Axes) -> dict[str, Operator]:
        """An operator per changeable axis, in the task's order of axes: the batch by its
        learning-rate rule, the others by ``Task.change`` on this run's model."""
        def current() -> Axes:  # the start until the controller exists (it may switch at once)
            return self.controller.axes if self.controller is not None else dict(start)

        return {axis: BatchSize(self.config.batch_lr_rule) if axis == "batch" else
                _TaskAxis(self.task, self.model, axis, self.generator, current)
                for axis in self.task.defaults if axis in self.task.changeable}

    def save_checkpoint(self) -> None:
        # Folded at every checkpoint step, written or not, so that all runs add alike.
        self.loop["train_sum"] += float(self.train_loss)
        self.train_loss = 0.0
        if self.writes:
            write_state(self.run_dir / CHECKPOINT, self.state())

    def keep(self, index: int) -> None:
        """Keep the state for keep point ``index`` (after the evaluation at this step)."""
        if self.writes:
            write_state(kept_state_path(self.run_dir, index), self.state())
        if self.progress:
            print(f"kept state {index} at step {self.controller.steps}", file=sys.stderr)

    def state(self) -> dict:
        """Everything the run continues from (``validate/checkpoints.py``)."""
        return {"config": self.recorded, "loop": self.loop,
                "controller": self.controller.state_dict(), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(),
                "average": None if self.average is None else self.averaged().state_dict()}

    # --- shapes ---
    def step_flops(self, name: str) -> float:
        """FLOPs of one training step at shape ``name`` (the current one) on the global batch:
        this rank's slice on a copy of the model (no DDP hooks, no stray gradients), times the
        ranks."""
        from validate.flops import measure_flops

        axes, world = self.recorded["shapes"][name], self.devices.world
        probe = copy.deepcopy(self.model)
        batch = self.to_device(self.task.train_batch(axes, 0, 0, 0, world))
        return world * measure_flops(lambda: self.mean_loss(probe, batch, axes).backward())

    def wrap(self) -> None:
        """Wrap the model at its current shape for DDP and compile."""
        self.wrapped = None
        gc.collect()  # an old DDP wrapper must be gone before a new one hooks the parameters
        self.wrapped = self.devices.wrap(self.model)
        self.wrapped_shape = self.controller.shape_name

    # --- training ---
    def to_device(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return tuple(tensor.to(self.devices.device) for tensor in batch)

    def mean_loss(self, model: nn.Module, batch, axes: Axes) -> torch.Tensor:
        with self.devices.autocast():
            total, count = self.task.loss_sum(model, batch, axes)
        return total / count

    def train_step(self, synchronize: bool) -> None:
        """One step on this rank's slice of the global batch at the data position; with
        ``synchronize`` the step's time includes all its device work (before an evaluation)."""
        controller, devices = self.controller, self.devices
        if self.wrapped_shape != controller.shape_name:
            self.wrap()
        axes = controller.axes
        with controller.step(samples=axes["batch"]):  # its FLOPs and seconds; may switch after
            batch = self.to_device(self.task.train_batch(
                axes, self.config.seed, controller.samples, devices.rank, devices.world))
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.mean_loss(self.wrapped, batch, axes)
            loss.backward()
            clip_gradient_norm(self.model.parameters(), 1.0)
            self.optimizer.step()
            if self.average is not None:
                self.averaged().update(self.model)
            self.train_loss = self.train_loss + loss.detach()
            self.loop["train_steps"] += 1
            if synchronize:
                devices.synchronize()
        self.scheduler.step()  # the next step's rate, from the FLOPs spent after a switch too

    def averaged(self) -> PowerAverage:
        """The weights' average, restarted from the live weights after a shape switch."""
        if self.averaged_shape != self.controller.shape_name:
            self.average.reset(self.model)
            self.averaged_shape = self.controller.shape_name
        return self.average

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> float:
        total, count = 0.0, 0
        axes = self.controller.axes
        for batch in self.task.eval_batches(axes, self.devices.rank, self.devices.world):
            with self.devices.autocast():
                loss_sum, terms = self.task.loss_sum(model, self.to_device(batch), axes)
            total += loss_sum.item()
            count += terms
        total, count = self.devices.sum(total, count)
        return total / count

    def observe(self, final: bool = False) -> None:
        """Evaluate, and give the evaluation to the controller (which may switch, unless the
        run ends here: ``final``)."""
        loop, controller = self.loop, self.controller
        loop["train_sum"] += float(self.train_loss)
        self.train_loss = 0.0
        train_sum, steps = self.devices.sum(loop["train_sum"], loop["train_steps"])
        eval_loss = raw = self.evaluate(self.model)
        if self.average is not None:
            eval_loss = self.evaluate(self.averaged().model)
        if not math.isfinite(eval_loss + raw + train_sum):  # no NaN may reach curve or result.json
            raise InputError(f"the run diverged at step {controller.steps} (eval loss "
                             f"{eval_loss}, train loss sum {train_sum}); lower --lr")
        if self.progress:
            axes = ",".join(f"{k}={v}" for k, v in controller.axes.items())
            train = f"{train_sum / steps:.4f}" if steps else "-"
            print(f"step {controller.steps:>6}  flops {controller.trained_flops:.3e}  train "
                  f"{train}  eval {eval_loss:.4f}  {axes}", file=sys.stderr, flush=True)
        controller.observe(eval_loss, train_sum / steps if steps else None, final=final,
                           extra=None if self.average is None else {"raw_eval_loss": raw})
        loop.update(train_sum=0.0, train_steps=0)

    def evaluation_due(self, flops: float, levels: list[float]) -> bool:
        """Whether ``flops`` reaches the next evaluation level (passing every level it does)."""
        due = False
        while self.loop["next_eval"] < len(levels) and flops >= levels[self.loop["next_eval"]]:
            self.loop["next_eval"] += 1
            due = True
        return due

    def execute(self) -> RunResult:
        controller, config = self.controller, self.config
        budget = self.recorded["budget_flops"]
        levels = config.eval_levels(budget)
        if controller.evaluations == 0:
            self.observe()  # the initial model
        while (after := controller.trained_flops + controller.next_step_flops()) <= budget:
            due = self.evaluation_due(after, levels)  # the FLOPs after the next step
            # Read from the FLOPs alone, so that a resumed run keeps what it had not kept.
            kept = [index for index, level in enumerate(config.keep_at)
                    if controller.trained_flops < level <= after]
            self.train_step(synchronize=due or bool(kept))
            if due or kept:  # once: a keep point at an evaluation level adds no evaluation
                self.observe()
            for index in kept:
                self.keep(index)
            if controller.steps % config.checkpoint_every == 0:
                self.save_checkpoint()
        # The last evaluation or switch (a policy's notes do not count): unless an evaluation
        # at this step ends the curve, evaluate once more.
        last = next(r for r in reversed(controller.records) if r["event"] in ("eval", "switch"))
        if last["event"] != "eval" or last["step"] != controller.steps:
            self.observe(final=True)
        self.save_checkpoint()
        return self.finish()

    def finish(self) -> RunResult:
        records, controller = self.controller.records, self.controller
        curve = [r for r in records if r["event"] == "eval"]
        switches = [r for r in records if r["event"] == "switch"]
        seconds = controller.seconds
        result = RunResult(curve, switches, curve[-1],
                           controller.trained_flops / seconds if seconds else 0.0,
                           self.resumed_from_step, self.run_dir, self.provenance)
        if self.writes:
            summary = {"config": self.recorded, "final": result.final, "switches": switches,
                       "flops_per_second": result.flops_per_second,
                       "resumed_from_step": result.resumed_from_step,
                       "device": str(self.devices.device), "world_size": self.devices.world,
                       "torch": torch.__version__, "data": self.provenance}
            write_text_atomic(self.run_dir / RESULT, json.dumps(summary, indent=2) + "\n")
        # The DDP wrapper (its Reducer holds the process group) must be gone before the group.
        self.wrapped = self.wrapped_shape = None
        self.devices.close()
        return result


def clip_gradient_norm(parameters, max_norm: float) -> torch.Tensor:
    """Scale the gradients so that their joint norm is at most ``max_norm``, as
    ``nn.utils.clip_grad_norm_`` does, and return the norm before. The norm is taken over the
    gradients concatenated: one kernel, where torch's per-tensor norms cost a small model's
    step several percent.

    >>> weight = torch.zeros(2, requires_grad=True)
    >>> weight.grad = torch.tensor([3.0, 4.0])
    >>> float(clip_gradient_norm([weight], 1.0)), [round(g, 6) for g in weight.grad.tolist()]
    (5.0, [0.6, 0.8])
    """
    grads = [param.grad for param in parameters if param.grad is not None]
    norm = torch.linalg.vector_norm(torch.cat([grad.flatten() for grad in grads]))
    torch._foreach_mul_(grads, (max_norm / (norm + 1e-6)).clamp(max=1.0))
    return norm
