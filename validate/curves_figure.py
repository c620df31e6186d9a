"""The loop report's figure, ``curves.png``: every measured curve (static shapes, and the
adaptive run in black) on one loss-versus-FLOPs plot, the fitted laws dashed, the target
dotted, the planned switch points as triangles."""

from __future__ import annotations

import numpy as np

from laws.lawset import LawSet
from laws.search.planfile import Plan


def curves_png(summary: dict, static: dict, plan: Plan, adaptive: list[list[dict]],
               laws: LawSet) -> bytes:
    """The figure as PNG bytes (matplotlib, imported here: only a report draws it)."""
    from sim.report.figures import plt, png_bytes, shape_colors

    colors = shape_colors(laws, plan)
    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    budget = max(p["flops"] for runs in static.values() for run in runs for p in run)
    for name, runs in static.items():
        for seed, run in enumerate(runs):
            points = [p for p in run if p["flops"] > 0]
            axes.plot([p["flops"] for p in points], [p["eval_loss"] for p in points], "o-",
                      ms=2.5, lw=1, alpha=0.8, color=colors[name],
                      label=f"static {name}" if seed == 0 else None)
        first = min(p["flops"] for p in runs[0] if p["flops"] > 0)
        grid = np.geomspace(first, budget, 200)
        axes.plot(grid, laws.shape(name).law.loss(grid), "--", lw=1, color=colors[name])
    for seed, run in enumerate(adaptive):
        points = [p for p in run if p.get("event") == "eval" and p["flops"] > 0]
        axes.plot([p["flops"] for p in points], [p["eval_loss"] for p in points], "s-", ms=3,
                  lw=1.8, color="black", label="adaptive (measured)" if seed == 0 else None)
    for i, switch in enumerate(summary["switches"]):
        axes.plot(switch["predicted_flops"], switch["loss_level"], "v", ms=9, mfc="none",
                  color=colors[switch["to"]], label="planned switch" if i == 0 else None)
    axes.axhline(summary["target_loss"], color="grey", lw=0.8, ls=":", label="target")
    axes.set_xscale("log")
    axes.set_xlabel("training FLOPs")
    axes.set_ylabel("eval loss")
    losses = [p["eval_loss"] for runs in static.values() for run in runs for p in run]
    lowest = min(losses + [p["eval_loss"] for run in adaptive for p in run
                           if p.get("event") == "eval"])
    axes.set_ylim(lowest * 0.95, float(np.percentile(losses, 95)))
    axes.set_title(f"{summary['task']}: measured curves (fitted laws dashed)")
    axes.legend(fontsize=8)
    return png_bytes(figure)
