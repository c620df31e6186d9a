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
from dataclasses import dataclass, field
from typing import Any

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
    checkpoint_every: int = 500  # steps between checkpoints (with a run folder)
    device: str = "cpu"  # cpu or cuda (bf16 autocast on cuda)
    compile: bool = False  # torch.compile, cuda only
    task_options: dict[str, Any] = field(default_factory=dict)  # given to make_task

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def recorded(self) -> dict[str, Any]:
        """The settings a run's curve depends on: saved with its checkpoint (a resumed run must
        match them) and in ``result.json``.

        >>> sorted(TrainConfig(task_options={"noise": None}).recorded())[:3]
        ['batch_lr_rule', 'evals', 'first_eval']
        >>> TrainConfig(task_options={"noise": None, "eval_size": 500}).recorded()["task_options"]
        {'eval_size': 500}
        """
        settings = {key: value for key, value in self.to_dict().items()
                    if key not in _WHERE_AND_HOW_OFTEN}
        settings["task_options"] = {key: value for key, value in self.task_options.items()
                                    if value is not None}
        return settings
