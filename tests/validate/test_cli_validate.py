"""`shapeshift validate train`: help and the user errors that end with exit code 2."""

import pytest
from click.testing import CliRunner

from cli import main


def _run(*args):
    return CliRunner().invoke(main, ["validate", "train", *args])


def test_help():
    result = CliRunner().invoke(main, ["validate", "train", "--help"])
    assert result.exit_code == 0
    assert "--switch-at" in result.output and "--budget" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["vit-patches"], "unknown task 'vit-patches'; known tasks: vit-patch"),
        (["vit-patch", "--shape", "patch=5"],
         "patch=5 does not divide the 28x28 images; valid patch sizes: 1, 2, 4, 7, 14, 28"),
        (["vit-patch", "--patch-resize", "merge", "--shape", "patch=4"],
         "patch=4 does not divide the 28x28 images in base patches; valid patch sizes: 7, 14, 28"),
        (["mlp-width", "--patch-resize", "merge"], "task mlp-width takes no --patch-resize"),
        (["vit-patch", "--switch-at", "0.5:dim=128"], "cannot change 'dim' during training"),
        (["vit-patch", "--switch-at", "0.5:width=128"], "has no axis 'width'"),
        (["mlp-width", "--shape", "width=64", "--switch-at", "0.5:width=32"],
         "'width' can only grow (64 -> 32)"),
        (["vit-patch", "--switch-at", "0.5:patch=3"], "patch=3 does not divide"),
        (["vit-patch", "--switch-at", "patch=4"], "expected FRACTION:SHAPE"),
        (["vit-patch", "--switch-at", "1.5:patch=4"], "fraction of the budget must be below 1"),
        (["vit-patch", "--shape", "patch:7"], "is not AXIS=WHOLE_NUMBER"),
        (["mlp-width", "--corpus", "x.txt"], "task mlp-width takes no --corpus"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, tmp_path):
    result = _run(*args, "--budget", "1e9", "-o", str(tmp_path / "run"))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")


def test_missing_fashion_mnist(tmp_path):
    result = _run("vit-patch", "--data-dir", str(tmp_path), "--budget", "1e9",
                  "-o", str(tmp_path / "run"))
    assert result.exit_code == 2
    assert "Fashion-MNIST not found" in result.output and "dataset-fashion-mnist" in result.output


def test_negative_budget(tmp_path):
    result = _run("mlp-width", "--budget", "-5", "-o", str(tmp_path / "run"))
    assert result.exit_code == 2 and "must be a positive number" in result.output


def test_a_finished_run_folder_is_not_overwritten(tmp_path):
    args = ["mlp-width", "--shape", "width=4,batch=8", "--budget", "2e5", "--evals", "2",
            "-o", str(tmp_path / "run")]
    first = _run(*args)
    assert first.exit_code == 0, first.output
    assert "eval_loss" in first.output and "FLOP/s reached" in first.output
    again = _run(*args)
    assert again.exit_code == 2 and "pass --resume" in again.output
    other_seed = _run(*args, "--resume", "--seed", "1")
    assert other_seed.exit_code == 2 and "another 'seed'" in other_seed.output
    resumed = _run(*args, "--resume")  # nothing left to do: the same final line
    assert resumed.exit_code == 0
    assert resumed.output.splitlines()[-2] == first.output.splitlines()[-2]


def test_the_training_options_reach_the_run(tmp_path):
    """The training options given on the command line are the ones the run recorded in
    result.json (what a resumed run must match) and trained with."""
    import json

    result = _run("mlp-width", "--shape", "width=4,batch=8", "--budget", "2e5", "--evals", "3",
                  "--seed", "3", "--lr", "0.002", "--warmup-steps", "7", "--weight-decay", "0.1",
                  "--batch-lr-rule", "linear", "--widen-noise", "0.05", "--checkpoint-every", "9",
                  "-o", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "result.json").read_text())["config"]
    assert {key: config[key] for key in ("seed", "lr", "warmup_steps", "weight_decay",
                                         "batch_lr_rule", "evals", "task_options")} == {
        "seed": 3, "lr": 0.002, "warmup_steps": 7, "weight_decay": 0.1,
        "batch_lr_rule": "linear", "evals": 3, "task_options": {"noise": 0.05}}
    assert config["shape"] == {"width": 4, "batch": 8} and config["budget_flops"] == 2e5
    curve = [json.loads(line) for line in (tmp_path / "run" / "curve.jsonl").read_text()
             .splitlines()]
    assert curve[-1]["step"] > 7 and curve[-1]["lr"] == 0.002  # after the 7 warm-up steps


def test_fit_reads_the_curve_by_shape_name(tmp_path):
    """`shapeshift fit` reads a run's curve.jsonl by its `shape_name` column: each shape of the
    schedule is a curve of its own, named as the run named it."""
    import json

    run = _run("mlp-width", "--shape", "width=4,batch=8", "--budget", "1e6", "--evals", "12",
               "--switch-at", "0.1:width=8", "-o", str(tmp_path / "run"))
    assert run.exit_code == 0, run.output
    records = [json.loads(line) for line in (tmp_path / "run" / "curve.jsonl").open()]
    names = [r["shape_name"] for r in records if r["event"] == "eval"]
    assert names[0] == "width4-batch8" and names[-1] == "width8-batch8"
    wide = [r for r in records if r.get("shape_name") == "width8-batch8"]
    fitted = CliRunner().invoke(main, [
        "fit", str(tmp_path / "run" / "curve.jsonl"), "--filter", "event=eval",
        "--filter", "shape_name=width8-batch8", "--shape-col", "shape_name",
        "--compute-col", "flops", "--loss-col", "eval_loss", "--json"])
    assert fitted.exit_code == 0, fitted.output
    (shape,) = json.loads(fitted.output)["laws"]["shapes"]
    assert shape["name"] == "width8-batch8" and shape["measured"]["points"] == len(wide)
