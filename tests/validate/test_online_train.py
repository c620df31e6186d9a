"""`validate train --policy online`: the simulator's online policy drives a real run from the
command line, its posterior updates in the curve log, and a killed run resumes exactly."""

import json

import pytest
import torch
from click.testing import CliRunner

from cli import main
from laws.forms import PowerLaw
from laws.io.lawfile import write_law_file
from laws.lawset import LawSet, Shape
from tests.validate.test_train import kill_at_first_checkpoint
from validate.train import CHECKPOINT

SPREAD = (0.8, 0.9, 1.0, 1.1, 1.25)  # each sample's factor on a (width16's in reverse)
# Under C = (a / (E - c))^2 the plan leaves width8 (a = 300, c = 0.4) for width16 (a = 790,
# c = 0.2) where their slopes meet: ((E - 0.2) / (E - 0.4))^3 = (790 / 300)^2, E = 0.6205.
SWITCH_LEVEL = 0.6205
# 20 evaluation levels spaced geometrically from 1% of the budget, a factor 1.27 apart: the
# level the policy reads (the evaluations over the last tenth of the FLOPs) is the last one.
ARGS = ["mlp-width", "--policy", "online", "--target", "0.4", "--budget", "3e6", "--evals", "20",
        "--update-every", "3", "--widen-noise", "0.05", "--checkpoint-every", "25"]


def write_laws(folder) -> str:
    def shape(name, width, a, c, spread):
        return Shape(name, {"width": width, "batch": 32}, PowerLaw(a, 0.5, c),
                     samples=tuple(PowerLaw(a * f, 0.5, c) for f in spread))

    path = folder / "laws.json"
    write_law_file(LawSet("mlp-toy", (shape("width8", 8, 300.0, 0.4, SPREAD),
                                      shape("width16", 16, 790.0, 0.2, SPREAD[::-1]))), path)
    return str(path)


def records(run_dir) -> list[dict]:
    """The curve log without the wall-clock times, which differ between runs."""
    lines = (run_dir / "curve.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


def train(*args) -> dict:
    result = CliRunner().invoke(main, ["validate", "train", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_online_from_the_command_line_plans_updates_and_switches(tmp_path):
    result = train(*ARGS, "--laws", write_laws(tmp_path), "-o", str(tmp_path / "run"))
    logged = records(tmp_path / "run")
    evaluations, updates = 0, []
    for record in logged:
        evaluations += record["event"] == "eval"
        if record["event"] == "posterior":
            updates.append(evaluations)
            assert {"sigma", "ess", "tau", "widening", "level", "gain", "adopted"} <= set(record)
    # From the 10th evaluation, every 3rd (a tenth of the evaluations is fewer); the last
    # evaluation ends the run without asking the policy.
    assert updates == [n for n in range(10, evaluations, 3)] and len(updates) >= 2
    assert all(record["adopted"] == "" for record in logged if record["event"] == "posterior")
    # The plan kept: width8 from the start (no --shape: where the plan starts), then width16
    # at the first evaluation at or below the plan's switch level.
    curve = result["curve"]
    assert curve[0]["shape"] == {"width": 8, "batch": 32}
    first_below = next(r for r in curve if r["eval_loss"] <= SWITCH_LEVEL)
    assert [(s["step"], s["to"]["width"]) for s in result["switches"]] == [
        (first_below["step"], 16)]


@pytest.mark.slow
def test_a_killed_online_run_resumed_ends_exactly_like_an_uninterrupted_one(tmp_path):
    laws = write_laws(tmp_path)
    train(*ARGS, "--laws", laws, "-o", str(tmp_path / "whole"))
    killed = tmp_path / "killed"
    kill_at_first_checkpoint([*ARGS, "--laws", laws], killed)
    saved = torch.load(killed / CHECKPOINT, weights_only=False)["controller"]["records"]
    resumed = train(*ARGS, "--laws", laws, "-o", str(killed), "--resume")
    assert resumed["resumed_from_step"] == 25
    whole = records(tmp_path / "whole")
    # Killed between the first posterior update (step 16) and the second, before the switch:
    # the resumed run must carry the policy's state (its schedule, its next update) over.
    assert [r["event"] for r in saved].count("posterior") == 1
    assert [r["event"] for r in whole].count("posterior") >= 2
    assert any(r["event"] == "switch" for r in whole)
    assert records(killed) == whole


@pytest.mark.parametrize(("args", "message"), [
    (["--policy", "online"], "give a law file or --preset NAME"),
    (["--policy", "online", "--preset", "demo", "--switch-at", "0.5:width=16"],
     "--switch-at writes a schedule: it goes with --policy switch-at"),
    (["--preset", "demo"], "--laws, --preset and --target are for --policy online"),
])
def test_options_of_the_other_policy_exit_2_with_one_line(args, message, tmp_path):
    result = CliRunner().invoke(main, ["validate", "train", "mlp-width", "--budget", "1e6",
                                       *args, "-o", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.count("\n") == 1
