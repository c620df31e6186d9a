"""Running ``shapeshift`` in-process with checks every command must pass: exit 0, or exit 2 and
one line on stderr; never a traceback, never a hang (an alarm turns one into a failure), and no
output left behind by a refusal. Shared by the fuzz tests and the known-nonsense tests."""

from __future__ import annotations

import os
import re
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli import main

FOUR = Path(__file__).parent / "sim" / "data" / "four_shapes.json"
HANG_S = 60  # far above any example's time; only a command that never ends reaches it


class Hang(Exception):
    """Raised by the alarm inside a command that has run for ``HANG_S`` seconds."""


def _ring(signum: int, frame: object) -> None:
    raise Hang


@contextmanager
def alarm(seconds: float) -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# What a command reports on stderr while it works (training steps, progress bars).
PROGRESS = re.compile(r"(step +\d+ |simulating|\rbootstrap|bootstrap \d)")


def run(args: list[str], out: Path | None = None) -> Result:
    """``shapeshift ARGS``, checked: exit 0, or exit 2 with one line on stderr, the error's,
    and nothing left in ``out`` (an empty folder the command's outputs go to) when the
    command refused before it started working (a run that fails later, as a training run
    that diverges, reports its progress before the error and keeps what it wrote)."""
    with alarm(HANG_S):
        result = CliRunner().invoke(main, args)
    command = "shapeshift " + " ".join(args)
    assert not isinstance(result.exception, Hang), f"{command}: still running after {HANG_S} s"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        trace = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"{command}: traceback\n{trace}")
    assert result.exit_code in (0, 2), f"{command}: exit {result.exit_code}\n{result.output}"
    if result.exit_code == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        worked = [line for line in lines if PROGRESS.match(line)]
        errors = [line for line in lines if not PROGRESS.match(line)]
        assert len(errors) == 1 and errors[0].startswith("error: "), \
            f"{command}:\n{result.stderr}"
        if out is not None and not worked:
            assert not any(out.iterdir()), f"{command}: left {sorted(os.listdir(out))}"
    elif out is not None:  # a success leaves no temporary file behind
        leftovers = [p for p in out.rglob(".*") if p.name.endswith((".tmp", ".old"))]
        assert not leftovers, f"{command}: left {leftovers}"
    return result


@contextmanager
def folders() -> Iterator[tuple[Path, Path]]:
    """A folder for the inputs and an empty one for the outputs (a fixture's tmp_path would
    be shared by all of hypothesis's examples)."""
    with tempfile.TemporaryDirectory() as inputs, tempfile.TemporaryDirectory() as outputs:
        yield Path(inputs), Path(outputs)


def curve_rows() -> list[list[str]]:
    rows = [["width", "C", "loss", "tokens"]]
    for width, a in ((8, 5e6), (16, 3e6)):
        rows += [[str(width), f"{c:.3e}", f"{2.0 + a * c ** -0.3:.6f}", f"{c / 1e9:.3e}"]
                 for c in (1e18, 1e19, 1e20, 1e21, 1e22)]
    return rows
