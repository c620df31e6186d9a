"""What a training run is checked for before any work: its budget, its shapes' memory, and a
schedule's route (each error names the option or shape, as ``InputError``)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import torch

from laws.errors import InputError
from sim.policies import Policy, Scheduled, Static
from validate.config import LoopConfig
from validate.tasks import Axes, Task, shape_name

MAX_STEPS = 1e9  # a budget of more steps than this never ends on any machine this runs on
MIN_EVALS = 4  # evaluations after the warm-up that a loop's static curve needs: fit, hold-out


def check_budget(task: Task, start: Axes, budget_flops: float, option: str = "--budget"
                 ) -> None:
    """Refuse, before any work, a budget that is not a positive, finite number of FLOPs, buys
    not even one training step at the start shape (closed-form FLOPs), or so many that the run
    would never end.

    >>> from validate.tasks import make_task
    >>> check_budget(make_task("mlp-width"), {"width": 8, "batch": 1}, 100)
    Traceback (most recent call last):
    ...
    laws.errors.InputError: --budget 100: less than one training step of width8-batch1 (704 FLOPs)
    """
    if not 0 < budget_flops < math.inf:
        raise InputError(f"{option} {budget_flops:g}: must be a positive number of FLOPs "
                         "(finite)")
    step = task.analytic_flops(start)
    if budget_flops < step:
        raise InputError(f"{option} {budget_flops:g}: less than one training step of "
                         f"{shape_name(start)} ({step:g} FLOPs)")
    if budget_flops > MAX_STEPS * step:
        raise InputError(f"{option} {budget_flops:g}: more than {MAX_STEPS:.0e} training "
                         f"steps of {shape_name(start)}; the run would never end")


def check_memory(task: Task, shapes: Mapping[str, Axes], device: str) -> None:
    """Refuse a shape whose weights, gradients and AdamW's two moments alone (float32, counted
    on torch's meta device, which allocates nothing) exceed the device's whole memory, or
    whose sizes torch cannot even count: building it would fail deep in an allocator."""
    if device == "cuda":
        if not torch.cuda.is_available():
            return  # Devices says so, in one line
        memory = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    else:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for name, axes in shapes.items():
        try:
            with torch.device("meta"):
                model = task.build(axes)
        except (RuntimeError, TypeError) as err:  # torch says "overflow" in either
            if "overflow" not in str(err).lower():
                raise
            raise InputError(f"shape {name}: its tensors' sizes do not fit in 64 bits, far "
                             "beyond any device's memory") from None
        needed = 4 * 4 * sum(p.numel() for p in model.parameters())
        if needed > memory:
            raise InputError(f"shape {name}: its weights, gradients and optimizer state need "
                             f"{needed / 2**30:.3g} GiB; the {device} has {memory / 2**30:.3g} GiB")


def check_route(task: Task, shapes: dict[str, Axes], first: str, policy: Policy) -> None:
    """For a static policy or a schedule: the shapes it names exist, and the task can switch
    along its route from ``first`` (other policies choose as they go)."""
    route = ([first, policy.shape] if isinstance(policy, Static) else
             [first, *(step[0] for step in policy.schedule)]
             if isinstance(policy, Scheduled) else [])
    for name in route:
        if name not in shapes:
            raise InputError(f"the policy names the shape {name!r}; known: {', '.join(shapes)}")
    for old, new in zip(route, route[1:], strict=False):
        task.check_change(shapes[old], shapes[new])


def check_loop_budgets(task: Task, config: LoopConfig, candidates: Mapping[str, Axes]) -> None:
    """Refuse, before any training, budgets too small for a loop over ``candidates`` (name ->
    axes): every static run must evaluate at least ``MIN_EVALS`` times after its warm-up, and
    the adaptive budget must buy a step at the cheapest shape (``check_budget``)."""
    for axes in candidates.values():
        check_budget(task, axes, config.budget)
    if config.adaptive_budget is not None:
        cheapest = min(candidates.values(), key=task.analytic_flops)
        check_budget(task, cheapest, config.adaptive_budget, "--adaptive-budget")
    levels = config.train.eval_levels(config.budget)
    warmup = max(1, config.train.warmup_steps)
    for name, axes in candidates.items():
        warm = warmup * task.analytic_flops(axes)
        after = sum(level >= warm for level in levels)
        if after < MIN_EVALS:
            raise InputError(
                f"--budget {config.budget:g}: {name} ends its {warmup}-step warm-up at "
                f"{warm:.3g} FLOPs, with {after} of its {len(levels)} evaluations left; "
                f"the fit needs {MIN_EVALS}: raise --budget or lower --warmup-steps")
