"""The training loop: switches, kill -9 and resume, compiled on CPU, DDP on two CPU processes."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

from sim.policies import Static
from validate.config import TrainConfig
from validate.switches import Switch, parse_switch, switch_schedule
from validate.tasks import make_task
from validate.train import CHECKPOINT, RESULT, train

REPO = Path(__file__).resolve().parents[2]
# One thread everywhere, so that in-process and subprocess runs add up alike.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _metrics(curve):
    return [{k: v for k, v in record.items() if k != "time"} for record in curve]


def _switching_run(axes, budget, switches, config, **options):
    """``validate train --switch-at ...`` through the Python API."""
    task = make_task("mlp-width", **config.task_options)
    policy, shapes = switch_schedule(task, axes, switches)
    return train(task, axes, budget, policy, config, shapes=shapes, progress=False, **options)


def test_switches_fire_at_flops_and_loss_levels_and_rescale_the_lr():
    result = _switching_run(
        {"width": 8, "batch": 32}, 4e6,
        [Switch({"width": 16}, at_loss=0.55), Switch({"batch": 128}, at_flops=2e6)],
        TrainConfig(lr=1e-2, warmup_steps=1, batch_lr_rule="linear", evals=20))
    by_loss, by_flops = result.switches
    first_below = next(r for r in result.curve if r["eval_loss"] <= 0.55)
    assert by_loss["step"] == first_below["step"] and by_loss["to"]["width"] == 16
    # The FLOP switch fires after the step that reaches its level, between evaluations.
    step = make_task("mlp-width").analytic_flops({"width": 16, "batch": 32})  # closed form
    assert 2e6 <= by_flops["flops"] < 2e6 + step and by_flops["eval_loss"] is None
    lrs = {r["shape"]["batch"]: r["lr"] for r in result.curve if r["step"] > 1}
    assert lrs[128] == pytest.approx(4 * lrs[32])  # linear rule: 4x the batch, 4x the rate
    assert result.final["flops"] <= 4e6
    assert result.curve[-1]["eval_loss"] < result.curve[0]["eval_loss"]
    # Every sample position is used once: the data position is the sum of the batches.
    steps_small = by_flops["step"]
    assert result.final["samples"] == 32 * steps_small + 128 * (result.final["step"] - steps_small)
    # Each evaluation names its shape as the schedule does, for `shapeshift fit`.
    assert {(r["shape_name"], r["shape"]["width"], r["shape"]["batch"]) for r in result.curve} == {
        ("width8-batch32", 8, 32), ("width16-batch32", 16, 32), ("width16-batch128", 16, 128)}


def test_parse_switch_in_absolute_flops():
    assert parse_switch("flops=3e12:patch=4", 1e13) == Switch({"patch": 4}, at_flops=3e12)


ARGS = ["mlp-width", "--shape", "width=8,batch=32", "--budget", "3e7", "--evals", "6",
        "--switch-at", "0.02:width=12", "--switch-at", "0.6:width=20", "--widen-noise", "0.05",
        "--checkpoint-every", "25"]
SWITCHES = [Switch({"width": 12}, at_flops=0.02 * 3e7), Switch({"width": 20}, at_flops=0.6 * 3e7)]


def kill_at_first_checkpoint(args: list[str], run_dir: Path) -> None:
    """Start ``validate train *args -o run_dir`` in a subprocess and kill -9 it as soon as its
    first checkpoint exists, checking that it died mid-run, before its end."""
    process = subprocess.Popen([sys.executable, "-m", "cli", "validate", "train", *args,
                                "-o", str(run_dir)], cwd=REPO, env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (run_dir / CHECKPOINT).exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # killed mid-run, not finished
    assert not (run_dir / RESULT).exists()


def _api_run(run_dir, resume=False, ema=0.0, compile=False):
    config = TrainConfig(evals=6, checkpoint_every=25, ema=ema, compile=compile,
                         task_options={"noise": 0.05})
    return _switching_run({"width": 8, "batch": 32}, 3e7, SWITCHES, config, run_dir=run_dir,
                          resume=resume)


@pytest.mark.slow
@pytest.mark.parametrize("ema, compile", [
    (0.0, False),
    (7.0, False),  # with the weights' average, it resumes too
    (0.0, True),  # compiled on CPU (Inductor), in the killed process and the resumed one
])
def test_kill_and_resume_ends_exactly_like_an_uninterrupted_run(tmp_path, ema, compile):
    whole = _api_run(tmp_path / "whole", ema=ema, compile=compile)
    assert [s["to"]["width"] for s in whole.switches] == [12, 20]

    killed_dir = tmp_path / "killed"
    kill_at_first_checkpoint([*ARGS, "--ema", str(ema), *["--compile"] * compile], killed_dir)
    saved_step = torch.load(killed_dir / CHECKPOINT, weights_only=False)["controller"]["steps"]
    resumed = _api_run(killed_dir, resume=True, ema=ema, compile=compile)
    assert resumed.resumed_from_step == saved_step >= 25  # continued, did not start afresh
    assert resumed.final["step"] > saved_step
    assert _metrics(resumed.curve) == _metrics(whole.curve)
    assert resumed.switches == whole.switches
    logged = [json.loads(line) for line in (killed_dir / "curve.jsonl").read_text().splitlines()]
    assert _metrics([r for r in logged if r["event"] == "eval"]) == _metrics(whole.curve)


@pytest.mark.slow
def test_a_compiled_run_counts_and_switches_as_the_eager_run_does(tmp_path):
    """torch.compile changes how a step computes (fused kernels, sums in another order), not
    what it counts: the same steps, FLOPs (counted on an eager copy) and switches, and eval
    losses that differ by float32 rounding only."""
    eager = _api_run(tmp_path / "eager")
    torch._dynamo.reset()  # an earlier test's compiled code would serve this run
    counters.clear()
    compiled = _api_run(tmp_path / "compiled", compile=True)
    assert counters["stats"]["unique_graphs"] >= 2  # compiled for real, again after a switch
    counted = ("step", "flops", "samples", "shape_name")
    assert ([[r[k] for k in counted] for r in compiled.curve]
            == [[r[k] for k in counted] for r in eager.curve])
    assert ([(s["step"], s["flops"], s["to"]) for s in compiled.switches]
            == [(s["step"], s["flops"], s["to"]) for s in eager.switches])
    # About 750 steps in float32 (epsilon 1.2e-7): rounding differences may grow, but stay far
    # below the run's own progress between evaluations (a few percent of the loss).
    losses = [r["eval_loss"] for r in eager.curve]
    assert [r["eval_loss"] for r in compiled.curve] == pytest.approx(losses, rel=1e-4)


class _Noting(Static):
    """A static policy that notes something at every evaluation, as the online policy notes
    its posterior updates."""

    stay_above = float("inf")  # consulted at every evaluation

    def decide(self, run):
        run.note("finding", {"evaluations": run.evaluations})
        return None


def test_a_policys_notes_go_into_the_curve_without_an_extra_evaluation(tmp_path):
    config = TrainConfig(evals=4, warmup_steps=2, task_options={"noise": 0.05})
    # 133 steps of 704 x 32 FLOPs (tasks.py's closed form): the last step reaches the budget,
    # the last evaluation level, so the policy is asked there and notes after it.
    result = train("mlp-width", {"width": 8, "batch": 32}, 133 * 704 * 32,
                   _Noting("width8-batch32"), config, run_dir=tmp_path, progress=False)
    records = [json.loads(line) for line in (tmp_path / "curve.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["event"] == "eval"]
    assert steps == sorted(set(steps))  # one evaluation per step: none added after the notes
    assert len(steps) == len(result.curve) == 5  # step 0 and the 4 levels, the last the end
    # Asked at every evaluation, the last one included: a note ends the log.
    assert sum(r["event"] == "finding" for r in records) == 5
    assert records[-1]["event"] == "finding" and records[-2]["step"] == 133


def test_resumed_before_its_first_checkpoint_a_run_writes_its_records_once(tmp_path):
    """A run killed before its first checkpoint leaves only the records it wrote; resumed, it
    starts over, and its curve holds each record once (what the loop does with such a run)."""
    whole = _api_run(tmp_path / "whole")
    killed = tmp_path / "killed"
    killed.mkdir()
    lines = (tmp_path / "whole" / "curve.jsonl").read_text().splitlines(keepends=True)
    (killed / "curve.jsonl").write_text("".join(lines[:3]))  # what it wrote before the kill
    resumed = _api_run(killed, resume=True)
    assert resumed.resumed_from_step == 0
    logged = [json.loads(line) for line in (killed / "curve.jsonl").read_text().splitlines()]
    assert _metrics([r for r in logged if r["event"] == "eval"]) == _metrics(whole.curve)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from the parent links in /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _run_or_kill(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    """``command`` to its end; past ``timeout``, it is killed with every process it started
    and the test fails. torchrun starts each rank in a session of its own, so killing
    torchrun's process group alone would leave the ranks running."""
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in [*_descendants(process.pid), process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"{' '.join(command[:6])} ... did not end within {timeout} s; killed it "
                    "and every process it started")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.slow
@pytest.mark.parametrize("compile", [False, True])  # torch.compile around the DDP wrapper
def test_ddp_on_two_cpu_processes_follows_the_one_process_curve(tmp_path, compile):
    single = _switching_run({"width": 8, "batch": 64}, 1e7, [Switch({"width": 16}, 5e6)],
                            TrainConfig(evals=5))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
               "2", "-m", "cli", "validate", "train", "mlp-width", "--shape", "width=8,batch=64",
               "--budget", "1e7", "--evals", "5", "--switch-at", "flops=5e6:width=16",
               *["--compile"] * compile, "-o", str(tmp_path / "ddp")]
    finished = _run_or_kill(command, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]
    result = json.loads((tmp_path / "ddp" / RESULT).read_text())
    assert result["world_size"] == 2
    curve = [json.loads(line) for line in (tmp_path / "ddp" / "curve.jsonl").read_text()
             .splitlines()]
    evals = [r for r in curve if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [r["step"] for r in single.curve]
    assert [r["flops"] for r in evals] == [r["flops"] for r in single.curve]
    assert [r["shape_name"] for r in evals] == [r["shape_name"] for r in single.curve]
    assert {r["shape"]["width"] for r in evals} == {8, 16}  # the switch happened
    for ddp, one in zip(evals, single.curve, strict=True):
        assert ddp["eval_loss"] == pytest.approx(one["eval_loss"], rel=1e-5)
        if one["train_loss"] is not None:
            assert ddp["train_loss"] == pytest.approx(one["train_loss"], rel=1e-5)
