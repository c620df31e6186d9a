"""`validate run --executor slurm` on a real one-node Slurm (the ``slurm_cluster`` fixture,
tests/slurm_cluster.py): the reduced loop of test_loop.py as Slurm jobs gives the laws, plan
and curves of the same loop run here; a job preempted (SIGUSR2: submitit's checkpoint hook and
requeue) and a job cancelled while the loop was killed both resume from their checkpoints and
end bit for bit like uninterrupted runs. Skipped, with the reason, where Slurm is not
installed."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from laws.search import read_plan
from tests.validate import test_loop
from validate.loop import run_loop
from validate.slurm import SlurmConfig

# The reduced loop of test_loop.py, saving checkpoints often (so that jobs are interrupted
# after one); how often is part of a run's arithmetic (its train-loss sums are folded at each
# checkpoint), so every loop here, the local one too, uses the same.
CONFIG = dataclasses.replace(test_loop.CONFIG, train=dataclasses.replace(
    test_loop.CONFIG.train, checkpoint_every=100))
RUNS = ("static/width4/seed0", "static/width32/seed0", "adaptive/seed0")
WAIT_S = 180  # for a file a job writes: a bound, not a measurement


def _curve(folder: Path, run: str) -> list[dict]:
    """The run's records without their wall times (which differ between any two runs)."""
    lines = (folder / run / "curve.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


def _records(folder: Path) -> dict:
    return json.loads((folder / "slurm" / "jobs.json").read_text())


@pytest.fixture(scope="module")
def local_loop(tmp_path_factory):
    """The reduced loop trained in this process: what the Slurm jobs must reproduce."""
    folder = tmp_path_factory.mktemp("local")
    run_loop(CONFIG, folder, progress=False)
    return folder


def test_the_loop_through_slurm_equals_the_local_loop(slurm_cluster, local_loop, tmp_path,
                                                      capsys):
    folder = tmp_path / "slurm"
    summary = run_loop(CONFIG, folder, slurm=SlurmConfig())
    log = capsys.readouterr().err
    local_laws = json.loads((local_loop / "laws.json").read_text())
    laws = json.loads((folder / "laws.json").read_text())
    assert [s["params"] for s in laws["shapes"]] == [s["params"] for s in local_laws["shapes"]]
    schedule = read_plan(folder / "plan.json").optimal.schedule
    assert schedule == read_plan(local_loop / "plan.json").optimal.schedule
    assert len(schedule) == 2  # the plan switches, so the adaptive run too
    for run in RUNS:
        assert _curve(folder, run) == _curve(local_loop, run), run
    assert summary["rows"]["adaptive"]["flops"] == json.loads(
        (local_loop / "summary.json").read_text())["rows"]["adaptive"]["flops"]
    # Where each run ran, with its job id: in jobs.json, in the log, and in Slurm's records.
    records = _records(folder)
    assert sorted(records) == sorted(RUNS)
    array = {records[run]["job_id"].split("_")[0] for run in RUNS[:2]}
    assert len(array) == 1 and "_" not in records["adaptive/seed0"]["job_id"]  # one array
    ids = {record["slurm_job_id"] for record in records.values()}
    # Slurm writes a job's record once its processes are gone, after its result file.
    _wait_for(lambda: ids <= {row[0] for row in _completed(slurm_cluster)},
              "job completion records")
    for run, record in records.items():
        assert record["state"] == "COMPLETED" and record["node"] == slurm_cluster.node
        assert record["submissions"] == [record["job_id"]]
        assert f"{run}: finished on {slurm_cluster.node} (Slurm job {record['job_id']}" in log
        assert [record["slurm_job_id"], "shapeshift", "COMPLETED",
                slurm_cluster.node] in _completed(slurm_cluster)


def _completed(cluster) -> list[list[str]]:
    """JobID, JobName, State and NodeList of each ended job, as ``sacct -c`` lists them."""
    return [line.split("|")[:4] for line in cluster.sacct().splitlines()[1:]]


def _job_info(job_id: str) -> str:
    return subprocess.run(["scontrol", "show", "job", job_id], capture_output=True,
                          text=True).stdout


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"no {what} after {WAIT_S} s"
        time.sleep(0.02)


def test_preempted_and_cancelled_jobs_resume_like_uninterrupted_runs(
        slurm_cluster, local_loop, tmp_path, capsys):
    """The static stage as a job array, in a loop process that is killed: the width32 job is
    preempted (SIGUSR2: submitit checkpoints and requeues it), the width4 job is cancelled
    while no loop runs. The loop started again waits for the requeued job and submits the
    cancelled run again; both resume from their checkpoints."""
    config, folder = CONFIG, tmp_path / "loop"
    script = ("import json, sys; from validate.config import LoopConfig; "
              "from validate.loop import run_loop; from validate.slurm import SlurmConfig; "
              "run_loop(LoopConfig.from_dict(json.loads(sys.argv[1])), sys.argv[2], "
              "until='static', slurm=SlurmConfig())")
    with open(tmp_path / "first-loop.log", "wb") as log:
        first = subprocess.Popen([sys.executable, "-c", script, json.dumps(config.to_dict()),
                                  str(folder)], start_new_session=True, stderr=log)
    try:
        wide, narrow = folder / "static/width32/seed0", folder / "static/width4/seed0"
        _wait_for(lambda: (wide / "checkpoint.pt").is_file(), "width32 checkpoint")
        jobs = {run: record["job_id"] for run, record in _records(folder).items()}
        preempted = jobs["static/width32/seed0"]
        subprocess.run(["scancel", "--signal=USR2", preempted], check=True)
        # Slurm holds a requeued job for two minutes before it may start again: released now.
        _wait_for(lambda: "Reason=BeginTime" in _job_info(preempted), "requeue")
        subprocess.run(["scontrol", "update", f"JobId={preempted}", "StartTime=now"],
                       check=True)
        _wait_for(lambda: (narrow / "checkpoint.pt").is_file(), "width4 checkpoint")
        # Frozen, so that it is still unfinished when it is cancelled below.
        subprocess.run(["scontrol", "suspend", jobs["static/width4/seed0"]], check=True)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    subprocess.run(["scancel", jobs["static/width4/seed0"]], check=True)

    run_loop(config, folder, until="static", slurm=SlurmConfig())
    log = capsys.readouterr().err
    assert ("static/width4/seed0: Slurm job " + jobs["static/width4/seed0"]
            + " ended without a result (cancelled); submitting it again") in log
    records = _records(folder)
    cancelled, preempted = records["static/width4/seed0"], records["static/width32/seed0"]
    assert cancelled["submissions"][0] == jobs["static/width4/seed0"]
    assert len(cancelled["submissions"]) == 2 and cancelled["requeued"] == 0
    assert preempted["submissions"] == [jobs["static/width32/seed0"]]
    assert preempted["requeued"] >= 1  # Slurm restarted the same job
    for run in ("static/width4/seed0", "static/width32/seed0"):
        result = json.loads((folder / run / "result.json").read_text())
        assert result["resumed_from_step"] >= 100  # continued from a checkpoint
        assert _curve(folder, run) == _curve(local_loop, run), run


def test_a_job_of_two_tasks_trains_in_ddp_like_one_process(slurm_cluster, tmp_path):
    """--tasks-per-job 2: submitit starts two ranks with the environment DDP reads (as torchrun
    would), and the run follows the one-process curve (as tests/validate/test_train.py's DDP
    run does)."""
    config = dataclasses.replace(CONFIG, budget=1e7)
    run_loop(config, tmp_path / "local", until="static", progress=False)
    run_loop(config, tmp_path / "ddp", until="static", progress=False,
             slurm=SlurmConfig(tasks_per_job=2))
    for run in RUNS[:2]:
        assert json.loads((tmp_path / "ddp" / run / "result.json").read_text())["world_size"] == 2
        ddp, one = _curve(tmp_path / "ddp", run), _curve(tmp_path / "local", run)
        assert [r["flops"] for r in ddp] == [r["flops"] for r in one]
        for a, b in zip(ddp, one, strict=True):
            assert a["eval_loss"] == pytest.approx(b["eval_loss"], rel=1e-5)


def test_sbatch_refusing_the_jobs_is_one_line(slurm_cluster, tmp_path):
    result = CliRunner().invoke(main, [
        "validate", "run", "mlp-width", "--shapes", "width=4;width=32", "--budget", "1e8",
        "--executor", "slurm", "--partition", "nowhere", "-o", str(tmp_path / "loop")])
    assert result.exit_code == 2
    assert result.output == ("error: --executor slurm: sbatch refused the jobs: invalid "
                             "partition specified: nowhere\n")


@pytest.mark.parametrize("option", [["--partition", "gpu"], ["--time-limit", "5"],
                                    ["--gpus-per-job", "1"], ["--tasks-per-job", "2"]])
def test_slurm_options_need_the_slurm_executor(tmp_path, option):
    result = CliRunner().invoke(main, [
        "validate", "run", "mlp-width", "--shapes", "width=4;width=32", "--budget", "1e6",
        *option, "-o", str(tmp_path / "loop")])
    assert result.exit_code == 2
    assert f"error: {option[0]} needs --executor slurm" in result.output
