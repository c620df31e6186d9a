"""What a simulation assumes about evaluation, budgets, hardware, transitions and faults.

>>> config = SimConfig(noise=0.01, eval_every=1e15)
>>> config.confirm
3
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field

from laws.errors import InputError
from laws.lawset import LawSet
from sim.faults import FaultModel
from sim.truth import TruthDraw

DEFAULT_PEAK_FLOPS = 1e15  # one modern accelerator, dense 16-bit
DEFAULT_UTILISATION = 0.4
DEFAULT_EVALS_PER_RUN = 1000  # eval interval = best static compute / this
DEFAULT_BUDGET_FACTOR = 10.0  # compute budget = this * best static compute


@dataclass(frozen=True)
class Hardware:
    """Peak FLOP/s of one accelerator and the fraction of it each shape achieves."""

    peak_flops: float = DEFAULT_PEAK_FLOPS
    utilisation: dict[str, float] = field(default_factory=dict)
    default_utilisation: float = DEFAULT_UTILISATION

    def throughput(self, shape_name: str) -> float:
        return self.peak_flops * self.utilisation.get(shape_name, self.default_utilisation)


@dataclass(frozen=True)
class SimConfig:
    """Settings shared by every run of a simulation.

    - ``noise``: relative sigma of an evaluation (observed = true * (1 + sigma * N(0, 1))).
    - ``eval_every``: training FLOPs between evaluations (default: best static compute / 1000;
      ``sim.setup`` refuses more than ``MAX_EVALUATIONS`` within the compute budget, and
      faults under which a run would fail more than ``MAX_FAILURES`` times).
    - ``eval_seconds``: wall time one evaluation takes.
    - ``confirm``: consecutive evaluations at or below the target that stop the run.
    - ``max_compute`` (FLOPs spent) / ``max_hours`` (run time): budgets; a run that hits one
      stops without reaching the target (default compute budget: 10x best static compute).
    - ``accelerators``: accelerators per run; ``gpus``: cluster size (None: no queueing).
    - ``penalty_decay_flops``: None keeps the search's model (the run lands at
      loss + penalty for good), a number makes the penalty fade linearly over that compute.
    - ``hardware``: when set, throughput = peak * utilisation for every shape; otherwise each
      shape's own ``throughput``, falling back to ``Hardware()`` for shapes without one.
    - ``faults``: failures and checkpoints, or None for a perfect machine.
    - ``trajectories``: keep every evaluation of every run (needed for CSV and plots).
    - ``truth_draw``: ``point``, ``samples`` or ``widened:F``: what each replication's runs
      follow, the truth laws or one of their bootstrap samples (``sim.truth``).
    """

    noise: float = 0.0
    eval_every: float | None = None
    eval_seconds: float = 0.0
    confirm: int = 3
    max_compute: float | None = None
    max_hours: float | None = None
    accelerators: int = 1
    gpus: int | None = None
    penalty_decay_flops: float | None = None
    hardware: Hardware | None = None
    faults: FaultModel | None = None
    trajectories: bool = True
    truth_draw: str = "point"

    def __post_init__(self) -> None:
        finite = math.isfinite
        _check(finite(self.noise) and self.noise >= 0,
               f"--noise must be a finite number >= 0, got {self.noise}")
        _check(self.eval_every is None or (finite(self.eval_every) and self.eval_every > 0),
               f"--eval-every must be a finite, positive number of FLOPs, got {self.eval_every}")
        _check(finite(self.eval_seconds) and self.eval_seconds >= 0,
               f"--eval-seconds must be a finite number >= 0, got {self.eval_seconds}")
        _check(self.confirm >= 1, f"--confirm must be at least 1, got {self.confirm}")
        _check(self.accelerators >= 1,
               f"each run needs at least 1 accelerator, got {self.accelerators}")
        _check(self.gpus is None or self.gpus >= 1,
               f"--gpus must be at least 1 accelerator, got {self.gpus}")
        if self.gpus is not None and self.accelerators > self.gpus:
            raise InputError(f"a run asks for {self.accelerators} accelerators but the cluster "
                             f"has only {self.gpus} (--gpus)")
        for name, option in (("max_compute", "--max-compute"), ("max_hours", "--max-hours"),
                             ("penalty_decay_flops", "--penalty-decay")):
            value = getattr(self, name)
            _check(value is None or (finite(value) and value > 0),
                   f"{option} must be a finite, positive number, got {value}")
        TruthDraw.parse(self.truth_draw)

    def throughputs(self, laws: LawSet) -> dict[str, float]:
        """FLOP/s of one accelerator for each shape."""
        if self.hardware is not None:
            return {s.name: self.hardware.throughput(s.name) for s in laws.shapes}
        fallback = Hardware()
        return {s.name: s.throughput or fallback.throughput(s.name) for s in laws.shapes}

    def to_dict(self) -> dict:
        return asdict(self)


def _check(condition: bool, message: str) -> None:
    # Comparisons with NaN are False, so NaN settings fail here too.
    if not condition:
        raise InputError(message)


def best_static_compute(laws: LawSet, target: float) -> tuple[str, float]:
    """The shape that reaches ``target`` with the least compute alone, and that compute.

    >>> from laws.forms import PowerLaw
    >>> from laws.lawset import LawSet, Shape
    >>> laws = LawSet("t", (Shape("a", {}, PowerLaw(4.0, 0.5, 1.0)),
    ...                     Shape("b", {}, PowerLaw(2.0, 0.5, 1.0))))
    >>> best_static_compute(laws, 2.0)
    ('b', 4.0)
    """
    costs = {s.name: float(s.law.compute(target)) for s in laws.shapes}
    name = min(costs, key=costs.__getitem__)
    if not math.isfinite(costs[name]):
        floors = ", ".join(f"{s.name}: {s.law.floor:.4g}" for s in laws.shapes)
        raise InputError(f"target loss {target} is below every shape's floor ({floors})")
    # At a loss that high the laws' compute underflows: a thousandth of it is no interval.
    if not costs[name] >= sys.float_info.min:
        raise InputError(f"target loss {target:g} needs no compute on shape {name!r} "
                         f"({costs[name]:.3g} FLOPs): it lies above where the laws start")
    return name, costs[name]
