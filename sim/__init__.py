"""The SimPy simulator of adaptive training runs: noise, transitions, faults, a cluster, policies.

The names below load on first use (PEP 562), so that ``import sim`` needs no simpy until
a name that uses it is asked for.

>>> from sim import SimConfig, simulate
>>> SimConfig().noise
0.0
"""

import importlib

_WHERE = {
    "Hardware": "sim.config", "SimConfig": "sim.config", "FaultModel": "sim.faults",
    "simulate": "sim.montecarlo", "PlanningContext": "sim.policies", "Policy": "sim.policies",
    "RunView": "sim.policies", "POLICY_SPECS": "sim.policy_spec", "make_policy": "sim.policy_spec",
    "RunRecord": "sim.results", "SimResults": "sim.results",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
