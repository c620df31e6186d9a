"""Mutation check: each change in MUTATIONS below must make a test fail on an assertion.

A mutation is a small bug a test ought to catch (greedy reading the last observed loss instead
of the lowest, a switch's FLOPs left off the ledger, a percentile taken at the wrong end). For
each one in turn, the script copies the checkout's files (tracked, and untracked but not
ignored: ``git ls-files -co --exclude-standard``) into a temporary folder, applies the change
there (never to the checkout), runs the mutation's own test selection (``tests``: the narrowest
that should catch it) inside the copy with the checkout's venv, and prints one line: the
mutation's name and ``killed`` (naming the first failing test), ``SURVIVED``, or ``ERROR``.

Only a failed assertion is a kill: pytest's JUnit report must name a test that failed with an
``AssertionError`` (``assert``, ``pytest.approx``, numpy's ``assert_*``) or pytest's own
``Failed`` (``pytest.raises`` that did not raise, ``pytest.fail``). A collection error, a test
that crashed with another exception, pytest's exit codes 2 to 5 (interrupted, internal error,
usage error, no tests) and a timeout are errors: they say nothing about the tests' strength.
A control run of the unmutated copy on every selection comes first and must pass, or a kill
would mean nothing. Before any of that, one short pytest run in the copy checks that the
modules to mutate are imported from the copy, not from the checkout the venv's editable
install points to. Hypothesis draws with a fixed seed (``--hypothesis-seed=0``), so a run's
verdicts do not depend on the luck of the draw.

Run (from the checkout; about 10 minutes on 2 cores):

    .venv/bin/python bench/mutations.py                   # every mutation
    .venv/bin/python bench/mutations.py --only fit-       # those whose name starts so
    .venv/bin/python bench/mutations.py --skip-control    # no unmutated run

It ends with the score, killed / mutations. Expected: ``control (unmutated)  passed`` and every
mutation ``killed``, exit status 0. Exit status 1: a mutation survived or erred, or the control
run failed; 2: the script could not run, e.g. a mutation's old text is no longer in its file
because the code was refactored: update that row of MUTATIONS (the old text must occur exactly
once).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import NamedTuple


class Mutation(NamedTuple):
    name: str
    file: str  # relative to the checkout
    old: str  # exact text; must occur exactly once in the file
    new: str
    tests: tuple[str, ...]  # the test files (or node ids) that should catch it
    equivalent: bool = False  # argued, in a comment above its row, to change no behaviour


SEARCH = ("tests/laws/test_search.py", "tests/laws/test_problem.py")
SEARCH_UNCERTAINTY = ("tests/laws/test_uncertainty.py",)
FIT = ("tests/laws/test_fit.py", "tests/laws/test_fit_uncertainty.py")
CHOICE = ("tests/laws/test_fit_choice.py",)
COOLDOWN_PLAN = ("tests/laws/test_cooldown_plan.py",)
TRANSITIONS = ("tests/laws/test_transition_penalty_slowdown.py",)
RUN = ("tests/sim/test_run.py",)
ACCOUNTING = ("tests/sim/test_run.py", "tests/sim/test_faults.py")
MEASURED = ("tests/validate/test_measured.py",)

# The code is being refactored: when a row's old text changes, update it here.
MUTATIONS = [
    # -- policies and reports (the first three rows, kept) --
    Mutation("greedy-reads-last-observed", "sim/policies.py",
             "return self.owner(run.lowest_observed)",
             "return self.owner(run.observed)", ("tests/sim/test_policies.py",)),
    Mutation("level-is-minimum", "sim/level.py",
             "    return median([observed for _, _, observed in history[-window:]])",
             "    return min([observed for _, _, observed in history[-window:]])",
             ("tests/sim/test_level.py", "tests/validate/test_controller.py")),
    Mutation("level-even-window-never-reaches", "sim/level.py",
             "        for index in (margin >= 0).nonzero()[0]:",
             "        for index in (margin > 0).nonzero()[0]:", ("tests/sim/test_level.py",)),
    Mutation("report-drops-why-they-differ", "validate/report.py",
             "        blocks += why_they_differ(summary, fit)",
             "        pass", ("tests/validate/test_loop_report.py",)),
    # -- laws/search: solvers --
    Mutation("solver-route-cost-free-switch", "laws/search/solvers.py",
             "            cost += float(problem.switch_cost[s, following[0]])",
             "            cost += 0.0", SEARCH),
    Mutation("solver-one-switch-fewer", "laws/search/solvers.py",
             "depth = problem.max_switches + 1 if limited else 1",
             "depth = problem.max_switches if limited else 1", SEARCH),
    Mutation("solver-ends-on-the-dearest", "laws/search/solvers.py",
             "k, s = np.unravel_index(int(entry.argmin()), entry.shape)",
             "k, s = np.unravel_index(int(entry.argmax()), entry.shape)", SEARCH),
    # Equivalent, kept as a reminder: the shape cheapest at a level gets no switch into it
    # there. A switch into it costs at least its own cost there plus the switch, and a switch
    # lands only where strictly cheaper (``_Block.switch_in``), so in the unlimited relaxation
    # it never lands, and with a limit a route that would land there is dominated by the
    # route with one switch fewer already at that level: the optimum (cost, fewest switches)
    # is unchanged. It survives; the score leaves it out.
    Mutation("solver-best-shape-arrives-from-itself", "laws/search/solvers.py",
             "origin = np.where(best == ids, rest.argmin(axis=0), best)",
             "origin = best", SEARCH, equivalent=True),
    Mutation("solver-sparse-ignores-the-limit", "laws/search/solvers.py",
             "step = 0 if limit is None else 1",
             "step = 0", SEARCH),
    Mutation("solver-sparse-free-switches", "laws/search/solvers.py",
             "weights.append(np.full(ok.sum(), problem.switch_cost[p, q]))",
             "weights.append(np.zeros(ok.sum()))", SEARCH),
    # -- laws/search: grid --
    Mutation("grid-above-the-highest-floor", "laws/search/grid.py",
             "lowest_floor = min(s.law.floor for s in laws.shapes)",
             "lowest_floor = max(s.law.floor for s in laws.shapes)", SEARCH),
    Mutation("grid-start-at-the-largest-compute", "laws/search/grid.py",
             "tiny = START_COMPUTE_FRACTION * float(reachable.min())",
             "tiny = START_COMPUTE_FRACTION * float(reachable.max())",
             ("tests/laws/test_search.py::"
              "test_without_a_measured_start_the_plan_starts_a_millionth_of_the_cheapest_way_in",)),
    # -- laws/search: uncertainty --
    Mutation("uncertainty-best-static-is-dearest", "laws/search/uncertainty.py",
             "best_static = static.min(axis=1)",
             "best_static = static.max(axis=1)", SEARCH_UNCERTAINTY),
    Mutation("uncertainty-interval-upper-is-median", "laws/search/uncertainty.py",
             "p5, p50, p95 = quantiles(finite, [low, 0.5, high])",
             "p5, p50, p95 = quantiles(finite, [low, 0.5, 0.5])", SEARCH_UNCERTAINTY),
    Mutation("uncertainty-beats-static-reversed", "laws/search/uncertainty.py",
             "p_beats_static=float(np.mean(followed < best_static))",
             "p_beats_static=float(np.mean(followed > best_static))", SEARCH_UNCERTAINTY),
    Mutation("uncertainty-free-start-dearest", "laws/search/uncertainty.py",
             "best_start = np.minimum(best_start, start)",
             "best_start = np.maximum(best_start, start)", SEARCH_UNCERTAINTY),
    Mutation("uncertainty-legs-from-scratch", "laws/search/uncertainty.py",
             "trained = ends[:, 1] - (ends[:, 0] if previous is not None else 0.0)",
             "trained = ends[:, 1]", SEARCH_UNCERTAINTY),
    Mutation("uncertainty-robust-picks-worst", "laws/search/uncertainty.py",
             "chosen = candidates[int(np.argmax(scores))]",
             "chosen = candidates[int(np.argmin(scores))]", SEARCH_UNCERTAINTY),
    # -- laws/fit: objective --
    Mutation("fit-huber-tail-not-continuous", "laws/fit/objective.py",
             "delta * (a - 0.5 * delta))",
             "delta * a)", FIT),
    Mutation("fit-gradient-ignores-weights", "laws/fit/objective.py",
             "slope = np.clip(residual, -self.delta, self.delta) * self.weights",
             "slope = np.clip(residual, -self.delta, self.delta)", FIT),
    Mutation("fit-power-gradient-sign", "laws/fit/objective.py",
             "return np.stack([scale, -self.log_u * scale, floor], axis=1)",
             "return np.stack([scale, self.log_u * scale, floor], axis=1)", FIT),
    Mutation("fit-saturating-offset-unscaled", "laws/fit/objective.py",
             "d=float(np.exp(ld) * scale))",
             "d=float(np.exp(ld)))", FIT),
    # -- laws/fit: choice --
    Mutation("choice-margin-doubled", "laws/fit/choice.py",
             "chosen = next(s for s in valid if s.score <= best * (1.0 + margin))",
             "chosen = next(s for s in valid if s.score <= best * (1.0 + 2 * margin))", CHOICE),
    Mutation("choice-cut-off-times-ratio", "laws/fit/choice.py",
             "    cuts = [np.max(curve.compute) / ratio for curve in curves.curves]",
             "    cuts = [np.max(curve.compute) * ratio for curve in curves.curves]", CHOICE),
    Mutation("choice-keeps-degenerate-fits", "laws/fit/choice.py",
             "    if degenerate and not (per_shape and sound):",
             "    if False:", CHOICE),
    # -- sim/lookahead --
    Mutation("lookahead-streak-not-consecutive", "sim/lookahead.py",
             "streak = streak + 1 if index == previous + 1 else 1",
             "streak = streak + 1", RUN),
    Mutation("lookahead-penalty-grows", "sim/lookahead.py",
             "return penalty * np.maximum(0.0, 1.0 - faded)",
             "return penalty * np.maximum(0.0, 1.0 + faded)", RUN),
    Mutation("lookahead-leg-end-one-early", "sim/lookahead.py",
             "return start + (index + 1) * seconds, spent + (index + 1) * flops",
             "return start + index * seconds, spent + index * flops", RUN),
    Mutation("lookahead-last-evaluation-completes", "sim/lookahead.py",
             "most = count - 1 if under_way == len(legs) - 1 else count",
             "most = count", RUN),
    Mutation("lookahead-streak-forgets-before", "sim/lookahead.py",
             "return streak + trailing if trailing == len(observed) else trailing",
             "return trailing", RUN),
    Mutation("lookahead-checkpoint-every-evaluation", "sim/lookahead.py",
             "        due = now + every",
             "        due = now",
             ("tests/sim/test_run.py::test_plan_legs_cuts_a_stretch_where_a_walk_by_evaluation_does",
              "tests/sim/test_faults.py")),
    # -- sim/run.py and sim/recording.py accounting --
    Mutation("run-switch-seconds-not-charged", "sim/run.py",
             "self._ledger.charge(TRANSITION, seconds, t.flops + t.seconds * speed)",
             "self._ledger.charge(TRANSITION, seconds, t.flops)", RUN),
    Mutation("run-checkpoint-flops-not-charged", "sim/run.py",
             "self._ledger.charge(CHECKPOINT, seconds, seconds * self._speed)",
             "self._ledger.charge(CHECKPOINT, seconds, 0.0)", ACCOUNTING),
    Mutation("run-eval-flops-not-charged", "sim/run.py",
             "total * setup.config.eval_seconds, total * self._eval_flops)",
             "total * setup.config.eval_seconds, 0.0)", ACCOUNTING),
    Mutation("run-lost-flops-not-charged", "sim/run.py",
             "self._ledger.failed(partial, partial * self._busy_rate)",
             "self._ledger.failed(partial, 0.0)", ACCOUNTING),
    Mutation("run-true-crossing-without-eval-share", "sim/recording.py",
             "return flops + training * chunk_flops / eval_every",
             "return flops + training", ACCOUNTING),
    # -- laws/transitions.py and laws/fit/transitions.py: the jump on a slowed law --
    Mutation("transition-slowdown-left-off-the-jump", "laws/transitions.py",
             "law.loss(landing + since / (1.0 + factor)), dtype=float) + (",
             "law.loss(landing + since), dtype=float) + (", TRANSITIONS),
    Mutation("transition-joint-fit-not-started-from-its-parts", "laws/fit/transitions.py",
             "starts = [[delta, log_tau, 0.0], [0.0, 0.0, factor], [delta, log_tau, factor]]",
             "starts = [[0.0, 0.0, 0.0]]", TRANSITIONS),
    Mutation("transition-tie-keeps-the-model-with-more-parameters", "laws/fit/transitions.py",
             "return min(tied, key=lambda name: (len(PARAMETERS[name]), FITTED.index(name)))",
             "return max(tied, key=lambda name: (len(PARAMETERS[name]), FITTED.index(name)))",
             ("tests/laws/test_transitions.py",)),
    # -- laws/search/cooldown.py: plans that end with a cool-down --
    Mutation("cooldown-stable-loss-at-the-whole-budget", "laws/search/cooldown.py",
             "float(shape.law.loss((1 - share) * budgets[shape.name]))",
             "float(shape.law.loss(budgets[shape.name]))", COOLDOWN_PLAN),
    Mutation("cooldown-length-a-share-of-the-stable-phase", "laws/search/cooldown.py",
             "cooldown = share / (1 - share) * trained", "cooldown = share * trained",
             COOLDOWN_PLAN),
    Mutation("cooldown-ending-not-forced", "laws/search/problem.py",
             "    if request.end_on is not None:  # the target level is reached on that shape",
             "    if False:  # the target level is reached on that shape", COOLDOWN_PLAN),
    # -- validate/measured.py (the lead is rewriting the crossing estimator: update these) --
    Mutation("measured-reach-linear-in-flops", "validate/measured.py",
             "share * (math.log(point[key]) - math.log(before[key]))",
             "share * (point[key] - before[key]) / before[key]", MEASURED),
    Mutation("measured-saving-inverted", "validate/measured.py",
             "return None if adaptive is None or static is None else 1.0 - adaptive / static",
             "return None if adaptive is None or static is None else 1.0 - static / adaptive",
             MEASURED),
    Mutation("measured-best-static-is-slowest", "validate/measured.py",
             "best = min(complete, key=complete.get) if complete else None",
             "best = max(complete, key=complete.get) if complete else None", MEASURED),
    Mutation("measured-interval-ends-swapped", "validate/measured.py",
             'return {**empty, "mean": mean, "low": low, "high": high}',
             'return {**empty, "mean": mean, "low": high, "high": low}', MEASURED),
    Mutation("devices-compile-ignored", "validate/devices.py",
             "return torch.compile(model) if self.compile else model", "return model",
             ("tests/validate/test_train.py::test_a_compiled_run_counts_and_switches_as_the_eager_run_does",)),
]

REPO = Path(__file__).resolve().parents[1]
CANARY = "tests/test_mutations_canary.py"


class Failure(Exception):
    """The script cannot run (exit status 2)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", metavar="PREFIX",
                        help="run only the mutations whose name starts with PREFIX")
    parser.add_argument("--skip-control", action="store_true",
                        help="do not run the unmutated selections first")
    parser.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS",
                        help="limit of one pytest run; a run that hangs is an error")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if m.name.startswith(args.only or "")]
    try:
        if not chosen:
            raise Failure(f"no mutation's name starts with {args.only!r}")
        return run_all(chosen, args.skip_control, args.timeout)
    except Failure as error:
        print(f"mutations.py: {error}", file=sys.stderr)
        return 2


def run_all(mutations: list[Mutation], skip_control: bool, timeout: float) -> int:
    python = REPO / ".venv" / "bin" / "python"
    if not python.is_file():
        raise Failure(f"no venv python at {python}: run `make test` once to create it")
    with tempfile.TemporaryDirectory(prefix="shapeshift-mutations-") as tmp:
        copy = copy_checkout(Path(tmp))
        originals = {m.file: read_original(copy, m) for m in mutations}  # every row, first
        check_copy_is_imported(python, copy, mutations)
        if not skip_control:
            selection = list(dict.fromkeys(t for m in mutations for t in m.tests))
            verdict, detail = run_tests(python, copy, selection, timeout)
            print(f"{'control (unmutated)':<40} {verdict}  {detail}", flush=True)
            if verdict != "passed":
                print("mutations.py: the unmutated tests fail, so a kill would mean nothing; "
                      "fix them first", file=sys.stderr)
                return 1
        verdicts = []
        for mutation in mutations:
            target = copy / mutation.file
            target.write_text(originals[mutation.file].replace(mutation.old, mutation.new, 1))
            try:
                verdict, detail = run_tests(python, copy, list(mutation.tests), timeout)
            finally:
                target.write_text(originals[mutation.file])
            if mutation.equivalent and verdict == "passed":
                verdict = "equivalent"
            verdicts.append(verdict)
            shown = {"passed": "SURVIVED", "killed": "killed", "error": "ERROR",
                     "equivalent": "survived (argued equivalent)"}[verdict]
            print(f"{mutation.name:<40} {shown:<9} {detail}", flush=True)
    killed, scored = verdicts.count("killed"), len(verdicts) - verdicts.count("equivalent")
    print(f"score: {killed} of {scored} mutations killed ({killed / max(scored, 1):.0%}); "
          f"{verdicts.count('passed')} survived, {verdicts.count('error')} errors, "
          f"{verdicts.count('equivalent')} argued equivalent (not scored)")
    return 0 if killed == scored else 1


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


def check_copy_is_imported(python: Path, copy: Path, mutations: list[Mutation]) -> None:
    """The venv's editable install maps the packages to the checkout; pytest must import the
    copy's instead (pyproject's ``pythonpath = ["."]``), or every mutation would survive."""
    modules = list(dict.fromkeys(m.file.removesuffix(".py").replace("/", ".")
                                 for m in mutations))
    (copy / CANARY).write_text(
        "import importlib\nfrom pathlib import Path\n\n\n"
        "def test_modules_come_from_this_copy():\n"
        "    root = Path(__file__).resolve().parents[1]\n"
        f"    for name in {modules!r}:\n"
        "        where = Path(importlib.import_module(name).__file__).resolve()\n"
        "        assert where.is_relative_to(root), (name, str(where))\n")
    try:
        verdict, detail = run_tests(python, copy, [CANARY], timeout=600.0)
    finally:
        (copy / CANARY).unlink()
    if verdict != "passed":
        raise Failure(f"the copy's modules are not the ones pytest imports ({detail}); "
                      "a mutation there would not be tested")


# How pytest's JUnit report words a failed assertion (its <failure> has no exception type):
# a rewritten ``assert`` (pytest.approx too) as "assert ...", numpy.testing's assert_* as
# "AssertionError: ...", pytest's own Failed (pytest.raises that did not raise) as "Failed: ...".
# Any other exception reads "TypeError: ..." and the like: a crash, not a kill.
ASSERTIONS = ("assert ", "AssertionError", "Failed: ")


def run_tests(python: Path, copy: Path, tests: list[str], timeout: float) -> tuple[str, str]:
    """One pytest run of ``tests`` in ``copy``: ("passed", counts), ("killed", the first test
    that failed on an assertion) or ("error", why it says nothing: a collection error, a crash,
    another exit code, a timeout)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CI")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no stale bytecode of a mutated file, ever
    env.setdefault("OMP_NUM_THREADS", "1")
    report = copy / ".mutation-report.xml"
    report.unlink(missing_ok=True)
    command = [str(python), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "--hypothesis-seed=0", f"--junitxml={report}", *tests]
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "error", f"(timed out after {timeout:g} s)"
    if done.returncode not in (0, 1) or not report.is_file():
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        return "error", f"(pytest exit {done.returncode}: {tail})"
    cases = list(ElementTree.parse(report).getroot().iter("testcase"))
    failures = [(f"{case.get('classname')}::{case.get('name')}", problem)
                for case in cases for problem in case
                if problem.tag in ("failure", "error")]
    if done.returncode == 0 and not failures:
        return "passed", f"({len(cases)} tests)"
    for test, problem in failures:
        if problem.tag == "failure" and (problem.get("message") or "").startswith(ASSERTIONS):
            return "killed", test
    test, problem = failures[0] if failures else ("?", None)
    why = "" if problem is None else (problem.get("message") or "").splitlines()[0][:80]
    return "error", f"({test}: {problem.tag if problem is not None else 'exit 1'}: {why})"


if __name__ == "__main__":
    sys.exit(main())
