"""Search the shape graph: the optimal traversal, the greedy rule, static shapes, the bound C*.

A ``PlanRequest`` says what is asked; ``plan`` answers it with the plan object of DESIGN.md.
By topic: ``plans`` (the plan: made and formatted; the module is not called ``plan``, which is
the function), ``planfile`` (the ``Plan`` type, read and written), ``grid`` (loss levels and
the laws on them), ``switches`` (which switches exist), ``problem`` (the graph as arrays),
``solvers`` (shortest paths), ``rules`` (greedy and C*), ``export`` (networkx and GraphML).
"""

from laws.search.grid import inverse_gradients, loss_grid
from laws.search.planfile import Plan, read_plan, write_plan
from laws.search.plans import describe_route, plan, plan_for_problem
from laws.search.problem import Problem, build_problem
from laws.search.request import PlanRequest
from laws.search.rules import greedy_route, lower_bound
from laws.search.solvers import Route, solve, solve_layers, solve_networkx, solve_sparse

__all__ = [
    "Plan", "PlanRequest", "Problem", "Route", "build_problem", "describe_route", "greedy_route",
    "inverse_gradients", "loss_grid", "lower_bound", "plan", "plan_for_problem", "read_plan",
    "solve", "solve_layers", "solve_networkx", "solve_sparse", "write_plan",
]
