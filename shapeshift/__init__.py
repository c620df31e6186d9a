"""shapeshift's public API: fit scaling laws per model shape, plan the cheapest schedule of
shapes, simulate it, and run it in your own training loop (Lightning, the Hugging Face Trainer
or plain PyTorch), then measure what it saved. docs/API.md walks through it with examples.

Every name is imported on first use, so ``import shapeshift`` is fast and needs neither torch
nor the frameworks; the controller, the operators and the adapters import torch (and Lightning
or transformers) when they are first used.

>>> import shapeshift
>>> laws = shapeshift.load_preset("demo")
>>> plan = shapeshift.search(laws, 2.2, levels=500)
>>> plan.optimal.schedule[0].shape, plan.saving_vs_static > 0
('p32', True)
>>> shapeshift.planned(plan, shapeshift.load_preset("gemstones-lm"))
Traceback (most recent call last):
...
laws.search.request.LawsMismatch: plan was made for other laws ('demo', digest ...), ...
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from laws.search.planfile import Plan

# public name -> "module:attribute", imported by __getattr__ on first use
_EXPORTS = {
    # law sets and law files
    "LawSet": "laws.lawset:LawSet",
    "Shape": "laws.lawset:Shape",
    "load_preset": "laws.presets:load_preset",
    "read_law_file": "laws.io.lawfile:read_law_file",
    "write_law_file": "laws.io.lawfile:write_law_file",
    # fitting
    "FitRequest": "laws.fit.request:FitRequest",
    "ColumnMap": "laws.io.curves:ColumnMap",
    "fit_file": "laws.fit.request:fit_file",
    "fit_runs": "laws.runcurves:fit_runs",
    "switches_in_files": "laws.fit.transitions:switches_in_files",
    "with_measured_transitions": "laws.fit.transitions:with_measured_transitions",
    # plans
    "PlanRequest": "laws.search.request:PlanRequest",
    "plan": "laws.search.plans:plan",
    "format_plan": "laws.search.plans:format_plan",
    "Plan": "laws.search.planfile:Plan",
    "read_plan": "laws.search.planfile:read_plan",
    "write_plan": "laws.search.planfile:write_plan",
    # simulation and comparison
    "SimConfig": "sim.config:SimConfig",
    "simulate": "sim.montecarlo:simulate",
    "compare": "sim.report.compare:compare",
    # policies
    "Policy": "sim.policies:Policy",
    "Static": "sim.policies:Static",
    "Scheduled": "sim.policies:Scheduled",
    "Greedy": "sim.policies:Greedy",
    "RandomShape": "sim.policies:RandomShape",
    "planned": "sim.policies:planned",
    "fixed": "sim.policies:fixed",
    "check_plan_laws": "sim.policies:check_plan_laws",
    "Online": "sim.online:Online",
    # your own training loop (torch)
    "ShapeController": "validate.controller:ShapeController",
    "VitPatch": "validate.operators.vit_patch:VitPatch",
    "MlpWidth": "validate.operators.mlp_width:MlpWidth",
    "timm_mlp_layers": "validate.operators.mlp_width:timm_mlp_layers",
    "Gpt2Context": "validate.operators.context:Gpt2Context",
    "Depth": "validate.operators.depth:Depth",
    "BatchSize": "validate.operators.batch:BatchSize",
    "import_timm": "validate.operators.timm_import:import_timm",
    "ShapeCallback": "validate.adapters.lightning:ShapeCallback",
    "ShapeTrainerCallback": "validate.adapters.hf:ShapeTrainerCallback",
    "ShapeTrainer": "validate.adapters.hf:ShapeTrainer",
    # measuring your runs
    "measure": "validate.savings:measure",
    "format_measure": "validate.savings:format_measure",
    "read_run": "laws.runcurves:read_run",
    # errors
    "InputError": "laws.errors:InputError",
    "LawsMismatch": "laws.search.request:LawsMismatch",
}

__all__ = sorted([*_EXPORTS, "search"])


def search(laws: Any, target: float, **options: Any) -> Plan:
    """The plan of ``shapeshift search``: the cheapest schedule of ``laws``' shapes to the
    loss ``target``; ``options`` are ``PlanRequest``'s (``switch_flops``, ``max_switches``,
    ``levels``, ...)."""
    from laws.search import plan
    from laws.search.request import PlanRequest

    return plan(laws, PlanRequest.for_laws(laws, target, **options))


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'shapeshift' has no attribute {name!r}")
    module, _, attribute = _EXPORTS[name].partition(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # the next access skips __getattr__
    return value


def __dir__() -> list[str]:
    return __all__
