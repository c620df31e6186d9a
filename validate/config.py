"""How a run trains (``TrainConfig``: the settings every training run takes) and what the
confirmation loop measures (``LoopConfig``), each in one frozen object.

    config = TrainConfig(lr=3e-3, warmup_steps=20, evals=16, task_options={"noise": 0.05})
    train("mlp-width", {"width": 8}, 1e8, config=config)

What a run trains (the task, its starting axes, the FLOP budget and the policy that switches
its shape) is given to ``train`` beside the config: the confirmation loop trains many runs with
one config. This module imports no torch, so that the command line can build a config without
loading it, and the loop's report and Slurm jobs can read a loop's config without the loop.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from laws.errors import InputError
from validate.schedule import check_schedule, lr_factor

if TYPE_CHECKING:
    from validate.tasks import Axes

# torch.manual_seed takes a signed 64-bit integer; the batch order uses seed + 1.
SEED_MAX = 2**63 - 2
# Paired seeds of a confirmation loop (validate/loop.py): over 8 its 90% interval reaches 0.67
# seed-to-seed standard deviations either side of the mean (t(0.95, 7) / sqrt(8)), enough to
# resolve a 5-point saving at the committed loops' noise (bench/bench_crossing.py).
SEEDS = 8
# Settings a resumed run may change: where it runs and how often it saves, not what it computes.
_WHERE_AND_HOW_OFTEN = ("checkpoint_every", "device", "compile")


@dataclass(frozen=True)
class TrainConfig:
    """The training settings of one run (defaults: those of ``shapeshift validate train``)."""

    seed: int = 0  # initial weights (seed) and batch order (seed + 1)
    lr: float = 1e-3  # AdamW's peak learning rate, reached at the end of the warm-up
    warmup_steps: int = 50  # linear warm-up from lr / warmup_steps
    # what the rate does after the warm-up: constant, wsd or cosine (validate/schedule.py)
    schedule: str = "constant"
    cooldown: float = 0.2  # wsd: the last share of the FLOP budget, decayed linearly to 0
    # constant: training FLOPs at whose first step boundary the run evaluates and keeps its
    # state (branch-<index>.pt), for cool-down branches (validate/cooldown.py)
    keep_at: tuple[float, ...] = ()
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    batch_lr_rule: str = "sqrt"  # lr rescaling when the batch changes: sqrt, linear or none
    evals: int = 30  # evaluations, spaced geometrically from first_eval x budget to the budget
    first_eval: float = 0.01  # the first evaluation level, as a share of the budget
    # > 0: the eval loss is that of the weights' power-function EMA with this exponent
    # (validate/average.py), the live model's beside it as raw_eval_loss; 0: the live model's
    ema: float = 0.0
    checkpoint_every: int = 500  # steps between checkpoints (with a run folder)
    device: str = "cpu"  # cpu or cuda (bf16 autocast on cuda)
    compile: bool = False  # torch.compile (validate/devices.py)
    task_options: dict[str, Any] = field(default_factory=dict)  # given to make_task

    def __post_init__(self) -> None:
        """Every setting checked where it enters (the options' names in the messages), so
        that a bad one is refused before any work.

        >>> TrainConfig(lr=float("inf"))
        Traceback (most recent call last):
        ...
        laws.errors.InputError: --lr inf: must be a positive, finite number
        """
        _whole(self.seed, "--seed", 0)
        if self.seed > SEED_MAX:
            raise InputError(f"--seed {self.seed}: must be at most {SEED_MAX}")
        _whole(self.warmup_steps, "--warmup-steps", 0)
        _whole(self.evals, "--evals", 2)
        _whole(self.checkpoint_every, "--checkpoint-every", 1)
        check_schedule(self.schedule, self.cooldown)
        self._check_keep_at()
        if not _finite(self.lr) or self.lr <= 0:
            raise InputError(f"--lr {self.lr}: must be a positive, finite number")
        if not _finite(self.weight_decay) or self.weight_decay < 0:
            raise InputError(f"--weight-decay {self.weight_decay}: must be a finite number >= 0")
        if not _finite(self.ema) or self.ema < 0:
            raise InputError(f"--ema {self.ema}: must be a finite number >= 0 (0: off)")
        if not _finite(self.first_eval) or not 0 < self.first_eval < 1:
            raise InputError(f"first_eval {self.first_eval}: must lie between 0 and 1")

    def _check_keep_at(self) -> None:
        """Keep points are increasing FLOP levels of a constant-rate run: a branch takes its
        cool-down from a state trained at the peak rate (validate/cooldown.py).

        >>> TrainConfig(schedule="wsd", keep_at=(1e6,))
        Traceback (most recent call last):
        ...
        laws.errors.InputError: --keep-at: only a constant-rate run keeps states to branch from
        """
        object.__setattr__(self, "keep_at", tuple(self.keep_at))  # a list, from loop.json
        if not self.keep_at:
            return
        if self.schedule != "constant":
            raise InputError("--keep-at: only a constant-rate run keeps states to branch from")
        levels = self.keep_at
        if not all(_finite(level) and level > 0 for level in levels) or (
                list(levels) != sorted(set(levels))):
            raise InputError(f"--keep-at {','.join(map(str, levels))}: must be positive, "
                             "finite FLOP levels in increasing order")

    def eval_levels(self, budget: float) -> list[float]:
        """The training FLOPs at which a run of ``budget`` evaluates (besides at the start).

        >>> TrainConfig(evals=3, first_eval=0.01).eval_levels(1e4)
        [100.0, 1000.0, 10000.0]
        """
        count = self.evals
        return [budget * self.first_eval ** (1 - i / max(1, count - 1)) for i in range(count)]

    def lr_factor(self, step: int, progress: float) -> float:
        """The factor of ``lr`` at optimizer step ``step``, ``progress`` the share of the FLOP
        budget spent before it (``validate.schedule.lr_factor``).

        >>> TrainConfig(schedule="wsd", cooldown=0.25).lr_factor(900, 0.875)
        0.5
        """
        return lr_factor(self.schedule, step, progress, warmup_steps=self.warmup_steps,
                         cooldown=self.cooldown)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def recorded(self) -> dict[str, Any]:
        """The settings a run's curve depends on: saved with its checkpoint (a resumed run must
        match them) and in ``result.json``. The cool-down shapes only wsd, and a constant run
        records no schedule, as runs recorded before schedules existed did: those still resume.
        Keep points add evaluations, so they are recorded where there are any.

        >>> sorted(TrainConfig(task_options={"noise": None}).recorded())[:3]
        ['batch_lr_rule', 'ema', 'evals']
        >>> TrainConfig(task_options={"noise": None, "eval_size": 500}).recorded()["task_options"]
        {'eval_size': 500}
        """
        settings = {key: value for key, value in self.to_dict().items()
                    if key not in _WHERE_AND_HOW_OFTEN}
        settings["task_options"] = {key: value for key, value in self.task_options.items()
                                    if value is not None}
        if self.schedule != "wsd":
            del settings["cooldown"]
        if not self.keep_at:
            del settings["keep_at"]
        if self.schedule == "constant":
            del settings["schedule"]
        return settings


@dataclass(frozen=True)
class LoopConfig:
    """What the loop measures: the task, its candidate shapes (each as its axes, partial, on top
    of ``common``), the FLOP budget of each static run, and how every run trains (``train``;
    the runs of seed k use seed ``train.seed + k``)."""

    task: str
    shapes: tuple[Axes, ...]
    budget: float
    target: float | None = None
    seeds: int = SEEDS
    common: Axes = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    levels: int = 2000
    adaptive_budget: float | None = None  # default: the static budget
    bootstrap: int = 200  # fit resamples, carried by the laws into the plan's interval

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, saved: dict) -> LoopConfig:
        """The config that ``to_dict`` wrote (``loop.json``). Also reads the layout of loops
        made before ``train`` existed (the committed examples): ``device``, ``train_options``
        and ``task_options`` side by side.

        >>> old = {"task": "t", "shapes": [{"a": 1}], "budget": 1.0, "device": "cpu",
        ...        "train_options": {"evals": 8}, "task_options": {"noise": 0.1}}
        >>> LoopConfig.from_dict(old).train == TrainConfig(evals=8, task_options={"noise": 0.1})
        True
        """
        fields = dict(saved)
        if "train" not in fields:
            fields["train"] = {**fields.pop("train_options", {}),
                               "device": fields.pop("device", "cpu"),
                               "task_options": fields.pop("task_options", {})}
        return cls(**{**fields, "shapes": tuple(fields["shapes"]),
                      "train": TrainConfig(**fields["train"])})


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: object, option: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{option} {value!r}: must be a whole number >= {minimum}")
