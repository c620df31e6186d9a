"""``compare``: search, simulate every policy, and write the report folder.

The folder holds ``report.md`` and a self-contained ``report.html`` (same blocks, figures
embedded), ``figures/*.png``, ``summary.json`` (every number the report shows, the plan, the
inputs' hashes, options, seed and version) and ``runs.csv`` (one row per simulated run).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from laws.errors import InputError
from laws.io.atomic import file_sha256, write_bytes_atomic, write_text_atomic
from laws.lawset import LawSet
from laws.presets import preset_path
from laws.search import law_set_digest, plan
from sim.config import SimConfig
from sim.montecarlo import simulate
from sim.report.document import FIGURES, report_blocks, to_html, to_markdown
from sim.results import SimResults, summarise

DEFAULT_POLICIES = ("static", "greedy", "planned", "online", "random")
PRESET_PREFIX = "preset:"


def compare(laws: LawSet, target: float | None, policies: Sequence[str] = DEFAULT_POLICIES,
            config: SimConfig | None = None, *, out_dir: str | Path, runs: int = 20,
            seed: int = 0, workers: int = 1, truth: LawSet | None = None,
            search: Mapping[str, Any] | None = None, sources: Mapping[str, str] | None = None,
            progress: Callable[[int], None] | None = None) -> Path:
    """Write the comparison report of ``policies`` on ``laws`` into ``out_dir``; return the
    path of ``report.html``.

    ``target`` None takes the law set's ``default_target``. The best static shape always
    runs too, as the baseline of the savings. ``search`` holds options of
    ``laws.search.plan`` (levels, start_loss, only_grow, ...); the transitions come from
    ``config`` (the law set's, with its overrides), so that the plan and the simulated runs
    pay the same switches. ``sources`` names where each law set came
    from, ``{"laws": "PATH" or "preset:NAME", "truth": ...}``, to record the files' hashes.

    >>> import tempfile
    >>> from laws.presets import load_preset
    >>> out = tempfile.mkdtemp()
    >>> compare(load_preset("demo"), 2.1, ["static", "planned"], runs=2, out_dir=out,
    ...         search={"levels": 200}).name
    'report.html'
    """
    target = default_target(laws) if target is None else target
    policies = list(policies)
    if not any(p.startswith("static") for p in policies):
        policies.append("static")
    config = replace(config or SimConfig(), trajectories=True)  # the figures draw them
    plan_object = plan(laws, target, transitions=config.transitions(laws), **(search or {}))
    results = simulate(laws, target, policies, config, runs=runs, seed=seed,
                       workers=workers, truth=truth, plan=plan_object, progress=progress)
    inputs = {"laws": _input_record(laws, (sources or {}).get("laws"))}
    if truth is not None:
        inputs["truth"] = _input_record(truth, (sources or {}).get("truth"))
    summary = {
        "produced_by": {"tool": "shapeshift compare",
                        "version": plan_object["produced_by"]["version"]},
        "inputs": inputs,
        "options": {"target_loss": target, "policies": policies, "runs": runs,
                    "seed": seed, "search": plan_object["options"], "config": config.to_dict()},
        "plan": plan_object,
        "simulation": {key: value for key, value in results.to_dict(trajectories=False).items()
                       if key in ("baseline", "plan_saving", "settings", "summary")},
        # With noise a run stops on observed losses: its true loss shows how far off it was.
        "true_loss_at_target": {
            policy: summarise([r.true_loss_at_target for r in results.runs_of(policy)
                               if r.reached])
            for policy in results.policies},
        "figures": {name: f"figures/{name}.png" for name in FIGURES},
    }
    images = draw_figures(laws, plan_object, results)
    blocks = report_blocks(summary)
    out = Path(out_dir)
    for name, data in images.items():
        write_bytes_atomic(out / "figures" / f"{name}.png", data)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    write_text_atomic(out / "runs.csv", results.runs_csv())
    write_text_atomic(out / "report.md", to_markdown(blocks))
    write_text_atomic(out / "report.html", to_html(blocks, images))
    return out / "report.html"


def draw_figures(laws: LawSet, plan_object: dict[str, Any],
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


def default_target(laws: LawSet) -> float:
    """The target loss a law set suggests (its ``default_target`` key), for demos.

    >>> from laws.presets import load_preset
    >>> default_target(load_preset("demo"))
    2.1
    """
    target = laws.extra.get("default_target")
    if isinstance(target, bool) or not isinstance(target, (int, float)):
        raise InputError(f"give --target LOSS (law set {laws.name!r} has no default_target)")
    return float(target)


def _input_record(laws: LawSet, source: str | None) -> dict[str, Any]:
    """Name, origin, file hash and canonical digest of a law set."""
    record: dict[str, Any] = {"name": laws.name, "source": "in memory", "sha256": None,
                              "digest": law_set_digest(laws),
                              "provenance": laws.provenance.get("source")}
    if source is not None:
        preset = source.removeprefix(PRESET_PREFIX) if source.startswith(PRESET_PREFIX) else None
        path = preset_path(preset) if preset else Path(source)
        record.update(source=f"preset {preset}" if preset else f"file {source}",
                      sha256=file_sha256(path))
    return record
