"""A shape policy (``validate.controller``) inside the Hugging Face ``Trainer``.

    callback = ShapeTrainerCallback(planned(plan, laws), laws,
                                    lambda model: {"context": Gpt2Context(model)},
                                    shape="ctx64", run_dir="runs/a")
    trainer = ShapeTrainer(model=model, args=args, train_dataset=windows, eval_dataset=held_out,
                           shape_callback=callback)
    trainer.train()

The callback makes each optimizer step one controller step (FLOPs counted from
``on_step_begin`` to ``on_step_end``; gradient accumulation is inside it; its samples are
tokens when the shapes have a ``context`` axis, else sequences) and hands every
``eval_loss`` of ``on_evaluate`` to the controller, which may switch the model there, between
an optimizer step and the next. A switch needs no new optimizer: the operators move replaced
parameters and their state inside the optimizer the Trainer holds (accelerate's wrapper passes
``param_groups`` and ``state`` through to it), and the learning-rate factor of a switch reaches
the Trainer's scheduler's base rates.

The subclass is needed for the data: the Trainer fetches batches ahead (accelerate prefetches
one, gradient accumulation several), so a batch drawn before a switch is trained after it.
``ShapeTrainer`` cuts every sequence tensor of a batch (training and evaluation) to the current
``context`` axis before the Trainer counts its tokens; the datasets yield sequences at least as
long as the longest context of the plan. Without a ``context`` axis it cuts nothing.

Resuming (``trainer.train(resume_from_checkpoint=...)``): the callback saves the controller's
state into each checkpoint folder (``shape_controller.pt``, on ``on_save``). The Trainer loads a
checkpoint's weights in ``train`` before any callback runs and then builds the optimizer from
the model, so the model must have the saved shape before the weights load (a grown context has
more position rows): ``ShapeTrainer.train`` brings it there first, the optimizer built from the
reshaped model takes the saved state, and the controller continues with the learning rates the
Trainer restored. The run ends bit for bit where an uninterrupted one does, on CPU, tested after
a context switch (tests/validate/test_resume_hf.py). A plain ``Trainer`` with the callback alone
cannot resume after a switch: its weights would not fit the model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from laws.lawset import LawSet
from sim.policies import Policy
from validate.controller import ShapeController, apply_operators, shape_axes
from validate.operators.base import Operator


class ShapeTrainerCallback(TrainerCallback):
    """Runs ``policy`` on ``laws``' shapes (a law set, or a dict name -> axes for static runs
    before any law); ``operators(model)`` gives the operators per axis
    (called once: when resuming, else when training begins). The controller is
    ``callback.controller`` then.
    ``stop_at_target``: training stops at the first evaluation at or below it
    (``ShapeController``)."""

    STATE_FILE = "shape_controller.pt"

    def __init__(self, policy: Policy, laws: LawSet | Mapping[str, Mapping[str, int]],
                 operators: Callable[[torch.nn.Module], Mapping[str, Operator]], *, shape: str,
                 run_dir: str | Path | None = None,
                 flops: Callable[[str], float] | None = None,
                 stop_at_target: float | None = None) -> None:
        self.policy, self.laws, self.make_operators = policy, laws, operators
        self.shape, self.run_dir, self.flops = shape, run_dir, flops
        self.stop_at_target = stop_at_target
        self.controller: ShapeController | None = None
        self.operators: Mapping[str, Operator] | None = None
        self._saved: dict | None = None

    def reshape_to_checkpoint(self, model: torch.nn.Module, checkpoint: str | Path) -> None:
        """Brings ``model``, built at the start shape, to the shape saved in ``checkpoint`` and
        keeps the saved state for the controller ("Resuming"); a checkpoint without one (saved
        before training began) changes nothing."""
        path = Path(checkpoint) / self.STATE_FILE
        if not path.exists():
            return
        # The state holds the policy's own objects, as Lightning's checkpoints do: it is the
        # user's own checkpoint, so it is unpickled as torch.save wrote it.
        self._saved = torch.load(path, weights_only=False)
        self.operators = self.make_operators(model)
        axes = shape_axes(self.laws)
        apply_operators(self.operators, None, axes[self.shape], axes[self._saved["shape_name"]])


    def on_train_begin(self, args, state, control, model=None, optimizer=None,
                       lr_scheduler=None, **kwargs) -> None:
        if args.world_size > 1:
            raise NotImplementedError("ShapeTrainerCallback supports one process")
        if self.operators is None:
            self.operators = self.make_operators(model)
        self.controller = ShapeController(
            optimizer, self.policy, self.laws, self.operators, shape=self.shape,
            run_dir=self.run_dir, scheduler=lr_scheduler, flops=self.flops, resume=self._saved,
            stop_at_target=self.stop_at_target)

    def on_step_begin(self, args, state, control, **kwargs) -> None:
        self.controller.begin_step()

    def on_step_end(self, args, state, control, **kwargs) -> None:
        # With a context axis a step's samples are its tokens: a sequence's count changes with
        # the context, so sequences would not measure the data seen across a switch.
        sequences = args.train_batch_size * args.gradient_accumulation_steps
        self.controller.end_step(sequences * (self.context or 1))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs) -> None:
        if self.controller is not None and metrics and "eval_loss" in metrics:
            self.controller.observe(metrics["eval_loss"])
            control.should_training_stop |= self.controller.stopped

    def on_save(self, args, state, control, **kwargs) -> None:
        # The folder the Trainer has just written (Trainer._save_checkpoint names it so).
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        torch.save(self.controller.state_dict(), folder / self.STATE_FILE)

    @property
    def context(self) -> int | None:
        """The current context length, when the shapes have one and training has begun."""
        return self.controller.axes.get("context") if self.controller is not None else None


class ShapeTrainer(Trainer):
    """A ``Trainer`` that runs ``shape_callback`` and cuts batches to its current context."""

    def __init__(self, *args: Any, shape_callback: ShapeTrainerCallback, **kwargs: Any) -> None:
        kwargs["callbacks"] = [shape_callback, *(kwargs.get("callbacks") or [])]
        super().__init__(*args, **kwargs)
        self.shape_callback = shape_callback

    def train(self, resume_from_checkpoint: str | bool | None = None, *args: Any,
              **kwargs: Any) -> Any:
        """``Trainer.train``; when resuming, the model first takes the checkpoint's shape."""
        checkpoint = (get_last_checkpoint(self.args.output_dir) if resume_from_checkpoint is True
                      else resume_from_checkpoint)
        if checkpoint:
            self.shape_callback.reshape_to_checkpoint(self.model, checkpoint)
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def fit_batch(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """``batch`` with every (batch, sequence, ...) tensor cut to the current context."""
        context = self.shape_callback.context
        if context is None:
            return dict(batch)
        return {key: value[:, :context] if torch.is_tensor(value) and value.dim() >= 2 else value
                for key, value in batch.items()}

    def get_batch_samples(self, epoch_iterator: Any, *args: Any, **kwargs: Any) -> Any:
        return super().get_batch_samples(map(self.fit_batch, epoch_iterator), *args, **kwargs)

    def prediction_step(self, model: torch.nn.Module, inputs: dict, *args: Any,
                        **kwargs: Any) -> Any:
        return super().prediction_step(model, self.fit_batch(inputs), *args, **kwargs)
