"""The loop's report: ``report.md`` with its tables, and ``curves.png`` (``curves_figure``).

The report is a list of the comparison report's document blocks (``sim/report/document.py``),
built from the loop's summary, plan and laws alone. The tables give the measured and predicted
FLOPs to the target, the saving, each switch, and the fit's quality; when measured and
predicted saving differ by more than ``EXPLAIN_GAP`` percentage points, a section lists the
numbers behind the gap; the last section turns the fit's residuals into the uncertainty they
put on a measured compute to the target, which is what a gap between predicted and measured
saving is judged by.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from laws.io.atomic import write_bytes_atomic, write_text_atomic
from laws.lawset import LawSet
from laws.search.planfile import Plan
from laws.tables import format_number, format_percent
from sim.report.document import Block, Figure, Heading, Paragraph, Table, to_markdown
from validate.config import LoopConfig
from validate.curves_figure import curves_png

EXPLAIN_GAP = 10.0  # percentage points between measured and predicted saving worth explaining
CURVES = ("Eval loss against training FLOPs: every measured curve (static shapes, and the "
          "adaptive run in black), the fitted laws dashed, the target dotted, the planned "
          "switch points as triangles.")
MEASURED_ALIKE = (
    "Both sides are measured alike: every run, static or adaptive, at the FLOPs where a straight "
    "line in log-log through its evaluations around the target (within {span:g} decades, of the "
    "shape that crosses) meets it; a row is the mean over the seeds, and each seed's adaptive "
    "run is compared with the same seed's runs of the one best static shape.")
SWITCH_COLUMNS = (
    "Next eval loss: the first evaluation after the switch; law's loss there: what the new "
    "shape's law predicts there when the model lands on it at the loss that fired the switch "
    "(the difference is the loss the switch cost, or gained). FLOPs behind the law: at the last "
    "evaluation before the next switch or the end, the FLOPs trained since the switch minus "
    "those the new shape's law needs from the loss that fired it to the loss measured there; "
    "what the switch cost in compute (negative: the run got ahead of the law).")


def noise_share(laws: LawSet, name: str, target: float, rmse: float) -> float:
    """Relative change of ``name``'s compute to ``target`` when the loss moves by ``rmse``:
    |dC/dE| * rmse / C, how far evaluation noise of that size moves a measured crossing.

    >>> from laws.forms import PowerLaw
    >>> from laws.lawset import Shape
    >>> laws = LawSet("t", (Shape("s", {}, PowerLaw(a=1.0, b=1.0, c=0.0)),))
    >>> round(noise_share(laws, "s", 0.5, 0.01), 4)  # C = 1/E, |dC/dE| / C = 1/E
    0.02
    """
    law = laws.shape(name).law
    return float(abs(law.dcompute(target)) * rmse / law.compute(target))


def write_report(out: Path, summary: dict, static: dict, plan: Plan, adaptive: list[list[dict]],
                 laws: LawSet) -> None:
    """Write ``report.md`` and ``curves.png`` into ``out``."""
    write_bytes_atomic(out / "curves.png", curves_png(summary, static, plan, adaptive, laws))
    write_text_atomic(out / "report.md", format_report(summary, plan, laws))


def _pct(value: float | None) -> str:
    return format_percent(value, missing="n/a")


def _num(value: float | None) -> str:
    return "not reached" if value is None else format_number(value)


def _lag(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3e}"


def _loss(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def format_report(summary: dict, plan: Plan, laws: LawSet) -> str:
    """The Markdown report of a loop summary (``curves.png`` beside it)."""
    return to_markdown(report_blocks(summary, plan, laws), figures="")


def report_blocks(summary: dict, plan: Plan, laws: LawSet) -> list[Block]:
    """The whole report: what was run, compute to the target, the switches, why measured and
    predicted saving differ (when they do by more than ``EXPLAIN_GAP`` points), the fit."""
    fit = laws.provenance.get("fit_metrics", {})
    predicted, measured = summary["predicted_saving"], summary["measured_saving"]
    gap = None if measured is None else 100 * (measured - predicted)  # percentage points
    blocks = [
        Heading(f"Confirmation loop: {summary['task']}"),
        Paragraph(_lead(summary, plan, fit)),
        Figure("curves", CURVES),
        Heading("Compute to the target", 2),
        compute_table(summary["rows"]),
        Paragraph(MEASURED_ALIKE.format(span=summary["estimator"]["span"])
                  + "\nBest static shape: measured "
                  f"**{summary['best_static'] or 'none'}** (fewest FLOPs to the target, the "
                  "seeds' mean, among the shapes that reached it on every seed), predicted "
                  f"{summary['predicted_best_static']}."),
        *_per_seed(summary),
        Paragraph(_savings(summary, gap)),
        *_after_the_anneal(summary.get("anneal")),
        Heading("Switches", 2),
        switches_table(summary["switches"]),
        Paragraph(SWITCH_COLUMNS),
        *_replanned(summary.get("replanned")),
    ]
    if gap is None or abs(gap) > EXPLAIN_GAP:
        blocks += why_they_differ(summary, fit)
    blocks += [
        Heading("Fit quality", 2),
        Paragraph("Form chosen by held-out error (fitted on the first half of each curve's "
                  "points, tested on the second half): "
                  f"{fit.get('form')} (shared: {fit.get('share') or 'nothing'})."),
        fit_table(laws, fit, summary["target_loss"]),
        Paragraph(_fit_notes(fit)),
    ]
    return blocks


def _lead(summary: dict, plan: Plan, fit: dict) -> str:
    config = LoopConfig.from_dict(summary["config"])
    schedule = " -> ".join(plan.optimal.shapes)
    return (f"Static runs of {len(summary['rows']) - 1} shapes to "
            f"{format_number(config.budget)} FLOPs each ({config.seeds} seed(s), device "
            f"{config.train.device}), fitted laws (`laws.json`, form {fit.get('form')}), the "
            f"plan to loss {summary['target_loss']:.4f} (`plan.json`: {schedule}) and the "
            "adaptive run that followed it." + _anneal_lead(summary.get("anneal")))


def _anneal_lead(anneal: dict | None) -> str:
    return "" if anneal is None else (
        f" Every run also cooled down over the last {_pct(anneal['share'])} of its budget from "
        f"kept states: measured after the anneal, to loss {anneal['target_loss']:.4f}, the "
        f"adaptive run saves {_pct(anneal['measured_saving'])} against "
        f"{_pct(anneal['predicted_saving'])} predicted (section \"After the anneal\").")


def _after_the_anneal(anneal: dict | None) -> list[Block]:
    """A loop whose runs cool down (``validate/annealing.py``): the comparison after the anneal,
    laid out as the one above."""
    if anneal is None:
        return []
    plan, measured = anneal["plan"], anneal["measured_saving"]
    gap = None if measured is None else 100 * (measured - anneal["predicted_saving"])
    return [
        Heading("After the anneal", 2),
        Paragraph(
            "Every run trained at the constant rate and kept its state at some of its "
            "evaluation levels; each kept state cooled down over the last "
            f"{_pct(anneal['share'])} of its budget (the wsd run of that budget, bit for bit). "
            "A run's annealed curve is those branches' final losses against the FLOPs they "
            f"trained, read as above at the target {anneal['target_loss']:.4f} after the "
            f"anneal. The plan ends with the cool-down (`cooldown_plan.json`): "
            f"{' -> '.join(plan['schedule'])}, then a cool-down on {plan['ending']} from loss "
            f"{plan['stable_loss']:.4f}, the target of the constant-rate comparison above "
            "(its stable phase, `plan.json`); its predicted saving comes from the laws of the "
            "static shapes' annealed curves (`laws.json`, `annealed`)."),
        compute_table(anneal["rows"]),
        *_per_seed(anneal),
        Paragraph(_savings(anneal, gap)),
    ]


def _interval(low: float | None, high: float | None) -> str:
    return f"{_pct(low)} to {_pct(high)}"


def _per_seed(summary: dict) -> list[Block]:
    """Each seed's adaptive run against the same seed's runs of the best and the planned static
    shape, and the saving by the first crossing beside it."""
    seeds, best = summary["seeds"], summary["best_static"]
    planned = summary["predicted_best_static"]
    first = summary["first_crossing"]["savings"]
    cells = [[str(seed["seed"]), _num(seed["adaptive_flops"]),
              _num(seed["static_flops"][best]) if best else "none reached",
              _pct(seed["saving"]), _num(seed["static_flops"].get(planned)),
              _pct(seed["saving_vs_planned"]), _pct(by_first)]
             for seed, by_first in zip(seeds, first, strict=True)]
    return [Heading("Per seed", 3),
            Table(["seed", "adaptive FLOPs", f"best static {best} FLOPs", "saving",
                   f"planned static {planned} FLOPs", f"saving over {planned}",
                   "saving by first crossing"], cells)]


def _savings(summary: dict, gap: float | None) -> str:
    """The measured saving (mean of the paired savings, interval over seeds) beside the
    predicted one (interval over the fit's bootstrap samples when the plan carries one), their
    ``gap`` in percentage points, and whether the two intervals overlap."""
    measured, seeds = summary["measured_interval"], summary["seeds"]
    text = ("Saving of the adaptive run over the best static shape: measured "
            f"**{_pct(summary['measured_saving'])}**")
    if len(seeds) == 1:
        text += ", from one seed: interval n/a"
    else:
        spread = (f"{100 * measured['level']:g}% interval over the seeds "
                  f"{_interval(measured['low'], measured['high'])} (Student-t)"
                  if measured["low"] is not None else
                  "interval n/a (a seed did not reach the target)")
        text += f", the mean of the {len(seeds)} paired per-seed savings, {spread}"
    first = summary["first_crossing"]["measured_interval"]
    text += f" (by each run's first crossing instead: {_pct(first['mean'])}"
    if first["low"] is not None:
        text += f", {_interval(first['low'], first['high'])}"
    text += f"); predicted **{_pct(summary['predicted_saving'])}**"
    predicted, route = summary.get("predicted_interval"), summary.get("predicted_plan_interval")
    if predicted:
        text += (f", 5th to 95th percentile over the fit's bootstrap samples "
                 f"{_interval(predicted['p5'], predicted['p95'])}")
        if route:
            text += (f" (the plan's own schedule against {summary['predicted_best_static']}: "
                     f"{_interval(route['p5'], route['p95'])})")
    else:
        text += ", without an interval (the laws carry no bootstrap samples)"
    if gap is not None:
        text += f"; measured - predicted = {gap:+.1f} percentage points"
    overlap = summary.get("intervals_overlap")
    if overlap is not None:
        text += f". The two intervals {'overlap' if overlap else 'do not overlap'}"
    return text + "."


def compute_table(rows: dict[str, dict]) -> Table:
    """Measured against predicted FLOPs to the target, per static shape and the adaptive run."""
    cells = []
    for name, row in rows.items():
        ratio = (row["flops"] / row["predicted_flops"]
                 if row["flops"] and row["predicted_flops"] else None)
        cells.append([name, _num(row["flops"]), _num(row["predicted_flops"]),
                      "n/a" if ratio is None else f"{ratio:.3f}",
                      "n/a" if row["seconds"] is None else f"{row['seconds']:.1f}",
                      f"{row['final_loss']:.4f}",
                      f"{row['lowest_loss']:.4f} ({format_number(row['lowest_at'])})"])
    return Table(["run", "measured FLOPs", "predicted FLOPs", "measured / predicted", "wall s",
                  "final loss", "lowest loss (at FLOPs)"], cells)


def switches_table(switches: list[dict]) -> Table:
    """Each planned switch: where it was planned and what the adaptive run measured there."""
    cells = [[switch["to"], f"{switch['loss_level']:.4f}", _num(switch["predicted_flops"]),
              _num(switch["measured_flops"]),
              "did not fire" if switch["measured_loss"] is None
              else f"{switch['measured_loss']:.4f}",
              _loss(switch.get("loss_after")), _loss(switch.get("expected_loss_after")),
              _lag(switch.get("lag_flops"))]
             for switch in switches]
    return Table(["to", "planned loss level", "predicted FLOPs", "measured FLOPs",
                  "eval loss that fired it", "next eval loss", "law's loss there",
                  "FLOPs behind the law"], cells)


def _replanned(replanned: dict | None) -> list[Block]:
    if replanned and replanned["switch_flops"] > 0:
        return [Paragraph(f"Planned again with that cost "
                          f"({format_number(replanned['switch_flops'])} FLOPs per switch, the "
                          f"mean), the search predicts a saving of **{_pct(replanned['saving'])}"
                          f"** ({' -> '.join(replanned['schedule'])}): what the plan would have "
                          "said had it known the switch cost.")]
    if replanned:
        return [Paragraph("The run ended ahead of the new shapes' laws: the switches cost no "
                          "compute that the laws can see, and planning again with the measured "
                          "cost changes nothing.")]
    return []


def why_they_differ(summary: dict, fit: dict) -> list[Block]:
    """The section with the numbers behind a gap: switch losses, fit error, rising eval loss."""
    bullets = []
    for switch in summary["switches"]:
        after, expected = switch.get("loss_after"), switch.get("expected_loss_after")
        lag = switch.get("lag_flops")
        if after is None or expected is None:
            continue
        bullet = (f"- After the switch to {switch['to']} the first evaluation read {after:.4f}, "
                  f"where that shape's law expects {expected:.4f} ({after - expected:+.4f}).")
        if lag is not None:
            ahead = lag < 0
            bullet += (f" By the run's last evaluation on {switch['to']} it was "
                       f"{format_number(abs(lag))} FLOPs {'ahead of' if ahead else 'behind'} "
                       "that law: the model switched from the previous shape learned "
                       f"{'faster' if ahead else 'slower'} than one trained as {switch['to']} "
                       "from the start, which the plan does not assume.")
        bullets.append(bullet)
    held = fit.get("holdout", {}).get("all", {}).get("rmse")
    if held is not None:
        bullets.append(f"- The laws' held-out RMSE is {held:.4f} in loss; at the target that "
                       "moves a crossing by the last column of the fit table below.")
    for name, row in summary["rows"].items():
        if row["final_loss"] - row["lowest_loss"] > 0.02:
            bullets.append(f"- {name}: eval loss rose from its lowest {row['lowest_loss']:.4f} "
                           f"(at {format_number(row['lowest_at'])} FLOPs) to "
                           f"{row['final_loss']:.4f} at the end (overfitting).")
    return [Heading("Why measured and predicted differ", 2),
            Paragraph("\n".join(bullets or ["- No single cause stands out in the numbers "
                                             "above."]))]


def fit_table(laws: LawSet, fit: dict, target: float) -> Table:
    """Each shape's fit: points, fit and held-out RMSE, and what one RMSE moves at the target."""
    cells = []
    for name in laws.names:
        metric = fit.get("fit", {}).get(name, {})
        held = fit.get("holdout", {}).get(name, {})
        reachable = np.isfinite(laws.shape(name).law.compute(target))
        shift = noise_share(laws, name, target, metric["rmse"]) if metric and reachable else None
        cells.append([name, str(metric.get("points", "n/a")),
                      f"{metric.get('rmse', float('nan')):.4f}",
                      f"{held.get('rmse', float('nan')):.4f}", _pct(shift)])
    return Table(["shape", "points", "fit RMSE", "held-out RMSE",
                  "FLOPs shift per RMSE at target"], cells)


def _fit_notes(fit: dict) -> str:
    tails = {name: n for name, n in fit.get("rising_tail_left_out", {}).items() if n}
    rise = fit.get("overfit_rise")
    text = ("The last column is |dC/dE| x RMSE / C at the target: how much a loss error of one "
            "fit RMSE moves the compute at which a curve crosses the target. A measured saving "
            "within about that much of the predicted one agrees with it. A lowest loss well "
            "below the final one means the eval loss rose again (overfitting on repeated "
            "data), which no decreasing law can follow")
    if rise is None:
        return text + "."
    listed = (": " + ", ".join(f"{name} {n} point{'s' * (n > 1)}" for name, n in tails.items())
              + "." if tails else "; none here.")
    return (text + f": such a rising tail (a curve ending more than {rise:.0%} above its lowest "
            "loss) is left out of the fit" + listed)


def format_summary(summary: dict) -> str:
    """The comparison for stdout: an aligned table, then the savings."""
    from laws.tables import format_table

    rows = [[name, row["flops"] or "-", row["predicted_flops"] or "-",
             "-" if row["seconds"] is None else round(row["seconds"], 1), row["final_loss"]]
            for name, row in summary["rows"].items()]
    table = format_table(["run", "FLOPs to target", "predicted", "seconds", "final loss"], rows)
    text = (f"target loss {summary['target_loss']:.4f}\n{table}\n"
            f"saving vs best static ({summary['best_static']}): predicted "
            f"{_pct(summary['predicted_saving'])}, measured {_pct(summary['measured_saving'])}")
    measured = summary["measured_interval"]
    text += " (per seed: " + ", ".join(_pct(s["saving"]) for s in summary["seeds"])
    if measured["low"] is not None:
        text += (f"; {100 * measured['level']:g}% interval "
                 f"{_interval(measured['low'], measured['high'])}")
    text += ")"
    if summary.get("predicted_interval"):
        interval = summary["predicted_interval"]
        text += f"; predicted 5th-95th percentile {_interval(interval['p5'], interval['p95'])}"
    if summary.get("intervals_overlap") is not None:
        text += f"; intervals {'overlap' if summary['intervals_overlap'] else 'do not overlap'}"
    if anneal := summary.get("anneal"):
        spread = anneal["measured_interval"]
        text += (f"\nafter the anneal (target {anneal['target_loss']:.4f}, best static "
                 f"{anneal['best_static']}): predicted {_pct(anneal['predicted_saving'])}, "
                 f"measured {_pct(anneal['measured_saving'])}")
        if spread["low"] is not None:
            text += (f" ({100 * spread['level']:g}% interval "
                     f"{_interval(spread['low'], spread['high'])})")
    replanned = summary.get("replanned")
    if replanned and replanned["switch_flops"] > 0:
        text += (f"\nplanned again with the measured switch cost "
                 f"({format_number(replanned['switch_flops'])} FLOPs): predicted "
                 f"{_pct(replanned['saving'])}")
    return text
