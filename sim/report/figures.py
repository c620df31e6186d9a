"""The five figures of a comparison report, drawn with matplotlib (Agg) into PNG bytes.

Every function takes plain data (the law set, the ``Plan``, the simulation results) and
returns a ``matplotlib.figure.Figure``; ``png_bytes`` renders one. Shapes keep one colour in
every figure, and so do policies. matplotlib is imported here only, so that importing ``sim``
stays light; ``sim.report`` imports this module when a report is drawn.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FixedLocator,
    FormatStrFormatter,
    LogLocator,
    NullLocator,
    ScalarFormatter,
)

from laws.lawset import LawSet  # noqa: E402
from laws.search.grid import inverse_gradients, loss_grid  # noqa: E402
from laws.search.planfile import Plan  # noqa: E402
from laws.search.problem import objective_scale  # noqa: E402
from sim.results import RunRecord, SimResults  # noqa: E402

DPI = 100
MAX_NAMED_SHAPES = 8  # beyond this, shapes off the plan are drawn grey under one legend entry
OTHER_SHAPES = "#b8b8b8"
OBJECTIVE_UNITS = {"flops": "FLOPs", "seconds": "seconds", "money": "money"}


def png_bytes(figure: Figure) -> bytes:
    """The figure as a PNG of at most 256 colours (a third of the bytes of full colour, which
    keeps committed reports small), then closed so that many reports do not pile up figures."""
    from PIL import Image  # matplotlib's own dependency

    rendered = io.BytesIO()
    figure.savefig(rendered, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(figure)
    image = Image.open(rendered).convert("RGB").quantize(colors=256)
    out = io.BytesIO()
    image.save(out, format="png", optimize=True)
    return out.getvalue()


def shape_colors(laws: LawSet, plan: Plan) -> dict[str, str]:
    """A colour per shape: all named when few, else the plan's shapes named and the rest grey."""
    named = (laws.names if len(laws.names) <= MAX_NAMED_SHAPES
             else list(dict.fromkeys(plan.optimal.shapes)))
    palette = plt.get_cmap("tab10").colors
    colors = {name: matplotlib.colors.to_hex(palette[i % len(palette)])
              for i, name in enumerate(named)}  # first, so that legends list them first
    colors.update({name: OTHER_SHAPES for name in laws.names if name not in colors})
    return colors


def policy_colors(policies: list[str]) -> dict[str, str]:
    palette = plt.get_cmap("Dark2").colors
    return {name: matplotlib.colors.to_hex(palette[i % len(palette)])
            for i, name in enumerate(policies)}


def plan_path(laws: LawSet, plan: Plan, points: int = 200) -> tuple[np.ndarray, ...]:
    """(cumulative FLOPs, loss) along the plan's optimal schedule, and the switch points."""
    compute, losses, switches = [], [], []
    spent = 0.0
    schedule = plan.optimal.schedule
    for i, step in enumerate(schedule):
        law = laws.shape(step.shape).law
        spent += step.switch_compute
        top = step.loss_from
        segment = np.geomspace(top, step.loss_to, points)
        # The first segment trains from scratch: its compute includes reaching the start loss.
        origin = 0.0 if i == 0 else float(law.compute(top))
        compute.append(spent + np.asarray(law.compute(segment), dtype=float) - origin)
        losses.append(segment)
        spent = float(compute[-1][-1])
        if i + 1 < len(schedule):
            switches.append((spent, step.loss_to, step.shape, schedule[i + 1].shape))
    return np.concatenate(compute), np.concatenate(losses), switches


def _plain_log_axis(axis) -> None:
    """Log axis over less than a decade (losses): label the ticks with plain numbers."""
    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    axis.set_major_formatter(formatter)
    axis.set_minor_formatter(ScalarFormatter(useOffset=False))
    axis.set_minor_locator(LogLocator(subs=np.arange(1, 10) / 1.0))


def _shape_label(laws: LawSet, name: str) -> str:
    axes = laws.shape(name).axes
    return f"{name} ({', '.join(f'{k}={v}' for k, v in axes.items())})" if axes else name


def _legend_handles(laws: LawSet, colors: dict[str, str], shown: list[str] | None = None,
                    patches: bool = False) -> list:
    """A legend entry per coloured shape (of ``shown``, default all) and one for the grey rest."""
    shown = laws.names if shown is None else shown
    named = [n for n in colors if colors[n] != OTHER_SHAPES and n in shown]

    def entry(color: str, label: str):
        return (Patch(color=color, label=label) if patches
                else Line2D([], [], color=color, lw=2, label=label))

    handles = [entry(colors[n], _shape_label(laws, n)) for n in named]
    others = sum(1 for n in shown if colors[n] == OTHER_SHAPES)
    if others:
        handles.append(entry(OTHER_SHAPES, f"{others} other shapes (not on the plan)"))
    return handles


def _loss_axis(axis, floor: float, high: float, low: float) -> None:
    """A loss axis spaced by log(loss - floor), as the search's grid is: the levels near the
    target, where the shapes' curves cross, get as much room as the decades above."""
    set_scale = axis.axes.set_xscale if axis is axis.axes.xaxis else axis.axes.set_yscale
    set_scale("function", functions=(lambda e: np.log(np.maximum(e - floor, 1e-300)),
                                     lambda x: floor + np.exp(x)))
    ticks = floor + np.geomspace(high - floor, low - floor, 7)
    axis.set_major_locator(FixedLocator([float(f"{t:.2g}") for t in ticks]))
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_locator(NullLocator())


def laws_figure(laws: LawSet, plan: Plan) -> Figure:
    """Loss vs compute of every shape (log-log), the plan's path and its switch points."""
    colors = shape_colors(laws, plan)
    target, start = plan.target_loss, plan.start_loss
    path_c, path_e, switches = plan_path(laws, plan)
    # From a thousandth of the best static compute (or below the first switch): the decades
    # further left only show every law falling from the start loss.
    first_switch = switches[0][0] if switches else np.inf
    best = plan.static_best
    lowest = min(1e-3 * best.compute, first_switch / 10)
    compute = np.geomspace(lowest, 10.0 * best.compute, 500)
    with np.errstate(over="ignore", invalid="ignore"):
        curves = np.array([np.asarray(s.law.loss(compute), dtype=float) for s in laws.shapes])
    # Up to a bit above the plan's loss at the left edge: higher, the laws only fall steeply.
    top = min(start, 1.5 * float(np.interp(np.log(compute[0]), np.log(path_c), path_e)))
    bottom = min(target, float(np.nanmin(curves[:, -1])))
    fig, ax = plt.subplots(figsize=(10, 5))
    for shape, curve in zip(laws.shapes, curves, strict=True):
        grey = colors[shape.name] == OTHER_SHAPES
        ax.plot(compute, curve, color=colors[shape.name], lw=0.8 if grey else 1.8,
                zorder=1 if grey else 2)
    ax.plot(path_c, path_e, color="black", lw=2.2, ls="--", zorder=3)
    handles = _legend_handles(laws, colors)
    handles.append(Line2D([], [], color="black", lw=2.2, ls="--", label="optimal schedule (plan)"))
    for number, (spent, loss, before, after) in enumerate(switches, start=1):
        ax.plot(spent, loss, "o", ms=13, mfc="white", mec="black", mew=1.5, zorder=4)
        ax.text(spent, loss, str(number), ha="center", va="center", fontsize=7, zorder=5)
        handles.append(Line2D([], [], ls="", marker=f"${number}$", color="black",
                              label=f"switch {before} → {after} at loss {loss:.3g}"))
    ax.axhline(target, color="crimson", lw=1, ls=":")
    ax.text(compute[0], target, f" target {target:g}", color="crimson", va="bottom", fontsize=8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_axis(ax.yaxis)
    ax.set_ylim(0.97 * bottom, top)
    ax.set_xlim(compute[0], compute[-1])
    ax.set_xlabel("training compute C (FLOPs)")
    ax.set_ylabel("loss")
    ax.set_title(f"{laws.name}: scaling laws and the optimal schedule "
                 f"({100 * plan.saving_vs_static:.1f}% less than static {best.shape})",
                 fontsize=11)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, which="major", alpha=0.3)
    return fig


def gradients_figure(laws: LawSet, plan: Plan, points: int = 600) -> Figure:
    """|dC/dE| per shape against loss, the loss ranges the optimal plan gives each shape shaded."""
    colors = shape_colors(laws, plan)
    target, start = plan.target_loss, plan.start_loss
    schedule = plan.optimal.schedule
    floor = min(s.law.floor for s in laws.shapes)
    # Four times the first switch's distance to the floor: all the later ranges, and enough of
    # the first, without decades where one shape leads alone.
    left = min(start, floor + 4.0 * (schedule[0].loss_to - floor))
    grid = loss_grid(laws, target, left, points)
    objective = plan.objective
    scale = objective_scale(laws, objective, plan.request.price_per_hour)
    gradients = scale[:, None] * inverse_gradients(laws, grid)
    fig, ax = plt.subplots(figsize=(10, 5))
    for shape, row in zip(laws.shapes, gradients, strict=True):
        grey = colors[shape.name] == OTHER_SHAPES
        finite = np.isfinite(row)
        ax.plot(grid[finite], row[finite], color=colors[shape.name], lw=0.8 if grey else 1.8,
                zorder=1 if grey else 2)
    finite = np.where(np.isfinite(gradients), gradients, np.nan)
    least = np.nanmin(finite, axis=0)  # near their floors the others shoot up: cut them off
    for step in schedule:
        high, low = min(step.loss_from, left), step.loss_to
        ax.axvspan(low, high, color=colors[step.shape], alpha=0.15, lw=0)
        ax.axvline(low, color="black", lw=0.6, ls=":")
        middle = floor + np.sqrt((high - floor) * (low - floor))
        ax.text(middle, 0.98, step.shape, transform=ax.get_xaxis_transform(), rotation=90,
                ha="center", va="top", fontsize=8, color=colors[step.shape],
                fontweight="bold")
    _loss_axis(ax.xaxis, floor, left, target)
    ax.set_yscale("log")
    ax.set_xlim(left, target)  # training moves left to right: from high loss to low
    ax.set_ylim(np.nanmin(finite) / 2, np.nanmax(least) * 100)
    unit = OBJECTIVE_UNITS[objective]
    ax.set_xlabel(f"loss E (spaced by log(E - {floor:.3g}), the lowest floor; training runs "
                  "left to right)")
    ax.set_ylabel(f"|dC/dE|  ({unit} per unit of loss)")
    ax.set_title("Inverse-law gradient per shape; shaded: the loss range each shape owns in "
                 "the optimal plan", fontsize=10)
    ax.legend(handles=_legend_handles(laws, colors), fontsize=8, loc="upper left",
              bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, which="major", alpha=0.3)
    return fig


def _spent_curve(run: RunRecord) -> tuple[np.ndarray, np.ndarray]:
    rows = np.array([(flops, true) for _, flops, true, _, _ in run.trajectory], dtype=float)
    return rows[:, 0], rows[:, 1]


def _on_grid(runs: list[RunRecord], grid: np.ndarray, value) -> np.ndarray:
    """value(spent, true loss) of each run on a common compute grid: interpolated in log
    compute, NaN before the first evaluation, held at its last value after the run stopped."""
    out = np.full((len(runs), grid.size), np.nan)
    for i, run in enumerate(runs):
        if not run.trajectory:
            continue
        spent, loss = _spent_curve(run)
        y = value(spent, loss)
        inside = grid >= spent[0]
        out[i, inside] = np.interp(np.log(grid[inside]), np.log(spent), y)
    return out


def loss_curves_figure(laws: LawSet, plan: Plan, results: SimResults) -> Figure:
    """Per policy, the true loss (median and 5-95% over runs) against compute spent, and the
    compute spent relative to the best static law at the same loss."""
    colors = policy_colors(results.policies)
    runs = [run for run in results.runs if run.trajectory]
    spent = np.concatenate([_spent_curve(run)[0] for run in runs])
    grid = np.geomspace(spent.min(), spent.max(), 300)
    target = results.target

    def envelope(loss: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.min([np.asarray(s.law.compute(loss), dtype=float) for s in laws.shapes],
                          axis=0)

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    medians = []
    # Policies that behave alike (greedy and planned often do) stay visible through the dashes.
    styles = {p: ("-", "--", "-.", ":")[i % 4] for i, p in enumerate(results.policies)}
    for policy in results.policies:
        mine = [run for run in runs if run.policy == policy]
        loss = _on_grid(mine, grid, lambda c, e: np.log(e))
        ratio = _on_grid(mine, grid, lambda c, e: c / envelope(e))
        # Failures throw single runs far off: the ratio panel shows the middle half of runs.
        for ax, values, transform, band in ((left, loss, np.exp, (5, 95)),
                                            (right, ratio, lambda v: v, (25, 75))):
            with np.errstate(all="ignore"):
                low, middle, high = np.nanpercentile(values, [band[0], 50, band[1]], axis=0)
            ax.fill_between(grid, transform(low), transform(high), color=colors[policy],
                            alpha=0.2, lw=0)
            ax.plot(grid, transform(middle), color=colors[policy], lw=1.6, label=policy,
                    ls=styles[policy])
        medians.append(middle)
    best = laws.shape(plan.static_best.shape)
    left.plot(grid, best.law.loss(grid), color="black", lw=0.8, ls="--",
              label=f"law of {best.name} (best static)")
    left.axhline(target, color="crimson", lw=1, ls=":", label=f"target {target:g}")
    left.set_xscale("log")
    floor = min(s.law.floor for s in laws.shapes)
    top = float(np.nanmax([run.trajectory[0][2] for run in runs]))
    _loss_axis(left.yaxis, floor, top, target)
    left.set_ylim(target - 0.1 * (target - floor), top)
    left.set_xlabel("compute spent (FLOPs)")
    left.set_ylabel(f"true loss (spaced by log(E - {floor:.3g}))")
    left.set_title("True loss vs compute: median and 5-95% band over runs", fontsize=10)
    left.legend(fontsize=8)
    right.axhline(1.0, color="black", lw=0.8, ls="--")
    right.set_xscale("log")
    medians = np.concatenate(medians)
    right.set_ylim(max(0.0, min(0.9, np.nanmin(medians) - 0.05)),
                   min(2.0, max(1.1, np.nanmax(medians) + 0.1)))
    right.set_xlabel("compute spent (FLOPs)")
    right.set_ylabel("compute spent / best static law's compute to the same loss")
    right.set_title("Median and 25-75% band; below 1: ahead of every static shape",
                    fontsize=10)
    for ax in (left, right):
        ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def timeline_figure(laws: LawSet, plan: Plan, results: SimResults) -> Figure:
    """The first run of each policy over time: shape, checkpoints, failures, repair, target."""
    colors = shape_colors(laws, plan)
    shown = [next(run for run in results.runs if run.policy == p) for p in results.policies]
    ends = [max(time for time, _, _ in run.events) / 3600.0 for run in shown]
    # A run that burns its whole budget can last ten times longer than the others: cut the
    # axis after the runs that reached the target and say where the long ones end.
    reached = [end for end, run in zip(ends, shown, strict=True) if run.reached]
    limit = 1.15 * max(reached or ends)
    fig, ax = plt.subplots(figsize=(11, 0.75 * len(shown) + 1.6))
    for row, run in enumerate(shown):
        if ends[row] > limit:
            ax.annotate(f"runs on to {ends[row]:.0f} h ({'target' if run.reached else 'budget'})",
                        (limit, row), xytext=(-4, 0), textcoords="offset points", ha="right",
                        va="center", fontsize=8,
                        bbox={"boxstyle": "rarrow", "fc": "white", "ec": "black", "lw": 0.8},
                        zorder=6)
        bars, shape, since, repair_from = [], None, 0.0, None
        for time, kind, detail in run.events:
            hours = time / 3600.0
            if kind in ("switch", "failure", "target", "budget") and shape is not None:
                bars.append((since, hours - since, shape))
            if kind in ("start", "restart", "switch"):
                shape, since = detail.split("->")[-1], hours
            if kind == "failure":
                shape, repair_from = None, hours
                ax.plot(hours, row, "X", color="crimson", ms=9, mec="white", zorder=4)
            if kind == "restart" and repair_from is not None:
                ax.barh(row, hours - repair_from, left=repair_from, height=0.5, color="white",
                        edgecolor="crimson", hatch="///", lw=0.5, zorder=2)
            if kind == "checkpoint":
                ax.plot(hours, row - 0.36, "|", color="dimgray", ms=5, zorder=3)
            if kind in ("target", "budget"):
                ax.plot(hours, row, "*" if kind == "target" else "s", color="black", ms=12,
                        zorder=5)
        for left, width, name in bars:
            ax.barh(row, width, left=left, height=0.5, color=colors[name], lw=0, zorder=1)
    ax.set_yticks(range(len(shown)), [f"{run.policy}\n{run.failures} failure(s)"
                                      for run in shown], fontsize=9)
    ax.set_ylim(len(shown) - 0.4, -0.7)
    ax.set_xlim(0, limit)
    ax.set_xlabel("wall time since submission (hours)")
    ax.set_title("One run per policy (replication 0): shape trained over time", fontsize=10)
    used = {detail.split("->")[-1] for run in shown for _, kind, detail in run.events
            if kind in ("start", "switch", "restart")}
    handles = _legend_handles(laws, colors, [n for n in laws.names if n in used], patches=True)
    handles += [Line2D([], [], ls="", marker="|", color="dimgray", label="checkpoint"),
                Line2D([], [], ls="", marker="X", color="crimson", label="failure"),
                Patch(facecolor="white", edgecolor="crimson", hatch="///", label="repair"),
                Line2D([], [], ls="", marker="*", color="black", ms=10, label="target reached"),
                Line2D([], [], ls="", marker="s", color="black", label="budget exhausted")]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def distribution_figure(plan: Plan, results: SimResults) -> Figure:
    """Compute to target of every run that reached it, per policy (dots: the observed stop;
    ticks: where its true loss met the target), against the plan's numbers."""
    colors = policy_colors(results.policies)
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(results.policies) + 1.8))
    rng = np.random.default_rng(0)  # jitter only: the picture is the same on every draw
    labels = []
    for row, policy in enumerate(results.policies):
        runs = results.runs_of(policy)
        values = np.array([r.compute_to_target for r in runs if r.reached], dtype=float)
        labels.append(f"{policy}\n{values.size}/{len(runs)} reached")
        if values.size:
            ax.boxplot(values, positions=[row], orientation="horizontal", widths=0.5,
                       showfliers=False,
                       medianprops={"color": "black"})
            ax.scatter(values, row + rng.uniform(-0.18, 0.18, values.size), s=10,
                       color=colors[policy], alpha=0.7, zorder=3)
        true = [r.true_compute_to_target for r in runs if r.true_compute_to_target is not None]
        if true:  # where the true loss met the target: the noise-free comparison with the plan
            ax.scatter(true, np.full(len(true), row + 0.33), marker="|", s=40, color="black",
                       lw=1, zorder=3, label="true crossing of each run" if not row else None)
    baseline = results.baseline
    ax.axvline(baseline["compute"], color="black", ls="--", lw=1,
               label=f"best static {baseline['shape']} ({baseline['source']})")
    ax.axvline(plan.optimal.compute, color="tab:green", ls=":", lw=1.5,
               label="plan's optimal compute (exact laws, no noise)")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    ax.set_xlabel("compute to target (FLOPs)")
    ax.set_title("Compute to target per policy (runs that reached it)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, axis="x", alpha=0.3)
    return fig
