"""A real one-node Slurm on localhost for the tests: munged, slurmctld and slurmd started as
root from Debian's ``slurm-wlm`` and ``munge`` packages, everything (configuration, munge key
and socket, state, spool, logs) in one temporary folder, stopped with nothing left running.

    with SlurmCluster(folder) as cluster:   # exports SLURM_CONF while it runs
        subprocess.run(["sbatch", "--wrap", "hostname"])

Or as the session fixture ``slurm_cluster`` (``from tests.slurm_cluster import slurm_cluster``
in a test module), which skips, with the reason, where the daemons are not installed or the
tests do not run as root. No cgroups (proctrack/linuxproc, task/none), so it runs in a
container; accounting goes to a job-completion file, which ``sacct -c`` reads.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.components import require

DAEMONS = ("munged", "slurmctld", "slurmd")
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


def _program(name: str) -> str | None:
    """Where ``name`` is: on PATH, or in the sbin folders where Debian puts the daemons."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""),
                                                     "/usr/sbin", "/sbin"]))


def missing_reason() -> str | None:
    """Why a Slurm cannot be started here, or None when it can."""
    absent = [name for name in (*DAEMONS, "sinfo", "sbatch") if _program(name) is None]
    if absent:
        return (f"Slurm is not installed ({', '.join(absent)} not found; "
                "apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        return "the one-node Slurm of the tests starts its daemons as root"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SlurmCluster:
    """One node, named like this machine, with all its CPUs, in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.node = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        self.conf = self.folder / "slurm.conf"
        self.jobcomp = self.folder / "jobcomp.txt"
        self.daemons: dict[str, subprocess.Popen] = {}
        self._saved_env: str | None = None

    def config_text(self) -> str:
        f = self.folder
        return "\n".join([
            "ClusterName=shapeshift-test",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={f / 'munge' / 'munge.socket'}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"StateSaveLocation={f / 'state'}",
            f"SlurmdSpoolDir={f / 'spool'}",
            f"SlurmctldPidFile={f / 'slurmctld.pid'}",
            f"SlurmdPidFile={f / 'slurmd.pid'}",
            f"SlurmctldLogFile={f / 'slurmctld.log'}",
            f"SlurmdLogFile={f / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",  # no cgroups: runs in a container
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/filetxt",  # what `sacct -c` lists
            f"JobCompLoc={self.jobcomp}",
            "MpiDefault=none",
            "ReturnToService=2",
            "KillWait=5",  # a requeued or cancelled job's processes get SIGKILL after 5 s
            "SchedulerParameters=sched_min_interval=100000",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} State=UNKNOWN",
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            "",
        ])

    def start(self) -> SlurmCluster:
        for sub in ("munge", "state", "spool"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        key = self.folder / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        self.conf.write_text(self.config_text())
        self._saved_env = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = str(self.conf)  # every Slurm command reads it
        munge = self.folder / "munge"
        try:
            self._spawn("munged", [_program("munged"), "-F", "--force", f"--key-file={key}",
                                   f"--socket={munge / 'munge.socket'}",
                                   f"--pid-file={munge / 'munged.pid'}",
                                   f"--log-file={munge / 'munged.log'}",
                                   f"--seed-file={munge / 'munged.seed'}"])
            self._wait_for(lambda: (munge / "munge.socket").exists(), "munged's socket")
            self._spawn("slurmctld", [_program("slurmctld"), "-D", "-i", "-f", str(self.conf)])
            self._spawn("slurmd", [_program("slurmd"), "-D", "-N", self.node, "-f",
                                   str(self.conf)])
            self._wait_for(self._node_idle, f"node {self.node} idle in sinfo")
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.folder / f"{name}.out", "ab")  # noqa: SIM115 (lives with the daemon)
        # Its own session and process group, so that stop() ends it with all it started.
        self.daemons[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def _node_idle(self) -> bool:
        state = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True,
                               text=True, timeout=10).stdout.split()
        return state == ["idle"]

    def _wait_for(self, condition, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not condition():
            for name, process in self.daemons.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode} before "
                                       f"{what}; see {self.folder}/{name}.out and its log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {what} after {START_TIMEOUT_S} s; see {self.folder}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Cancel every job, then end each daemon's process group, slurmd first; whatever
        still carries this cluster's SLURM_CONF (job steps) is killed too."""
        if "slurmctld" in self.daemons and self.daemons["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--full", "--user", "root"], capture_output=True,
                           timeout=30)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            # The job steps end on their own once cancelled: wait, then kill what remains.
            while ((self._queued() or self._steps()) and time.monotonic() < deadline):
                time.sleep(0.5)
        for name in reversed(list(self.daemons)):
            _end_group(self.daemons.pop(name))
        for pid in self._steps():
            _kill_group(pid)
        if self._saved_env is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = self._saved_env

    def _steps(self) -> list[int]:
        """This cluster's slurmstepd processes and what its jobs run (they carry its
        SLURM_CONF and a SLURM_JOB_ID; this test process's children carry the first only)."""
        return _processes_with_env(f"SLURM_CONF={self.conf}", "SLURM_JOB_ID=", b"slurmstepd")

    def _queued(self) -> list[str]:
        result = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True,
                                timeout=10)
        return result.stdout.split()

    def sacct(self) -> str:
        """The job-completion records of the jobs that ended, as ``sacct -c`` lists them."""
        return subprocess.run(["sacct", "-c", "-o", "JobID,JobName,State,NodeList,Elapsed",
                               "--parsable2"], capture_output=True, text=True,
                              timeout=30).stdout

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _end_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError):  # what it started, in its group
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _kill_group(pid: int) -> None:
    """SIGKILL to ``pid``'s whole process group (never to this process's own)."""
    group = _group(pid)
    if group is not None and group != os.getpgid(0):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _processes_with_env(entry: str, job_entry: str, program: bytes) -> list[int]:
    """Processes whose environment holds ``entry`` and either a variable starting with
    ``job_entry`` or whose command starts with ``program``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environment = (proc / "environ").read_bytes().split(b"\0")
            command = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if entry.encode() in environment and (
                command.startswith(program)
                or any(item.startswith(job_entry.encode()) for item in environment)):
            found.append(int(proc.name))
    return found


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> Iterator[SlurmCluster]:
    reason = missing_reason()
    if reason:
        require("Slurm", reason)
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster
