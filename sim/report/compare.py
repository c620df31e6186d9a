"""``compare``: search, simulate every policy, and write the report folder.

The folder holds ``report.md`` and a self-contained ``report.html`` (same blocks, figures
embedded), ``figures/*.png``, ``summary.json`` (every number the report shows, the plan, the
inputs' hashes, options, seed and version) and ``runs.csv`` (one row per simulated run).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path
from typing import Any

from laws.io.atomic import check_replaceable, write_folder_atomic
from laws.io.source import LawSource, law_set_record
from laws.lawset import LawSet
from laws.search import Plan, PlanRequest, plan
from sim.config import SimConfig
from sim.montecarlo import simulate
from sim.policy_spec import with_baseline
from sim.report.document import to_html, to_markdown
from sim.report.sections import FIGURES, report_blocks
from sim.results import SimResults, rounded, summarise

DEFAULT_POLICIES = ("static", "greedy", "planned", "online", "random")
REPORT_FILES = ("report.md", "report.html", "summary.json", "runs.csv",
                *(f"figures/{name}.png" for name in FIGURES))


def compare(laws: LawSet, request: PlanRequest, policies: Sequence[str] = DEFAULT_POLICIES,
            config: SimConfig | None = None, *, out_dir: str | Path, runs: int = 20,
            seed: int = 0, workers: int = 1, truth: LawSet | None = None,
            plan_object: Plan | None = None,
            sources: Mapping[str, LawSource] | None = None,
            progress: Callable[[int], None] | None = None,
            executor: str | Executor = "local") -> dict[str, Any]:
    """Write the comparison report of ``policies`` on ``laws`` into ``out_dir`` (as a unit,
    replacing an earlier report there); return its ``summary.json`` object.

    The best static shape always runs too, as the baseline of the savings. ``plan_object``
    is a plan made for ``request`` (default: the search runs here); the plan and the simulated
    runs pay the same switches, the request's. ``sources`` names where each law set came
    from (``{"laws": ..., "truth": ...}``), to record the files' hashes. ``executor`` runs the
    simulation (as in ``simulate``).

    >>> import tempfile
    >>> from laws.presets import load_preset
    >>> laws = load_preset("demo")
    >>> request = PlanRequest.for_laws(laws, 2.1, levels=200)
    >>> summary = compare(laws, request, ["static", "planned"], runs=2,
    ...                   out_dir=tempfile.mkdtemp())
    >>> summary["options"]["search"]["levels"], summary["simulation"]["baseline"]["shape"]
    (200, 'p16')
    """
    check_replaceable(out_dir, REPORT_FILES)
    policies = with_baseline(policies)
    config = replace(config or SimConfig(), trajectories=True)  # the figures draw them
    if plan_object is None:
        plan_object = plan(laws, request)
    results = simulate(laws, request, policies, config, runs=runs, seed=seed,
                       workers=workers, truth=truth, plan=plan_object, progress=progress,
                       executor=executor)
    sources = sources or {}
    inputs = {"laws": _input_record(laws, sources.get("laws"))}
    if truth is not None:
        inputs["truth"] = _input_record(truth, sources.get("truth"))
    summary = {
        "produced_by": {"tool": "shapeshift compare",
                        "version": plan_object.produced_by.version},
        "inputs": inputs,
        "options": {"target_loss": request.target, "policies": policies, "runs": runs,
                    "seed": seed, "search": plan_object.request.to_dict(),
                    "config": config.to_dict()},
        "plan": plan_object.to_dict(),
        "simulation": {key: value for key, value in results.to_dict(trajectories=False).items()
                       if key in ("baseline", "plan_saving", "plan_compute", "budget_warning",
                                  "settings", "summary")},
        # With noise a run stops on observed losses: its true loss shows how far off it was.
        "true_loss_at_target": {
            policy: summarise([r.true_loss_at_target for r in results.runs_of(policy)
                               if r.reached])
            for policy in results.policies},
        "figures": {name: f"figures/{name}.png" for name in FIGURES},
    }
    summary = rounded(summary)  # what the file holds, and what the report is made of
    images = draw_figures(laws, plan_object, results)
    blocks = report_blocks(summary)
    files: dict[str, str | bytes] = {f"figures/{name}.png": data for name, data in images.items()}
    files.update({"summary.json": json.dumps(summary, indent=2, allow_nan=False) + "\n",
                  "runs.csv": results.runs_csv(), "report.md": to_markdown(blocks),
                  "report.html": to_html(blocks, images)})
    write_folder_atomic(out_dir, files)
    return summary


def draw_figures(laws: LawSet, plan_object: Plan,
                 results: SimResults) -> dict[str, bytes]:
    """Every figure of the report as PNG bytes, by name (the keys of ``FIGURES``)."""
    from sim.report import figures  # matplotlib: only when a report is drawn

    drawn = {
        "laws": figures.laws_figure(laws, plan_object),
        "gradients": figures.gradients_figure(laws, plan_object),
        "loss_vs_compute": figures.loss_curves_figure(laws, plan_object, results),
        "timeline": figures.timeline_figure(laws, plan_object, results),
        "compute_to_target": figures.distribution_figure(plan_object, results),
    }
    return {name: figures.png_bytes(drawn[name]) for name in FIGURES}


def _input_record(laws: LawSet, source: LawSource | None) -> dict[str, Any]:
    """Name, origin, file hash and canonical digest of a law set."""
    return law_set_record(laws) if source is None else source.record(laws)
