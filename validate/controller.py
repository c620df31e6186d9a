"""The shape controller: a policy of ``sim.policies`` driving a real training loop.

The simulator and real training ask the same policy objects. The controller is the real run's
side of ``sim.policies.RunView``: it keeps what a policy may read (the shape, the observed
losses, the training FLOPs, the evaluations), counts each step's FLOPs, and at every
evaluation (and after the step that reaches the policy's ``ask_at_flops``) asks the policy for
the next shape and applies the change through shape operators (``validate.operators``), one per
axis that changes, carrying the optimizer's state over and rescaling its learning rate.
``shapeshift validate train`` and the confirmation loop train through it too
(``validate.train``).

    controller = ShapeController(optimizer, planned(plan, laws), laws,
                                 {"patch": VitPatch(model)}, shape="patch7", run_dir="runs/a")
    for batch in batches:
        with controller.step(samples=len(batch)):   # times it, counts its FLOPs
            loss(model, batch).backward()
            optimizer.step()
            optimizer.zero_grad()
        if time_to_evaluate:
            controller.observe(evaluate(model))     # may switch the model's shape

A step's FLOPs are measured once per shape by ``FlopCounterMode`` (the count of
``validate.flops``), on the first step trained at that shape, or given by ``flops(shape)``
(asked once per shape, before its first step when ``next_step_flops()`` is called).
With ``run_dir`` every evaluation and switch is a line of ``curve.jsonl`` in the format
``shapeshift validate train`` writes (eval: step, flops, samples, time, shape axes, lr,
train_loss, eval_loss; switch: step, flops, from, to, eval_loss; stop: step, flops,
eval_loss, target), and eval lines also name the shape (``shape_name``), so ``shapeshift fit
curve.jsonl --filter event=eval --shape-col shape_name --compute-col flops --loss-col
eval_loss`` reads the run.

Resume: save ``controller.state_dict()`` with the model's and the optimizer's; to continue,
build the model and optimizer at the start shape, make the controller, call
``load_state_dict`` (it brings the model to the saved shape), then load the model's and the
optimizer's states.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from laws.errors import InputError
from laws.io.atomic import write_text_atomic
from laws.lawset import LawSet
from laws.search.planfile import Plan
from sim.level import current_level
from sim.policies import Policy, check_plan_laws
from validate.flops import flop_counter
from validate.operators.base import Operator

CURVE = "curve.jsonl"


class ShapeController:
    """Asks ``policy`` after every evaluation and switches shape through ``operators``.

    ``shapes`` names the shapes: a law set (its shapes' axes), or a mapping from each name to
    its axes; ``operators`` maps each axis that differs between shapes to its operator;
    ``shape`` is the shape the model was built at (when the policy starts elsewhere, the
    controller switches at once). ``stop_at_target`` (e.g. a plan's ``target_loss``) ends the
    run at the first evaluation at or below it: the controller records a ``stop`` line, sets
    ``stopped`` and asks the policy nothing more; the loop (or adapter) stops training.
    ``scheduler`` is a learning-rate scheduler whose base rates follow the learning-rate factor
    of a switch. ``resume`` is a ``state_dict()`` to continue
    from where the caller has brought the model (``apply_operators``) and the optimizer (its
    learning rates included) to the saved shape already, as the adapters do on resume: the
    controller takes its records and the policy's state and changes nothing. A law set's plan
    (``planned``) must have been made on ``shapes`` (``LawsMismatch`` otherwise).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, policy: Policy,
                 shapes: LawSet | Mapping[str, Mapping[str, int]],
                 operators: Mapping[str, Operator], *, shape: str,
                 run_dir: str | Path | None = None, scheduler: Any = None,
                 flops: Callable[[str], float] | None = None, seed: int = 0,
                 resume: dict | None = None, stop_at_target: float | None = None) -> None:
        self.optimizer, self.operators = optimizer, dict(operators)
        self.shapes = shape_axes(shapes)
        if isinstance(shapes, LawSet) and getattr(policy, "plan_laws", None) is not None:
            check_plan_laws(Plan.from_dict(policy.plan_laws), shapes)
        self.scheduler, self.flops_of = scheduler, flops
        self.stop_at_target, self.stopped = stop_at_target, False
        self._check_operators()
        self.policy = policy.clone()  # per-run state lives on the clone, as in the simulator
        self.seed = seed
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.shape_name = shape
        self._axes_of(shape)
        self.observed = self.lowest_observed = math.inf
        self.evaluations = 0
        self.history: list[tuple[str, float, float]] = []
        self.trained_flops = 0.0
        self.steps = self.samples = 0
        self.seconds = 0.0
        self.step_flops: dict[str, float] = {}
        self.records: list[dict] = []
        self._counter: FlopCounterMode | None = None
        self._started: float | None = None
        if resume is not None:  # the caller brought the model and optimizer to its shape
            self._restore(resume)
            return
        self._write_curve()
        first = self.policy.begin(self)
        if first != shape:
            self.switch_to(first)

    # --- what a policy reads (sim.policies.RunView) and the loop reads ---
    @property
    def policy_rng(self) -> np.random.Generator:
        if not hasattr(self, "_policy_rng"):
            self._policy_rng = np.random.default_rng(self.seed)
        return self._policy_rng

    @property
    def level(self) -> float:
        """The loss the run is at (``sim.level.current_level``), where a schedule's segments
        end: on evaluations further apart than a tenth of the FLOPs (up to 44 of them), the
        last one."""
        return current_level(self.history)

    def note(self, event: str, fields: Mapping[str, float | str]) -> None:
        """A policy's finding (e.g. a posterior update), a line of the curve log."""
        self._log({"event": event, "step": self.steps, "flops": self.trained_flops, **fields})

    @property
    def axes(self) -> dict:
        """The current shape's axes, e.g. ``{"patch": 14, "batch": 128}``."""
        return self._axes_of(self.shape_name)

    def _axes_of(self, shape: str) -> dict:
        if shape not in self.shapes:
            raise InputError(f"unknown shape {shape!r}; known shapes: {', '.join(self.shapes)}")
        return dict(self.shapes[shape])

    # --- training steps ---
    def next_step_flops(self) -> float | None:
        """The FLOPs of a step at the current shape: known once a step at it was counted, or
        from ``flops(shape)``; None before that."""
        if self.shape_name not in self.step_flops and self.flops_of is not None:
            self.step_flops[self.shape_name] = float(self.flops_of(self.shape_name))
        return self.step_flops.get(self.shape_name)

    def begin_step(self) -> None:
        """Before a training step (forward, backward, optimizer step)."""
        if self.next_step_flops() is None:
            self._counter = flop_counter()
            self._counter.__enter__()
        self._started = time.perf_counter()

    def end_step(self, samples: int = 0) -> str | None:
        """After a training step of ``samples`` samples: adds its FLOPs and seconds. Once the
        trained FLOPs reach the policy's ``ask_at_flops``, asks it; returns the new shape after
        a switch, else None."""
        if self._started is None:
            raise RuntimeError("end_step() without begin_step()")
        self.seconds += time.perf_counter() - self._started
        self._started = None
        if self._counter is not None:
            self._counter.__exit__(None, None, None)
            self.step_flops[self.shape_name] = float(self._counter.get_total_flops())
            self._counter = None
        self.trained_flops += self.step_flops[self.shape_name]
        self.steps += 1
        self.samples += samples
        return self._ask(None) if self.trained_flops >= self.policy.ask_at_flops else None

    @contextlib.contextmanager
    def step(self, samples: int = 0) -> Iterator[None]:
        """``begin_step()`` and ``end_step(samples)`` around a block."""
        self.begin_step()
        yield
        self.end_step(samples)

    # --- evaluations and switches ---
    def observe(self, eval_loss: float, train_loss: float | None = None, *,
                final: bool = False, extra: Mapping[str, float] | None = None) -> str | None:
        """Record an evaluation, ask the policy; returns the new shape after a switch, else None.

        As in the simulator, the policy is asked only when the loss is at or below its
        ``stay_above`` hint; ``final`` (the run ends here) records without asking. ``extra``
        measures go into the eval line beside the loss (e.g. the live model's loss when
        ``eval_loss`` is that of averaged weights). At or below ``stop_at_target`` it records
        the stop instead of asking.
        """
        eval_loss = float(eval_loss)
        self.observed = eval_loss
        self.lowest_observed = min(self.lowest_observed, eval_loss)
        self.evaluations += 1
        self.history.append((self.shape_name, self.trained_flops, eval_loss))  # for ``level``
        self._log({"event": "eval", "step": self.steps, "flops": self.trained_flops,
                   "samples": self.samples, "time": round(self.seconds, 6), "shape": self.axes,
                   "lr": self.optimizer.param_groups[0]["lr"],
                   "train_loss": None if train_loss is None else float(train_loss),
                   "eval_loss": eval_loss, "shape_name": self.shape_name,
                   **{key: float(value) for key, value in (extra or {}).items()}})
        if final:
            return None
        if self.stop_at_target is not None and eval_loss <= self.stop_at_target:
            # The run ends here, so a switch the policy might choose would train nothing.
            self.stopped = True
            self._log({"event": "stop", "step": self.steps, "flops": self.trained_flops,
                       "eval_loss": eval_loss, "target": self.stop_at_target})
            return None
        if eval_loss > self.policy.stay_above:
            return None
        return self._ask(eval_loss)

    def _ask(self, eval_loss: float | None) -> str | None:
        choice = self.policy.decide(self)
        if choice is None or choice == self.shape_name:
            return None
        self.switch_to(choice, eval_loss)
        return choice

    def switch_to(self, shape: str, eval_loss: float | None = None) -> None:
        """Change the model to ``shape`` now: each changed axis through its operator."""
        old, new = self.axes, self._axes_of(shape)
        factor = self._reshape(old, new)
        if factor != 1.0:
            scale_learning_rate(self.optimizer, factor, self.scheduler)
        self.shape_name = shape
        self._log({"event": "switch", "step": self.steps, "flops": self.trained_flops,
                   "from": old, "to": new, "eval_loss": eval_loss})

    def _reshape(self, old: dict, new: dict) -> float:
        return apply_operators(self.operators, self.optimizer, old, new)

    def _check_operators(self) -> None:
        for first, second in itertools.combinations(self.shapes, 2):
            one, other = self.shapes[first], self.shapes[second]
            for axis in set(one) | set(other):
                if one.get(axis) != other.get(axis) and axis not in self.operators:
                    raise ValueError(f"shapes {first} and {second} differ in {axis!r}, "
                                     "but no operator changes it")

    # --- the curve and resuming ---
    def _log(self, record: dict) -> None:
        self.records.append(record)
        if self.run_dir is not None:
            with open(self.run_dir / CURVE, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    def _write_curve(self) -> None:
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            lines = "".join(json.dumps(record) + "\n" for record in self.records)
            write_text_atomic(self.run_dir / CURVE, lines)

    _STATE = ("shape_name", "observed", "lowest_observed", "evaluations", "history",
              "trained_flops", "steps", "samples", "seconds", "step_flops", "records")

    def state_dict(self) -> dict:
        """Everything the run needs to continue (the policy's per-run state included)."""
        state = {key: getattr(self, key) for key in self._STATE}
        state["policy"] = dict(vars(self.policy))
        state["policy_rng"] = self.policy_rng.bit_generator.state
        return {key: _copy(value) for key, value in state.items()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state``: the model goes to the saved shape (its parameters move in
        the optimizer, whose state the caller loads afterwards); ``curve.jsonl`` is rewritten
        with the saved records, dropping any written after the save."""
        self._reshape(self.axes, self._axes_of(state["shape_name"]))
        self._restore(state)

    def _restore(self, state: dict) -> None:
        for key in self._STATE:
            setattr(self, key, _copy(state[key]))
        self.policy.__dict__.update(_copy(state["policy"]))
        self.policy_rng.bit_generator.state = state["policy_rng"]
        self._write_curve()


def shape_axes(shapes: LawSet | Mapping[str, Mapping[str, int]]) -> dict[str, dict]:
    """Each shape's axes by name, from a law set or a dict name -> axes (static runs before
    any law).

    >>> shape_axes({"w8": {"width": 8}})
    {'w8': {'width': 8}}
    """
    if isinstance(shapes, LawSet):
        return {shape.name: dict(shape.axes) for shape in shapes.shapes}
    return {name: dict(axes) for name, axes in shapes.items()}


def apply_operators(operators: Mapping[str, Operator], optimizer: torch.optim.Optimizer | None,
                    old: Mapping[str, int], new: Mapping[str, int]) -> float:
    """Change the model from axes ``old`` to ``new``, each changed axis through its operator
    (``optimizer`` None: no optimizer exists yet); returns the learning-rate factor of the
    change."""
    factor = 1.0
    for axis, operator in operators.items():
        if old[axis] != new[axis]:
            operator.apply(optimizer, old[axis], new[axis])
            factor *= operator.lr_factor(old[axis], new[axis])
    return factor


def scale_learning_rate(optimizer: torch.optim.Optimizer, factor: float,
                        scheduler: Any = None) -> None:
    """Multiply the learning rate of every group by ``factor``, and the base rates a torch
    scheduler computes its rates from (``initial_lr``, ``base_lrs``), so a schedule keeps its
    shape at the new scale.

    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> scale_learning_rate(opt, 2.0); opt.param_groups[0]["lr"]
    0.2
    """
    for group in optimizer.param_groups:
        group["lr"] *= factor
        if "initial_lr" in group:
            group["initial_lr"] *= factor
    if scheduler is not None and hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs = [rate * factor for rate in scheduler.base_lrs]


def _copy(value: Any) -> Any:
    """A copy deep enough that saved state and live state share no lists or dicts."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
