"""Shortest paths through the shape graph: a layered dynamic programme, csgraph, networkx.

All three solve the same graph (``laws.graph.Problem``) and return a ``Route``. Without a loss
penalty the graph is a DAG in loss order and ``solve_layers`` sweeps the levels once, relaxing
switches inside each level with vectorised numpy. A loss penalty makes switches land on earlier
(higher-loss) levels, so ``solve_sparse`` runs Dijkstra from scipy.sparse.csgraph on edge arrays
built directly. ``solve_networkx`` is the reference. ``solve`` picks the fast one.

>>> import numpy as np
>>> from laws.graph import Problem
>>> compute = np.array([[1.0, 2.0, 9.0], [3.0, 4.5, 5.0]])  # shape 0 cheap early, 1 late
>>> inf = np.inf
>>> problem = Problem(("a", "b"), np.array([3.0, 2.0, 1.0]), compute, np.ones(2),
...                   np.array([[inf, 0.5], [0.5, inf]]), np.arange(3))
>>> route = solve(problem)
>>> route.cost, route.legs   # a to level 1 (2), switch (0.5), b (0.5)
(3.0, ((0, 0, 1), (1, 1, 2)))
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from laws.graph import Problem, switch_levels, to_networkx

Node = tuple[int, int, int]  # (shape, level, switches made)


@dataclass(frozen=True)
class Route:
    """A path through the graph: ``legs`` of (shape, first level, last level), in order.

    Between consecutive legs lies one switch, landing on the next leg's first level.
    An unreachable target gives cost +inf and no legs.
    """

    cost: float
    legs: tuple[tuple[int, int, int], ...]

    @property
    def switches(self) -> int:
        return max(len(self.legs) - 1, 0)


def route_cost(problem: Problem, legs: tuple[tuple[int, int, int], ...]) -> float:
    """The cost of ``legs`` added up edge by edge (checks a solver's answer independently)."""
    train = problem.train_cost
    s0, first, _ = legs[0]
    assert first == 0, "a route starts at the start loss"
    cost = float(problem.start_cost[s0])
    for (s, lo, hi), following in zip(legs, [*legs[1:], None], strict=True):
        cost += float(train[s, lo:hi].sum())
        if following is not None:
            assert following[1] == problem.landing[hi], "a switch lands where the penalty says"
            cost += float(problem.switch_cost[s, following[0]])
    return cost


def solve(problem: Problem) -> Route:
    """The optimal route by the fastest exact method for this graph."""
    return solve_sparse(problem) if problem.penalised else solve_layers(problem)


def solve_layers(problem: Problem) -> Route:
    """Exact dynamic programme over the loss levels; needs switches that land where they leave.

    The state per level is the best cost of each (switch count, shape). Within a level,
    switches are relaxed one hop at a time: without a limit until nothing improves (chains
    through allowed intermediate shapes count), with a limit K once per count 0..K-1, in order.
    """
    assert not problem.penalised, "switches with a loss penalty need solve_sparse"
    levels = problem.grid.size
    train = np.ascontiguousarray(problem.train_cost.T)  # one row per level: fast slicing
    # A switch may land only where the new shape's law is defined (above its floor).
    closed = np.where(np.isfinite(problem.compute.T), 0.0, np.inf)
    uniform = _uniform_cost(problem.switch_cost)
    if problem.max_switches is None and uniform is not None:
        best, came_from = _sweep_uniform(problem.start_cost, train, closed, uniform)
    else:
        best, came_from = _sweep(problem, train, closed)
    k, s = np.unravel_index(int(best.argmin()), best.shape)  # fewest switches on ties
    cost = float(best[k, s])
    if not np.isfinite(cost):
        return Route(np.inf, ())
    nodes = []
    i, k, s = levels - 1, int(k), int(s)
    while True:
        nodes.append((s, i, k))
        origin = int(came_from[i, k, s])
        if origin >= 0:
            s, k = origin, k - (problem.max_switches is not None)
        elif i == 0:
            break
        else:
            i -= 1
    return Route(cost, _legs(nodes[::-1]))


def _sweep_uniform(start: np.ndarray, train: np.ndarray, closed: np.ndarray,
                   uniform: float) -> tuple[np.ndarray, np.ndarray]:
    """Every switch allowed at one price and no limit: only the cheapest shape is worth leaving,
    so a level costs three small numpy calls. Where each switch came from is worked out after
    the sweep, for all levels at once, by repeating the same floating-point sums.
    """
    levels, shapes = closed.shape
    best = np.empty((levels, shapes))
    best[0] = start
    threshold = np.empty(shapes)
    floors_here = closed.any(axis=1).tolist()
    for i in range(levels - 1):  # switching at the target level buys nothing
        row = best[i]
        if i:
            np.add(best[i - 1], train[i - 1], out=row)
        if floors_here[i]:
            np.add(closed[i], row.min() + uniform, out=threshold)
            np.minimum(row, threshold, out=row)
        else:
            np.minimum(row, row.min() + uniform, out=row)
    trained = np.vstack([start[None, :], best[:-1] + train])
    best[-1] = trained[-1]
    switched = best < trained
    came_from = np.where(switched, trained.argmin(axis=1)[:, None], -1).astype(np.int16)
    return best[-1][None, :], came_from[:, None, :]


def _sweep(problem: Problem, train: np.ndarray, closed: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Any allowed switches, with or without a limit: relax switches one hop at a time."""
    shapes, levels = problem.compute.shape
    limit = problem.max_switches
    depth = 1 if limit is None else limit + 1
    best = np.full((depth, shapes), np.inf)
    best[0] = problem.start_cost
    came_from = np.full((levels, depth, shapes), -1, dtype=np.int16)  # -1: by training
    for i in range(levels - 1):  # switching at the target level buys nothing
        if i:
            best += train[i - 1]
        if limit is None:
            while _relax(best[0], best[0], came_from[i, 0], problem.switch_cost, closed[i]):
                pass
        for k in range(limit or 0):
            _relax(best[k], best[k + 1], came_from[i, k + 1], problem.switch_cost, closed[i])
    best += train[-1]
    return best, came_from


def _relax(source: np.ndarray, target: np.ndarray, came_from: np.ndarray,
           switch_cost: np.ndarray, closed: np.ndarray) -> bool:
    """One switch from the ``source`` costs into ``target`` (in place); True if any improved."""
    via = source[:, None] + switch_cost
    origin = via.argmin(axis=0)
    arrival = via[origin, np.arange(len(source))] + closed
    better = arrival < target
    target[better] = arrival[better]
    came_from[better] = origin[better]
    return bool(better.any())


def _uniform_cost(switch_cost: np.ndarray) -> float | None:
    """The common cost when every switch between distinct shapes is allowed at one price."""
    off_diagonal = switch_cost[~np.eye(len(switch_cost), dtype=bool)]
    if off_diagonal.size and np.isfinite(off_diagonal).all() and np.all(
            off_diagonal == off_diagonal[0]):
        return float(off_diagonal[0])
    return None


def solve_sparse(problem: Problem) -> Route:
    """Dijkstra (scipy.sparse.csgraph) on the graph's edge arrays; handles loss penalties."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    shapes, levels = problem.compute.shape
    limit = problem.max_switches
    depth = 1 if limit is None else limit + 1
    layer = np.arange(levels)

    def index(s: np.ndarray, i: np.ndarray, k: np.ndarray) -> np.ndarray:
        return 1 + (k * shapes + s) * levels + i  # node 0 is the source

    train = problem.train_cost
    rows, cols, weights = [], [], []
    for k in range(depth):
        for s in range(shapes):
            ok = np.isfinite(train[s])
            rows.append(index(s, layer[:-1][ok], k))
            cols.append(index(s, layer[1:][ok], k))
            weights.append(train[s][ok])
            if np.isfinite(problem.start_cost[s]) and k == 0:
                rows.append(np.array([0]))
                cols.append(index(s, np.array([0]), 0))
                weights.append(problem.start_cost[s:s + 1])
    step = 0 if limit is None else 1
    for p, q in zip(*np.nonzero(np.isfinite(problem.switch_cost)), strict=True):
        ok = switch_levels(problem, q)
        for k in range(depth - step):
            rows.append(index(p, layer[ok], k))
            cols.append(index(q, problem.landing[ok], k + step))
            weights.append(np.full(ok.sum(), problem.switch_cost[p, q]))
    size = 1 + depth * shapes * levels
    # Built as CSR directly: explicit zero weights stay edges, and no (row, col) pair repeats.
    row = np.concatenate(rows)
    order = np.argsort(row, kind="stable")
    indptr = np.searchsorted(row[order], np.arange(size + 1))
    matrix = csr_matrix((np.concatenate(weights)[order], np.concatenate(cols)[order], indptr),
                        shape=(size, size))
    dist, pred = dijkstra(matrix, indices=0, return_predecessors=True)
    ends = index(np.arange(shapes)[None, :], levels - 1, np.arange(depth)[:, None]).ravel()
    end = int(ends[np.argmin(dist[ends])])
    cost = float(dist[end])
    if not np.isfinite(cost):
        return Route(np.inf, ())
    nodes = []
    while end != 0:
        k, rest = divmod(end - 1, shapes * levels)
        s, i = divmod(rest, levels)
        nodes.append((int(s), int(i), int(k)))
        end = int(pred[end])
    return Route(cost, _legs(nodes[::-1]))


def solve_networkx(problem: Problem) -> Route:
    """Reference answer: networkx Dijkstra from the source to the target on ``to_networkx``."""
    import networkx as nx

    graph = to_networkx(problem)
    try:
        cost, path = nx.single_source_dijkstra(graph, "source", "target", weight="weight")
    except nx.NetworkXNoPath:
        return Route(np.inf, ())
    return Route(float(cost), _legs(path[1:-1]))


def _legs(nodes: list[Node]) -> tuple[tuple[int, int, int], ...]:
    """Group a node path into legs: a new leg starts wherever the shape changes."""
    legs = []
    s0, first = nodes[0][0], nodes[0][1]
    for (s, i, _), (t, j, _) in pairwise(nodes):
        if t != s:
            legs.append((s0, first, i))
            s0, first = t, j
    legs.append((s0, first, nodes[-1][1]))
    return tuple(legs)
