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

from laws.errors import InputError
from laws.forms import PowerLaw
from laws.io.source import LawSource
from laws.lawset import LawSet, Shape
from laws.presets import load_preset, preset_path
from laws.search import PlanRequest, plan
from laws.search.request import default_target
from laws.tables import format_number
from sim import FaultModel, SimConfig
from sim.report import compare
from sim.report.document import FIGURES
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
              "time to target (h)": ("time_to_target", 3600.0),
              "accelerator-hours": ("accelerator_hours", 1.0)}
    percents = {"reached": "reached", "saving vs best static": "saving_vs_static",
                "share of plan's saving kept": "saving_kept"}
    assert set(columns) == {"policy", *scaled, *percents}
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
        assert stats_of_loss["p95"] == pytest.approx(np.percentile(losses, 95))
    for policy in stats:
        saving = 1 - means[policy] / means["static:p16"]
        assert stats[policy]["saving_vs_static"] == pytest.approx(saving)
        assert stats[policy]["saving_kept"] == pytest.approx(
            saving / summary["plan"]["saving_vs_static"])


def test_plan_tables_match_the_search(report):
    out, _, summary = report
    demo = load_preset("demo")
    fresh = plan(demo, PlanRequest.for_laws(demo, TARGET, levels=LEVELS))
    assert summary["plan"]["optimal"] == fresh["optimal"]
    tables = markdown_tables((out / "report.md").read_text())
    columns, _ = table_with(tables, "shape", "loss from")
    schedule = fresh["optimal"]["schedule"]
    # The paper's rule, from the written-out derivative: with free transitions it is optimal.
    owners, _ = greedy_order(power_params(load_preset("demo")), fresh["start_loss"], TARGET)
    assert list(columns["shape"]) == [s["shape"] for s in schedule] == owners
    for row, step in enumerate(schedule):
        assert float(columns["loss to"][row]) == pytest.approx(step["loss_to"], rel=1e-3)
        spent = step["compute"] + step["switch_compute"]
        assert float(columns["compute (FLOPs)"][row]) == pytest.approx(spent, rel=1e-3)
    columns, _ = table_with(tables, "schedule", "compute to target (FLOPs)")
    named = dict(zip(columns["schedule"], columns["compute to target (FLOPs)"], strict=True))
    assert float(named["optimal schedule"]) == pytest.approx(fresh["optimal"]["compute"],
                                                               rel=1e-3)
    for shape, static in fresh["static"].items():
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


def test_best_static_runs_as_the_baseline_even_when_not_asked(tmp_path):
    demo = load_preset("demo")
    compare(demo, PlanRequest.for_laws(demo, TARGET, levels=100), ["planned"],
            SimConfig(eval_every=2e17), out_dir=tmp_path, runs=1)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["options"]["policies"] == ["planned", "static"]
    assert summary["simulation"]["baseline"]["source"] == "simulated"


def test_a_law_set_without_default_target_needs_a_target():
    laws = LawSet("bare", (Shape("a", {}, PowerLaw(4.0, 0.5, 1.0)),))
    with pytest.raises(InputError, match="--target"):
        default_target(laws)


@pytest.mark.parametrize("example", ["demo", "gemstones-lm"])
def test_committed_examples_come_from_the_current_presets(example):
    """Regenerate docs/examples/<example> (commands in its README) when its preset changes."""
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "docs" / "examples"
    summary = json.loads((examples / example / "summary.json").read_text())
    laws = summary["inputs"]["laws"]
    preset = laws["source"].removeprefix("preset ")
    assert laws["sha256"] == hashlib.sha256(preset_path(preset).read_bytes()).hexdigest()


def verdict_summary(fit_p5: float | None, runs_low: float | None) -> dict:
    fit = None if fit_p5 is None else {"plan_saving": {"p5": fit_p5, "p50": 0.1, "p95": 0.2},
                                       "level": 90, "samples": 200}
    runs = None if runs_low is None else {"mean": 0.08, "low": runs_low, "high": 0.12,
                                          "pairs": 20, "level": 0.9}
    return {"plan": {"uncertainty": fit} if fit else {},
            "simulation": {"summary": {"planned": {"paired_saving": runs}}}}


@pytest.mark.parametrize("fit_p5, runs_low, expected", [
    (0.02, 0.05, "so the saving is distinguishable from zero."),
    (-0.01, 0.05, "not distinguishable from zero (the fit's interval reaches 0)"),
    (0.02, -0.03, "not distinguishable from zero (the runs' interval reaches 0)"),
    (None, 0.05, "distinguishable from zero given the evaluation noise (the laws carry no"),
    (None, None, "is not known here"),
])
def test_the_verdict_weighs_both_intervals(fit_p5, runs_low, expected):
    from sim.report.document import verdict

    text = verdict(verdict_summary(fit_p5, runs_low))
    assert expected in text
    if fit_p5 is not None:
        assert f"[{100 * fit_p5:.1f}%, 20.0%] (90%, 200 bootstrap samples)" in text


def test_paired_saving_is_the_t_interval_of_the_per_replication_savings(four, four_plan):
    from scipy import stats

    from sim import SimConfig, simulate

    request = PlanRequest.for_laws(four, 1.45)
    results = simulate(four, request, ["planned", "static"], SimConfig(noise=0.02), runs=8,
                       seed=4, plan=four_plan)
    static = {r.replication: r.compute_to_target for r in results.runs_of("static:w512")}
    savings = [1 - r.compute_to_target / static[r.replication]
               for r in results.runs_of("planned")]
    low, high = stats.t.interval(0.9, len(savings) - 1, loc=np.mean(savings),
                                 scale=stats.sem(savings))
    paired = results.paired_saving("planned")
    assert paired["pairs"] == 8
    assert paired["mean"] == pytest.approx(np.mean(savings))
    assert (paired["low"], paired["high"]) == pytest.approx((low, high))
