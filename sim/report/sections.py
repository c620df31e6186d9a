"""The comparison report's sections, built from ``summary.json`` alone (``report_blocks``):
what it says about the plan, the policies and the simulated runs, as document blocks
(``sim.report.document``).

Every number in a table is ``summary.json``'s number passed through one of the formatting
functions below, so a reader (or a test) can check each cell against the JSON; its ``plan`` is
read as a ``Plan`` once (``report_blocks``) and handed to the sections that show it.
"""

from __future__ import annotations

from typing import Any

from laws.search.planfile import Plan, PlanUncertainty
from laws.search.request import describe_request
from laws.tables import format_number, format_percent, format_spread
from sim.report.document import Block, Figure, Heading, Paragraph, Table

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
    "compute_to_target": "Compute to target of every run that reached it, per policy: dots "
                         "where it stopped (observed), ticks where its true loss met the "
                         "target.",
}


def percent(value: float | None) -> str:
    """A share as a percentage with one decimal; an empty cell for None."""
    return format_percent(value)


def with_range(stats: dict[str, float | None], scale: float = 1.0) -> str:
    """``mean [p5 – p95]`` of a summarised quantity, each divided by ``scale``."""
    return format_spread(stats, scale, missing="not reached")


def savings_table(summary: dict[str, Any]) -> Table:
    """Outcomes and savings per policy; accelerator-hours only where they differ from the time
    (more than one accelerator per run, or a cluster to queue for)."""
    config = summary["options"]["config"]
    pooled = config["accelerators"] > 1 or config["gpus"] is not None
    headers = ["policy", "reached", "compute to target (FLOPs)", "at the true crossing (FLOPs)",
               "time to target (h)", *(["accelerator-hours"] if pooled else []),
               "saving vs best static", "saving at the true crossing",
               "share of plan's saving kept"]
    rows = []
    for policy, entry in summary["simulation"]["summary"].items():
        hours = [with_range(entry["accelerator_hours"])] if pooled else []
        rows.append([policy, percent(entry["reached"]), with_range(entry["compute_to_target"]),
                     with_range(entry["true_compute_to_target"]),
                     with_range(entry["time_to_target"], 3600.0), *hours,
                     percent(entry["saving_vs_static"]), percent(entry["true_saving_vs_static"]),
                     percent(entry["true_saving_kept"])])
    return Table(headers, rows)


POLICIES = {
    "static": "trains one shape from start to finish (the best static shape is the baseline)",
    "planned": "follows the plan's schedule: it leaves a shape when the run's level (the median "
               "of its evaluations over the last tenth of its compute) reaches the loss at which "
               "the plan leaves it",
    "greedy": "follows the paper's rule: the shape of least |dC/dE| at the lowest loss observed "
              "so far",
    "online": "starts on the plan; every 50 evaluations it weights the law file's bootstrap "
              "samples by how well each explains the run's evaluations, plans again from where "
              "it is on that posterior, and takes the new schedule only when its expected "
              "saving exceeds that expectation's error",
    "random": "draws a shape uniformly at random for every chunk of training (FlexiViT-style)",
    "fixed": "follows a user's schedule: each shape from a fixed fraction of a compute budget",
}


def policy_lines(summary: dict[str, Any], plan: Plan) -> list[str]:
    """One line per policy in the report: what it does."""
    reachable = [name for name, compute in plan.static.items() if compute is not None]
    lines = []
    for policy in summary["simulation"]["summary"]:
        kind = policy.partition(":")[0]
        text = POLICIES.get(kind, "a policy given as an object")
        if kind == "random":
            text += (f", among the shapes whose floor lies below the target "
                     f"({', '.join(reachable)}): a shape with its floor above the run's loss "
                     "would throw the run back up to that floor")
        lines.append(f"**{policy}** {text}.")
    return lines


def hardware_note(summary: dict[str, Any]) -> str:
    """Where the FLOP/s behind every figure in hours come from."""
    hardware = summary["simulation"]["settings"]["hardware"]
    settings = summary["simulation"]["settings"]
    rates = settings["throughput"].values()
    span = (format_number(min(rates)) if min(rates) == max(rates)
            else f"{format_number(min(rates))} to {format_number(max(rates))}")
    each = f"{span} FLOP/s per accelerator, {settings['config']['accelerators']} per run"
    if hardware["source"] == "law file":
        where = f": {hardware['note']}" if hardware["note"] else ""
        return f"Hours at the law file's throughputs ({each}{where})."
    if hardware["source"] == "given":
        return f"Hours at the given hardware ({each})."
    return (f"Hours at an assumed {each} ({hardware['note']}; the law file has no throughput "
            f"for {', '.join(hardware['assumed'])}): illustrative, not a measurement.")


def events_table(summary: dict[str, Any]) -> Table:
    headers = ["policy", "runs", "switches", "failures", "lost compute (FLOPs)",
               "true loss at target"]
    rows = [[policy, str(entry["runs"]), with_range(entry["switches"]),
             with_range(entry["failures"]), with_range(entry["lost_flops"]),
             with_range(summary["true_loss_at_target"][policy])]
            for policy, entry in summary["simulation"]["summary"].items()]
    return Table(headers, rows)


def schedule_table(plan: Plan) -> Table:
    optimal = plan.optimal
    rows = []
    for step in optimal.schedule:
        spent = step.compute + step.switch_compute
        rows.append([step.shape, format_number(step.loss_from), format_number(step.loss_to),
                     format_number(spent), percent(spent / optimal.compute)])
    return Table(["shape", "loss from", "loss to", "compute (FLOPs)", "share of plan"], rows)


def plan_table(plan: Plan) -> Table:
    best = plan.static_best
    greedy = plan.greedy.compute
    rows = [["optimal schedule", format_number(plan.optimal.compute), str(plan.optimal.switches)],
            ["greedy rule (least |dC/dE|)", "stuck" if greedy is None else format_number(greedy),
             "" if greedy is None else str(plan.greedy.switches)],
            [f"best static ({best.shape})", format_number(best.compute), "0"]]
    rows += [[f"static {name}", "unreachable" if c is None else format_number(c), "0"]
             for name, c in sorted(plan.static.items(), key=lambda kv: kv[1] or float("inf"))
             if name != best.shape]
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


def verdict(summary: dict[str, Any], fit: PlanUncertainty | None) -> str:
    """Whether the plan's saving is distinguishable from zero, given the fit's uncertainty
    (``fit``: the plan's bootstrap interval, when the laws carry samples) and the evaluation
    noise (the simulated planned runs' paired saving over the static baseline, at the true
    crossing of the target when the runs have it)."""
    planned = summary["simulation"]["summary"].get("planned", {})
    runs = planned.get("true_paired_saving")
    where = " at the true crossing" if runs else ""
    runs = runs or planned.get("paired_saving")
    parts, doubts = [], []
    if fit:
        saving = fit.plan_saving
        parts.append(f"the fit's uncertainty puts the plan's saving at {percent(saving.p50)} "
                     f"[{percent(saving.p5)}, {percent(saving.p95)}] "
                     f"({round(100 * fit.level)}%, {fit.samples} bootstrap samples)")
        if saving.p5 is None or saving.p5 <= 0:
            doubts.append("the fit's interval")
    if runs:
        parts.append(f"the simulated runs measure {percent(runs['mean'])} "
                     f"[{percent(runs['low'])}, {percent(runs['high'])}]{where} "
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


def switch_points(summary: dict[str, Any], plan: Plan) -> list[str]:
    """Where the plan switches: at which loss, after how many FLOPs, and after how long where
    the throughputs are not assumed (saying whose they are)."""
    settings = summary["simulation"]["settings"]
    accelerators = settings["config"]["accelerators"]
    where = {"law file": "at the law file's throughputs",
             "given": "at the given FLOP/s"}.get(settings["hardware"]["source"])
    schedule = plan.optimal.schedule
    spent = seconds = 0.0
    points = []
    for step, after in zip(schedule[:-1], schedule[1:], strict=True):
        flops = step.compute + step.switch_compute
        spent += flops
        seconds += flops / (settings["throughput"][step.shape] * accelerators)
        hours = f", {duration(seconds)} {where}" if where else ""
        points.append(f"{step.shape} → {after.shape} at loss {format_number(step.loss_to)} "
                      f"(after {format_number(spent)} FLOPs{hours})")
    return points


def duration(seconds: float) -> str:
    """A time in the unit that reads best.

    >>> duration(2.6), duration(150.0), duration(9000.0)
    ('2.6 s', '2.5 min', '2.5 h')
    """
    if seconds < 120:
        return f"{format_number(seconds)} s"
    if seconds < 7200:
        return f"{format_number(seconds / 60.0)} min"
    return f"{format_number(seconds / 3600.0)} h"


def conditions(options: dict[str, Any]) -> str:
    """The simulated conditions in words: noise and faults."""
    config = options["config"]
    noise = (f"{100 * config['noise']:.3g}% evaluation noise" if config["noise"]
             else "no evaluation noise")
    faults = config.get("faults")
    failures = (f", failures every {format_number(faults['mtbf_hours'])} h per accelerator"
                if faults else "")
    return f"{noise}{failures}"


def lead_paragraph(summary: dict[str, Any], plan: Plan) -> str:
    """The answer in one paragraph: which shapes, where to switch, the saving and its
    definition, what the simulated runs kept of it, and whether to trust it (with the
    intervals, ``verdict``)."""
    options = summary["options"]
    best = plan.static_best
    text = (f"**Train {' → '.join(plan.optimal.shapes)}** to reach loss "
            f"{format_number(options['target_loss'])} on law set "
            f"**{summary['inputs']['laws']['name']}**")
    points = switch_points(summary, plan)
    if points:
        text += f", switching {'; then '.join(points)}. "
    else:
        text += ": no switch pays off. "
    text += (f"On exact laws that needs {percent(plan.saving_vs_static)} less compute than "
             f"the best static shape, {best.shape} ({format_number(plan.optimal.compute)} "
             f"against {format_number(best.compute)} FLOPs; saving = 1 − adaptive / static "
             "compute to the target). ")
    planned = summary["simulation"]["summary"].get("planned")
    if planned and planned["true_saving_vs_static"] is not None:
        text += (f"In {options['runs']} simulated runs per policy with {conditions(options)}, "
                 f"following the plan saved {percent(planned['true_saving_vs_static'])} at the "
                 f"true crossing of the target ({percent(planned['saving_vs_static'])} at the "
                 "observed stop). ")
    return text + verdict(summary, plan.uncertainty)


def noisy_stop(summary: dict[str, Any]) -> str | None:
    """How far evaluation noise moved the stops, measured on the static baseline's runs."""
    options, simulation = summary["options"], summary["simulation"]
    baseline = simulation["baseline"]
    static = simulation["summary"].get(f"static:{baseline['shape']}")
    if not options["config"]["noise"] or not static:
        return None
    observed = static["compute_to_target"]["mean"]
    true = static["true_compute_to_target"]["mean"]
    loss = summary["true_loss_at_target"][f"static:{baseline['shape']}"]["mean"]
    if observed is None or true is None:
        return None
    early = "before" if observed < true else "after"
    return (f"A run stops at the first of {options['config']['confirm']} evaluations in a row "
            "that observe the target; with noise that is not where its true loss meets it. The "
            f"static runs stopped at a mean true loss of {format_number(loss)} (target "
            f"{format_number(options['target_loss'])}), {percent(abs(1 - observed / true))} of "
            f"compute {early} their true crossing ({format_number(observed)} against "
            f"{format_number(true)} FLOPs). The columns at the true crossing move each run's "
            "compute from its stop to where its true loss meets the target, along the law of "
            "the shape it ended on: they do not count lucky evaluations.")


def definitions(summary: dict[str, Any]) -> str:
    """What each column of the savings table means."""
    simulation = summary["simulation"]
    baseline = simulation["baseline"]
    return ("Mean [5% – 95%] over the runs that reached the target. **reached**: the share of "
            "runs that observed the target before a budget ran out. **compute to target**: "
            "FLOPs spent (training, evaluations, checkpoints, switches, lost work) up to the "
            "evaluation that stopped the run; **at the true crossing**: the compute at which "
            "its true loss met the target. **saving vs best static** = 1 − the policy's mean "
            f"compute to target / that of static {baseline['shape']} ({baseline['source']}); "
            "**saving at the true crossing**: the same with the true-crossing compute. "
            "**share of plan's saving kept** = saving at the true crossing / the plan's "
            f"saving on exact laws ({percent(simulation['plan_saving'])}): 100% when the runs "
            "save what the plan predicts, below 0 when they spent more than static. "
            f"Time includes queueing, checkpoints and repair. {hardware_note(summary)}")


def report_blocks(summary: dict[str, Any]) -> list[Block]:
    """The whole report, from the ``summary.json`` object."""
    plan = Plan.from_dict(summary["plan"], "summary.json: plan")
    options = summary["options"]
    name = summary["inputs"]["laws"]["name"]
    warning = summary["simulation"].get("budget_warning")
    stop = noisy_stop(summary)
    return [
        Heading(f"Adaptive vs static training: {name}"),
        *([Paragraph(f"**{warning[0].upper()}{warning[1:]}.**")] if warning else []),
        Paragraph(lead_paragraph(summary, plan)),
        Heading("Savings per policy", 2),
        Paragraph(definitions(summary)),
        savings_table(summary),
        *[Paragraph(line) for line in policy_lines(summary, plan)],
        *([Paragraph(stop)] if stop else []),
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
        Paragraph(f"Optimal schedule found by the search on {plan.levels} loss levels from "
                  f"{format_number(plan.start_loss)} to {format_number(plan.target_loss)} "
                  f"(objective {plan.objective}; {describe_request(plan.request.to_dict())}); "
                  f"the lower bound C* is {format_number(plan.lower_bound)}."),
        schedule_table(plan),
        plan_table(plan),
        *[Paragraph(f"This plan {line}: no measured transition and no switch cost was "
                    "given.") for line in plan.assumptions],
        Figure("laws", FIGURES["laws"]),
        Figure("gradients", FIGURES["gradients"]),
        Heading("Inputs", 2),
        inputs_table(summary),
        Paragraph("Every number above is in `summary.json`; every run in `runs.csv`."),
    ]
