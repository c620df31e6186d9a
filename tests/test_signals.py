"""Signals: Ctrl-C (SIGINT to the foreground group) and a scheduler's SIGTERM to the parent end
a command that runs worker processes with one line and exit 130 or 143, and SIGKILL to the
parent leaves no worker behind (issue 25)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.test_reliability import ENV, REPO, SHAPESHIFT, one_error

SIMULATE = ["simulate", "--preset", "demo", "--target", "2.1", "--runs", "200000",
            "--workers", "2"]


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _interruptible() -> None:
    """Ctrl-C's default action in the command, as a terminal gives it: a shell that starts
    pytest in the background (``pytest &``) hands its children SIGINT ignored, and a command
    started so rightly ignores it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _loop(out: Path) -> list[str]:
    """A confirmation loop whose static runs train in two spawned worker processes."""
    return ["validate", "run", "mlp-width", "--shapes", "width=4;width=8;width=16", "--budget",
            "3e9", "--seeds", "2", "--workers", "2", "-o", str(out / "loop")]


@pytest.mark.slow
@pytest.mark.parametrize("command", [lambda out: SIMULATE, _loop], ids=["simulate", "loop"])
@pytest.mark.parametrize(("sent", "group", "code", "line"), [
    (signal.SIGINT, True, 130, "error: interrupted"),  # Ctrl-C: the whole foreground group
    (signal.SIGTERM, False, 143, "error: terminated"),  # a scheduler's signal, parent only
    (signal.SIGKILL, False, -signal.SIGKILL, None),
])
def test_signals_end_the_command_and_its_workers(command, sent, group, code, line, tmp_path):
    process = subprocess.Popen([*SHAPESHIFT, *command(tmp_path)], cwd=REPO, env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=_interruptible)
    deadline = time.monotonic() + 120
    while len(workers := _children(process.pid)) < 2:
        assert time.monotonic() < deadline and process.poll() is None, "no workers started"
        time.sleep(0.05)
    time.sleep(0.5)  # the workers at work
    if group:
        os.killpg(process.pid, sent)
    else:
        os.kill(process.pid, sent)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code
    if line is not None:
        assert one_error(stderr) == line
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], "workers outlived the command"
