"""Mutation check: each change in MUTATIONS below must make the test suite fail.

A mutation is a small bug a test ought to catch (greedy reading the last observed loss instead
of the lowest, the online policy's median replaced by the minimum, a report section deleted).
For each one in turn, the script copies the checkout's files (tracked, and untracked but not
ignored: ``git ls-files -co --exclude-standard``) into a temporary folder, applies the change
there (never to the checkout), runs the suite inside the copy with the checkout's venv, and
prints one line: the mutation's name and ``killed`` (naming the first failing test) or
``SURVIVED``. A control run of the unmutated copy comes first and must pass, or a kill would
mean nothing. Before any of that, one short pytest run in the copy checks that the modules to
mutate are imported from the copy, not from the checkout the venv's editable install points to.

Run (from the checkout; the whole suite takes a few minutes a run, four runs in all):

    .venv/bin/python bench/mutations.py                                # the whole suite
    .venv/bin/python bench/mutations.py --tests tests/sim tests/laws   # a subset, faster
    .venv/bin/python bench/mutations.py --skip-control                 # no unmutated run

Expected: ``control (unmutated)  passed`` and every mutation ``killed``, exit status 0.
Exit status 1: a mutation survived (a test is missing) or the control run failed; 2: the
script could not run, e.g. a mutation's old text is no longer in its file because the code was
refactored: update that row of MUTATIONS (the old text must occur exactly once).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple


class Mutation(NamedTuple):
    name: str
    file: str  # relative to the checkout
    old: str  # exact text; must occur exactly once in the file
    new: str


# The code is being refactored: when a row's old text changes, update it here.
MUTATIONS = [
    Mutation("greedy-reads-last-observed", "sim/policies.py",
             "return self.owner(run.lowest_observed)",
             "return self.owner(run.observed)"),
    Mutation("online-level-is-minimum", "sim/online.py",
             "float(np.median([observed for",
             "float(np.min([observed for"),
    Mutation("report-drops-why-they-differ", "validate/report.py",
             "        blocks += why_they_differ(summary, fit)",
             "        pass"),
]

REPO = Path(__file__).resolve().parents[1]
CANARY = "tests/test_mutations_canary.py"


class Failure(Exception):
    """The script cannot run (exit status 2)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", nargs="+", metavar="PATHS",
                        help="test paths to run instead of the whole suite (pyproject testpaths)")
    parser.add_argument("--skip-control", action="store_true",
                        help="do not run the unmutated suite first")
    parser.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS",
                        help="limit of one suite run; a mutation that hangs counts as killed")
    args = parser.parse_args(argv)
    try:
        return run_all(args.tests or [], args.skip_control, args.timeout)
    except Failure as error:
        print(f"mutations.py: {error}", file=sys.stderr)
        return 2


def run_all(tests: list[str], skip_control: bool, timeout: float) -> int:
    python = REPO / ".venv" / "bin" / "python"
    if not python.is_file():
        raise Failure(f"no venv python at {python}: run `make test` once to create it")
    with tempfile.TemporaryDirectory(prefix="shapeshift-mutations-") as tmp:
        copy = copy_checkout(Path(tmp))
        originals = {m.file: read_original(copy, m) for m in MUTATIONS}  # every row, first
        check_copy_is_imported(python, copy)
        if not skip_control:
            verdict, first = run_suite(python, copy, tests, timeout)
            print(f"{'control (unmutated)':<30} {'passed' if verdict == 'passed' else 'FAILED'}"
                  f"{'' if verdict == 'passed' else '  ' + first}", flush=True)
            if verdict != "passed":
                print("mutations.py: the unmutated suite fails, so a kill would mean nothing; "
                      "fix it first", file=sys.stderr)
                return 1
        survived = 0
        for mutation in MUTATIONS:
            target = copy / mutation.file
            target.write_text(originals[mutation.file].replace(mutation.old, mutation.new, 1))
            try:
                verdict, first = run_suite(python, copy, tests, timeout)
            finally:
                target.write_text(originals[mutation.file])
            survived += verdict == "passed"
            print(f"{mutation.name:<30} "
                  f"{'SURVIVED' if verdict == 'passed' else 'killed    ' + first}", flush=True)
    return 1 if survived else 0


def read_original(copy: Path, mutation: Mutation) -> str:
    """The text of the mutation's file in the copy (as in the checkout), checked to hold the
    old text exactly once."""
    path = copy / mutation.file
    if not path.is_file():
        raise Failure(f"mutation {mutation.name!r}: {mutation.file} does not exist; "
                      "update MUTATIONS at the top of bench/mutations.py")
    text = path.read_text()
    count = text.count(mutation.old)
    if count != 1:
        raise Failure(f"mutation {mutation.name!r}: the old text {mutation.old!r} occurs "
                      f"{count} times in {mutation.file}, not once; the code has changed: "
                      "update MUTATIONS at the top of bench/mutations.py")
    return text


def copy_checkout(tmp: Path) -> Path:
    """The checkout's tracked and untracked-but-not-ignored files, under ``tmp`` with the
    checkout's folder name; ``../shared`` beside it links to the checkout's, so that the tests
    that read shared data run in the copy as they do in the checkout."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "-co",
                             "--exclude-standard"], capture_output=True, check=False)
    if listed.returncode:
        raise Failure(f"git ls-files failed in {REPO}: {listed.stderr.decode().strip()}")
    copy = tmp / REPO.name
    for name in listed.stdout.decode().split("\0"):
        source = REPO / name
        if name and source.is_file():  # a tracked file deleted in the working tree is skipped
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    shared = REPO.parent / "shared"
    if shared.is_dir():
        (tmp / "shared").symlink_to(shared)
    return copy


def check_copy_is_imported(python: Path, copy: Path) -> None:
    """The venv's editable install maps the packages to the checkout; pytest must import the
    copy's instead (pyproject's ``pythonpath = ["."]``), or every mutation would survive."""
    modules = [m.file.removesuffix(".py").replace("/", ".") for m in MUTATIONS]
    (copy / CANARY).write_text(
        "import importlib\nfrom pathlib import Path\n\n\n"
        "def test_modules_come_from_this_copy():\n"
        "    root = Path(__file__).resolve().parents[1]\n"
        f"    for name in {modules!r}:\n"
        "        where = Path(importlib.import_module(name).__file__).resolve()\n"
        "        assert where.is_relative_to(root), (name, str(where))\n")
    try:
        verdict, first = run_suite(python, copy, [CANARY], timeout=600.0)
    finally:
        (copy / CANARY).unlink()
    if verdict != "passed":
        raise Failure(f"the copy's modules are not the ones pytest imports ({first}); "
                      "a mutation there would not be tested")


def run_suite(python: Path, copy: Path, tests: list[str], timeout: float) -> tuple[str, str]:
    """("passed", "") or ("failed", the first failing test) of one pytest run in ``copy``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing ahead of the copy
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no stale bytecode of a mutated file, ever
    env.setdefault("CI", "1")  # tests/conftest.py: hypothesis draws the same examples each run
    command = [str(python), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "failed", f"(timed out after {timeout:g} s)"
    if done.returncode == 0:
        return "passed", ""
    if done.returncode not in (1, 2):  # 1 tests failed, 2 interrupted (e.g. a collection error)
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise Failure(f"pytest exited {done.returncode} in the copy ({' '.join(command[1:])}):"
                      f"\n{tail}")
    for line in done.stdout.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return "failed", line.split(" - ")[0]
    return "failed", f"(pytest exit {done.returncode})"


if __name__ == "__main__":
    sys.exit(main())
