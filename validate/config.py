"""How a run trains: the settings every training run takes, in one frozen object.

    config = TrainConfig(lr=3e-3, warmup_steps=20, evals=16, task_options={"noise": 0.05})
    train("mlp-width", {"width": 8}, 1e8, config=config)

What a run trains (the task, its starting axes, the FLOP budget and the policy that switches
its shape) is given to ``train`` beside the config: the confirmation loop trains many runs with
one config. This module imports no torch, so that the command line can build a config without
loading it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from laws.errors import InputError

# torch.manual_seed takes a signed 64-bit integer; the batch order uses seed + 1.
SEED_MAX = 2**63 - 2
# Settings a resumed run may change: where it runs and how often it saves, not what it computes.
_WHERE_AND_HOW_OFTEN = ("checkpoint_every", "device", "compile")


@dataclass(frozen=True)
class TrainConfig:
    """The training settings of one run (defaults: those of ``shapeshift validate train``)."""

    seed: int = 0  # initial weights (seed) and batch order (seed + 1)
    lr: float = 1e-3  # AdamW's learning rate after the warm-up, constant from then on
    warmup_steps: int = 50  # linear warm-up from lr / warmup_steps
    weight_decay: float = 0.0  # AdamW's decoupled weight decay
    batch_lr_rule: str = "sqrt"  # lr rescaling when the batch changes: sqrt, linear or none
    evals: int = 30  # evaluations, spaced geometrically from first_eval x budget to the budget
    first_eval: float = 0.01  # the first evaluation level, as a share of the budget
    # > 0: the eval loss is that of the weights' power-function EMA with this exponent
    # (validate/average.py), the live model's beside it as raw_eval_loss; 0: the live model's
    ema: float = 0.0
    checkpoint_every: int = 500  # steps between checkpoints (with a run folder)
    device: str = "cpu"  # cpu or cuda (bf16 autocast on cuda)
    compile: bool = False  # torch.compile, cuda only
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
        if not _finite(self.lr) or self.lr <= 0:
            raise InputError(f"--lr {self.lr}: must be a positive, finite number")
        if not _finite(self.weight_decay) or self.weight_decay < 0:
            raise InputError(f"--weight-decay {self.weight_decay}: must be a finite number >= 0")
        if not _finite(self.ema) or self.ema < 0:
            raise InputError(f"--ema {self.ema}: must be a finite number >= 0 (0: off)")
        if not _finite(self.first_eval) or not 0 < self.first_eval < 1:
            raise InputError(f"first_eval {self.first_eval}: must lie between 0 and 1")

    def eval_levels(self, budget: float) -> list[float]:
        """The training FLOPs at which a run of ``budget`` evaluates (besides at the start).

        >>> TrainConfig(evals=3, first_eval=0.01).eval_levels(1e4)
        [100.0, 1000.0, 10000.0]
        """
        count = self.evals
        return [budget * self.first_eval ** (1 - i / max(1, count - 1)) for i in range(count)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def recorded(self) -> dict[str, Any]:
        """The settings a run's curve depends on: saved with its checkpoint (a resumed run must
        match them) and in ``result.json``.

        >>> sorted(TrainConfig(task_options={"noise": None}).recorded())[:3]
        ['batch_lr_rule', 'ema', 'evals']
        >>> TrainConfig(task_options={"noise": None, "eval_size": 500}).recorded()["task_options"]
        {'eval_size': 500}
        """
        settings = {key: value for key, value in self.to_dict().items()
                    if key not in _WHERE_AND_HOW_OFTEN}
        settings["task_options"] = {key: value for key, value in self.task_options.items()
                                    if value is not None}
        return settings


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: object, option: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{option} {value!r}: must be a whole number >= {minimum}")
