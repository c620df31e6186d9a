"""The shape graph as a networkx DiGraph: reference answers for the solvers, GraphML export.

>>> from laws.presets import load_preset
>>> from laws.search.problem import build_problem
>>> from laws.search.request import PlanRequest
>>> laws = load_preset("demo")
>>> graph = to_networkx(build_problem(laws, PlanRequest.for_laws(laws, 2.0, levels=10)))
>>> graph.number_of_nodes()   # 3 shapes x 10 levels, source and target
32
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from laws.io.atomic import write_text_atomic
from laws.search.problem import Problem, switch_levels


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
