"""The two-process DDP run of the suite, again and again, on a loaded machine.

Runs the torchrun command of
``tests/validate/test_train.py::test_ddp_on_two_cpu_processes_follows_the_one_process_curve``
``--runs`` times (default 50) while two CPU-bound processes load the machine. Each run gets
``--timeout`` seconds (default 60); past it, every process of the run is killed: torchrun
starts each rank in a session of its own, so the run's processes are found by a marker in
their environment, which survives reparenting (a descendant walk from torchrun misses a rank
orphaned by torchrun's end). Prints each run's time, then how many finished (exit 0 with a
result.json) and the longest time.

    python bench/ddp_under_load.py [--runs 50] [--timeout 60]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKER = "SHAPESHIFT_DDP_UNDER_LOAD"
BURN = "while True: pass"


def command(out: Path) -> list[str]:
    """The test's torchrun command, writing into ``out``."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
            "2", "-m", "cli", "validate", "train", "mlp-width", "--shape", "width=8,batch=64",
            "--budget", "1e7", "--evals", "5", "--switch-at", "flops=5e6:width=16",
            "-o", str(out)]


def marked(value: str) -> list[int]:
    """Processes whose environment holds ``MARKER=value``."""
    entry = f"{MARKER}={value}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            with contextlib.suppress(OSError):
                if entry in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
    return found


def kill_marked(value: str) -> int:
    """SIGKILL to every process marked ``value``; how many there were."""
    pids = marked(value)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def one_run(index: int, folder: Path, timeout: float) -> tuple[bool, float, str]:
    """One torchrun run: (finished, seconds, why not)."""
    value = f"{os.getpid()}-{index}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", MARKER: value}
    out = folder / f"run{index}"
    start = time.monotonic()
    process = subprocess.Popen(command(out), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        killed = kill_marked(value)
        process.communicate()
        return False, time.monotonic() - start, f"timed out; killed {killed} processes"
    seconds = time.monotonic() - start
    left = kill_marked(value)  # a finished run must leave nothing behind
    if process.returncode != 0:
        return False, seconds, f"exit {process.returncode}: {stderr.strip()[-300:]}"
    if not (out / "result.json").is_file():
        return False, seconds, "exit 0 without result.json"
    if left:
        return False, seconds, f"exit 0 but {left} processes were still running"
    return True, seconds, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--load", type=int, default=2, help="CPU-bound processes beside")
    args = parser.parse_args()
    burners = [subprocess.Popen([sys.executable, "-c", BURN], start_new_session=True)
               for _ in range(args.load)]
    times, failures = [], []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for index in range(args.runs):
                finished, seconds, why = one_run(index, Path(folder), args.timeout)
                times.append(seconds)
                print(f"run {index + 1:3d}: {seconds:6.1f} s {'ok' if finished else why}",
                      flush=True)
                if not finished:
                    failures.append(index + 1)
    finally:
        for burner in burners:
            os.killpg(burner.pid, signal.SIGKILL)
            burner.wait()
    print(f"{args.runs - len(failures)} of {args.runs} finished within {args.timeout:.0f} s "
          f"beside {args.load} CPU-bound processes; max {max(times):.1f} s, "
          f"mean {sum(times) / len(times):.1f} s" + (f"; failed: {failures}" if failures else ""))


if __name__ == "__main__":
    main()
