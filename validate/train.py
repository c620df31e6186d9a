"""The training loop: one run of a task under a FLOP budget, static or with shape switches.

    result = train("vit-patch", {"patch": 7}, budget_flops=1e12,
                   switches=[Switch({"patch": 4}, at_loss=0.6)], run_dir="runs/a")
    result.curve   # [{"step", "flops", "time", "shape", "train_loss", "eval_loss", ...}, ...]

Each step draws the global batch that starts at the current data position, runs forward and
backward (bf16 autocast on CUDA), clips the gradient norm to 1 and takes an AdamW step. The
FLOPs of a step are measured once per shape with ``FlopCounterMode`` and added up; the run
stops before the step that would exceed the budget. The eval loss is measured at the start, at
``evals`` FLOP levels spaced geometrically up to the budget, and at the end. A switch fires
before the first step at which its FLOP level is reached, or right after the first evaluation
at or below its loss level; switches fire in the order given.

With ``run_dir`` the run writes ``curve.jsonl`` (one line per evaluation or switch),
``checkpoint.pt`` every ``checkpoint_every`` steps and at the end (atomically: model, optimizer,
random states, data position, shape, curve), and ``result.json`` at the end. ``resume=True``
continues from the checkpoint; on CPU the resumed run ends exactly where an uninterrupted one
would. Under ``torchrun`` (WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel,
each rank trains on its slice of the same global batch, and only rank 0 writes.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import io
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from laws.errors import InputError
from laws.io.atomic import write_bytes_atomic, write_text_atomic
from validate.reshape import batch_lr_scale
from validate.tasks import Shape, Task, make_task, parse_shape

CHECKPOINT, CURVE, RESULT = "checkpoint.pt", "curve.jsonl", "result.json"


@dataclass(frozen=True)
class Switch:
    """Change to ``shape`` (only the axes that change) at a FLOP level or an eval-loss level.

    >>> Switch({"patch": 4}, at_loss=0.6)
    Switch(shape={'patch': 4}, at_flops=None, at_loss=0.6)
    """

    shape: dict[str, int]
    at_flops: float | None = None
    at_loss: float | None = None

    def __post_init__(self) -> None:
        if (self.at_flops is None) == (self.at_loss is None):
            raise InputError("a switch needs exactly one of a FLOP level and a loss level")


def parse_switch(text: str, budget_flops: float) -> Switch:
    """``FRACTION:SHAPE`` (of the budget), ``flops=F:SHAPE`` or ``loss=L:SHAPE``.

    >>> parse_switch("0.5:patch=4", 1e12)
    Switch(shape={'patch': 4}, at_flops=500000000000.0, at_loss=None)
    >>> parse_switch("loss=0.6:patch=4,batch=256", 1e12).at_loss
    0.6
    """
    where, sep, shape_text = text.partition(":")
    kind, _, number = where.rpartition("=")
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not sep or kind not in ("", "flops", "loss") or not math.isfinite(value) or value <= 0:
        raise InputError(f"--switch-at {text!r}: expected FRACTION:SHAPE, flops=F:SHAPE or "
                         "loss=L:SHAPE, e.g. 0.5:patch=4 or loss=0.6:patch=4")
    shape = parse_shape(shape_text, option="--switch-at")
    if kind == "loss":
        return Switch(shape, at_loss=value)
    if kind == "" and value >= 1:
        raise InputError(f"--switch-at {text!r}: a fraction of the budget must be below 1")
    return Switch(shape, at_flops=value * budget_flops if kind == "" else value)


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
    shape: Shape,
    budget_flops: float,
    switches: Sequence[Switch] = (),
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    seed: int = 0,
    lr: float = 1e-3,
    warmup_steps: int = 50,
    weight_decay: float = 0.0,
    batch_lr_rule: str = "sqrt",
    evals: int = 30,
    first_eval: float = 0.01,
    checkpoint_every: int = 500,
    device: str = "cpu",
    compile: bool = False,
    task_options: dict | None = None,
    progress: bool = True,
) -> RunResult:
    """Train one run; see the module docstring. All user errors raise ``InputError`` up front."""
    if not budget_flops > 0:
        raise InputError(f"--budget {budget_flops}: must be a positive number of FLOPs")
    task = task if isinstance(task, Task) else make_task(task, **(task_options or {}))
    start = task.complete(shape)
    plan, previous = [], start
    for switch in switches:
        target = task.complete(switch.shape, base=previous)
        task.check_change(previous, target)
        plan.append((switch, target))
        previous = target
    config = {
        "task": task.name, "shape": start, "budget_flops": budget_flops,
        "switches": [dataclasses.asdict(s) for s in switches], "seed": seed, "lr": lr,
        "warmup_steps": warmup_steps, "weight_decay": weight_decay,
        "batch_lr_rule": batch_lr_rule, "evals": evals, "first_eval": first_eval,
        "task_options": {k: v for k, v in (task_options or {}).items() if v is not None},
    }
    batch_lr_scale(1, 1, batch_lr_rule)  # rejects an unknown rule before any work
    run = _Run(task, config, plan, _Devices(device, compile), run_dir, progress)
    run.start(resume, checkpoint_every)
    return run.execute()


class _Devices:
    """Where the run executes: device, autocast, compile and the DDP process group."""

    def __init__(self, device: str, compile: bool) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if device not in ("cpu", "cuda"):
            raise InputError(f"--device {device!r}: use cpu or cuda")
        if device == "cuda" and not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA device is available")
        if compile and device != "cuda":
            raise InputError("--compile needs --device cuda")
        self.compile = compile
        self.device = torch.device(device)
        if device == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
        self.owns_group = self.world > 1 and not dist.is_initialized()
        if self.owns_group:
            dist.init_process_group("nccl" if device == "cuda" else "gloo")

    def autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def wrap(self, model: nn.Module) -> nn.Module:
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return torch.compile(model) if self.compile else model

    def sum(self, *values: float) -> list[float]:
        """Each value summed over the ranks."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor.tolist()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class _Run:
    def __init__(self, task: Task, config: dict, plan: list, devices: _Devices,
                 run_dir: str | Path | None, progress: bool) -> None:
        self.task, self.config, self.plan, self.devices = task, config, plan, devices
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.writes = self.run_dir is not None and devices.rank == 0
        self.progress = progress and devices.rank == 0
        self.provenance = task.provenance()  # loads the data: a missing data set fails here
        self.step_flops_cache: dict = {}
        self.wrapped: nn.Module | None = None

    # --- set-up, checkpoints and resuming ---
    def start(self, resume: bool, checkpoint_every: int) -> None:
        self.checkpoint_every = checkpoint_every
        checkpoint = self.run_dir / CHECKPOINT if self.run_dir else None
        exists = checkpoint is not None and checkpoint.is_file()
        if exists and not resume:
            raise InputError(f"{self.run_dir} already holds a run; pass --resume to continue "
                             "it or choose another output folder")
        saved = torch.load(checkpoint, weights_only=False) if exists else None
        if saved is not None and saved["config"] != self.config:
            differs = next(k for k in self.config if saved["config"].get(k) != self.config[k])
            raise InputError(f"{checkpoint} was made with another {differs!r}; resume it with "
                             "the options it was started with")
        self.loop = saved["loop"] if saved else {
            "step": 0, "flops": 0, "samples": 0, "time": 0.0, "shape": self.config["shape"],
            "next_switch": 0, "next_eval": 0, "train_sum": 0.0, "train_steps": 0,
        }
        self.records = saved["records"] if saved else []
        self.resumed_from_step = self.loop["step"]
        torch.manual_seed(self.config["seed"])
        self.model = self.task.build(self.loop["shape"]).to(self.devices.device)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=self.config["lr"], betas=(0.9, 0.95),
            weight_decay=self.config["weight_decay"])
        self.generator = torch.Generator().manual_seed(self.config["seed"] + 1)
        if saved:
            self.model.load_state_dict(saved["model"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.generator.set_state(saved["generator"])
            torch.set_rng_state(saved["torch_rng"])
        if self.writes:
            lines = "".join(json.dumps(record) + "\n" for record in self.records)
            write_text_atomic(self.run_dir / CURVE, lines)
        self.enter_shape()

    def save_checkpoint(self) -> None:
        # Folded at every checkpoint step, written or not, so that all runs add alike.
        self.loop["train_sum"] += float(self.train_loss)
        self.train_loss = 0.0
        if not self.writes:
            return
        buffer = io.BytesIO()
        torch.save({"config": self.config, "loop": self.loop, "records": self.records,
                    "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                    "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state()},
                   buffer)
        write_bytes_atomic(self.run_dir / CHECKPOINT, buffer.getvalue())

    def log(self, record: dict) -> None:
        self.records.append(record)
        if self.writes:
            with open(self.run_dir / CURVE, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    # --- shapes ---
    def enter_shape(self) -> None:
        """Measure the new shape's step FLOPs and (re)wrap the model for DDP and compile."""
        self.wrapped = None
        gc.collect()  # an old DDP wrapper must be gone before a new one hooks the parameters
        shape, world = self.loop["shape"], self.devices.world
        key = (tuple(sorted(shape.items())), world)
        if key not in self.step_flops_cache:
            from validate.flops import measure_flops

            probe = copy.deepcopy(self.model)  # no DDP hooks, no stray gradients
            batch = self.to_device(self.task.train_batch(shape, 0, 0, 0, world))
            self.step_flops_cache[key] = world * measure_flops(
                lambda: self.mean_loss(probe, batch, shape).backward())
        self.step_flops = self.step_flops_cache[key]
        self.wrapped = self.devices.wrap(self.model)

    def maybe_switch(self, eval_loss: float | None) -> None:
        if self.loop["next_switch"] >= len(self.plan):
            return
        switch, target = self.plan[self.loop["next_switch"]]
        due = (self.loop["flops"] >= switch.at_flops if switch.at_flops is not None
               else eval_loss is not None and eval_loss <= switch.at_loss)
        if not due:
            return
        old = self.loop["shape"]
        self.task.change(self.model, self.optimizer, old, target, self.generator)
        self.loop.update(shape=target, next_switch=self.loop["next_switch"] + 1)
        self.log({"event": "switch", "step": self.loop["step"], "flops": self.loop["flops"],
                  "from": old, "to": target, "eval_loss": eval_loss})
        self.enter_shape()

    # --- training ---
    def to_device(self, batch):
        return tuple(tensor.to(self.devices.device) for tensor in batch)

    def mean_loss(self, model: nn.Module, batch, shape: Shape) -> torch.Tensor:
        with self.devices.autocast():
            total, count = self.task.loss_sum(model, batch, shape)
        return total / count

    def train_step(self) -> None:
        loop, config, shape = self.loop, self.config, self.loop["shape"]
        batch = self.to_device(self.task.train_batch(
            shape, config["seed"], loop["samples"], self.devices.rank, self.devices.world))
        warmup = min(1.0, (loop["step"] + 1) / max(1, config["warmup_steps"]))
        scale = batch_lr_scale(shape["batch"], config["shape"]["batch"], config["batch_lr_rule"])
        for group in self.optimizer.param_groups:
            group["lr"] = config["lr"] * warmup * scale
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.mean_loss(self.wrapped, batch, shape)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.train_loss = self.train_loss + loss.detach()
        loop["train_steps"] += 1
        loop["step"] += 1
        loop["samples"] += shape["batch"]
        loop["flops"] += self.step_flops

    @torch.no_grad()
    def evaluate(self) -> float:
        total, count = 0.0, 0
        shape = self.loop["shape"]
        for batch in self.task.eval_batches(shape, self.devices.rank, self.devices.world):
            with self.devices.autocast():
                loss_sum, terms = self.task.loss_sum(self.model, self.to_device(batch), shape)
            total += loss_sum.item()
            count += terms
        total, count = self.devices.sum(total, count)
        return total / count

    def record(self) -> float:
        loop = self.loop
        loop["train_sum"] += float(self.train_loss)
        self.train_loss = 0.0
        train_sum, steps = self.devices.sum(loop["train_sum"], loop["train_steps"])
        eval_loss = self.evaluate()
        self.log({"event": "eval", "step": loop["step"], "flops": loop["flops"],
                  "samples": loop["samples"], "time": round(loop["time"], 6),
                  "shape": loop["shape"], "lr": self.optimizer.param_groups[0]["lr"],
                  "train_loss": train_sum / steps if steps else None, "eval_loss": eval_loss})
        loop.update(train_sum=0.0, train_steps=0)
        if self.progress:
            axes = ",".join(f"{k}={v}" for k, v in loop["shape"].items())
            train = f"{train_sum / steps:.4f}" if steps else "-"
            print(f"step {loop['step']:>6}  flops {loop['flops']:.3e}  train {train}  "
                  f"eval {eval_loss:.4f}  {axes}", file=sys.stderr, flush=True)
        return eval_loss

    def execute(self) -> RunResult:
        loop, budget = self.loop, self.config["budget_flops"]
        count, first = self.config["evals"], self.config["first_eval"]
        levels = [budget * first ** (1 - i / max(1, count - 1)) for i in range(count)]
        self.train_loss = 0.0
        if not self.records:
            self.maybe_switch(self.record())
        while True:
            self.maybe_switch(None)
            if loop["flops"] + self.step_flops > budget:
                break
            started = time.perf_counter()
            self.train_step()
            evaluate = False
            while loop["next_eval"] < count and loop["flops"] >= levels[loop["next_eval"]]:
                loop["next_eval"] += 1
                evaluate = True
            if evaluate:
                self.devices.synchronize()
            loop["time"] += time.perf_counter() - started
            if evaluate:
                self.maybe_switch(self.record())
            if loop["step"] % self.checkpoint_every == 0:
                self.save_checkpoint()
        self.devices.synchronize()
        if self.records[-1]["step"] != loop["step"] or self.records[-1].get("event") != "eval":
            self.record()
        self.save_checkpoint()
        return self.finish()

    def finish(self) -> RunResult:
        curve = [r for r in self.records if r["event"] == "eval"]
        switches = [r for r in self.records if r["event"] == "switch"]
        seconds = self.loop["time"]
        result = RunResult(curve, switches, curve[-1],
                           self.loop["flops"] / seconds if seconds else 0.0,
                           self.resumed_from_step, self.run_dir, self.provenance)
        if self.writes:
            summary = {"config": self.config, "final": result.final, "switches": switches,
                       "flops_per_second": result.flops_per_second,
                       "resumed_from_step": result.resumed_from_step,
                       "device": str(self.devices.device), "world_size": self.devices.world,
                       "torch": torch.__version__, "data": self.provenance}
            write_text_atomic(self.run_dir / RESULT, json.dumps(summary, indent=2) + "\n")
        if self.devices.owns_group:
            # Tear down together: destroying the group while a rank still writes can hang
            # (pytorch/pytorch#75097).
            dist.barrier()
            dist.destroy_process_group()
        return result


def format_result(result: RunResult) -> str:
    """The curve as an aligned table, then the switches and the FLOP/s reached."""
    from laws.tables import format_table

    def axes(shape: dict) -> str:
        return ",".join(f"{k}={v}" for k, v in shape.items())

    rows = [[r["step"], r["flops"], r["train_loss"], r["eval_loss"], axes(r["shape"])]
            for r in result.curve]
    lines = [format_table(["step", "flops", "train_loss", "eval_loss", "shape"], rows)]
    lines += [f"switch at step {s['step']} ({s['flops']:.3e} FLOPs): {axes(s['from'])} -> "
              f"{axes(s['to'])}" for s in result.switches]
    lines.append(f"FLOP/s reached: {result.flops_per_second:.3e}")
    return "\n".join(lines)
