"""The shape graph of DESIGN.md as arrays: the search problem that every solver reads.

Nodes are (shape, loss level) on a grid running from the start loss down to the target; a source
reaches every (P, e0) at cost C_P(e0); train edges (P, e_i) -> (P, e_i+1) cost exactly
C_P(e_i+1) - C_P(e_i); switch edges (P, e_i) -> (Q, e_j) cost the transition, where e_j is the
grid level at or above e_i + penalty (rounded up to the next-higher level: conservative, the
model never lands lower than the penalty allows). With a switch limit K every node also carries
the number of switches made so far (0..K), which keeps the search exact. Switches into a shape
land only above its floor, and none leave the target level.

>>> from laws.presets import load_preset
>>> from laws.search.request import PlanRequest
>>> laws = load_preset("demo")
>>> problem = build_problem(laws, PlanRequest.for_laws(laws, 2.0, levels=50))
>>> problem.names, problem.grid.size, float(problem.grid[-1])
(('p32', 'p16', 'p8'), 50, 2.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from laws.errors import InputError
from laws.io.source import law_set_digest
from laws.lawset import LawSet
from laws.search.grid import compute_grid, loss_grid
from laws.search.request import LawsMismatch, PlanRequest
from laws.search.switches import allowed_switches, landing_levels


@dataclass(frozen=True)
class Problem:
    """The shape graph as arrays.

    Costs are in objective units; ``compute`` keeps the FLOPs for accounting. ``switch_cost``
    is +inf where a switch is not allowed (and on the diagonal); ``landing[i]`` is the level a
    switch made at level i lands on. ``request`` is what the problem was built from.
    ``charged`` holds the FLOPs charged to switch pairs (source, destination indices) with a
    measured transition, in place of ``switch_flops`` (``laws.search.charges``).
    """

    names: tuple[str, ...]
    grid: np.ndarray
    compute: np.ndarray
    scale: np.ndarray
    switch_cost: np.ndarray
    landing: np.ndarray
    switch_flops: float = 0.0
    max_switches: int | None = None
    request: PlanRequest | None = None
    charged: dict[tuple[int, int], float] = field(default_factory=dict)

    @property
    def start_cost(self) -> np.ndarray:
        """Cost of training each shape from scratch to the start loss."""
        return self.scale * self.compute[:, 0]

    @property
    def train_cost(self) -> np.ndarray:
        """(shapes, levels - 1): exact cost of each train edge, +inf below a shape's floor."""
        later = self.compute[:, 1:]
        with np.errstate(invalid="ignore"):
            cost = self.scale[:, None] * (later - self.compute[:, :-1])
        return np.where(np.isfinite(later), cost, np.inf)

    @property
    def penalised(self) -> bool:
        """True when some switch lands above the loss it left (a loss penalty)."""
        return bool(np.any(self.landing != np.arange(self.grid.size)))


def objective_scale(laws: LawSet, objective: str, price_per_hour: float | None) -> np.ndarray:
    """Objective units per FLOP, shape by shape: 1, seconds per FLOP, or money per FLOP."""
    if objective == "flops":
        return np.ones(len(laws.shapes))
    missing = [s.name for s in laws.shapes if s.throughput is None]
    if missing:
        raise InputError(f"--objective {objective} needs a throughput (FLOP/s) for every shape; "
                         f"missing for: {', '.join(missing)}")
    per_second = price_per_hour / 3600.0 if objective == "money" else 1.0
    return per_second / np.array([s.throughput for s in laws.shapes], dtype=float)


def build_problem(laws: LawSet, request: PlanRequest,
                  charged: dict[tuple[int, int], float] | None = None) -> Problem:
    """The search problem that ``request`` asks of ``laws`` (the laws it was made for), with
    the FLOPs of ``charged`` switch pairs (source, destination indices) in place of the
    transitions' FLOPs per switch (``laws.search.charges.settle_charges`` finds them for the
    pairs with a measured transition)."""
    if request.laws_digest != law_set_digest(laws):
        raise LawsMismatch(f"the plan request was made for other laws than {laws.name!r} "
                           "(digest differs)")
    if request.end_on is not None:
        laws.shape(request.end_on)  # an unknown name: InputError listing the known ones
    t = request.transitions(laws)
    grid = loss_grid(laws, request.target, request.start_loss, request.levels)
    scale = objective_scale(laws, request.objective, request.price_per_hour)
    ok = allowed_switches(laws, t.allowed, request.only_grow, request.only_shrink)
    # A switch costs its FLOPs, done at the new shape's speed, plus (in time and money) its
    # seconds; the FLOPs objective has no clock, so it leaves switch seconds out.
    per_second = {"flops": 0.0, "seconds": 1.0,
                  "money": (request.price_per_hour or 0.0) / 3600.0}[request.objective]
    charged = charged or {}
    flops = np.full(ok.shape, t.flops)
    for (source, destination), charge in charged.items():
        flops[source, destination] = charge
    switch_cost = np.where(ok, flops * scale[None, :] + t.seconds * per_second, np.inf)
    compute = compute_grid(laws, grid)
    if request.end_on is not None:  # the target level is reached on that shape alone
        compute[np.arange(len(laws.shapes)) != laws.names.index(request.end_on), -1] = np.inf
    return Problem(tuple(laws.names), grid, compute, scale, switch_cost,
                   landing_levels(grid, t.loss_penalty), float(t.flops), request.max_switches,
                   request, dict(charged))


def switch_levels(problem: Problem, destination: int) -> np.ndarray:
    """Levels from which a switch into shape ``destination`` exists: all but the target level
    (switching there buys nothing), and only where it lands above the new shape's floor.
    """
    ok = np.isfinite(problem.compute[destination, problem.landing])
    ok[-1] = False
    return ok
