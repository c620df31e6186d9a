"""The policy of one training run, from the words of ``validate train``: ``--switch-at``
options as a schedule of ``sim.policies`` (``Switch``, ``parse_switch``, ``switch_schedule``), the
vocabulary the simulator runs, or the simulator's online policy on a law set
(``online_policy``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from laws.errors import InputError

if TYPE_CHECKING:
    from laws.lawset import LawSet
    from sim.online import Online
    from sim.policies import Scheduled
    from validate.tasks import Axes, Task


@dataclass(frozen=True)
class Switch:
    """Change the axes in ``axes`` (only those that change) at a FLOP or an eval-loss level:
    one ``--switch-at`` (``switch_schedule`` makes the policy of a list of them).

    >>> Switch({"patch": 4}, at_loss=0.6)
    Switch(axes={'patch': 4}, at_flops=None, at_loss=0.6)
    """

    axes: Axes
    at_flops: float | None = None
    at_loss: float | None = None

    def __post_init__(self) -> None:
        if (self.at_flops is None) == (self.at_loss is None):
            raise InputError("a switch needs exactly one of a FLOP level and a loss level")


def parse_switch(text: str, budget_flops: float) -> Switch:
    """``FRACTION:SHAPE`` (of the budget), ``flops=F:SHAPE`` or ``loss=L:SHAPE``, the shape
    given as the axes that change (``AXIS=N,...``).

    >>> parse_switch("0.5:patch=4", 1e12)
    Switch(axes={'patch': 4}, at_flops=500000000000.0, at_loss=None)
    >>> parse_switch("loss=0.6:patch=4,batch=256", 1e12).at_loss
    0.6
    """
    where, sep, axes_text = text.partition(":")
    kind, _, number = where.rpartition("=")
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not sep or kind not in ("", "flops", "loss") or not math.isfinite(value) or value <= 0:
        raise InputError(f"--switch-at {text!r}: expected FRACTION:SHAPE, flops=F:SHAPE or "
                         "loss=L:SHAPE, e.g. 0.5:patch=4 or loss=0.6:patch=4")
    from validate.tasks import parse_axes

    axes = parse_axes(axes_text, option="--switch-at")
    if kind == "loss":
        return Switch(axes, at_loss=value)
    if kind == "" and value >= 1:
        raise InputError(f"--switch-at {text!r}: a fraction of the budget must be below 1")
    return Switch(axes, at_flops=value * budget_flops if kind == "" else value)


def switch_schedule(task: Task, axes: Axes, switches: Sequence[Switch]
                    ) -> tuple[Scheduled, dict[str, Axes]]:
    """The policy that ``switches`` write, starting from ``axes``: a schedule that leaves each
    shape at its switch's loss or FLOP level, in order, and the shapes it names (complete
    axes, named by ``shape_name``). Each switch is checked against the task up front.

    >>> from validate.tasks import make_task
    >>> policy, shapes = switch_schedule(make_task("mlp-width"), {"width": 8},
    ...                                  [Switch({"batch": 256}, at_flops=1e9)])
    >>> policy.schedule
    [('width8-batch128', -inf, 1000000000.0), ('width8-batch256', -inf, inf)]
    >>> shapes["width8-batch256"]
    {'width': 8, 'batch': 256}
    """
    from sim.policies import Scheduled
    from validate.tasks import shape_name

    shape = task.complete(axes)
    shapes, segments = {shape_name(shape): shape}, []
    for switch in switches:
        loss = -math.inf if switch.at_loss is None else switch.at_loss
        flops = math.inf if switch.at_flops is None else switch.at_flops
        segments.append((shape_name(shape), loss, flops))
        shape = task.complete(switch.axes, base=shape)
        shapes[shape_name(shape)] = shape
    return Scheduled("switch-at", [*segments, (shape_name(shape), -math.inf)]), shapes


def online_policy(laws: LawSet, target: float | None, every: int
                  ) -> tuple[Online, dict[str, Axes]]:
    """The online policy (``sim.online``) on ``laws``, planning to ``target`` (default: the law
    set's ``default_target``) and updating its posterior every ``every`` evaluations, and the
    shapes it may choose: the law set's, named as there.

    >>> from laws.presets import load_preset
    >>> policy, shapes = online_policy(load_preset("vit-patch-fmnist"), None, 5)
    >>> policy.name, shapes["patch14"]["patch"]
    ('online', 14)
    """
    from laws.search.request import PlanRequest, default_target
    from sim.online import Online
    from sim.policies import PlanningContext

    request = PlanRequest.for_laws(laws, default_target(laws) if target is None else target)
    return (Online(PlanningContext(laws, request), every=every),
            {shape.name: dict(shape.axes) for shape in laws.shapes})
