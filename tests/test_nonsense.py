"""Inputs known to be nonsense (issue 17's reproducers), each refused with exit 2 and one line,
never a traceback or a hang, and nothing left behind (tests/cli_checked.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli_checked import FOUR, curve_rows, run


def _law_with(inputs: Path, text: str, encoding: str = "utf-8") -> str:
    path = inputs / "laws.json"
    path.write_bytes(text.encode(encoding))
    return str(path)


BASE_LAW = FOUR.read_text()
CURVES = "".join(",".join(row[:3]) + "\n" for row in curve_rows())
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
