"""The confirmation loop end to end, reduced: a wide and a narrow MLP student (mlp-width, no
data set needed) measured, fitted, planned, trained adaptively and compared, in a few seconds.

The scenario is built so that the static curves cross inside the budget (the narrow student
learns fast and saturates, the wide one starts slowly and goes lower), hence a plan with a
switch; what is checked is the pipeline, against numbers recomputed from the files it wrote.
"""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import validate.loop as loop_module
from cli import main
from laws.io.lawfile import read_law_file
from laws.search import plan as search_plan
from laws.search import read_plan
from tests.components import require
from tests.crossings import first_crossing, line_crossing
from validate.config import LoopConfig, TrainConfig
from validate.data import FASHION_MNIST_DIR
from validate.loop import run_loop
from validate.measured import mean_curve

CONFIG = LoopConfig(
    "mlp-width", ({"width": 4}, {"width": 32}), budget=1e8, common={"batch": 32}, seeds=1,
    train=TrainConfig(evals=16, warmup_steps=20, task_options={"noise": 0.05}))


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def loop_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loop")
    # Stop after the static stage, as a killed loop would, then rerun: the static runs must
    # not train again.
    assert run_loop(CONFIG, folder, until="static", progress=False) == {}
    assert not (folder / "laws.json").exists()
    trained = []
    real_train = loop_module.train

    def counting_train(*args, **kwargs):
        trained.append(kwargs["run_dir"])
        return real_train(*args, **kwargs)

    loop_module.train = counting_train
    try:
        summary = run_loop(CONFIG, folder, progress=False)
    finally:
        loop_module.train = real_train
    assert [p.relative_to(folder).as_posix() for p in trained] == ["adaptive/seed0"]
    return folder, summary


def test_laws_file_is_valid_with_provenance(loop_dir):
    folder, _ = loop_dir
    laws = read_law_file(folder / "laws.json")
    assert laws.names == ["width4", "width32"]
    provenance = laws.provenance
    assert provenance["task"] == "mlp-width" and provenance["budget"] == 1e8
    assert provenance["seeds"] == 1 and provenance["device"] == "cpu" and provenance["date"]
    assert provenance["fit_metrics"]["form"] in ("power", "saturating")
    # Each law's fit error, recomputed by hand over the points it was fitted to (those after
    # the warm-up), is the one the provenance reports, and the law passes its curve's last
    # evaluation within three of those errors (these toy curves bend more than a power law).
    warmup = CONFIG.train.warmup_steps
    for name in laws.names:
        curve = _records(folder / "static" / name / "seed0" / "curve.jsonl")
        fitted = [r for r in curve if r["event"] == "eval" and r["step"] >= warmup]
        errors = [np.log(r["eval_loss"]) - np.log(laws.shape(name).law.loss(r["flops"]))
                  for r in fitted]
        reported = provenance["fit_metrics"]["fit"][name]
        assert reported["points"] == len(fitted)
        assert reported["rmse_log"] == pytest.approx(np.sqrt(np.mean(np.square(errors))),
                                                     rel=1e-6)
        assert abs(errors[-1]) < 3 * reported["rmse_log"]
        # The measured training speed travels with the law, for plans in seconds.
        result = json.loads((folder / "static" / name / "seed0" / "result.json").read_text())
        assert laws.shape(name).throughput == result["flops_per_second"] > 0


def test_laws_carry_bootstrap_samples_into_the_plans_interval(loop_dir):
    folder, summary = loop_dir
    laws = read_law_file(folder / "laws.json")
    assert all(len(shape.samples) == CONFIG.bootstrap for shape in laws.shapes)
    point = read_plan(folder / "plan.json")
    assert point.uncertainty.samples == CONFIG.bootstrap
    interval = summary["predicted_interval"]
    saving = point.uncertainty.saving
    assert interval == {"p5": saving.p5, "p50": saving.p50, "p95": saving.p95}
    # Asked again of each bootstrap sample with the ordinary search (its own grid, the point
    # plan's start loss): the interval is the empirical 5th, 50th and 95th percentiles of those
    # optimal savings (grids differ by about 1e-7 of the compute).
    asked = [(sample, dataclasses.replace(point.request.for_other_laws(sample),
                                          start_loss=point.start_loss, robust=None))
             for sample in laws.samples()]
    savings = [search_plan(sample, request).saving_vs_static for sample, request in asked]
    expected = np.percentile(savings, [5, 50, 95], method="inverted_cdf")
    assert [interval[k] for k in ("p5", "p50", "p95")] == pytest.approx(expected, abs=1e-5)


def test_adaptive_run_switches_at_the_planned_loss_levels(loop_dir):
    folder, _ = loop_dir
    schedule = read_plan(folder / "plan.json").optimal.schedule
    assert [s.shape for s in schedule] == ["width4", "width32"]
    records = _records(folder / "adaptive" / "seed0" / "curve.jsonl")
    switches = [i for i, r in enumerate(records) if r["event"] == "switch"]
    assert len(switches) == len(schedule) - 1
    assert records[0]["shape"]["width"] == 4
    for index, segment in zip(switches, schedule[1:], strict=True):
        level = segment.loss_from
        before = [r for r in records[:index] if r["event"] == "eval"]
        # It fired right after the first evaluation at or below the level, not before.
        assert before[-1]["eval_loss"] <= level < before[-2]["eval_loss"]
        assert records[index]["to"]["width"] == int(segment.shape.removeprefix("width"))
    after = [r for r in records[switches[-1]:] if r["event"] == "eval"]
    assert all(r["shape"]["width"] == 32 for r in after)


def test_the_adaptive_run_is_its_seeds_static_run_until_it_switches(loop_dir):
    """Paired seeds: seed k's adaptive run starts from the weights and draws the batches of
    seed k's static run of its first shape, so their records agree exactly up to the first
    switch, and what the pair's difference measures is the plan, not the seeds."""
    folder, _ = loop_dir
    adaptive = _records(folder / "adaptive" / "seed0" / "curve.jsonl")
    switch = next(i for i, r in enumerate(adaptive) if r["event"] == "switch")
    static = _records(folder / "static" / "width4" / "seed0" / "curve.jsonl")
    keys = ("step", "flops", "samples", "lr", "train_loss", "eval_loss")
    assert switch >= 3  # evaluations to compare
    assert ([{key: r[key] for key in keys} for r in adaptive[:switch]]
            == [{key: r[key] for key in keys} for r in static[:switch]])
    assert static[switch]["eval_loss"] != adaptive[switch + 1]["eval_loss"]  # then they part


def test_summary_and_report_match_the_curves(loop_dir):
    folder, summary = loop_dir
    plan = read_plan(folder / "plan.json")
    target = plan.target_loss
    static = {name: [r for r in _records(folder / "static" / name / "seed0" / "curve.jsonl")
                     if r["event"] == "eval"] for name in ("width4", "width32")}
    # Default target: the lowest loss a static curve reads at 70% of the budget (1e8 FLOPs),
    # linear in log FLOPs between the evaluations around it; not a curve's final loss.
    at = []
    for curve in static.values():
        after = next(i for i, p in enumerate(curve) if p["flops"] >= 0.7e8)
        low, high = curve[after - 1], curve[after]
        t = (np.log(0.7e8) - np.log(low["flops"])) / (np.log(high["flops"]) - np.log(low["flops"]))
        at.append(low["eval_loss"] + t * (high["eval_loss"] - low["eval_loss"]))
    assert target == pytest.approx(min(at), rel=1e-9)
    assert all(target != pytest.approx(c[-1]["eval_loss"]) for c in static.values())
    adaptive = [r for r in _records(folder / "adaptive" / "seed0" / "curve.jsonl")
                if r["event"] == "eval"]
    reached = {name: line_crossing(curve, target) for name, curve in static.items()}
    best = min((n for n in reached if reached[n]), key=reached.get)
    assert summary["best_static"] == best
    for name, flops in {**reached, "adaptive": line_crossing(adaptive, target)}.items():
        measured = summary["rows"][name]["flops"]
        assert measured is None if flops is None else measured == pytest.approx(flops, rel=1e-9)
    adaptive_flops = summary["rows"]["adaptive"]["flops"]
    expected = None if adaptive_flops is None else 1 - adaptive_flops / reached[best]
    assert summary["measured_saving"] == (None if expected is None else pytest.approx(expected))
    # The first crossing, reported beside it, measures both sides alike too.
    first = {name: first_crossing(curve, target) for name, curve in static.items()}
    first_best = min((n for n in first if first[n]), key=first.get)
    first_adaptive = first_crossing(adaptive, target)
    assert summary["first_crossing"]["savings"] == [
        None if first_adaptive is None else pytest.approx(1 - first_adaptive / first[first_best])]
    # One seed: its paired saving is the saving, and there is no interval over seeds.
    assert summary["seeds"][0]["saving"] == summary["measured_saving"]
    assert summary["measured_interval"]["low"] is None
    assert summary["predicted_saving"] == pytest.approx(plan.saving_vs_static)
    report = (folder / "report.md").read_text()
    assert "| run | measured FLOPs | predicted FLOPs |" in report
    for name in ("width4", "width32", "adaptive"):
        assert f"| {name} |" in report
    assert (folder / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_with_other_options_is_refused(loop_dir):
    folder, _ = loop_dir
    result = CliRunner().invoke(main, ["validate", "run", "mlp-width", "--shapes",
                                       "width=4;width=32", "--budget", "2e8", "--seeds", "1",
                                       "-o", str(folder)])
    assert result.exit_code == 2
    assert "another 'budget'" in result.output


def test_cli_help():
    result = CliRunner().invoke(main, ["validate", "run", "--help"])
    assert result.exit_code == 0 and "--shapes" in result.output


@pytest.mark.parametrize("arguments, message", [
    (["nope", "--shapes", "a=1;a=2"], "unknown task"),
    (["mlp-width", "--shapes", "width=4"], "at least two"),
    (["mlp-width", "--shapes", "width=4;width=4"], "the same"),
    (["mlp-width", "--shapes", "width=4;width=8", "--seeds", "0"], "--seeds"),
    (["mlp-width", "--shapes", "width=4;depth=8"], "no axis 'depth'"),
    (["mlp-width", "--shapes", "width=4;width=x"], "AXIS=WHOLE_NUMBER"),
])
def test_cli_bad_input(tmp_path, arguments, message):
    result = CliRunner().invoke(main, ["validate", "run", *arguments, "--budget", "1e6",
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_budget_that_never_ends_is_refused_before_the_loop_writes_anything(tmp_path):
    result = CliRunner().invoke(main, ["validate", "run", "mlp-width", "--shapes",
                                       "width=4;width=8", "--budget", "1e300", "-o",
                                       str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip().endswith("the run would never end")
    assert not (tmp_path / "out").exists()


def test_measured_preset_ships_with_provenance():
    from laws.presets import load_preset

    laws = load_preset("vit-patch-fmnist")
    assert laws.names == ["patch28", "patch14", "patch7"]
    assert [s.axes["patch"] for s in laws.shapes] == [28, 14, 7]
    provenance = laws.provenance
    for key in ("task", "device", "budget", "seeds", "date", "shapes", "fit_metrics"):
        assert key in provenance, key
    assert provenance["task"] == "vit-patch"
    assert provenance["task_options"]["patch_resize"] == "merge"
    assert all(shape.throughput > 0 for shape in laws.shapes)
    # The preset is the committed loop's laws, renamed, with the loop's target as default.
    loop = Path(provenance["report"]).parent
    assert read_law_file(loop / "laws.json").shapes == laws.shapes
    assert laws.extra["default_target"] == read_plan(loop / "plan.json").target_loss


def test_fit_stage_survives_a_degenerate_saturating_candidate(tmp_path):
    # The committed CPU example's static curves once crashed the form choice: the saturating
    # candidate's best offset underflowed to d = 0. Refit them from the files alone.
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "docs/examples/validate-vit-patch"
    source = example / "budget-1e12-target-0.36"
    saved = json.loads((source / "loop.json").read_text())
    out = tmp_path / "loop"
    out.mkdir()
    (out / "loop.json").write_text((source / "loop.json").read_text())
    for folder in (source / "static").iterdir():
        for run in folder.iterdir():
            target = out / "static" / folder.name / run.name
            target.mkdir(parents=True)
            for name in ("curve.jsonl", "result.json"):
                (target / name).write_text((run / name).read_text())
    config = LoopConfig.from_dict(saved)
    run_loop(config, out, until="fit", progress=False)
    laws = read_law_file(out / "laws.json")
    assert [shape.name for shape in laws.shapes] == ["patch28", "patch14", "patch7"]


def test_the_committed_command_continues_the_committed_loop(tmp_path):
    """The command line of docs/examples/validate-vit-patch/merge-6e12 builds the config that
    loop was made with (its loop.json predates the training config), so rerunning it continues
    the loop (its static runs are finished: nothing trains); another option is refused."""
    source = Path(__file__).resolve().parents[2] / "docs/examples/validate-vit-patch/merge-6e12"
    out = tmp_path / "loop"
    shutil.copytree(source / "static", out / "static")
    shutil.copy(source / "loop.json", out / "loop.json")
    command = ["validate", "run", "vit-patch", "--patch-resize", "merge", "--shapes",
               "patch=28;patch=14;patch=7", "--budget", "6e12", "--adaptive-budget", "4.5e12",
               "--eval-size", "3000", "--seeds", "1", "--until", "static", "-o", str(out)]
    result = CliRunner().invoke(main, [*command, "--evals", "24"])
    assert result.exit_code == 0, result.output
    assert (out / "loop.json").read_text() == (source / "loop.json").read_text()
    other = CliRunner().invoke(main, [*command, "--evals", "25"])
    assert other.exit_code == 2 and "another 'train'" in other.output


def test_switch_cost_is_measured_and_planned_again(loop_dir):
    """The compute lag behind the new shape's law at the run's last evaluation, recomputed from
    the curve and the law's closed form; the plan with that cost per switch keeps its switches
    and adds exactly that cost for each, or drops switches and costs no more than that."""
    folder, summary = loop_dir
    plan = read_plan(folder / "plan.json")
    records = _records(folder / "adaptive" / "seed0" / "curve.jsonl")
    fired = next(r for r in records if r["event"] == "switch")
    last = records[-1]
    law = json.loads((folder / "laws.json").read_text())["shapes"][1]
    assert law["name"] == "width32" and law["form"] in ("power", "saturating")

    def compute(loss):  # power: E = c + a C^-b, saturating: E = c + a (C + d)^-b
        params = law["params"]
        return max(0.0, (params["a"] / (loss - params["c"])) ** (1 / params["b"])
                   - params.get("d", 0.0))

    expected = (last["flops"] - fired["flops"]
                - (compute(last["eval_loss"]) - compute(fired["eval_loss"])))
    switch = summary["switches"][0]
    assert switch["lag_flops"] == pytest.approx(expected, rel=1e-6, abs=1e-6 * last["flops"])
    replanned = summary["replanned"]
    assert replanned["switch_flops"] == max(0.0, switch["lag_flops"])
    switches_before = plan.optimal.switches
    switches_after = len(replanned["schedule"]) - 1
    bound = plan.optimal.compute + switches_before * replanned["switch_flops"]
    if switches_after == switches_before:
        assert replanned["compute"] == pytest.approx(bound, rel=1e-6)
    else:
        assert switches_after < switches_before and replanned["compute"] <= bound * (1 + 1e-9)
    assert replanned["saving"] <= plan.saving_vs_static + 1e-12
    report = (folder / "report.md").read_text()
    if replanned["switch_flops"] > 0:
        assert f"Planned again with that cost ({replanned['switch_flops']:.3e} FLOPs" in report
    else:
        assert "planning again with the measured cost changes nothing" in report


def _points(losses):
    return [{"flops": 1e9 * 2**i, "step": 100 * (i + 1), "eval_loss": loss}
            for i, loss in enumerate(losses)]


def test_a_rising_tail_is_left_out_of_the_fit_and_noise_is_not():
    rising = _points([2.0, 1.0, 0.7, 0.6, 0.65, 0.72])  # ends 20% above its lowest (0.6)
    curve = mean_curve("p", {}, [rising], warmup_steps=1)
    assert curve.loss.tolist() == [2.0, 1.0, 0.7, 0.6]
    noisy = _points([2.0, 1.0, 0.7, 0.6, 0.62, 0.61])  # ends 1.7% above: eval noise, kept
    assert len(mean_curve("p", {}, [noisy], warmup_steps=1)) == 6


def test_reduced_vit_patch_loop_with_merged_patches(tmp_path):
    """The whole loop on the real task at toy size: the task options reach every run, the laws
    carry the measured speed, and the adaptive run starts coarse as planned."""
    if not FASHION_MNIST_DIR.is_dir():
        require("Fashion-MNIST", "dataset-fashion-mnist is not installed")
    config = LoopConfig(
        "vit-patch", ({"patch": 28}, {"patch": 14}, {"patch": 7}), budget=3e9, seeds=1,
        common={"dim": 16, "depth": 1, "heads": 2, "batch": 32},
        train=TrainConfig(evals=8, warmup_steps=5,
                          task_options={"patch_resize": "merge", "eval_size": 500}))
    summary = run_loop(config, tmp_path, progress=False)
    assert set(summary["rows"]) == {"patch28", "patch14", "patch7", "adaptive"}
    for result in tmp_path.glob("*/**/result.json"):
        assert json.loads(result.read_text())["data"]["patch_resize"] == "merge"
    laws = read_law_file(tmp_path / "laws.json")
    assert laws.provenance["task_options"]["patch_resize"] == "merge"
    assert all(shape.throughput > 0 for shape in laws.shapes)
    first = read_plan(tmp_path / "plan.json").optimal.shapes[0]
    records = _records(tmp_path / "adaptive" / "seed0" / "curve.jsonl")
    assert records[0]["shape"]["patch"] == int(first[5:])
    assert (tmp_path / "report.md").is_file()
