"""Fuzzing the command line (issue 17): malformed law files, curve files and option values for
``fit``, ``laws show``, ``search``, ``simulate``, ``compare`` and ``validate train`` end with
exit 0, or with exit 2 and one line on stderr: never a traceback, never a hang, and never an
output left behind by a refusal (the checks of tests/cli_checked.py; the inputs known to be
nonsense: tests/test_nonsense.py).

Every command runs in-process through click's CliRunner, under an alarm that turns a hang into
a failure. The CI run is short (hypothesis's ``ci`` profile draws the same examples every time,
tests/conftest.py); a longer run spreads a total of examples over the fuzz tests:

    SHAPESHIFT_FUZZ_EXAMPLES=3000 .venv/bin/python -m pytest tests/test_fuzz.py
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli_checked import FOUR, curve_rows, folders, run

TOTAL = int(os.environ.get("SHAPESHIFT_FUZZ_EXAMPLES", "0"))


def fuzz_settings(share: float, ci_examples: int):
    """``ci_examples`` examples, or ``share`` of SHAPESHIFT_FUZZ_EXAMPLES when it is set."""
    examples = max(1, round(TOTAL * share)) if TOTAL else ci_examples
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


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
    rows = curve_rows()
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
