"""`fit` and `measure` on training logs (W&B histories of exact power laws), against closed
forms; reading a log imports no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from laws.io.lawfile import read_law_file
from tests.components import require_module
from tests.laws.test_logs import wandb_history

# Two shapes on exact laws loss = a C^-b (c = 0), C = step x FLOPs per step.
LAWS = {"w1": (40.0, 0.1, 1e9), "w2": (90.0, 0.13, 4e9)}
STEPS = [2 ** k for k in range(4, 14)]


def _runs(tmp_path: Path) -> list[str]:
    return [str(wandb_history(tmp_path / "runs" / name / "wandb-history.jsonl",
                               [(s, a * (s * per_step) ** -b) for s in STEPS], 1e-3))
            for name, (a, b, per_step) in LAWS.items()]


def test_fit_reads_logs_named_by_their_folders(tmp_path) -> None:
    output = tmp_path / "laws.json"
    result = CliRunner().invoke(main, ["fit", *_runs(tmp_path), "--form", "power",
                                       "--flops-per-step", "w1=1e9", "--flops-per-step",
                                       "w2=4e9", "-o", str(output)])
    assert result.exit_code == 0, result.output
    laws = read_law_file(output)
    assert [shape.name for shape in laws.shapes] == ["w1", "w2"]
    for shape in laws.shapes:
        a, b, _ = LAWS[shape.name]
        assert shape.law.b == pytest.approx(b, rel=1e-3)
        assert shape.law.loss(1e13) == pytest.approx(a * 1e13 ** -b, rel=1e-4)
    assert laws.provenance["options"]["flops_per_step"] == ["w1=1e+09", "w2=4e+09"]


def test_measure_reads_logs(tmp_path) -> None:
    """On a pure power law the estimator's log-log line is exact: C = (a / L)^(1 / b), and
    the seconds are steps x 1e-3 = C / FLOPs per step x 1e-3."""
    target = 2.5
    result = CliRunner().invoke(main, ["measure", *_runs(tmp_path), "--target", str(target),
                                       "--flops-per-step", "w1=1e9", "--flops-per-step",
                                       "w2=4e9", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["shape"]: row for row in json.loads(result.output)["runs"]}
    for name, (a, b, per_step) in LAWS.items():
        flops = (a / target) ** (1 / b)
        assert rows[name]["flops"] == pytest.approx(flops, rel=1e-9)
        assert rows[name]["seconds"] == pytest.approx(flops / per_step * 1e-3, rel=1e-9)


def test_every_event_file_of_a_restarted_run_given_is_one_run(tmp_path) -> None:
    """A shell's ``runs/w1/events.*``: the two files of w1's restarted run are one run (one
    seed), read whole from either; w2's single file another. Exact laws as above, FLOPs from
    the step, so each crossing is (a / L)^(1 / b) in closed form."""
    require_module("tensorboard", "the tensorboard package", "the tensorboard extra; "
                   "`make test` installs it")
    from torch.utils.tensorboard import SummaryWriter

    files = []
    for name, (a, b, per_step) in LAWS.items():
        # w1 dies after the first half of its steps and is restarted into a second file
        parts = [STEPS[:5], STEPS[5:]] if name == "w1" else [STEPS]
        for steps in parts:
            writer = SummaryWriter(str(tmp_path / "runs" / name))
            for step in steps:
                writer.add_scalar("eval/loss", a * (step * per_step) ** -b, step)
            writer.close()
        files += sorted((tmp_path / "runs" / name).glob("events.out.tfevents.*"))
    assert len(files) == 3
    target = 2.5
    result = CliRunner().invoke(main, ["measure", *map(str, files), "--target", str(target),
                                       "--flops-per-step", "w1=1e9", "--flops-per-step",
                                       "w2=4e9", "--json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)["runs"]
    assert sorted(run["shape"] for run in runs) == ["w1", "w2"]
    for run in runs:
        a, b, _ = LAWS[run["shape"]]
        assert run["flops"] == pytest.approx((a / target) ** (1 / b), rel=1e-6)  # float32 logs


def test_measure_reads_each_run_of_a_wandb_chart_export(tmp_path) -> None:
    """A line chart's "Export CSV" of both shapes: two static runs, not one run that
    switches; each crossing (a / L)^(1 / b) in closed form."""
    rows = ['"Step","w1 - eval/loss","w1 - eval/loss__MIN","w1 - eval/loss__MAX",'
            '"w2 - eval/loss","w2 - eval/loss__MIN","w2 - eval/loss__MAX"']
    for step in STEPS:
        w1, w2 = (a * (step * per_step) ** -b for a, b, per_step in LAWS.values())
        rows.append(f"{step},{w1!r},{w1!r},{w1!r},{w2!r},{w2!r},{w2!r}")
    export = tmp_path / "wandb_export.csv"
    export.write_text("\n".join(rows) + "\n")
    target = 2.5
    result = CliRunner().invoke(main, ["measure", str(export), "--target", str(target),
                                       "--flops-per-step", "w1=1e9", "--flops-per-step",
                                       "w2=4e9", "--json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)["runs"]
    assert [(run["shape"], run["kind"]) for run in runs] == [("w1", "static"), ("w2", "static")]
    for run in runs:
        a, b, _ = LAWS[run["shape"]]
        assert run["flops"] == pytest.approx((a / target) ** (1 / b), rel=1e-9)


def test_measure_pairs_static_logs_with_an_adaptive_curve(tmp_path) -> None:
    """Old logs of the static shapes, the adaptive run from the callbacks' curve.jsonl: the
    saving is 1 - C_adaptive / C_best static, each C = (a / L)^(1 / b)."""
    target = 2.5
    adaptive = tmp_path / "adaptive" / "curve.jsonl"
    adaptive.parent.mkdir()
    adaptive.write_text("".join(json.dumps(
        {"event": "eval", "flops": s * 1e9, "time": s * 1e-3, "eval_loss": 30 * (s * 1e9) ** -0.1,
         "shape": {"w": 1}, "shape_name": "w1"}) + "\n" for s in STEPS))
    result = CliRunner().invoke(main, ["measure", *_runs(tmp_path), "--adaptive", str(adaptive),
                                       "--target", str(target), "--flops-per-step", "w1=1e9",
                                       "--flops-per-step", "w2=4e9", "--json"])
    assert result.exit_code == 0, result.output
    paired = json.loads(result.output)["paired"]
    static = {name: (a / target) ** (1 / b) for name, (a, b, _) in LAWS.items()}
    best = min(static, key=static.get)
    assert paired["best_static"] == best
    expected = 1 - (30 / target) ** 10 / static[best]
    assert paired["seeds"][0]["saving"] == pytest.approx(expected, rel=1e-9)


def test_measure_of_a_log_without_wall_time_has_no_seconds(tmp_path) -> None:
    path = tmp_path / "w1" / "metrics.csv"
    path.parent.mkdir()
    path.write_text("epoch,step,val_loss\n" + "".join(  # Lightning's step: the batch index
        f"0,{s - 1},{40 * (s * 1e9) ** -0.1!r}\n" for s in STEPS))
    argv = ["measure", str(path), "--target", "2.5", "--flops-per-step", "1e9"]
    result = CliRunner().invoke(main, [*argv, "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)["runs"]
    assert row["flops"] == pytest.approx((40 / 2.5) ** 10, rel=1e-9) and row["seconds"] is None
    table = CliRunner().invoke(main, argv).output
    assert " n/a " in next(line for line in table.splitlines() if str(path) in line)


def test_log_options_need_logs(tmp_path) -> None:
    curve = tmp_path / "curve.jsonl"
    curve.write_text(json.dumps({"event": "eval", "flops": 1e9, "eval_loss": 2.0,
                                 "shape_name": "a", "shape": {}}) + "\n")
    result = CliRunner().invoke(main, ["fit", str(curve), "--flops-per-step", "1e9"])
    assert result.exit_code == 2 and "none of the files is one" in result.output
    points = tmp_path / "points.csv"
    points.write_text("w,flops,loss\n1,1e9,2\n")
    result = CliRunner().invoke(main, ["fit", str(points), "--loss-col", "loss",
                                       "--compute-col", "flops", "--log-loss", "val_loss"])
    assert result.exit_code == 2 and "give one kind" in result.output


def test_reading_logs_imports_no_torch(tmp_path) -> None:
    """laws/ must not import torch: read a log in a fresh interpreter and look."""
    path = wandb_history(tmp_path / "wandb-history.jsonl", [(1, 2.0)], 1.0)
    code = ("import sys; from laws.io.logs import LogSpec, PerShape, read_log; "
            f"read_log({str(path)!r}, 'w', LogSpec(flops_per_step=PerShape.parse(['1']))); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)
