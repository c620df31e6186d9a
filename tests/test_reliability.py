"""Issue 25's reproducers: two runs in one folder, an output that is an input, the folder
swap, units and names, faults and signals. Each ends with an exit code, one line, nothing lost
and nothing left running. The concurrent stress run is bench/stress_outputs.py."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from laws.errors import InputError
from laws.io import atomic
from laws.io.atomic import check_replaceable, write_folder_atomic
from laws.io.lock import OutputLock, lock_path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
SHAPESHIFT = [sys.executable, "-m", "cli"]
HOST = socket.gethostname().replace(".", "_")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SHAPESHIFT, *args], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=300)


def one_error(stderr: str) -> str:
    """The one error line of ``stderr`` (progress lines aside); no traceback."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _wait_for(path: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


# --- two runs in one folder ---
TRAIN = ["validate", "train", "mlp-width", "--shape", "width=8,batch=64", "--evals", "8"]


@pytest.mark.slow
def test_a_second_run_into_a_held_run_folder_is_refused_before_any_work(tmp_path):
    out = tmp_path / "k"
    first = subprocess.Popen([*SHAPESHIFT, *TRAIN, "--budget", "3e9", "-o", str(out)],
                             cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    _wait_for(lock_path(out))
    # Another seed, and the same command: both started while the first trains.
    others = [subprocess.Popen([*SHAPESHIFT, *TRAIN, "--budget", "3e9", *extra, "-o",
                                str(out)], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
              for extra in (["--seed", "1"], [])]
    for other in others:
        _, stderr = other.communicate(timeout=300)
        assert other.returncode == 2
        assert f"in use by process {first.pid} on {socket.gethostname()}" in one_error(stderr)
    assert first.poll() is None, "the first run ended before the others were refused"
    first.send_signal(signal.SIGTERM)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 143 and one_error(stderr) == "error: terminated"
    records = [json.loads(line) for line in (out / "curve.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["event"] == "eval"]
    assert steps == sorted(set(steps))  # one run's records, none doubled
    assert not lock_path(out).exists()  # released at exit


def test_a_folder_holding_another_runs_records_is_refused(tmp_path):
    out = tmp_path / "k"
    out.mkdir()
    (out / "curve.jsonl").write_text('{"event": "eval", "step": 0}\n')  # killed before a save
    result = cli(*TRAIN, "--budget", "2e5", "-o", str(out))
    assert result.returncode == 2
    assert "holds the records of another run" in one_error(result.stderr)
    assert (out / "curve.jsonl").read_text() == '{"event": "eval", "step": 0}\n'


def test_a_dead_owners_lock_is_taken_over(tmp_path):
    out = tmp_path / "k"
    lock_path(out).write_text(f"process {_dead_pid()} on {socket.gethostname()}\n")
    result = cli(*TRAIN, "--budget", "2e5", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "result.json").is_file() and not lock_path(out).exists()


def test_a_held_lock_refuses_and_names_its_holder(tmp_path):
    lock = OutputLock(tmp_path / "out")
    lock.acquire()
    try:
        with pytest.raises(InputError, match=rf"out: in use by process {os.getpid()} on "):
            child = multiprocessing.get_context("spawn").Pool(1)
            try:
                child.apply(_acquire, (tmp_path / "out",))
            finally:
                child.terminate()
    finally:
        lock.release()
    _acquire(tmp_path / "out")  # free again


def _acquire(path: Path) -> None:
    lock = OutputLock(path)
    lock.acquire()
    lock.release()


# --- an output that is an input ---
CURVES = "width,C,loss\n" + "".join(f"{w},{c:.3e},{2 + a * c ** -0.3:.6f}\n" for w, a in (
    (8, 5e6), (16, 3e6)) for c in (1e18, 1e19, 1e20, 1e21))
FIT = ["--shape-col", "width", "--compute-col", "C", "--loss-col", "loss"]


def test_no_command_writes_over_its_input(tmp_path):
    curves = tmp_path / "in.csv"
    curves.write_text(CURVES)
    laws = tmp_path / "laws.json"
    assert cli("fit", str(curves), *FIT, "-o", str(laws)).returncode == 0
    (tmp_path / "link.json").symlink_to(laws)
    kept = laws.read_bytes()
    for args in (["fit", str(curves), *FIT, "-o", str(curves)],
                 ["search", str(laws), "--target", "2.3", "-o", str(laws)],
                 ["search", str(tmp_path / "link.json"), "--target", "2.3", "-o", str(laws)],
                 ["simulate", "--preset", "demo", "--target", "2.1", "--runs", "1",
                  "--sweep", str(tmp_path / "sim" / "results.json"), "-o",
                  str(tmp_path / "sim")]):
        if args[0] == "simulate":
            (tmp_path / "sim").mkdir()
            (tmp_path / "sim" / "results.json").write_text('{"runs": [{"policy": "static"}]}')
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert "writing it would replace the input" in result.stderr
    assert curves.read_text() == CURVES and laws.read_bytes() == kept


# --- the folder swap ---
def _version_files(version: int) -> dict[str, str]:
    return {"a.txt": f"{version}\n", "sub/b.txt": f"{version}\n"}


def _complete(folder: Path) -> int:
    """The version the folder holds whole; fails on a missing or mixed folder."""
    versions = {(folder / name).read_text() for name in _version_files(0)}
    assert len(versions) == 1, versions
    return int(versions.pop())


def _write_forever(folder: str) -> None:
    version = 1
    while True:
        with contextlib.suppress(InputError):
            write_folder_atomic(folder, _version_files(version))
        version += 1


def test_a_writer_killed_at_any_instant_leaves_the_old_folder_or_the_new(tmp_path):
    folder = tmp_path / "out"
    write_folder_atomic(folder, _version_files(0))
    context = multiprocessing.get_context("fork")
    for delay in [0.01 * k for k in range(12)]:
        writer = context.Process(target=_write_forever, args=(str(folder),))
        writer.start()
        time.sleep(0.05 + delay)
        os.kill(writer.pid, signal.SIGKILL)
        writer.join()
        _complete(folder)
    write_folder_atomic(folder, _version_files(99))  # the next write clears the leftovers
    assert _complete(folder) == 99
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_without_an_exchange_a_kill_between_the_renames_is_recovered(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_exchange", lambda first, second: False)
    folder = tmp_path / "out"
    write_folder_atomic(folder, _version_files(1))
    write_folder_atomic(folder, _version_files(2))  # the two renames, without an exchange
    assert _complete(folder) == 2
    # A writer killed between its renames: the name empty, the old folder aside.
    aside = tmp_path / f".out.{HOST}-{_dead_pid()}.ab12cd34.old"
    folder.rename(aside)
    check_replaceable(folder, _version_files(0))  # the next writer's first step puts it back
    assert _complete(folder) == 2 and not aside.exists()


def _hammer(folder: str, writes: int, queue) -> None:
    failures = []
    for version in range(writes):
        try:
            write_folder_atomic(folder, _version_files(version))
        except InputError as err:
            if "in use by" not in str(err):
                failures.append(repr(err))
        except OSError as err:  # what the unlocked two-rename swap raised
            failures.append(repr(err))
    queue.put(failures)


def test_concurrent_writers_to_one_folder_never_fail_or_mix(tmp_path):
    folder = tmp_path / "out"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    writers = [context.Process(target=_hammer, args=(str(folder), 25, queue))
               for _ in range(4)]
    for writer in writers:
        writer.start()
    failures = [failure for _ in writers for failure in queue.get(timeout=120)]
    for writer in writers:
        writer.join()
    assert failures == []
    _complete(folder)


# --- units and names ---
def _fit(tmp_path: Path, text: str, *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / "runs.csv"
    path.write_text(text)
    return cli("fit", str(path), *extra)


def test_log10_compute_is_refused_against_model_size(tmp_path):
    rows = "".join(f"8,{n},{c},{2 + 3 / c:.6f}\n" for n in (1e6,) for c in (15, 16, 17, 18))
    result = _fit(tmp_path, "width,N,C,loss\n" + rows, *FIT, "--params-col", "N")
    assert result.returncode == 2
    assert "compute 15 is less than 2 N = 2e+06 FLOPs" in one_error(result.stderr)


def test_log10_compute_without_sizes_warns_and_strict_refuses(tmp_path):
    rows = "".join(f"8,{c},{2 + 3 / c:.6f}\n" for c in (15, 16, 17, 18, 19, 20))
    warned = _fit(tmp_path, "width,C,loss\n" + rows, *FIT, "--json")
    assert warned.returncode == 0, warned.stderr
    kinds = [w["kind"] for w in json.loads(warned.stdout)["warnings"]]
    assert "input" in kinds
    strict = _fit(tmp_path, "width,C,loss\n" + rows, *FIT, "--strict")
    assert strict.returncode == 2 and "below 1000 FLOPs" in one_error(strict.stderr)


def test_shape_names_differing_in_white_space_or_case_are_refused(tmp_path):
    for other in ("s1 ", "S1", " s1"):
        text = "shape,C,loss\n" + "".join(f"{name},{c:.1e},{2 + 1e5 * c ** -0.3:.6f}\n"
                                          for name in ("s1", other) for c in (1e18, 1e19, 1e20))
        result = _fit(tmp_path, text, "--shape-col", "shape", "--compute-col", "C",
                      "--loss-col", "loss")
        assert result.returncode == 2
        assert "differ only in white space or case" in one_error(result.stderr)


def test_repeated_rows_warn_and_strict_refuses(tmp_path):
    body = CURVES.split("\n", 1)[1]
    twice = "width,C,loss\n" + body + body
    warned = _fit(tmp_path, twice, *FIT)
    assert warned.returncode == 0 and "8 row(s) repeat earlier rows exactly" in warned.stdout
    strict = _fit(tmp_path, twice, *FIT, "--strict")
    assert strict.returncode == 2 and "(line 10 = line 2)" in one_error(strict.stderr)


# --- faults ---
@pytest.fixture
def full_disk(tmp_path):
    """A 200 KB tmpfs (root only)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize(("args", "written"), [
    (["simulate", "--preset", "demo", "--target", "2.1", "--runs", "200"], "sim/results.json"),
    (["validate", "train", "mlp-width", "--shape", "width=1024,batch=8", "--budget", "2e8",
      "--evals", "3", "--checkpoint-every", "5"], "sim/checkpoint.pt"),
])
def test_a_full_disk_ends_with_one_line_naming_the_file(full_disk, args, written):
    result = cli(*args, "-o", str(full_disk / "sim"))
    assert result.returncode == 1
    assert one_error(result.stderr) == (f"error: {full_disk / written}: No space left on "
                                        "device")
    assert not [p for p in full_disk.rglob(".*") if p.name.endswith((".tmp", ".lock"))]


@pytest.mark.parametrize(("output", "message"), [
    ("loop/plan.json", "Too many levels of symbolic links"),
    ("a" * 245 + ".json", "the name is too long for its temporary file"),
    ("/proc/plan.json", "cannot write in the folder /proc"),
    ("/sys/plan.json", "cannot write in the folder /sys"),
])
def test_unwritable_outputs_are_refused_before_any_work(tmp_path, output, message):
    (tmp_path / "loop").symlink_to("loop")
    result = cli("search", "--preset", "demo", "--target", "2.1", "-o", str(tmp_path / output))
    assert result.returncode == 2 and message in one_error(result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop"]


def _as_nobody(args: list[str], queue) -> None:
    os.setgid(65534)
    os.setuid(65534)
    result = CliRunner().invoke(main, args)
    queue.put((result.exit_code, result.stderr))


@pytest.mark.skipif(os.geteuid() != 0, reason="drops root's privileges to those of nobody")
def test_a_folder_the_user_cannot_write_is_refused_before_any_work(tmp_path):
    tmp_path.chmod(0o755)  # root's: nobody may enter, not write
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_as_nobody, args=(
        ["search", "--preset", "demo", "--target", "2.1", "-o", str(tmp_path / "plan.json")],
        queue))
    child.start()
    code, stderr = queue.get(timeout=120)
    child.join()
    assert code == 2 and "permission denied" in one_error(stderr).lower()


def test_a_full_stdout_ends_with_one_line():
    with open("/dev/full", "w") as full:
        result = subprocess.run([*SHAPESHIFT, "predict", "--preset", "demo", "--compute",
                                 "1e18"], cwd=REPO, env=ENV, stdout=full,
                                stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 1
    assert one_error(result.stderr) == "error: standard output: No space left on device"
