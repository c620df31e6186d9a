"""Fuzzing the command line (issue 17): malformed law files, curve files and option values for
``fit``, ``laws show``, ``search``, ``simulate``, ``compare`` and ``validate train`` end with
exit 0, or with exit 2 and one line on stderr: never a traceback, never a hang, and never an
output left behind by a refusal. Then the inputs that are known nonsense, each of which must be
refused.

Every command runs in-process through click's CliRunner, under an alarm that turns a hang into
a failure. The CI run is short (hypothesis's ``ci`` profile draws the same examples every time,
tests/conftest.py); a longer run spreads a total of examples over the fuzz tests:

    SHAPESHIFT_FUZZ_EXAMPLES=3000 .venv/bin/python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli import main

HERE = Path(__file__).parent
FOUR = HERE / "sim" / "data" / "four_shapes.json"
HANG_S = 60  # far above any example's time; only a command that never ends reaches it
TOTAL = int(os.environ.get("SHAPESHIFT_FUZZ_EXAMPLES", "0"))


def fuzz_settings(share: float, ci_examples: int):
    """``ci_examples`` examples, or ``share`` of SHAPESHIFT_FUZZ_EXAMPLES when it is set."""
    examples = max(1, round(TOTAL * share)) if TOTAL else ci_examples
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


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


# --- values ---
NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10, 10**6).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "-0", "0", "1" + "0" * 400, "", "x", "1e",
                     "0x10", "1_000", " 3", "True"]),
)
LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.just(10**400),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
    st.sampled_from(["0.3", "power", "table", "all", "one-axis", "w64", ""]),
)
JSON_VALUE = st.recursive(LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=5)
ENCODINGS = st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1"])


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a parsed JSON document, as a tuple of keys and indices."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def mutated_json(draw, document: dict) -> dict | object:
    """``document`` with one to three places replaced by any JSON value or removed."""
    data = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        places = _paths(data)
        place = draw(st.sampled_from(places))
        if not place:
            return draw(JSON_VALUE)
        parent = data
        for key in place[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[place[-1]]
        else:
            parent[place[-1]] = draw(JSON_VALUE)
    return data


LAW_FILES = [json.loads(FOUR.read_text()), {
    "name": "fitted", "shapes": [
        {"name": "a", "axes": {"N": 1e8}, "form": "power", "params": {"a": 2.0, "b": 0.3, "c": 1.0},
         "samples": [{"a": 2.1, "b": 0.3, "c": 1.0}], "throughput": 1e14,
         "measured": {"first_loss": 3.0, "compute_range": [1e15, 1e18], "points": 3}},
        {"name": "b", "axes": {"N": 1e9}, "form": "saturating",
         "params": {"a": 5.0, "b": 0.3, "c": 0.5, "d": 1e12},
         "samples": [{"a": 5.1, "b": 0.3, "c": 0.5, "d": 1e12}], "throughput": 2e14},
        {"name": "t", "form": "table",
         "params": {"compute": [1e15, 1e16, 1e17], "loss": [3.0, 2.0, 1.6], "floor": 0.5}}],
    "transitions": {"flops": 1e14, "seconds": 10.0, "loss_penalty": 0.01,
                    "allowed": [["a", "b"], ["b", "t"]]},
    "provenance": {"source": "fuzz"}}]


def _write_json(path: Path, data: object, encoding: str, cut: int | None) -> Path:
    text = json.dumps(data, allow_nan=True)
    raw = text.encode(encoding, errors="replace")
    path.write_bytes(raw[:cut] if cut is not None else raw)
    return path


@fuzz_settings(0.32, 40)
@given(st.data(), st.sampled_from(LAW_FILES), ENCODINGS,
       st.one_of(st.none(), st.integers(0, 2000)))
def test_fuzzed_law_files(data, document, encoding, cut):
    """``laws show`` and ``search`` of a law file with one to three fields changed into any
    JSON value or removed, in any of several encodings, perhaps cut short."""
    with folders() as (inputs, outputs):
        path = _write_json(inputs / "laws.json", data.draw(mutated_json(document)), encoding,
                           cut)
        run(["laws", "show", str(path), *data.draw(st.sampled_from([[], ["--json"]]))])
        target = data.draw(st.one_of(NUMBER_TEXT, st.sampled_from(["1.5", "2.0", "1.2"])))
        run(["search", str(path), "--target", target, "--json", "-o",
             str(outputs / "plan.json")], outputs)


def _curve_rows() -> list[list[str]]:
    rows = [["width", "C", "loss", "tokens"]]
    for width, a in ((8, 5e6), (16, 3e6)):
        rows += [[str(width), f"{c:.3e}", f"{2.0 + a * c ** -0.3:.6f}", f"{c / 1e9:.3e}"]
                 for c in (1e18, 1e19, 1e20, 1e21, 1e22)]
    return rows


CELL = st.one_of(NUMBER_TEXT, st.text(max_size=5), st.sampled_from(
    ['"', '"a,b"', "\x00", ",", "8 ", " ", "\x1b", "\u2028", '"8']))
FIT_OPTIONS = st.lists(st.one_of(
    st.tuples(st.just("--holdout-above"), NUMBER_TEXT),
    st.tuples(st.just("--holdout-col"), st.sampled_from(["tokens", "width", "nope"])),
    st.tuples(st.just("--drop-highest"), st.integers(-1, 12).map(str)),
    st.tuples(st.just("--form"), st.sampled_from(["power", "saturating", "chinchilla"])),
    st.tuples(st.just("--share"), st.sampled_from(["floor", "exponent"])),
    st.tuples(st.just("--bootstrap"), st.integers(-1, 3).map(str)),
    st.tuples(st.just("--seed"), st.integers(-5, 2**70).map(str)),
    st.tuples(st.just("--target-loss"), NUMBER_TEXT),
    st.tuples(st.just("--group"), st.sampled_from(["width", "width=0", "width=x", "C=2", "=3"])),
    st.tuples(st.just("--filter"), st.sampled_from(["width=8", "width", "nope=1", "=1"])),
    st.tuples(st.just("--time-col"), st.sampled_from(["tokens", "C*tokens", "nope"])),
    st.tuples(st.just("--shape-name"), st.sampled_from([
        "w{width}", "{nope}", "{", "{0}", "{width[0]}", "{width.real}", "{width:>999999999}",
        "{width:{width}}", "{width!r}", "w{width:03d}"])),
    st.tuples(st.just("--params-col"), st.sampled_from(["tokens", "width"])),
), max_size=3)


@fuzz_settings(0.32, 40)
@given(st.data(), ENCODINGS, st.sampled_from(["csv", "jsonl"]), FIT_OPTIONS)
def test_fuzzed_curve_files_and_fit_options(data, encoding, fmt, options):
    """``fit`` of a curve file with cells changed, rows cut or lengthened, in any of several
    encodings, with any of its options."""
    rows = _curve_rows()
    for _ in range(data.draw(st.integers(0, 3))):
        row = rows[data.draw(st.integers(0, len(rows) - 1))]
        change = data.draw(st.sampled_from(["cell", "extra", "cut", "repeat"]))
        if change == "repeat":  # a row again, as in a file concatenated twice
            rows.append(list(row))
            continue
        if change == "cell":
            row[data.draw(st.integers(0, len(row) - 1))] = data.draw(CELL)
        elif change == "extra":
            row.append(data.draw(CELL))
        elif len(row) > 1:
            row.pop()
    with folders() as (inputs, outputs):
        if fmt == "csv":
            text = "".join(",".join(row) + "\n" for row in rows)
        else:
            header, *body = rows
            values = st.one_of(st.just(None), JSON_VALUE)
            text = "".join(json.dumps({**dict(zip(header, row, strict=False)),
                                       **data.draw(st.dictionaries(st.sampled_from(header),
                                                                   values, max_size=1))},
                                      allow_nan=True) + "\n" for row in body)
        path = inputs / f"runs.{fmt}"
        path.write_bytes(text.encode(encoding, errors="replace"))
        flat = [item for pair in options for item in pair]
        run(["fit", str(path), "--shape-col", "width", "--compute-col", "C", "--loss-col",
             "loss", *flat, "-o", str(outputs / "laws.json")], outputs)


SEARCH_OPTIONS = [
    ("--target", NUMBER_TEXT), ("--start-loss", NUMBER_TEXT),
    ("--levels", st.sampled_from(["-1", "0", "1", "2", "50", "2000", "x", "1e3",
                                  "100000000"])),
    ("--switch-flops", NUMBER_TEXT), ("--switch-seconds", NUMBER_TEXT),
    ("--switch-penalty", NUMBER_TEXT),
    ("--allowed", st.sampled_from(["all", "one-axis", "p32:p16", "p32:nope", "x", ":", ""])),
    ("--only-grow", st.sampled_from(["patch", "nope"])),
    ("--max-switches", st.sampled_from(["-1", "0", "1", "5", "x"])),
    ("--objective", st.sampled_from(["flops", "seconds", "money", "x"])),
    ("--price-per-hour", NUMBER_TEXT), ("--robust", NUMBER_TEXT),
]
SIMULATION_OPTIONS = [
    ("--noise", NUMBER_TEXT), ("--eval-seconds", NUMBER_TEXT),
    ("--eval-every", st.sampled_from(["nan", "inf", "0", "-1", "1e6", "1e16", "1e17", "x"])),
    ("--confirm", st.sampled_from(["-1", "0", "1", "3", "x"])),
    ("--max-compute", NUMBER_TEXT), ("--max-hours", NUMBER_TEXT),
    ("--penalty-decay", NUMBER_TEXT), ("--mtbf", NUMBER_TEXT), ("--repair", NUMBER_TEXT),
    ("--ckpt-cost", NUMBER_TEXT), ("--ckpt-interval", NUMBER_TEXT),
    ("--gpus", st.sampled_from(["-1", "0", "1", "4", "x"])),
    ("--gpus-per-run", st.sampled_from(["-1", "0", "1", "2", "x"])),
    ("--seed", st.sampled_from(["-1", "0", "7", str(2**70), "x"])),
    ("--policy", st.sampled_from(["planned", "greedy", "online", "random", "static",
                                  "static:p16", "static:nope", "fixed:p32@0,p8@0.5",
                                  "fixed:p32@0.5", "fixed:", "nope", "", "greedy:",
                                  "static:", "planned:x"])),
]


def options(pairs: list[tuple[str, st.SearchStrategy]]) -> st.SearchStrategy:
    return st.lists(st.sampled_from(pairs), max_size=4, unique_by=lambda pair: pair[0]).flatmap(
        lambda chosen: st.tuples(*(st.tuples(st.just(name), values) for name, values in chosen)))


def _flat(pairs) -> list[str]:
    return [item for pair in pairs for item in pair]


@fuzz_settings(0.15, 25)
@given(options(SEARCH_OPTIONS), st.booleans())
def test_fuzzed_search_options(pairs, as_json):
    with folders() as (_, outputs):
        given = dict(pairs)
        target = [] if "--target" in given else ["--target", "2.1"]
        run(["search", "--preset", "demo", *target, *_flat(pairs),
             *(["--json"] if as_json else []), "-o", str(outputs / "plan.json")], outputs)


@fuzz_settings(0.15, 20)
@given(options(SEARCH_OPTIONS[:2] + SIMULATION_OPTIONS))
def test_fuzzed_simulate_options(pairs):
    with folders() as (_, outputs):
        target = [] if "--target" in dict(pairs) else ["--target", "2.1"]
        run(["simulate", "--preset", "demo", *target, "--runs", "1", *_flat(pairs), "-o",
             str(outputs / "sim")], outputs)


@fuzz_settings(0.01, 4)
@given(options(SIMULATION_OPTIONS[:8]))
def test_fuzzed_compare_options(pairs):
    with folders() as (_, outputs):
        run(["compare", "--preset", "demo", "--runs", "1", "--policies", "static,planned",
             *_flat(pairs), "-o", str(outputs / "report")], outputs)


TRAIN_OPTIONS = [
    ("--lr", NUMBER_TEXT), ("--budget", st.one_of(NUMBER_TEXT, st.just("1e300"))),
    ("--warmup-steps", st.sampled_from(["-1", "0", "5", "x"])),
    ("--weight-decay", NUMBER_TEXT), ("--widen-noise", NUMBER_TEXT),
    ("--evals", st.sampled_from(["-1", "1", "2", "3", "x"])),
    ("--checkpoint-every", st.sampled_from(["-1", "0", "1", "x"])),
    ("--seed", st.sampled_from(["-1", "0", str(2**70), "x"])),
    ("--shape", st.sampled_from(["width=0", "width=4", "width=" + "9" * 30, "depth=2",
                                 "width=x", "", ","])),
    ("--switch-at", st.sampled_from(["0.5:width=8", "1.5:width=8", "0.5:width=2",
                                     "nan:width=8", "loss=-1:width=8", "flops=1e3:batch=16",
                                     "x"])),
    ("--batch-lr-rule", st.sampled_from(["sqrt", "x"])),
    ("--eval-size", st.sampled_from(["0", "1"])),
]


@fuzz_settings(0.05, 12)
@given(options(TRAIN_OPTIONS))
def test_fuzzed_validate_train_options(pairs):
    """Options of ``validate train``; a valid draw trains a tiny run (about 70 steps of a
    4-wide MLP) unless it names a larger budget, which is refused or kept small."""
    given = dict(pairs)
    budget = given.get("--budget")
    try:
        small = float(budget) <= 2e5
    except (TypeError, ValueError):
        small = True
    if not small:  # a valid large budget would train for long: keep the run tiny
        pairs = tuple(pair for pair in pairs if pair[0] != "--budget")
    with folders() as (_, outputs):
        shape = [] if "--shape" in given else ["--shape", "width=4,batch=8"]
        budget_option = [] if "--budget" in dict(pairs) else ["--budget", "2e5"]
        run(["validate", "train", "mlp-width", *shape, *budget_option, *_flat(pairs),
             "-o", str(outputs / "run")], outputs)


# --- the reproducers: nonsense, each refused with one line ---
def _law_with(inputs: Path, text: str, encoding: str = "utf-8") -> str:
    path = inputs / "laws.json"
    path.write_bytes(text.encode(encoding))
    return str(path)


BASE_LAW = FOUR.read_text()
CURVES = "".join(",".join(row[:3]) + "\n" for row in _curve_rows())
FIT = ["--shape-col", "width", "--compute-col", "C", "--loss-col", "loss"]
TRAIN = ["validate", "train", "mlp-width", "--shape", "width=4,batch=8", "--evals", "3"]
NONSENSE = {
    "table law with a NaN loss": lambda d, o: ["search", _law_with(d, json.dumps(
        {"shapes": [{"name": "s", "form": "table",
                     "params": {"compute": [1e15, 1e16, 1e17], "loss": [3.0, "NaN", 2.0]}}]}
    ).replace('"NaN"', "NaN")), "--target", "2.5", "--json"],
    "throughput Infinity": lambda d, o: ["search", _law_with(
        d, BASE_LAW.replace("400000000000000.0", "Infinity")), "--target", "1.5"],
    "--noise inf": lambda d, o: ["simulate", "--preset", "demo", "--noise", "inf"],
    "--max-compute inf": lambda d, o: ["simulate", "--preset", "demo", "--max-compute", "inf"],
    "--eval-every inf": lambda d, o: ["simulate", "--preset", "demo", "--eval-every", "inf"],
    "validate --budget inf": lambda d, o: [*TRAIN, "--budget", "inf", "-o", str(o / "run")],
    "validate --budget 0": lambda d, o: [*TRAIN, "--budget", "0", "-o", str(o / "run")],
    "validate --lr inf": lambda d, o: [*TRAIN, "--budget", "2e5", "--lr", "inf", "-o",
                                    str(o / "run")],
    "validate --lr nan": lambda d, o: [*TRAIN, "--budget", "2e5", "--lr", "nan", "-o",
                                    str(o / "run")],
    "validate --lr 0": lambda d, o: [*TRAIN, "--budget", "2e5", "--lr", "0", "-o", str(o / "run")],
    "validate --eval-size 0": lambda d, o: ["validate", "train", "vit-patch", "--budget", "1e10",
                                         "--eval-size", "0", "-o", str(o / "run")],
    "validate a huge width": lambda d, o: ["validate", "train", "mlp-width", "--shape",
                                        "width=100000000000", "--budget", "1e20", "-o",
                                        str(o / "run")],
    "validate run: budget below one step": lambda d, o: [
        "validate", "run", "mlp-width", "--shapes", "width=8;width=16", "--budget", "1e3",
        "-o", str(o / "loop")],
    "validate run: NaN target": lambda d, o: [
        "validate", "run", "mlp-width", "--shapes", "width=8;width=16", "--budget", "1e6",
        "--target", "nan", "-o", str(o / "loop")],
    "integer beyond float range": lambda d, o: ["laws", "show", _law_with(
        d, BASE_LAW.replace('"a": 6300.0', '"a": 1' + "0" * 400))],
    '"b": true': lambda d, o: ["laws", "show", _law_with(
        d, BASE_LAW.replace('"b": 0.3', '"b": true', 1))],
    '"b": "0.3"': lambda d, o: ["laws", "show", _law_with(
        d, BASE_LAW.replace('"b": 0.3', '"b": "0.3"', 1))],
    "provenance not an object": lambda d, o: ["laws", "show", _law_with(
        d, json.dumps({**json.loads(BASE_LAW), "provenance": [1, 2]}))],
    "deep nesting": lambda d, o: ["laws", "show", _law_with(
        d, '{"shapes": ' + "[" * 100_000 + "]" * 100_000 + "}")],
    "UTF-16 law file": lambda d, o: ["laws", "show", _law_with(d, BASE_LAW, "utf-16")],
    "latin-1 law file": lambda d, o: ["laws", "show", _law_with(
        d, BASE_LAW.replace("synthetic", "synth\u00e9tic"), "latin-1")],
    "a FIFO as the law file": lambda d, o: ["laws", "show", _fifo(d / "laws.json")],
    "a FIFO as the curve file": lambda d, o: ["fit", _fifo(d / "runs.csv"), *FIT],
    "a row with extra cells": lambda d, o: ["fit", _text(d / "runs.csv", CURVES.replace(
        "\n16,", ",7\n16,", 1)), *FIT],
    "--holdout-above 1": lambda d, o: ["fit", _text(d / "runs.csv", CURVES), *FIT,
                                       "--holdout-above", "1"],
    "a UTF-16 curve file": lambda d, o: ["fit", _text(d / "runs.csv", CURVES, "utf-16"), *FIT],
    "--seed -1 (simulate)": lambda d, o: ["simulate", "--preset", "demo", "--seed", "-1"],
    "--seed -1 (fit)": lambda d, o: ["fit", _text(d / "runs.csv", CURVES), *FIT, "--bootstrap",
                                  "2", "--seed", "-1"],
    "--seed -1 (validate)": lambda d, o: [*TRAIN, "--budget", "2e5", "--seed", "-1", "-o",
                                       str(o / "run")],
    'a sweep file\'s "plan": 5': lambda d, o: ["simulate", "--preset", "demo", "--sweep", _text(
        d / "sweep.json", json.dumps({"runs": [{"policy": "planned", "plan": 5}]}))],
    "simulate -o under a file": lambda d, o: ["simulate", "--preset", "demo", "-o",
                                           _text(d / "file", "x") + "/out"],
    "compare -o under a file": lambda d, o: ["compare", "--preset", "demo", "--runs", "1", "-o",
                                          _text(d / "file", "x") + "/out"],
    "fit -o under a file": lambda d, o: ["fit", _text(d / "runs.csv", CURVES), *FIT, "-o",
                                      _text(d / "file", "x") + "/laws.json"],
    "search -o under a file": lambda d, o: ["search", "--preset", "demo", "--target", "2.1", "-o",
                                         _text(d / "file", "x") + "/plan.json"],
    "validate train -o under a file": lambda d, o: [*TRAIN, "--budget", "2e5", "-o",
                                                 _text(d / "file", "x") + "/run"],
    "search --graphml under a file": lambda d, o: ["search", "--preset", "demo", "--target",
                                                "2.1", "--graphml",
                                                _text(d / "file", "x") + "/g.graphml"],
    "search: a target above the start loss": lambda d, o: [
        "search", "--preset", "demo", "--target", "2.19e87", "-o", str(o / "plan.json")],
    "search --levels 1e8": lambda d, o: ["search", "--preset", "demo", "--target", "2.1",
                                         "--levels", "100000000"],
    "simulate: failures faster than progress": lambda d, o: [
        "simulate", "--preset", "demo", "--target", "2.1", "--runs", "1", "--mtbf", "2.27e-125"],
    "simulate --mtbf 1.797e308": lambda d, o: ["simulate", "--preset", "demo", "--target", "2.1",
                                               "--runs", "1", "--mtbf", "1.797e308"],
    "simulate --ckpt-interval inf": lambda d, o: [
        "simulate", "--preset", "demo", "--target", "2.1", "--runs", "1", "--mtbf", "1",
        "--ckpt-interval", "inf", "-o", str(o / "sim")],
    "simulate: a target above the start loss": lambda d, o: [
        "simulate", "--preset", "demo", "--runs", "1", "--target", "1.3188445492747493e+88"],
    "simulate: repairs beyond the clock's resolution": lambda d, o: [
        "simulate", "--preset", "demo", "--target", "2.1", "--runs", "1", "--mtbf", "3",
        "--ckpt-interval", "3.567254065091074e+16", "--repair", "3.567254065091074e+16"],
    "simulate --eval-every 1e6": lambda d, o: ["simulate", "--preset", "demo", "--target", "2.1",
                                               "--runs", "1", "--eval-every", "1e6"],
    "fit on rising losses": lambda d, o: ["fit", _text(d / "runs.csv", _curve_csv(
        lambda c: 2.0 + 1e-3 * c ** 0.3)), *FIT, "-o", str(o / "laws.json")],
    "fit on constant losses": lambda d, o: ["fit", _text(d / "runs.csv", _curve_csv(
        lambda c: 3.0 + 0 * c)), *FIT, "-o", str(o / "laws.json")],
}


# Issue 25's classes: outputs that cannot be written or are inputs, text that is no text,
# overflow at an extreme N, templates, names, quotes, units and repeats, options that never end.
CHINCHILLA = {"shapes": [{"name": "s", "form": "chinchilla", "params": {
    "E0": 1.7, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 2.0, "N": 1e300}}]}
NONSENSE.update({
    "search -o in /proc": lambda d, o: ["search", "--preset", "demo", "--target", "2.1", "-o",
                                        "/proc/plan.json"],
    "simulate -o in /sys": lambda d, o: ["simulate", "--preset", "demo", "--runs", "1", "-o",
                                         "/sys/sim"],
    "fit -o through a link loop": lambda d, o: ["fit", _text(d / "runs.csv", CURVES), *FIT,
                                                "-o", _loop(d / "loop") + "/laws.json"],
    "fit -o with a 245-character name": lambda d, o: ["fit", _text(d / "runs.csv", CURVES),
                                                      *FIT, "-o", str(o / ("a" * 245))],
    "fit -o its own input": lambda d, o: ["fit", _text(d / "runs.csv", CURVES), *FIT, "-o",
                                          str(d / "runs.csv")],
    "search -o its own law file": lambda d, o: ["search", _law_with(d, BASE_LAW), "--target",
                                                "1.5", "-o", str(d / "laws.json")],
    "a lone surrogate in a law file": lambda d, o: ["laws", "show", _law_with(
        d, BASE_LAW.replace('"name": "', '"name": "\\ud800', 1))],
    "a lone surrogate in a JSONL curve": lambda d, o: ["fit", _text(
        d / "runs.jsonl", '{"width": "w\\udc00", "C": 1e18, "loss": 3}\n'), *FIT],
    "a Chinchilla law at N = 1e300": lambda d, o: ["search", _law_with(
        d, json.dumps(CHINCHILLA)), "--target", "2.0"],
    "--shape-name {width[0]}": lambda d, o: ["fit", _text(d / "runs.csv", CURVES), *FIT,
                                             "--shape-name", "{width[0]}"],
    "--shape-name {width.real}": lambda d, o: ["fit", _text(d / "runs.csv", CURVES), *FIT,
                                               "--shape-name", "{width.real}"],
    "--shape-name with a giant width": lambda d, o: ["fit", _text(d / "runs.csv", CURVES), *FIT,
                                                     "--shape-name", "{width:>999999999}"],
    "an empty shape name": lambda d, o: ["fit", _text(d / "runs.csv", CURVES.replace(
        "\n8,", "\n,", 1)), *FIT],
    "a shape name with a control character": lambda d, o: ["fit", _text(
        d / "runs.csv", CURVES.replace("\n8,", "\n8\x1b,")), *FIT],
    "shape names differing by a trailing space": lambda d, o: ["fit", _text(
        d / "runs.csv", CURVES.replace("\n8,", "\ns8,").replace("\ns8,", "\ns8 ,", 2)), *FIT],
    "a CSV with an unterminated quote": lambda d, o: ["fit", _text(
        d / "runs.csv", CURVES.replace("\n16,", '\n"16,', 1)), *FIT],
    "log10 FLOPs against model sizes": lambda d, o: ["fit", _text(
        d / "runs.csv", "width,N,C,loss\n" + "".join(f"8,1e6,{c},{2 + 3 / c}\n"
                                                     for c in (15, 16, 17))), *FIT,
        "--params-col", "N"],
    "log10 FLOPs, --strict": lambda d, o: ["fit", _text(d / "runs.csv", _curve_csv(
        lambda c: 2.0 + 1e8 * c ** -0.5).replace("e+", "e-")), *FIT, "--strict"],
    "repeated rows, --strict": lambda d, o: ["fit", _text(
        d / "runs.csv", CURVES + CURVES.split("\n", 1)[1]), *FIT, "--strict"],
    "--target-loss nan": lambda d, o: ["fit", _text(d / "runs.csv", CURVES), *FIT,
                                       "--target-loss", "nan"],
    "--policy greedy:": lambda d, o: ["simulate", "--preset", "demo", "--target", "2.1",
                                      "--runs", "1", "--policy", "greedy:"],
    "validate --budget 1e300": lambda d, o: [*TRAIN, "--budget", "1e300", "-o", str(o / "run")],
})


def _loop(path: Path) -> str:
    path.symlink_to(path.name)
    return str(path)


def _curve_csv(loss) -> str:
    """Two shapes of eight points each whose losses follow ``loss(compute)``."""
    rows = [(width, c) for width in (8, 16) for c in (1e15 * 2.0 ** k for k in range(8))]
    return "width,C,loss\n" + "".join(f"{w},{c:.6g},{loss(c):.9g}\n" for w, c in rows)


def _fifo(path: Path) -> str:
    os.mkfifo(path)
    return str(path)


def _text(path: Path, text: str, encoding: str = "utf-8") -> str:
    path.write_bytes(text.encode(encoding))
    return str(path)


@pytest.mark.parametrize("name", NONSENSE)
def test_known_nonsense_is_refused_with_one_line(name, tmp_path):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    result = run(NONSENSE[name](inputs, outputs), outputs)
    assert result.exit_code == 2, f"{name}: accepted\n{result.output}"


def test_the_livelock_reproducer_ends():
    """Failures faster than any chunk completes: the time budget still ends the run."""
    result = run(["simulate", "--preset", "demo", "--target", "2.0", "--runs", "1", "--mtbf",
                  "0.001", "--max-hours", "1"])
    assert result.exit_code == 0, result.output
