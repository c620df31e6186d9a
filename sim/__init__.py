"""The SimPy simulator of adaptive training runs: noise, transitions, faults, a cluster, policies.

>>> from sim import SimConfig, simulate
>>> SimConfig().noise
0.0
"""

from sim.config import Hardware, SimConfig
from sim.faults import FaultModel
from sim.montecarlo import check_plan, simulate
from sim.policies import POLICY_SPECS, PlanningContext, Policy, make_policy
from sim.results import RunRecord, SimResults

__all__ = ["POLICY_SPECS", "FaultModel", "Hardware", "PlanningContext", "Policy", "RunRecord",
           "SimConfig", "SimResults", "check_plan", "make_policy", "simulate"]
