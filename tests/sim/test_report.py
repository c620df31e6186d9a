"""The comparison report: real figures, a self-contained HTML page, tables that match the JSON."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import re

import matplotlib.image as mpimg
import numpy as np
import pytest

from laws.io.source import LawSource
from laws.presets import load_preset, preset_path
from laws.search import PlanRequest, plan
from laws.search.request import default_target
from laws.tables import format_number
from sim import FaultModel, SimConfig
from sim.report import compare
from sim.report.sections import FIGURES
from sim.results import rounded
from tests.closed_forms import greedy_order, power_params

TARGET = 2.1
POLICIES = ["static", "greedy", "planned", "online", "random"]
RUNS = 3
LEVELS = 300


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    config = SimConfig(noise=0.01, eval_every=1e17,
                       faults=FaultModel(mtbf_hours=6.0, repair_hours=0.5,
                                         checkpoint_seconds=120.0))
    source = LawSource.named(None, "demo")
    laws = source.load()
    request = PlanRequest.for_laws(laws, default_target(laws), levels=LEVELS)
    returned = compare(laws, request, POLICIES, config, out_dir=out, runs=RUNS, seed=3,
                       sources={"laws": source})
    summary = json.loads((out / "summary.json").read_text())
    assert returned == summary
    return out, out / "report.html", summary


def markdown_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every table of a Markdown text as (headers, rows); cells split on unescaped pipes."""
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
            current.append([cell.strip().replace("\\|", "|") for cell in cells])
        elif current:
            tables.append((current[0], current[2:]))  # current[1] is the --- line
            current = []
    return tables


def table_with(tables, first_header: str, second_header: str):
    found = [t for t in tables if t[0][:2] == [first_header, second_header]]
    assert len(found) == 1, [t[0] for t in tables]
    return dict(zip(found[0][0], zip(*found[0][1], strict=True), strict=True)), found[0][1]


def mean_and_range(cell: str) -> tuple[float, float, float]:
    match = re.fullmatch(r"(\S+) \[(\S+) – (\S+)\]", cell)
    assert match, cell
    mean, low, high = map(float, match.groups())
    return mean, low, high


def test_writes_every_file_and_names_the_html(report):
    out, path, summary = report
    assert path == out / "report.html"
    for name in ("report.md", "report.html", "summary.json", "runs.csv"):
        assert (out / name).stat().st_size > 0
    assert sorted(p.stem for p in (out / "figures").glob("*.png")) == sorted(FIGURES)
    assert summary["options"]["target_loss"] == TARGET  # the preset's default_target


def test_figures_are_real_pictures(report):
    out, _, _ = report
    for name in FIGURES:
        path = out / "figures" / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = mpimg.imread(path)
        height, width = pixels.shape[:2]
        assert width >= 500 and height >= 250, (name, pixels.shape)
        rgb = pixels[..., :3].reshape(-1, 3)
        ink = np.any(rgb < 0.9, axis=1).mean()  # share of pixels that are not near-white
        assert 0.02 < ink < 0.9, (name, ink)
        rgb8 = (rgb * 255).astype(np.uint32)
        colours = np.unique(rgb8[:, 0] << 16 | rgb8[:, 1] << 8 | rgb8[:, 2]).size
        assert colours > 10, name  # not a blank or flat image
        assert path.stat().st_size < 150_000, name  # committed examples stay small


def test_html_embeds_every_figure(report):
    out, _, _ = report
    html = (out / "report.html").read_text()
    embedded = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', html)
    assert sorted(name for name, _ in embedded) == sorted(FIGURES)
    for name, data in embedded:
        assert base64.b64decode(data) == (out / "figures" / f"{name}.png").read_bytes()
    assert 'src="figures/' not in html and "http" not in html  # self-contained
    markdown = (out / "report.md").read_text()
    assert sorted(re.findall(r"\]\(figures/(\w+)\.png\)", markdown)) == sorted(FIGURES)


def test_savings_table_matches_summary_json(report):
    out, _, summary = report
    columns, rows = table_with(markdown_tables((out / "report.md").read_text()),
                               "policy", "reached")
    stats = summary["simulation"]["summary"]
    assert list(columns["policy"]) == list(stats) == ["static:p16", *POLICIES[1:]]
    scaled = {"compute to target (FLOPs)": ("compute_to_target", 1.0),
              "at the true crossing (FLOPs)": ("true_compute_to_target", 1.0),
              "time to target (h)": ("time_to_target", 3600.0)}
    percents = {"reached": "reached", "saving vs best static": "saving_vs_static",
                "saving at the true crossing": "true_saving_vs_static",
                "share of plan's saving kept": "true_saving_kept"}
    assert set(columns) == {"policy", *scaled, *percents}  # 1 accelerator: hours = time
    for row, policy in enumerate(columns["policy"]):
        for header, (key, scale) in scaled.items():
            entry = stats[policy][key]
            cell = columns[header][row]
            expected = [entry[k] / scale for k in ("mean", "p5", "p95")]
            assert cell == (f"{format_number(expected[0])} [{format_number(expected[1])} – "
                            f"{format_number(expected[2])}]")
            np.testing.assert_allclose(mean_and_range(cell), expected, rtol=1e-3)
        for header, key in percents.items():
            value = stats[policy][key]
            cell = columns[header][row]
            assert cell == f"{100 * value:.1f}%"
            assert abs(float(cell.rstrip("%")) - 100 * value) <= 0.05


def test_events_table_matches_summary_json(report):
    out, _, summary = report
    columns, _ = table_with(markdown_tables((out / "report.md").read_text()), "policy", "runs")
    stats = summary["simulation"]["summary"]
    keys = {"switches": "switches", "failures": "failures", "lost compute (FLOPs)": "lost_flops"}
    assert set(columns) == {"policy", "runs", "true loss at target", *keys}
    for row, policy in enumerate(columns["policy"]):
        assert int(columns["runs"][row]) == stats[policy]["runs"] == RUNS
        true_loss = summary["true_loss_at_target"][policy]
        np.testing.assert_allclose(mean_and_range(columns["true loss at target"][row]),
                                   [true_loss["mean"], true_loss["p5"], true_loss["p95"]],
                                   rtol=1e-3)
        for header, key in keys.items():
            entry = stats[policy][key]
            np.testing.assert_allclose(mean_and_range(columns[header][row]),
                                       [entry["mean"], entry["p5"], entry["p95"]],
                                       rtol=1e-3, atol=1e-9)


def test_summary_statistics_follow_from_runs_csv(report):
    """Independent of the summary code: recompute mean compute and savings from runs.csv."""
    out, _, summary = report
    with open(out / "runs.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == RUNS * len(POLICIES)
    stats = summary["simulation"]["summary"]
    means = {}
    for policy in stats:
        spent = [float(r["compute_to_target"]) for r in rows
                 if r["policy"] == policy and r["reached"] == "True"]
        means[policy] = np.mean(spent)
        assert stats[policy]["compute_to_target"]["mean"] == pytest.approx(means[policy])
    baseline = summary["simulation"]["baseline"]
    assert baseline["compute"] == pytest.approx(means[f"static:{baseline['shape']}"])
    for policy, stats_of_loss in summary["true_loss_at_target"].items():
        losses = [float(r["true_loss_at_target"]) for r in rows
                  if r["policy"] == policy and r["reached"] == "True"]
        assert stats_of_loss["mean"] == pytest.approx(np.mean(losses))
        assert stats_of_loss["p95"] == pytest.approx(
            np.percentile(losses, 95, method="inverted_cdf"))
    true = {policy: np.mean([float(r["true_compute_to_target"]) for r in rows
                             if r["policy"] == policy and r["reached"] == "True"])
            for policy in stats}
    for policy in stats:
        saving = 1 - means[policy] / means["static:p16"]
        assert stats[policy]["saving_vs_static"] == pytest.approx(saving)
        assert stats[policy]["true_saving_vs_static"] == pytest.approx(
            1 - true[policy] / true["static:p16"])
        assert stats[policy]["saving_kept"] == pytest.approx(
            saving / summary["plan"]["saving_vs_static"])
        assert stats[policy]["true_saving_kept"] == pytest.approx(
            (1 - true[policy] / true["static:p16"]) / summary["plan"]["saving_vs_static"])


def test_plan_tables_match_the_search(report):
    out, _, summary = report
    demo = load_preset("demo")
    fresh = plan(demo, PlanRequest.for_laws(demo, TARGET, levels=LEVELS))
    assert summary["plan"]["optimal"] == rounded(fresh.to_dict()["optimal"])  # as the file holds it
    tables = markdown_tables((out / "report.md").read_text())
    columns, _ = table_with(tables, "shape", "loss from")
    schedule = fresh.optimal.schedule
    # The paper's rule, from the written-out derivative: with free transitions it is optimal.
    owners, _ = greedy_order(power_params(load_preset("demo")), fresh.start_loss, TARGET)
    assert list(columns["shape"]) == list(fresh.optimal.shapes) == owners
    for row, step in enumerate(schedule):
        assert float(columns["loss to"][row]) == pytest.approx(step.loss_to, rel=1e-3)
        spent = step.compute + step.switch_compute
        assert float(columns["compute (FLOPs)"][row]) == pytest.approx(spent, rel=1e-3)
    columns, _ = table_with(tables, "schedule", "compute to target (FLOPs)")
    named = dict(zip(columns["schedule"], columns["compute to target (FLOPs)"], strict=True))
    assert float(named["optimal schedule"]) == pytest.approx(fresh.optimal.compute,
                                                               rel=1e-3)
    for shape, static in fresh.static.items():
        label = f"best static ({shape})" if shape == "p16" else f"static {shape}"
        assert float(named[label]) == pytest.approx(static, rel=1e-3)


def test_inputs_record_hashes_options_seed_and_version(report):
    out, _, summary = report
    expected = hashlib.sha256(preset_path("demo").read_bytes()).hexdigest()
    assert summary["inputs"]["laws"]["sha256"] == expected
    assert summary["options"]["seed"] == 3 and summary["options"]["runs"] == RUNS
    assert summary["options"]["config"]["faults"]["mtbf_hours"] == 6.0
    assert summary["produced_by"]["version"]
    columns, _ = table_with(markdown_tables((out / "report.md").read_text()), "input", "value")
    values = dict(zip(columns["input"], columns["value"], strict=True))
    assert values["laws file sha256"] == f"`{expected}`"
    assert values["seed"] == "3"


def first_paragraph(out) -> str:
    return (out / "report.md").read_text().split("\n\n")[1]


def test_the_first_paragraph_names_shapes_switch_points_saving_and_verdict(report):
    """Switch points in loss, FLOPs so far and time so far at the preset's throughputs."""
    from sim.report.sections import duration

    out, _, summary = report
    demo = load_preset("demo")
    fresh = plan(demo, PlanRequest.for_laws(demo, TARGET, levels=LEVELS))
    schedule = fresh.optimal.schedule
    text = first_paragraph(out)
    assert text.startswith(f"**Train {' → '.join(fresh.optimal.shapes)}**")
    spent = seconds = 0.0
    for step, after in zip(schedule[:-1], schedule[1:], strict=True):
        spent += step.compute + step.switch_compute
        seconds += (step.compute + step.switch_compute) / demo.shape(step.shape).throughput
        assert (f"{step.shape} → {after.shape} at loss {format_number(step.loss_to)} "
                f"(after {format_number(spent)} FLOPs, {duration(seconds)} at the law file's "
                "throughputs)") in text
    assert f"{100 * fresh.saving_vs_static:.1f}% less compute" in text
    assert "saving = 1 − adaptive / static compute to the target" in text
    planned = summary["simulation"]["summary"]["planned"]
    assert f"saved {100 * planned['true_saving_vs_static']:.1f}% at the true crossing" in text
    assert "Is it real?" in text


def test_the_report_defines_every_percentage_and_policy(report):
    out, _, summary = report
    markdown = (out / "report.md").read_text()
    plan_saving = 100 * summary["plan"]["saving_vs_static"]
    assert "**saving vs best static** = 1 − the policy's mean compute to target" in markdown
    assert (f"**share of plan's saving kept** = saving at the true crossing / the plan's "
            f"saving on exact laws ({plan_saving:.1f}%)") in markdown
    for policy in summary["simulation"]["summary"]:
        assert re.search(rf"^\*\*{re.escape(policy)}\*\* \w", markdown, re.M), policy
    # The demo's p32 has floor 2.0 < 2.1: every shape can reach the target.
    assert "among the shapes whose floor lies below the target (p32, p16, p8)" in markdown
    assert "Hours at the law file's throughputs" in markdown


def test_the_noisy_stop_is_measured_on_the_static_runs(report):
    out, _, summary = report
    with open(out / "runs.csv") as handle:
        rows = [r for r in csv.DictReader(handle)
                if r["policy"] == "static:p16" and r["reached"] == "True"]
    observed = np.mean([float(r["compute_to_target"]) for r in rows])
    true = np.mean([float(r["true_compute_to_target"]) for r in rows])
    loss = np.mean([float(r["true_loss_at_target"]) for r in rows])
    early = "before" if observed < true else "after"
    assert (f"The static runs stopped at a mean true loss of {format_number(loss)} (target "
            f"{format_number(TARGET)}), {100 * abs(1 - observed / true):.1f}% of compute {early} "
            f"their true crossing") in (out / "report.md").read_text()


def test_every_float_in_the_files_has_at_most_12_significant_digits(report):
    out, _, _ = report

    def digits(text: str) -> int:
        mantissa = text.lower().split("e")[0].lstrip("-").replace(".", "").lstrip("0")
        return len(mantissa.rstrip("0"))

    floats = re.findall(r"-?\d+\.\d+(?:e[+-]?\d+)?|-?\d+e[+-]?\d+",
                        (out / "summary.json").read_text() + (out / "runs.csv").read_text())
    assert len(floats) > 100
    assert max(map(digits, floats)) <= 12
    assert max(map(digits, floats)) >= 10  # rounded, not truncated to a few digits


