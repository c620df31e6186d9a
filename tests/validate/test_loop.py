"""The confirmation loop end to end, reduced: a wide and a narrow MLP student (mlp-width, no
data set needed) measured, fitted, planned, trained adaptively and compared, in a few seconds.

The scenario is built so that the static curves cross inside the budget (the narrow student
learns fast and saturates, the wide one starts slowly and goes lower), hence a plan with a
switch; what is checked is the pipeline, against numbers recomputed from the files it wrote.
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import validate.loop as loop_module
from cli import main
from laws.io.lawfile import read_law_file
from validate.loop import LoopConfig, run_loop

CONFIG = LoopConfig(
    "mlp-width", ({"width": 4}, {"width": 32}), budget=1e8, common={"batch": 32},
    train_options={"evals": 16, "warmup_steps": 20}, task_options={"noise": 0.05})


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _first_crossing(curve, target):
    """FLOPs at the first eval at or below ``target``, log-linearly interpolated (by hand)."""
    for i, point in enumerate(curve):
        if point["eval_loss"] <= target:
            low, high = curve[i - 1], point
            t = (low["eval_loss"] - target) / (low["eval_loss"] - high["eval_loss"])
            return float(np.exp(np.log(low["flops"])
                                + t * (np.log(high["flops"]) - np.log(low["flops"]))))
    return None


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
    # Each fitted law passes near its measured curve at the budget.
    for name in laws.names:
        curve = _records(folder / "static" / name / "seed0" / "curve.jsonl")
        law_loss = laws.shape(name).law.loss(curve[-1]["flops"])
        assert abs(law_loss - curve[-1]["eval_loss"]) < 0.2 * curve[-1]["eval_loss"]


def test_adaptive_run_switches_at_the_planned_loss_levels(loop_dir):
    folder, _ = loop_dir
    plan = json.loads((folder / "plan.json").read_text())
    schedule = plan["optimal"]["schedule"]
    assert [s["shape"] for s in schedule] == ["width4", "width32"]
    records = _records(folder / "adaptive" / "seed0" / "curve.jsonl")
    switches = [i for i, r in enumerate(records) if r["event"] == "switch"]
    assert len(switches) == len(schedule) - 1
    assert records[0]["shape"]["width"] == 4
    for index, segment in zip(switches, schedule[1:], strict=True):
        level = segment["loss_from"]
        before = [r for r in records[:index] if r["event"] == "eval"]
        # It fired right after the first evaluation at or below the level, not before.
        assert before[-1]["eval_loss"] <= level < before[-2]["eval_loss"]
        assert records[index]["to"]["width"] == int(segment["shape"].removeprefix("width"))
    after = [r for r in records[switches[-1]:] if r["event"] == "eval"]
    assert all(r["shape"]["width"] == 32 for r in after)


def test_summary_and_report_match_the_curves(loop_dir):
    folder, summary = loop_dir
    plan = json.loads((folder / "plan.json").read_text())
    target = plan["target_loss"]
    static = {name: [r for r in _records(folder / "static" / name / "seed0" / "curve.jsonl")
                     if r["event"] == "eval"] for name in ("width4", "width32")}
    # Default target: the best static run's final loss.
    assert target == pytest.approx(min(c[-1]["eval_loss"] for c in static.values()))
    adaptive = [r for r in _records(folder / "adaptive" / "seed0" / "curve.jsonl")
                if r["event"] == "eval"]
    reached = {name: _first_crossing(curve, target) for name, curve in static.items()}
    best = min((n for n in reached if reached[n]), key=reached.get)
    assert summary["best_static"] == best
    for name, flops in {**reached, "adaptive": _first_crossing(adaptive, target)}.items():
        measured = summary["rows"][name]["flops"]
        assert measured is None if flops is None else measured == pytest.approx(flops, rel=1e-9)
    adaptive_flops = summary["rows"]["adaptive"]["flops"]
    expected = None if adaptive_flops is None else 1 - adaptive_flops / reached[best]
    assert summary["measured_saving"] == (None if expected is None else pytest.approx(expected))
    assert summary["predicted_saving"] == pytest.approx(plan["saving_vs_static"])
    report = (folder / "report.md").read_text()
    assert "| run | measured FLOPs | predicted FLOPs |" in report
    for name in ("width4", "width32", "adaptive"):
        assert f"| {name} |" in report
    assert (folder / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_with_other_options_is_refused(loop_dir):
    folder, _ = loop_dir
    result = CliRunner().invoke(main, ["validate", "run", "mlp-width", "--shapes",
                                       "width=4;width=32", "--budget", "2e8", "-o", str(folder)])
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


def test_measured_preset_ships_with_provenance():
    from laws.presets import load_preset

    laws = load_preset("vit-patch-fmnist")
    assert laws.names == ["patch28", "patch14", "patch7"]
    assert [s.axes["patch"] for s in laws.shapes] == [28, 14, 7]
    provenance = laws.provenance
    for key in ("task", "device", "budget", "seeds", "date", "shapes", "fit_metrics"):
        assert key in provenance, key
    assert provenance["task"] == "vit-patch"


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
    config = LoopConfig(**{**saved, "shapes": tuple(saved["shapes"])})
    run_loop(config, out, until="fit", progress=False)
    laws = read_law_file(out / "laws.json")
    assert [shape.name for shape in laws.shapes] == ["patch28", "patch14", "patch7"]
