"""The shape graph of DESIGN.md: a loss grid, the search problem on it, and its networkx form.

Nodes are (shape, loss level) on a grid running from the start loss down to the target; a source
reaches every (P, e0) at cost C_P(e0); train edges (P, e_i) -> (P, e_i+1) cost exactly
C_P(e_i+1) - C_P(e_i); switch edges (P, e_i) -> (Q, e_j) cost the transition, where e_j is the
grid level at or above e_i + penalty (rounded up to the next-higher level: conservative, the
model never lands lower than the penalty allows). With a switch limit K every node also carries
the number of switches made so far (0..K), which keeps the search exact.

Switches into a shape land only above its floor, and none leave the target level. The solvers
work on the arrays of a ``Problem``; ``to_networkx`` builds the same graph for
reference answers and GraphML export.

>>> from laws.forms import PowerLaw
>>> from laws.lawset import LawSet, Shape
>>> laws = LawSet("toy", (Shape("a", {}, PowerLaw(a=2.0, b=0.5, c=1.0)),))
>>> grid = loss_grid(laws, target=1.5, start=3.0, levels=5)
>>> [round(float(e), 4) for e in grid]   # 1 + geometric steps from 2 to 0.5
[3.0, 2.4142, 2.0, 1.7071, 1.5]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from laws.errors import InputError
from laws.io.atomic import write_text_atomic
from laws.lawset import LawSet, Transitions

OBJECTIVES = ("flops", "seconds", "money")
# Where no shape's law starts at a finite loss, training starts at the loss the quickest shape
# reaches after this fraction of the cheapest static compute: what is spent above it is negligible.
START_COMPUTE_FRACTION = 1e-6


def reachable_losses(laws: LawSet) -> str:
    """The lowest loss each shape can approach (its floor), for error messages."""
    return ", ".join(f"{s.name} > {s.law.floor:.6g}" for s in laws.shapes)


def default_start_loss(laws: LawSet, target: float) -> float:
    """The highest loss at which every shape's law is defined: the lowest ceiling (loss at zero
    compute); a law that diverges at zero compute counts with the loss it reaches on a
    millionth of the cheapest static compute to ``target``.
    """
    static = compute_grid(laws, np.array([target]))[:, 0]
    reachable = static[np.isfinite(static)]
    if not reachable.size:
        raise InputError(f"target loss {target:g} is below every shape's floor; lowest reachable "
                         f"losses: {reachable_losses(laws)}")
    tiny = START_COMPUTE_FRACTION * float(reachable.min())
    return min(s.law.ceiling if np.isfinite(s.law.ceiling) else float(s.law.loss(tiny))
               for s in laws.shapes)


def loss_grid(laws: LawSet, target: float, start: float | None = None,
              levels: int = 2000) -> np.ndarray:
    """``levels`` losses from ``start`` down to ``target``, uniform in log(E - lowest floor).

    The spacing tightens towards the floors, where compute grows fastest.
    """
    if not np.isfinite(target):
        raise InputError(f"target loss must be a finite number, got {target!r}")
    if not any(target > s.law.floor for s in laws.shapes):
        raise InputError(f"target loss {target:g} is not above any shape's floor; lowest "
                         f"reachable losses: {reachable_losses(laws)}")
    if start is None:
        start = default_start_loss(laws, target)
    if not (np.isfinite(start) and start > target):
        raise InputError(f"start loss {start!r} must be a finite loss above the target {target:g}")
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 2:
        raise InputError(f"levels must be an integer >= 2, got {levels!r}")
    lowest_floor = min(s.law.floor for s in laws.shapes)
    grid = lowest_floor + np.exp(np.linspace(np.log(start - lowest_floor),
                                             np.log(target - lowest_floor), levels))
    grid[0], grid[-1] = start, target  # exact ends despite rounding in exp(log(.))
    return grid


def compute_grid(laws: LawSet, grid: np.ndarray) -> np.ndarray:
    """C_P(e_i), FLOPs from scratch to each grid loss, shape by shape (+inf below a floor)."""
    with np.errstate(over="ignore"):  # below a floor the laws overflow on their way to +inf
        return np.array([np.asarray(s.law.compute(grid), dtype=float) for s in laws.shapes])


def inverse_gradients(laws: LawSet, grid: np.ndarray) -> np.ndarray:
    """|dC_P/dE| on the grid, shape by shape: FLOPs per unit of loss (+inf below a floor).

    >>> from laws.forms import PowerLaw
    >>> from laws.lawset import LawSet, Shape
    >>> laws = LawSet("toy", (Shape("a", {}, PowerLaw(a=1.0, b=1.0, c=0.0)),))
    >>> inverse_gradients(laws, np.array([0.5])).tolist()   # C = 1/E, |dC/dE| = 1/E^2
    [[4.0]]
    """
    with np.errstate(over="ignore"):
        slopes = [np.asarray(s.law.dcompute(grid), dtype=float) for s in laws.shapes]
    return np.abs(np.array(slopes))


def parse_allowed(spec: str) -> str | tuple[tuple[str, str], ...]:
    """The ``--allowed`` option: ``all``, ``one-axis`` or ``FROM:TO,FROM:TO,...``.

    >>> parse_allowed("p32:p16, p16:p8")
    (('p32', 'p16'), ('p16', 'p8'))
    """
    if spec in ("all", "one-axis"):
        return spec
    pairs = []
    for item in spec.split(","):
        parts = [p.strip() for p in item.split(":")]
        if len(parts) != 2 or not all(parts):
            raise InputError(f"--allowed: expected all, one-axis or FROM:TO pairs separated by "
                             f"commas, got {item.strip()!r}")
        pairs.append((parts[0], parts[1]))
    return tuple(pairs)


def allowed_switches(laws: LawSet, allowed: Any = "all", only_grow: Sequence[str] = (),
                     only_shrink: Sequence[str] = ()) -> np.ndarray:
    """Boolean matrix: may a run switch from shape P (row) to shape Q (column)?

    ``allowed`` is ``"all"``, ``"one-axis"`` (shapes that differ in exactly one axis) or
    (from, to) name pairs; ``only_grow``/``only_shrink`` axes may never decrease/increase.
    """
    names = laws.names
    n = len(names)
    if allowed == "all":
        ok = ~np.eye(n, dtype=bool)
    elif allowed == "one-axis":
        ok = np.array([[_axes_changed(p.axes, q.axes) == 1 for q in laws.shapes]
                       for p in laws.shapes])
    elif isinstance(allowed, str):
        raise InputError(f"allowed switches: expected all, one-axis or pairs, got {allowed!r}")
    else:
        ok = np.zeros((n, n), dtype=bool)
        for src, dst in allowed:
            for name in (src, dst):
                if name not in names:
                    raise InputError(f"allowed switches: unknown shape {name!r}; known shapes: "
                                     f"{', '.join(names)}")
            ok[names.index(src), names.index(dst)] = src != dst
    for axes, grow in ((only_grow, True), (only_shrink, False)):
        for axis in axes:
            values = np.array([_axis_value(s, axis, grow) for s in laws.shapes])
            ok &= (values[None, :] >= values[:, None]) if grow else (
                values[None, :] <= values[:, None])
    return ok


def _axes_changed(a: dict, b: dict) -> int:
    return sum(a.get(k) != b.get(k) for k in set(a) | set(b))


def _axis_value(shape: Any, axis: str, grow: bool) -> float:
    option = "--only-grow" if grow else "--only-shrink"
    value = shape.axes.get(axis)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{option} {axis}: shape {shape.name!r} has no numeric axis {axis!r} "
                         f"(its axes: {shape.axes})")
    return float(value)


def objective_scale(laws: LawSet, objective: str, price_per_hour: float | None) -> np.ndarray:
    """Objective units per FLOP, shape by shape: 1, seconds per FLOP, or money per FLOP."""
    if objective not in OBJECTIVES:
        raise InputError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if (objective == "money") != (price_per_hour is not None):
        raise InputError("--price-per-hour is needed by, and only by, --objective money")
    if objective == "flops":
        return np.ones(len(laws.shapes))
    missing = [s.name for s in laws.shapes if s.throughput is None]
    if missing:
        raise InputError(f"--objective {objective} needs a throughput (FLOP/s) for every shape; "
                         f"missing for: {', '.join(missing)}")
    if objective == "money" and not (np.isfinite(price_per_hour) and price_per_hour > 0):
        raise InputError(f"--price-per-hour must be a positive number, got {price_per_hour!r}")
    per_second = price_per_hour / 3600.0 if objective == "money" else 1.0
    return per_second / np.array([s.throughput for s in laws.shapes], dtype=float)


@dataclass(frozen=True)
class Problem:
    """The shape graph as arrays: what every solver reads.

    Costs are in objective units; ``compute`` keeps the FLOPs for accounting. ``switch_cost``
    is +inf where a switch is not allowed (and on the diagonal); ``landing[i]`` is the level a
    switch made at level i lands on.
    """

    names: tuple[str, ...]
    grid: np.ndarray
    compute: np.ndarray
    scale: np.ndarray
    switch_cost: np.ndarray
    landing: np.ndarray
    switch_flops: float = 0.0
    max_switches: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

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


def landing_levels(grid: np.ndarray, penalty: float) -> np.ndarray:
    """For each level i, the level at or above grid[i] + penalty (level 0 at the most)."""
    ascending = grid[::-1]
    # Count of levels strictly below grid[i] + penalty, seen from the low end.
    below = np.searchsorted(ascending, grid + penalty, side="left")
    return np.maximum(grid.size - 1 - below, 0).astype(np.int64)


def build_problem(laws: LawSet, target_loss: float, *, start_loss: float | None = None,
                  levels: int = 2000, transitions: Transitions | None = None,
                  only_grow: Sequence[str] = (), only_shrink: Sequence[str] = (),
                  max_switches: int | None = None, objective: str = "flops",
                  price_per_hour: float | None = None) -> Problem:
    """The search problem of ``laws`` towards ``target_loss``; options as in ``search.plan``."""
    t = laws.transitions if transitions is None else transitions
    for name, value in (("switch flops", t.flops), ("switch seconds", t.seconds),
                        ("switch loss penalty", t.loss_penalty)):
        if not (np.isfinite(value) and value >= 0):
            raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
    if max_switches is not None and (isinstance(max_switches, bool) or max_switches < 0):
        raise InputError(f"--max-switches must be an integer >= 0, got {max_switches!r}")
    grid = loss_grid(laws, target_loss, start_loss, levels)
    scale = objective_scale(laws, objective, price_per_hour)
    ok = allowed_switches(laws, t.allowed, only_grow, only_shrink)
    # A switch costs its FLOPs, done at the new shape's speed, plus (in time and money) its
    # seconds; the FLOPs objective has no clock, so it leaves switch seconds out.
    per_second = {"flops": 0.0, "seconds": 1.0, "money": (price_per_hour or 0.0) / 3600.0}
    per_switch = t.flops * scale + t.seconds * per_second[objective]
    switch_cost = np.where(ok, per_switch[None, :], np.inf)
    allowed = t.allowed if isinstance(t.allowed, str) else [list(p) for p in t.allowed]
    options = {"start_loss": start_loss, "levels": int(levels), "switch_flops": t.flops,
               "switch_seconds": t.seconds, "switch_penalty": t.loss_penalty,
               "allowed": allowed, "only_grow": list(only_grow), "only_shrink": list(only_shrink),
               "max_switches": max_switches, "objective": objective,
               "price_per_hour": price_per_hour}
    return Problem(tuple(laws.names), grid, compute_grid(laws, grid), scale, switch_cost,
                   landing_levels(grid, t.loss_penalty), float(t.flops), max_switches, options)


def switch_levels(problem: Problem, destination: int) -> np.ndarray:
    """Levels from which a switch into shape ``destination`` exists: all but the target level
    (switching there buys nothing), and only where it lands above the new shape's floor.
    """
    ok = np.isfinite(problem.compute[destination, problem.landing])
    ok[-1] = False
    return ok


def to_networkx(problem: Problem) -> Any:
    """The graph as a networkx DiGraph with nodes "source", "target" and (shape, level, switches).

    Edge attribute ``weight`` is the cost in objective units, ``kind`` is start, train, switch
    or end. Without a switch limit the switch count is always 0.
    """
    import networkx as nx

    graph = nx.DiGraph()
    names, grid = problem.names, problem.grid
    levels = grid.size
    depth = 1 if problem.max_switches is None else problem.max_switches + 1
    start, train = problem.start_cost, problem.train_cost
    for s, name in enumerate(names):
        for k in range(depth):
            graph.add_nodes_from(((s, i, k), {"shape": name, "loss": float(grid[i]),
                                              "switches": k}) for i in range(levels))
            graph.add_edges_from(((s, i, k), (s, i + 1, k), {"weight": float(train[s, i]),
                                                             "kind": "train"})
                                 for i in range(levels - 1) if np.isfinite(train[s, i]))
            graph.add_edge((s, levels - 1, k), "target", weight=0.0, kind="end")
        if np.isfinite(start[s]):
            graph.add_edge("source", (s, 0, 0), weight=float(start[s]), kind="start")
    src, dst = np.nonzero(np.isfinite(problem.switch_cost))
    extra = 0 if problem.max_switches is None else 1
    for p, q in zip(src.tolist(), dst.tolist(), strict=True):
        weight = float(problem.switch_cost[p, q])
        levels_from = np.flatnonzero(switch_levels(problem, q)).tolist()
        for k in range(depth - extra):
            graph.add_edges_from(((p, i, k), (q, int(problem.landing[i]), k + extra),
                                  {"weight": weight, "kind": "switch"}) for i in levels_from)
    return graph


def write_graphml(problem: Problem, path: str | os.PathLike) -> None:
    """Export the graph as GraphML (nodes named "shape@level" or "shape@level#switches")."""
    import networkx as nx

    graph = to_networkx(problem)
    limited = problem.max_switches is not None

    def label(node: Any) -> str:
        if isinstance(node, str):
            return node
        s, i, k = node
        return f"{problem.names[s]}@{i}" + (f"#{k}" if limited else "")

    text = "\n".join(nx.generate_graphml(nx.relabel_nodes(graph, label)))
    write_text_atomic(path, text + "\n")
