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
        # Past 64 bits: one size (10^30), or a weight's element count (2^62 x 16).
        (["mlp-width", "--shape", "width=" + "9" * 30], "sizes do not fit in 64 bits"),
        (["mlp-width", "--shape", f"width={2**62}"], "sizes do not fit in 64 bits"),
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


# --- values checked where they enter, leftovers of killed runs (issue 17) ---
TINY = ["mlp-width", "--shape", "width=4,batch=8", "--evals", "3"]


@pytest.mark.parametrize(("args", "message"), [
    (["--budget", "inf"], "--budget inf: must be a positive number of FLOPs (finite)"),
    (["--budget", "2e5", "--lr", "nan"], "--lr nan: must be a positive, finite number"),
    (["--budget", "2e5", "--lr", "-1"], "--lr -1.0: must be a positive, finite number"),
    (["--budget", "2e5", "--weight-decay", "inf"], "--weight-decay inf: must be a finite"),
    (["--budget", "2e5", "--widen-noise", "nan"], "--widen-noise nan: must be a finite"),
    (["--budget", "2e5", "--seed", "-1"], "'--seed': -1 is not in the range 0<=x<="),
    # One step of width 4, batch 8: 8 (2*16*4*2 + 2*4*4*3) = 2816 FLOPs (validate/flops.py).
    (["--budget", "2815"], "--budget 2815: less than one training step of width4-batch8 "
                           "(2816 FLOPs)"),
])
def test_bad_values_are_refused_before_any_work(tmp_path, args, message):
    result = _run(*TINY, *args, "-o", str(tmp_path / "run"))
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "run").exists()


def test_a_shape_too_large_for_memory_is_refused_before_building_it(tmp_path):
    result = _run("mlp-width", "--shape", "width=100000000000", "--budget", "1e30",
                  "-o", str(tmp_path / "run"))
    assert result.exit_code == 2, result.output
    # Mlp(16, width, 4) has 16 w + w + 4 w + 4 parameters; 4 float32 copies of each.
    needed = 16 * (21 * 10**11 + 4) / 2**30
    assert f"need {needed:.3g} GiB" in result.stderr and result.stderr.count("\n") == 1


def test_a_diverging_run_ends_with_one_line_and_no_nan_in_its_files(tmp_path):
    result = _run(*TINY, "--budget", "2e5", "--lr", "1e30", "-o", str(tmp_path / "run"))
    assert result.exit_code == 2, result.output
    assert "error: the run diverged at step" in result.stderr and "lower --lr" in result.stderr
    assert not (tmp_path / "run" / "result.json").exists()
    assert "NaN" not in (tmp_path / "run" / "curve.jsonl").read_text()


def test_resume_removes_the_temporary_checkpoint_of_a_killed_run(tmp_path):
    import socket
    import subprocess

    args = [*TINY, "--budget", "2e5", "-o", str(tmp_path / "run")]
    assert _run(*args).exit_code == 0
    dead = subprocess.Popen(["true"])
    dead.wait()  # a writer that is gone, as a kill -9 during the checkpoint's write leaves it
    stale = tmp_path / "run" / f".checkpoint.pt.{socket.gethostname().replace('.', '_')}-" \
                               f"{dead.pid}.k2j4_9zz.tmp"
    stale.write_bytes(b"half a checkpoint")
    resumed = _run(*args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert not stale.exists()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "checkpoint.pt", "curve.jsonl", "result.json"]


@pytest.mark.parametrize(("args", "message"), [
    (["--budget", "1e3"], "--budget 1000: less than one training step of width4-batch128"),
    # 50 warm-up steps of width 4 (45,056 FLOPs each) outlast a budget of 1e6 FLOPs.
    (["--budget", "1e6"], "--budget 1e+06: width4 ends its 50-step warm-up at 2.25e+06 FLOPs, "
                          "with 0 of its 30 evaluations left; the fit needs 4"),
    (["--budget", "1e6", "--adaptive-budget", "inf"],
     "--adaptive-budget inf: must be a positive"),
    (["--budget", "1e6", "--target", "nan"], "--target nan: must be a positive, finite loss"),
    (["--budget", "1e6", "--target", "-1"], "--target -1.0: must be a positive, finite loss"),
])
def test_validate_run_refuses_bad_values_before_training(tmp_path, args, message):
    result = CliRunner().invoke(main, ["validate", "run", "mlp-width", "--shapes",
                                       "width=4;width=8", *args, "-o", str(tmp_path / "loop")])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "loop").exists()
