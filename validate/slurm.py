"""The loop's training runs as Slurm jobs, submitted through submitit
(``shapeshift validate run --executor slurm``).

    loop = Loop(config, "runs/loop", slurm=SlurmConfig(partition="gpu", gpus_per_job=1))
    loop.run()

The static stage goes in as one job array, each adaptive run as a job of its own; the loop
process waits for them and trains nothing itself. In ``<loop>/slurm/`` submitit keeps each
job's script, pickles and logs (``<job id>/``), and ``jobs.json`` records, per run, its Slurm
job id, every earlier submission, its state and the node it ran on (also in the loop's log).

Preemption and time limits: a job gets SIGUSR2 before its limit (and on preemption); the
submitit handler then calls ``TrainingJob.checkpoint``, which resubmits the same call, and
requeues the job (``scontrol requeue``). The requeued job, like any job started again, finds
the run's ``checkpoint.pt`` and resumes it; on CPU it ends exactly where an uninterrupted run
would; after ``REQUEUES_AFTER_TIME_LIMIT`` time limits the job fails. A job that leaves the
queue without a result (``scancel``, a node failure) is submitted again, up to
``RESUBMISSIONS`` times, and resumes too. A job whose training raised stops the loop with an
``InputError`` naming the run and the job's log.

Resumption of the loop itself: a killed loop, started again, reads ``jobs.json``: runs whose
``result.json`` exists are done, runs whose job is still queued or running are waited for, and
the rest are submitted again. Job states come from ``squeue`` (which every cluster has; this
module does not need Slurm's accounting database).
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import io
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laws.errors import InputError
from laws.io.atomic import write_text_atomic
from validate.config import LoopConfig

# How often a run whose job left the queue without a result is submitted again in one loop.
RESUBMISSIONS = 3
# How often a job that reaches its time limit is requeued (it resumes each time).
REQUEUES_AFTER_TIME_LIMIT = 20
# Queue states after which a job will not run again; any other state counts as still queued.
ENDED = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
         "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "TIMEOUT"}
POLL_SECONDS = (0.5, 10.0)  # squeue is asked at most this often, backing off to the second
GONE_POLLS = 2  # consecutive polls a job must be missing from the queue to count as lost


@dataclass(frozen=True)
class SlurmConfig:
    """What each job asks Slurm for (``None``: the cluster's default)."""

    partition: str | None = None
    account: str | None = None
    time_limit: int = 60  # minutes per job; at the limit it is requeued and resumes
    cpus_per_job: int = 1  # per process, and torch's threads
    gpus_per_job: int = 0
    tasks_per_job: int = 1  # processes per job; more than one train in DDP

    def __post_init__(self) -> None:
        for name in ("time_limit", "cpus_per_job", "tasks_per_job"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be "
                                 "at least 1")
        if self.gpus_per_job < 0:
            raise InputError(f"--gpus-per-job {self.gpus_per_job}: must not be negative")

    def parameters(self) -> dict[str, Any]:
        """submitit's ``SlurmExecutor`` parameters for one job."""
        given = {"partition": self.partition, "account": self.account,
                 "gpus_per_node": self.gpus_per_job or None}
        # SIGUSR2 this long before the limit: time to save and requeue, within short limits.
        delay = min(90, self.time_limit * 60 // 5)
        return {"job_name": "shapeshift", "time": self.time_limit,
                "cpus_per_task": self.cpus_per_job, "ntasks_per_node": self.tasks_per_job,
                "signal_delay_s": delay, **{k: v for k, v in given.items() if v is not None}}

    def describe(self) -> str:
        where = f"partition {self.partition}" if self.partition else "default partition"
        account = f", account {self.account}" if self.account else ""
        return (f"{where}{account}, {self.tasks_per_job} x {self.cpus_per_job} CPU, "
                f"{self.gpus_per_job} GPU, {self.time_limit} min")


def executor_config(*, executor: str, partition: str | None, account: str | None,
                    time_limit: int, cpus_per_job: int, gpus_per_job: int,
                    tasks_per_job: int) -> SlurmConfig | None:
    """The ``--executor`` option group: None for local processes, else the jobs' resources.
    Resource options given with ``--executor local`` are refused, not ignored."""
    config = SlurmConfig(partition, account, time_limit, cpus_per_job, gpus_per_job,
                         tasks_per_job)
    if executor == "slurm":
        return config
    given = [field.name for field in dataclasses.fields(config)
             if getattr(config, field.name) != field.default]
    if given:
        raise InputError(f"--{given[0].replace('_', '-')} needs --executor slurm")
    return None


@dataclass(frozen=True)
class Run:
    """One training run of the loop: the arguments ``Loop._train`` is called with for it (its
    folder first), which the job passes on as they are."""

    arguments: tuple

    @property
    def run_dir(self) -> Path:
        return Path(self.arguments[0])


# Trains one run of a loop (its config, folder and run) in the calling process: the loop's
# own function, given to ``SlurmRuns`` so that this module does not import the loop.
TrainRun = Callable[[LoopConfig, str, Run], None]


class TrainingJob:
    """What a job executes: the loop's ``train`` of one run, in the job's process(es).
    submitit calls ``checkpoint`` on SIGUSR2 (time limit, preemption): the same call again,
    which resumes from the run's checkpoint."""

    def __init__(self, cpus: int, tasks: int, train: TrainRun) -> None:
        self.cpus, self.tasks, self.train = cpus, tasks, train

    def __call__(self, config: LoopConfig, out_dir: str, run: Run) -> dict[str, Any]:
        import submitit
        import torch

        torch.set_num_threads(self.cpus)
        if self.tasks > 1:  # RANK, WORLD_SIZE, MASTER_ADDR...: the DDP path of validate.train
            submitit.helpers.TorchDistributedEnvironment().export(
                set_cuda_visible_devices=False)
        self.train(config, out_dir, run)
        environment = submitit.JobEnvironment()
        return {"job_id": environment.job_id, "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
                "node": socket.gethostname(),
                "requeued": int(os.environ.get("SLURM_RESTART_COUNT", "0"))}

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


class SlurmRuns:
    """Submits runs of one loop, waits for them, and keeps ``<loop>/slurm/jobs.json``."""

    def __init__(self, config: SlurmConfig, loop_config: LoopConfig, out_dir: Path,
                 log: Callable[[str], None], train: TrainRun) -> None:
        try:
            import submitit
        except ImportError:
            raise InputError("--executor slurm needs submitit: pip install "
                             "'shapeshift[slurm]'") from None

        self.config, self.loop_config, self.out, self.log = config, loop_config, out_dir, log
        self.train_run = train
        self.folder = out_dir / "slurm"
        self.records_path = self.folder / "jobs.json"
        try:
            self.executor = submitit.SlurmExecutor(folder=self.folder / "%j",
                                                   max_num_timeout=REQUEUES_AFTER_TIME_LIMIT)
        except RuntimeError as err:  # no srun on PATH
            raise InputError(f"--executor slurm: {err}") from None
        self.executor.update_parameters(**config.parameters())
        self.records: dict[str, dict] = (json.loads(self.records_path.read_text())
                                         if self.records_path.is_file() else {})

    def train(self, runs: Sequence[Run]) -> None:
        """Every run in ``runs`` trained by a job (one array for several): the finished are
        skipped, those with a job still queued are waited for, the rest submitted."""
        from validate.train import RESULT

        queue: dict[str, tuple[str, str]] | None = None
        jobs, unsubmitted = {}, []
        for run in runs:
            key, record = self._key(run), self.records.get(self._key(run))
            job = self._job(record["job_id"]) if record else None
            if (run.run_dir / RESULT).is_file():
                if job is not None and record["state"] != "COMPLETED" and _finished(job):
                    self._finish(key, job)  # it ended while no loop waited: record where
                continue
            if job is None:
                unsubmitted.append(run)
                continue
            queue = self._queue() if queue is None else queue
            state = queue.get(job.job_id, ("", ""))[0]
            if state and state not in ENDED:
                self.log(f"{key}: waiting for Slurm job {job.job_id} ({state.lower()}), "
                         "submitted before")
                jobs[key] = (run, job)
            else:
                self._note_lost(key, job, state)
                unsubmitted.append(run)
        if unsubmitted:
            jobs.update(self._submit(unsubmitted))
        self._wait(jobs)

    # --- submission ---
    def _submit(self, runs: list[Run]) -> dict[str, tuple[Run, Any]]:
        job = TrainingJob(self.config.cpus_per_job, self.config.tasks_per_job, self.train_run)
        arguments = [(self.loop_config, str(self.out), run) for run in runs]
        try:  # submitit echoes a refusing sbatch's stderr: it goes into the error instead
            with contextlib.redirect_stderr(io.StringIO()):
                if len(runs) == 1:
                    submitted = [self.executor.submit(job, *arguments[0])]
                else:
                    submitted = self.executor.map_array(job, *zip(*arguments, strict=True))
        except Exception as err:  # sbatch refused: a bad partition, account or resource
            lines = str(err).strip().splitlines() or [type(err).__name__]
            reason = lines[0].removeprefix("sbatch: error: ")
            raise InputError(f"--executor slurm: sbatch refused the jobs: {reason}") from None
        what = "job array" if len(runs) > 1 else "job"
        first = submitted[0].job_id.split("_")[0]
        self.log(f"submitted {len(runs)} run(s) as Slurm {what} {first} "
                 f"({self.config.describe()})")
        for run, slurm_job in zip(runs, submitted, strict=True):
            record = self.records.setdefault(self._key(run), {"submissions": []})
            record.update(job_id=slurm_job.job_id, state="SUBMITTED", node=None)
            record["submissions"].append(slurm_job.job_id)
        self._save()
        return {self._key(run): (run, slurm_job)
                for run, slurm_job in zip(runs, submitted, strict=True)}

    def _job(self, job_id: str) -> Any:
        import submitit

        return submitit.SlurmJob(folder=self.folder / "%j", job_id=job_id,
                                 tasks=tuple(range(self.config.tasks_per_job)))

    # --- waiting ---
    def _wait(self, jobs: dict[str, tuple[Run, Any]]) -> None:
        missing = dict.fromkeys(jobs, 0)
        resubmitted = dict.fromkeys(jobs, 0)
        delay = POLL_SECONDS[0]
        while jobs:
            queue = self._queue()
            changed = False
            for key, (run, job) in list(jobs.items()):
                state, node = queue.get(job.job_id, ("", ""))
                if _finished(job):
                    self._finish(key, job)
                    del jobs[key]
                    changed = True
                    continue
                record = self.records[key]
                if state and state not in ENDED:
                    missing[key] = 0
                    if (state, node or None) != (record["state"], record["node"]):
                        record.update(state=state, node=node or None)
                        self.log(f"{key}: Slurm job {job.job_id} {state.lower()}"
                                 + (f" on {node}" if node and state == "RUNNING" else ""))
                        self._save()
                        changed = True
                    continue
                missing[key] += 1
                if missing[key] < GONE_POLLS:  # a result file may lag behind the queue
                    continue
                if resubmitted[key] >= RESUBMISSIONS:
                    raise InputError(f"{key}: Slurm job {job.job_id} ended without a result "
                                     f"{RESUBMISSIONS + 1} times; see {self._log_file(job)}")
                self._note_lost(key, job, state)
                jobs.update(self._submit([run]))
                resubmitted[key] += 1
                missing[key] = 0
                changed = True
            delay = POLL_SECONDS[0] if changed else min(POLL_SECONDS[1], delay * 1.5)
            if jobs:
                time.sleep(delay)

    def _note_lost(self, key: str, job: Any, state: str) -> None:
        self.records[key]["state"] = state or "LOST"
        self.log(f"{key}: Slurm job {job.job_id} ended without a result "
                 f"({(state or 'gone from the queue').lower()}); submitting it again, it "
                 "resumes from its checkpoint")

    def _finish(self, key: str, job: Any) -> None:
        try:
            where = job.results()[0]
        except Exception as err:  # the job raised: its traceback is in its log
            lines = str(err).strip().splitlines() or [type(err).__name__]
            self.records[key]["state"] = "FAILED"
            self._save()
            raise InputError(f"{key}: Slurm job {job.job_id} failed: {lines[-1]} "
                             f"(log: {self._log_file(job)})") from None
        self.records[key].update(state="COMPLETED", node=where["node"],
                                 slurm_job_id=where["slurm_job_id"], requeued=where["requeued"])
        self._save()
        requeued = f", requeued {where['requeued']} time(s)" if where["requeued"] else ""
        self.log(f"{key}: finished on {where['node']} (Slurm job {job.job_id}, id "
                 f"{where['slurm_job_id']}{requeued})")

    def _queue(self) -> dict[str, tuple[str, str]]:
        """State and node of each of this user's jobs that Slurm still knows, by job id (array
        tasks as ``<array>_<task>``)."""
        result = subprocess.run(
            ["squeue", "-h", "-r", "--states=all", "-u", getpass.getuser(), "-o", "%i|%T|%N"],
            capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise InputError(f"--executor slurm: squeue failed: {result.stderr.strip()}")
        queue = {}
        for line in result.stdout.splitlines():
            job_id, state, node = (line.split("|") + ["", ""])[:3]
            queue[job_id.strip()] = (state.strip(), node.strip())
        return queue

    # --- records ---
    def _key(self, run: Run) -> str:
        return run.run_dir.relative_to(self.out).as_posix()

    def _log_file(self, job: Any) -> Path:
        return job.paths.stderr

    def _save(self) -> None:
        write_text_atomic(self.records_path, json.dumps(self.records, indent=2) + "\n")


def _finished(job: Any) -> bool:
    """Every task of the job left its result (or error) file (submitit writes one per task;
    a job of several tasks holds one ``Job`` per task)."""
    tasks = getattr(job, "_sub_jobs", None) or [job]
    return all(task.paths.result_pickle.exists() for task in tasks)
