"""Shortest paths through the shape graph: a layered dynamic programme, csgraph, networkx.

All three solve the same graph (``laws.search.problem.Problem``) and return a ``Route``.
Without a loss penalty the graph is a DAG in loss order and ``solve_layers`` sweeps blocks of
levels with cumulative minima (vectorised over levels). A loss penalty makes switches land on
earlier (higher-loss) levels, so ``solve_sparse`` runs Dijkstra from scipy.sparse.csgraph on
edge arrays built directly. ``solve_networkx`` is the reference. ``solve`` picks the fast one.

>>> import numpy as np
>>> from laws.search.problem import Problem
>>> compute = np.array([[1.0, 2.0, 9.0], [3.0, 4.5, 5.0]])  # shape 0 cheap early, 1 late
>>> inf = np.inf
>>> problem = Problem(("a", "b"), np.array([3.0, 2.0, 1.0]), compute, np.ones(2),
...                   np.array([[inf, 0.5], [0.5, inf]]), np.arange(3))
>>> route = solve(problem)
>>> route.cost, route.legs   # a to level 1 (2), switch (0.5), b (0.5)
(3.0, ((0, 0, 1), (1, 1, 2)))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from laws.search.export import to_networkx
from laws.search.problem import Problem, switch_levels

Node = tuple[int, int, int]  # (shape, level, switches made)


@dataclass(frozen=True)
class Route:
    """A path through the graph: ``legs`` of (shape, first level, last level), in order.

    Between consecutive legs lies one switch, landing on the next leg's first level.
    A route that cannot reach the target is ``UNREACHED`` (cost +inf, no legs): a value, not an
    error, since a sample of the laws or the greedy rule may miss a target the plan reaches.
    """

    cost: float
    legs: tuple[tuple[int, int, int], ...]

    @property
    def reaches(self) -> bool:
        return bool(self.legs)

    @property
    def switches(self) -> int:
        return max(len(self.legs) - 1, 0)


UNREACHED = Route(np.inf, ())


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

    Without a penalty a switch stays on its level, so the best cost of shape q at level l is
    T_q(l) + min(entry_q, min over m <= l of (arrive_q(m) - T_q(m))), with T_q the summed train
    costs and arrive_q(m) the cheapest switch into q at level m: one cumulative minimum along
    the levels once the arrivals are known. The levels are taken in blocks of ``_BLOCK``; inside
    a block, arrivals come from the same block's costs, so they are relaxed Bellman-Ford style:
    without a limit until nothing improves (a pass per switch inside the block, usually 2-3),
    with a limit K one pass per switch count 0..K, each from the count below it.
    """
    assert not problem.penalised, "switches with a loss penalty need solve_sparse"
    shapes, levels = problem.compute.shape
    limited = problem.max_switches is not None
    depth = problem.max_switches + 1 if limited else 1
    train = problem.train_cost
    arrive = _arrivals(problem.switch_cost)
    came_from = np.full((depth, shapes, levels), -1, dtype=np.int16)  # -1: by training
    entry = np.full((depth, shapes), np.inf)  # best costs on the level before the block
    entry[0] = problem.start_cost
    for first in range(0, levels, _BLOCK):
        last = min(first + _BLOCK, levels)
        steps = train[:, max(first - 1, 0):last - 1]
        offset = np.cumsum(np.where(np.isfinite(steps), steps, 0.0), axis=1)
        if first == 0:
            offset = np.hstack([np.zeros((shapes, 1)), offset])
        # A switch may land only where the new shape's law is defined (above its floor), and
        # switching at the target level buys nothing.
        closed = np.where(np.isfinite(problem.compute[:, first:last]), 0.0, np.inf)
        landable = closed.copy()
        if last == levels:
            landable[:, -1] = np.inf
        block = _Block(offset, closed, landable, arrive)
        for k in range(depth):
            if k == 0:
                values = offset + entry[0][:, None] + closed
                origin = np.full((shapes, last - first), -1, dtype=np.int16)
            else:
                values, origin = block.switch_in(values, entry[k])
            while not limited:
                better_values, better_origin = block.switch_in(values, entry[0])
                better = better_values < values
                if not better.any():
                    break
                values = np.where(better, better_values, values)
                origin = np.where(better, better_origin, origin)
            came_from[k, :, first:last] = origin
            entry[k] = values[:, -1]
    k, s = np.unravel_index(int(entry.argmin()), entry.shape)  # fewest switches on ties
    cost = float(entry[k, s])
    if not np.isfinite(cost):
        return UNREACHED
    legs = []
    k, s, level = int(k), int(s), levels - 1
    while True:
        trail = came_from[k, s, :level + 1]
        switched = np.flatnonzero(trail >= 0)
        if not switched.size:
            legs.append((s, 0, level))
            return Route(cost, tuple(legs[::-1]))
        landing = int(switched[-1])
        legs.append((s, landing, level))
        s, level, k = int(trail[landing]), landing, k - limited


_BLOCK = 1024  # levels per block: few switches fall in one, and its arrays stay in cache


@dataclass(frozen=True)
class _Block:
    """One block of levels: train costs summed from the level before it (``offset``), +inf
    where a shape's law is undefined (``closed``) or no switch may land (``landable``)."""

    offset: np.ndarray
    closed: np.ndarray
    landable: np.ndarray
    arrive: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

    def switch_in(self, sources: np.ndarray, entry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best costs in the block, by training from ``entry`` or after one switch from
        ``sources`` (costs on the same levels), and where each switch came from (-1: none)."""
        arrival, origin = self.arrive(sources)
        arrival += self.landable
        candidate = arrival - self.offset
        running = np.minimum.accumulate(candidate, axis=1)
        np.minimum(running, entry[:, None], out=running)
        before = np.hstack([entry[:, None], running[:, :-1]])
        landed = candidate < before  # strictly: on ties the route trains on
        # Where a switch lands, its cost is taken as summed, so that a chain of free switches
        # on one level can never undercut its own origin by rounding (no cycles).
        values = np.where(landed, arrival, self.offset + running) + self.closed
        return values, np.where(landed, origin, -1).astype(np.int16)


def _arrivals(switch_cost: np.ndarray) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The cheapest switch into each shape at each level of ``sources`` (shapes x levels), and
    its origin. When every switch is allowed at a price set by the new shape (as
    ``build_problem`` prices them), only the best and second-best shapes per level matter.
    """
    shapes = len(switch_cost)
    ids = np.arange(shapes)[:, None]
    off_diagonal = ~np.eye(shapes, dtype=bool)
    by_destination = switch_cost.max(axis=0, where=off_diagonal, initial=-np.inf)
    if shapes > 1 and np.isfinite(by_destination).all() and np.all(
            switch_cost[off_diagonal] == np.broadcast_to(by_destination, switch_cost.shape)[
                off_diagonal]):

        def arrive(sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            columns = np.arange(sources.shape[1])
            best = sources.argmin(axis=0)
            rest = sources.copy()
            rest[best, columns] = np.inf
            origin = np.where(best == ids, rest.argmin(axis=0), best)
            # Where every other shape is +inf, argmin names the shape itself: no switch in.
            arrival = np.where(origin == ids, np.inf, sources[origin, columns])
            return arrival + by_destination[:, None], origin
        return arrive

    def arrive_any(sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        arrival = np.empty_like(sources)
        origin = np.empty(sources.shape, dtype=np.intp)
        columns = np.arange(sources.shape[1])
        for q in range(shapes):
            via = sources + switch_cost[:, q, None]
            origin[q] = via.argmin(axis=0)
            arrival[q] = via[origin[q], columns]
        return arrival, origin
    return arrive_any


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
        return UNREACHED
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
        return UNREACHED
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
