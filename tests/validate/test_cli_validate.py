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
