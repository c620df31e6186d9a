"""A Lightning ``Callback`` that runs a shape policy (``validate.controller``) in ``Trainer.fit``.

    callback = ShapeCallback(planned(plan, laws), laws,
                             lambda module: {"patch": VitPatch(module.vit)}, shape="patch7",
                             run_dir="runs/a")
    trainer = Trainer(callbacks=[callback], val_check_interval=20, ...)

Each training batch is one controller step (its FLOPs counted, its samples the batch's
length); after each validation the monitored metric (``val_loss`` by default, logged by the
module's ``validation_step``) is the evaluation the policy sees, and a switch happens there,
before training goes on.

How a switch reaches Lightning's optimizer: Lightning declined to support replacing or
resetting optimizers mid-run (its issue 9982), and does not need to here. The operators change
the module in place and move every replaced parameter, with its state, inside the optimizer
object Lightning already holds (``validate.reshape.swap_parameter``); a patch-size change
replaces no parameter at all. So ``trainer.optimizers``, the learning-rate scheduler configs and
the ``LightningOptimizer`` wrappers stay valid, and the learning-rate factor of a switch reaches
the scheduler's base rates. Strategies that wrap the module around its parameters (DDP, FSDP,
DeepSpeed) would have to wrap it again: the callback accepts single-device strategies only.

Resuming (``fit(ckpt_path=...)``): the operators are made in ``setup``, before Lightning
restores a checkpoint, so a fresh run and a resumed one hold the same module (``VitPatch``'s
parametrizations, whose names the checkpoint's keys carry). The callback's state goes into the
checkpoint. Lightning loads the checkpoint's weights before it restores any callback and then
builds the optimizer from the module, so the module must have the saved shape before the weights
load (a grown depth has more parameters): the callback brings it there in the module's
``on_load_checkpoint``, the one hook Lightning calls in between, ahead of the module's own. The
optimizer built from the reshaped module takes the saved state, and the controller continues
with the learning rates Lightning restored: the run ends bit for bit where an uninterrupted one
does, on CPU, tested after a patch-size switch and after depth growth. Width and context
switches take the same path, untested through Lightning; plain loops resume through
``ShapeController.load_state_dict``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from laws.lawset import LawSet
from sim.policies import Policy
from validate.controller import ShapeController, apply_operators, shape_axes
from validate.operators.base import Operator


class ShapeCallback(pl.Callback):
    """Runs ``policy`` on ``laws``' shapes (a law set, or a dict name -> axes for static runs
    before any law); ``operators(module)`` gives the operators per axis
    for the ``LightningModule`` (called once, in ``setup``). The controller is
    ``callback.controller`` from then on. ``stop_at_target``: training stops at the first
    validation at or below it (``ShapeController``)."""

    def __init__(self, policy: Policy, laws: LawSet | Mapping[str, Mapping[str, int]],
                 operators: Callable[[pl.LightningModule], Mapping[str, Operator]], *,
                 shape: str, monitor: str = "val_loss", run_dir: str | Path | None = None,
                 flops: Callable[[str], float] | None = None,
                 stop_at_target: float | None = None) -> None:
        self.policy, self.laws, self.make_operators = policy, laws, operators
        self.shape, self.monitor, self.run_dir, self.flops = shape, monitor, run_dir, flops
        self.stop_at_target = stop_at_target
        self.controller: ShapeController | None = None
        self.operators: Mapping[str, Operator] | None = None
        self._saved: dict | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.operators is None:
            self.operators = self.make_operators(pl_module)
            self._reshape_when_loading(pl_module)

    def _reshape_when_loading(self, pl_module: pl.LightningModule) -> None:
        """Reshapes the module to a checkpoint's shape before its weights load ("Resuming")."""
        own_hook = pl_module.on_load_checkpoint

        def on_load_checkpoint(checkpoint: dict[str, Any]) -> None:
            saved = checkpoint.get("callbacks", {}).get(self.state_key)
            if saved:
                current = self.controller.shape_name if self.controller else self.shape
                axes = shape_axes(self.laws)
                apply_operators(self.operators, None, axes[current], axes[saved["shape_name"]])
            own_hook(checkpoint)

        pl_module.on_load_checkpoint = on_load_checkpoint


    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not isinstance(trainer.strategy, pl.strategies.SingleDeviceStrategy):
            raise NotImplementedError(f"ShapeCallback supports single-device training, not "
                                      f"{type(trainer.strategy).__name__}")
        if len(trainer.optimizers) != 1:
            raise NotImplementedError("ShapeCallback supports one optimizer")
        schedulers = trainer.lr_scheduler_configs
        self.controller = ShapeController(
            trainer.optimizers[0], self.policy, self.laws, self.operators, shape=self.shape,
            run_dir=self.run_dir, flops=self.flops, resume=self._saved,
            scheduler=schedulers[0].scheduler if schedulers else None,
            stop_at_target=self.stop_at_target)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        self.controller.begin_step()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        first = batch[0] if isinstance(batch, (list, tuple)) else batch
        self.controller.end_step(len(first) if torch.is_tensor(first) else 0)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.controller is None:
            return
        metrics = trainer.callback_metrics
        if self.monitor not in metrics:
            raise KeyError(f"ShapeCallback: the module logs no {self.monitor!r} in validation "
                           f"(logged: {', '.join(metrics) or 'nothing'})")
        train_loss = metrics.get("train_loss")
        self.controller.observe(float(metrics[self.monitor]),
                                None if train_loss is None else float(train_loss))
        trainer.should_stop |= self.controller.stopped

    def state_dict(self) -> dict:
        return self.controller.state_dict() if self.controller is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        self._saved = state_dict or None
