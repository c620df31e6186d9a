"""Search the shape graph: the optimal traversal, the greedy rule, static shapes, the bound C*.

``plan`` is the entry point (the plan object of DESIGN.md); ``loss_grid`` and
``inverse_gradients`` are the building blocks a report needs to draw the laws' |dC/dE|.
"""

from laws.graph import build_problem, inverse_gradients, loss_grid
from laws.search.plan import describe_route, law_set_digest, plan, plan_for_problem
from laws.search.rules import greedy_route, lower_bound
from laws.search.solvers import Route, solve, solve_layers, solve_networkx, solve_sparse

__all__ = [
    "Route", "build_problem", "describe_route", "greedy_route", "inverse_gradients",
    "law_set_digest", "loss_grid", "lower_bound", "plan", "plan_for_problem", "solve",
    "solve_layers", "solve_networkx", "solve_sparse",
]
