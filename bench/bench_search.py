"""Benchmark: the layered DP (blocks of levels, cumulative minima) against networkx Dijkstra.

Prints the fast solver's time on 32 shapes x 100,000 levels with all-pairs switches, its peak
memory (tracemalloc), the ratio to networkx Dijkstra measured side by side on the same graph
at a size networkx can hold (the full graph would have 99 million switch edges), and how the
fast solver's time grows with shapes and levels.

    .venv/bin/python bench/bench_search.py
"""

from __future__ import annotations

import time
import tracemalloc

import networkx as nx
import numpy as np

from laws.forms import PowerLaw
from laws.lawset import LawSet, Shape
from laws.search import PlanRequest, build_problem, solve_layers
from laws.search.export import to_networkx

TARGET = 2.0


def shapes(count: int) -> LawSet:
    """Power laws whose gradients cross in turn: larger shapes are dearer early, better late."""
    size = np.linspace(0.0, 1.0, count)
    return LawSet(f"bench-{count}", tuple(
        Shape(f"s{i}", {"size": i}, PowerLaw(a=(3.0 + 1.5 * x - (1.9 - 0.6 * x)) * 1e17 ** b,
                                             b=b, c=1.9 - 0.6 * x))
        for i, (x, b) in enumerate(zip(size, np.linspace(0.32, 0.24, count), strict=True))))


def problem(count: int, levels: int):
    laws = shapes(count)
    return build_problem(laws, PlanRequest.for_laws(laws, TARGET, start_loss=6.0, levels=levels,
                                                    switch_flops=1e15))


def best_time(function, argument, repeats: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(argument)
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    full = problem(32, 100_000)
    seconds, route = best_time(solve_layers, full)
    tracemalloc.start()
    solve_layers(full)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"fast solver, 32 shapes x 100,000 levels, all-pairs switches: {seconds:.3f} s, "
          f"{route.switches} switches, peak memory {peak / 2**20:.1f} MiB (graph arrays "
          f"{(full.compute.nbytes + full.switch_cost.nbytes) / 2**20:.1f} MiB)")

    print("\nside by side on the same graph (32 shapes, all-pairs switches); networkx timed on "
          "Dijkstra alone, its graph built beforehand:")
    print(f"{'levels':>7} {'nodes':>8} {'edges':>10} {'nx build s':>10} {'nx dijkstra s':>13} "
          f"{'fast s':>8} {'ratio':>7} {'same cost':>9}")
    for levels in (250, 500, 1000):
        small = problem(32, levels)
        start = time.perf_counter()
        graph = to_networkx(small)
        build = time.perf_counter() - start
        start = time.perf_counter()
        reference, _ = nx.single_source_dijkstra(graph, "source", "target", weight="weight")
        dijkstra = time.perf_counter() - start
        fast_seconds, fast = best_time(solve_layers, small)
        same = abs(fast.cost - reference) <= 1e-9 * reference
        print(f"{levels:>7} {graph.number_of_nodes():>8} {graph.number_of_edges():>10} "
              f"{build:>10.2f} {dijkstra:>13.3f} {fast_seconds:>8.4f} "
              f"{dijkstra / fast_seconds:>7.0f} {'yes' if same else 'NO':>9}")

    print("\nfast solver time (s) against shapes and levels:")
    level_counts = (10_000, 30_000, 100_000)
    print(f"{'shapes':>7} " + " ".join(f"{n:>9}" for n in level_counts))
    for count in (4, 8, 16, 32, 64):
        row = [best_time(solve_layers, problem(count, n), repeats=2)[0] for n in level_counts]
        print(f"{count:>7} " + " ".join(f"{t:>9.3f}" for t in row))


if __name__ == "__main__":
    main()
