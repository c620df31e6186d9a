"""The report as a list of blocks built from ``summary.json`` alone, rendered to Markdown and HTML.

Every number in a table is ``summary.json``'s number passed through one of the formatting
functions below, so a reader (or a test) can check each cell against the JSON.

>>> blocks = [Heading("Result"), Table(["policy", "saving"], [["planned", percent(0.25)]])]
>>> print(to_markdown(blocks))
# Result
<BLANKLINE>
| policy | saving |
| --- | --- |
| planned | 25.0% |
<BLANKLINE>
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import Any

from laws.search.request import describe_request
from laws.tables import format_number, format_percent, format_spread

FIGURES = {
    "laws": "The laws: loss against compute for every shape (log-log), with the optimal "
            "schedule's path and its switch points.",
    "gradients": "The inverse-law gradient |dC/dE| per shape against loss; the shaded bands "
                 "are the loss ranges each shape owns in the optimal plan (the paper's Figure 3).",
    "loss_vs_compute": "Simulated runs: true loss against compute spent, median and 5-95% band "
                       "over runs per policy (left); compute spent relative to the best static "
                       "law's compute for the same loss (right, below 1 = ahead).",
    "timeline": "One run per policy over wall time: the shape it trains, checkpoints, failures "
                "and repairs.",
    "compute_to_target": "Compute to target of every run that reached it, per policy.",
}


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 1


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Figure:
    name: str
    caption: str


Block = Heading | Paragraph | Table | Figure


def percent(value: float | None) -> str:
    """A share as a percentage with one decimal; an empty cell for None."""
    return format_percent(value)


def with_range(stats: dict[str, float | None], scale: float = 1.0) -> str:
    """``mean [p5 – p95]`` of a summarised quantity, each divided by ``scale``."""
    return format_spread(stats, scale, missing="not reached")


def savings_table(summary: dict[str, Any]) -> Table:
    headers = ["policy", "reached", "compute to target (FLOPs)", "time to target (h)",
               "accelerator-hours", "saving vs best static", "share of plan's saving kept"]
    rows = []
    for policy, entry in summary["simulation"]["summary"].items():
        rows.append([policy, percent(entry["reached"]), with_range(entry["compute_to_target"]),
                     with_range(entry["time_to_target"], 3600.0),
                     with_range(entry["accelerator_hours"]), percent(entry["saving_vs_static"]),
                     percent(entry["saving_kept"])])
    return Table(headers, rows)


def events_table(summary: dict[str, Any]) -> Table:
    headers = ["policy", "runs", "switches", "failures", "lost compute (FLOPs)",
               "true loss at target"]
    rows = [[policy, str(entry["runs"]), with_range(entry["switches"]),
             with_range(entry["failures"]), with_range(entry["lost_flops"]),
             with_range(summary["true_loss_at_target"][policy])]
            for policy, entry in summary["simulation"]["summary"].items()]
    return Table(headers, rows)


def schedule_table(plan: dict[str, Any]) -> Table:
    optimal = plan["optimal"]
    rows = []
    for step in optimal["schedule"]:
        spent = step["compute"] + step["switch_compute"]
        rows.append([step["shape"], format_number(step["loss_from"]),
                     format_number(step["loss_to"]), format_number(spent),
                     percent(spent / optimal["compute"])])
    return Table(["shape", "loss from", "loss to", "compute (FLOPs)", "share of plan"], rows)


def plan_table(plan: dict[str, Any]) -> Table:
    best = plan["static_best"]
    greedy = plan["greedy"]["compute"]
    rows = [["optimal schedule", format_number(plan["optimal"]["compute"]),
             str(plan["optimal"]["switches"])],
            ["greedy rule (least |dC/dE|)", "stuck" if greedy is None else format_number(greedy),
             "" if greedy is None else str(plan["greedy"]["switches"])],
            [f"best static ({best['shape']})", format_number(best["compute"]), "0"]]
    rows += [[f"static {name}", "unreachable" if c is None else format_number(c), "0"]
             for name, c in sorted(plan["static"].items(), key=lambda kv: kv[1] or float("inf"))
             if name != best["shape"]]
    return Table(["schedule", "compute to target (FLOPs)", "switches"], rows)


def inputs_table(summary: dict[str, Any]) -> Table:
    options = summary["options"]
    rows = []
    for role, source in summary["inputs"].items():
        rows.append([f"{role} law set", f"{source['name']} ({source['source']})"])
        if source.get("provenance"):
            rows.append([f"{role} provenance", source["provenance"]])
        if source.get("sha256"):
            rows.append([f"{role} file sha256", f"`{source['sha256']}`"])
        rows.append([f"{role} law set digest", f"`{source['digest']}`"])
    rows += [["target loss", format_number(options["target_loss"])],
             ["policies", ", ".join(options["policies"])],
             ["runs per policy", str(options["runs"])],
             ["seed", str(options["seed"])],
             ["search", describe_request(options["search"])]]
    config = dict(options["config"])
    faults = config.pop("faults", None)
    rows.append(["simulation", ", ".join(f"{k}={v}" for k, v in config.items()
                                         if v not in (None, False) and k != "trajectories")])
    rows.append(["faults", "none (a perfect machine)" if not faults else
                 ", ".join(f"{k}={v}" for k, v in faults.items() if v is not None)])
    produced = summary["produced_by"]
    rows.append(["produced by", f"{produced['tool']} {produced['version']}"])
    return Table(["input", "value"], rows)


def verdict(summary: dict[str, Any]) -> str:
    """Whether the plan's saving is distinguishable from zero, given the fit's uncertainty
    (the plan's bootstrap interval, when the laws carry samples) and the evaluation noise (the
    simulated planned runs' paired saving over the static baseline)."""
    fit = summary["plan"].get("uncertainty")
    runs = summary["simulation"]["summary"].get("planned", {}).get("paired_saving")
    parts, doubts = [], []
    if fit:
        saving = fit["plan_saving"]
        parts.append(f"the fit's uncertainty puts the plan's saving at {percent(saving['p50'])} "
                     f"[{percent(saving['p5'])}, {percent(saving['p95'])}] ({fit['level']}%, "
                     f"{fit['samples']} bootstrap samples)")
        if saving["p5"] is None or saving["p5"] <= 0:
            doubts.append("the fit's interval")
    if runs:
        parts.append(f"the simulated runs measure {percent(runs['mean'])} "
                     f"[{percent(runs['low'])}, {percent(runs['high'])}] "
                     f"({round(100 * runs['level'])}%, {runs['pairs']} paired runs)")
        if runs["low"] <= 0:
            doubts.append("the runs' interval")
    if not parts:
        return ("Whether the saving is distinguishable from zero is not known here: the laws "
                "carry no bootstrap samples and no planned runs were paired with static ones.")
    if doubts:
        verb = "reach" if len(doubts) > 1 else "reaches"
        conclusion = (f"so the saving is not distinguishable from zero ({' and '.join(doubts)} "
                      f"{verb} 0)")
    else:
        conclusion = "so the saving is distinguishable from zero"
        if not fit:
            conclusion += " given the evaluation noise (the laws carry no bootstrap samples, " \
                          "so the fit's own uncertainty is not counted)"
    sentence = "; ".join(parts)
    return f"Is it real? {sentence[0].upper()}{sentence[1:]}; {conclusion}."


def report_blocks(summary: dict[str, Any]) -> list[Block]:
    """The whole report, from the ``summary.json`` object."""
    plan = summary["plan"]
    simulation = summary["simulation"]
    options = summary["options"]
    baseline = simulation["baseline"]
    name = summary["inputs"]["laws"]["name"]
    lead = (f"Law set **{name}**, target loss {format_number(options['target_loss'])}, "
            f"{options['runs']} simulated runs per policy (seed {options['seed']}). "
            f"The plan trains {' → '.join(s['shape'] for s in plan['optimal']['schedule'])} and "
            f"needs {percent(plan['saving_vs_static'])} less compute than the best static shape "
            f"({plan['static_best']['shape']}) on exact laws. Savings below are measured against "
            f"the best static shape's mean compute to target ({baseline['source']}). "
            f"{verdict(summary)}")
    return [
        Heading(f"Adaptive vs static training: {name}"),
        Paragraph(lead),
        Heading("Savings per policy", 2),
        Paragraph("Mean [5% – 95%] over the runs that reached the target; time includes "
                  "queueing, checkpoints and repair."),
        savings_table(summary),
        Heading("What happened in the runs", 2),
        Paragraph("Mean [5% – 95%]: failures and lost compute over all runs, the rest over "
                  "the runs that reached the target. A run stops when it observes the target "
                  f"{options['config']['confirm']} times in a row; with evaluation noise its "
                  "true loss then differs from the target."),
        events_table(summary),
        Figure("compute_to_target", FIGURES["compute_to_target"]),
        Figure("loss_vs_compute", FIGURES["loss_vs_compute"]),
        Figure("timeline", FIGURES["timeline"]),
        Heading("The plan", 2),
        Paragraph(f"Optimal schedule found by the search on {plan['levels']} loss levels from "
                  f"{format_number(plan['start_loss'])} to {format_number(plan['target_loss'])} "
                  f"(objective {plan['objective']}; {describe_request(plan['request'])}); "
                  f"the lower bound C* is {format_number(plan['lower_bound'])}."),
        schedule_table(plan),
        plan_table(plan),
        Figure("laws", FIGURES["laws"]),
        Figure("gradients", FIGURES["gradients"]),
        Heading("Inputs", 2),
        inputs_table(summary),
        Paragraph("Every number above is in `summary.json`; every run in `runs.csv`."),
    ]


def to_markdown(blocks: list[Block], figures: str = "figures/") -> str:
    """GitHub-flavoured Markdown; figures link to ``{figures}NAME.png``."""
    def table(block: Table) -> str:
        lines = [_md_row(block.headers), _md_row(["---"] * len(block.headers))]
        return "\n".join(lines + [_md_row(row) for row in block.rows]) + "\n"

    return "\n".join(_render(blocks, {
        Heading: lambda b: f"{'#' * b.level} {b.text}\n",
        Paragraph: lambda b: f"{b.text}\n",
        Table: table,
        Figure: lambda b: f"![{b.caption}]({figures}{b.name}.png)\n\n*{b.caption}*\n",
    }))


def _render(blocks: list[Block], renderers: dict[type, Any]) -> list[str]:
    return [renderers[type(block)](block) for block in blocks]


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}img{max-width:100%}figure{margin:1.5em 0}
figcaption{font-style:italic;color:#555}code{font-size:.85em}"""


def to_html(blocks: list[Block], images: dict[str, bytes]) -> str:
    """One self-contained HTML page: every figure embedded as a base64 PNG."""
    def table(block: Table) -> str:
        head = "".join(f"<th>{_inline(h)}</th>" for h in block.headers)
        rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                       for row in block.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"

    def figure(block: Figure) -> str:
        data = base64.b64encode(images[block.name]).decode()
        return (f'<figure><img alt="{html.escape(block.name)}" src="data:image/png;base64,'
                f'{data}"><figcaption>{_inline(block.caption)}</figcaption></figure>')

    body = _render(blocks, {
        Heading: lambda b: f"<h{b.level}>{_inline(b.text)}</h{b.level}>",
        Paragraph: lambda b: f"<p>{_inline(b.text)}</p>",
        Table: table,
        Figure: figure,
    })
    title = next((b.text for b in blocks if isinstance(b, Heading)), "report")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>'
            f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _inline(text: str) -> str:
    """The little Markdown the report uses inline: **bold** and `code`."""
    parts = html.escape(text).split("`")
    for i in range(1, len(parts), 2):
        parts[i] = f"<code>{parts[i]}</code>"
    bolded = "".join(parts).split("**")
    for i in range(1, len(bolded), 2):
        bolded[i] = f"<strong>{bolded[i]}</strong>"
    return "".join(bolded)
