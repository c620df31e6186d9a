"""`shapeshift allocate`, `predict` and `isoflop`, and `fit --share alpha=beta`: --help, tables
and JSON checked against independent arithmetic, and bad input as one line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from laws.forms import ChinchillaLaw
from laws.io.lawfile import read_law_file, write_law_file
from laws.lawset import LawSet, Shape

LAW = {"E0": 1.7, "A": 400.0, "B": 1200.0, "alpha": 0.3, "beta": 0.4}


@pytest.mark.parametrize("command, option", [("allocate", "--budget"),
                                             ("predict", "--params"),
                                             ("isoflop", "--group-col")])
def test_help(command: str, option: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and option in result.output


def _law_file(tmp_path) -> str:
    samples = tuple(ChinchillaLaw(**{**LAW, "beta": beta}, N=1e9)
                    for beta in np.linspace(0.38, 0.42, 11))
    shape = Shape("n1e9", {"N": 1e9}, ChinchillaLaw(**LAW, N=1e9), samples=samples)
    path = tmp_path / "chinchilla.json"
    write_law_file(LawSet("toy", (shape,)), path)
    return str(path)


def _one_line_error(result, expected: str) -> None:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert expected in lines[0], lines


def test_allocate_json_and_table(tmp_path) -> None:
    laws = _law_file(tmp_path)
    result = CliRunner().invoke(main, ["allocate", laws, "--budget", "1e21,1e23",
                                       "--budget", "5.76e23", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    rows = data["allocations"]
    assert [row["budget"] for row in rows] == [1e21, 1e23, 5.76e23]
    for row in rows:
        sizes = row["N"] * np.exp(np.linspace(-0.05, 0.05, 11))  # brute force around N_opt
        tokens = row["budget"] / (6 * sizes)
        losses = LAW["E0"] + LAW["A"] / sizes ** LAW["alpha"] + LAW["B"] / tokens ** LAW["beta"]
        assert np.argmin(losses) == 5 and row["loss"] == pytest.approx(losses[5], rel=1e-12)
        assert row["N_interval"][0] <= row["N"] <= row["N_interval"][1]
    assert data["a"] == pytest.approx(0.4 / 0.7) and data["samples"] == 11
    table = CliRunner().invoke(main, ["allocate", laws, "--budget", "1e21"])
    assert table.exit_code == 0 and "N_opt ~ C^a: a = 0.5714" in table.output


def test_predict_json(tmp_path) -> None:
    result = CliRunner().invoke(main, ["predict", _law_file(tmp_path), "--compute", "1e22",
                                       "--params", "7e10", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)["predictions"]
    tokens = 1e22 / (6 * 7e10)
    assert row["loss"] == pytest.approx(1.7 + 400 / 7e10**0.3 + 1200 / tokens**0.4)
    assert row["interval"][0] < row["loss"] < row["interval"][1]


def test_isoflop_on_a_csv(tmp_path) -> None:
    lines = ["run,C,N,loss"]
    for budget in (1e18, 1e19, 1e20):
        best = 0.2 * budget**0.5
        for offset in np.linspace(-1, 1, 5):
            lines.append(f"a,{budget:g},{best * np.exp(offset):.10g},{2 + 0.1 * offset**2:.10g}")
    path = tmp_path / "sweep.csv"
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(main, ["isoflop", str(path), "--compute-col", "C",
                                       "--params-col", "N", "--loss-col", "loss",
                                       "--group-col", "run", "--bootstrap", "50", "--json"])
    assert result.exit_code == 0, result.output
    (sweep,) = json.loads(result.output)["sweeps"]
    assert sweep["name"] == "a" and sweep["a"] == pytest.approx(0.5, rel=1e-7)
    assert sweep["resamples"] == 50


def test_fit_ties_alpha_to_beta(tmp_path) -> None:
    lines = ["N,C,loss"]
    for n in (5e7, 2e8, 1e9, 4e9):
        law = ChinchillaLaw(**{**LAW, "beta": 0.3}, N=n)
        lines += [f"{n:g},{c:g},{law.loss(c):.10g}" for c in np.logspace(18, 22, 8)]
    path = tmp_path / "runs.csv"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "tied.json"
    result = CliRunner().invoke(main, ["fit", str(path), "--shape-col", "N", "--compute-col",
                                       "C", "--params-col", "N", "--loss-col", "loss",
                                       "--form", "chinchilla", "--share", "alpha=beta",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    law = read_law_file(out).shapes[0].law
    assert law.alpha == law.beta == pytest.approx(0.3, rel=1e-3)
    assert read_law_file(out).provenance["options"]["share"] == ["alpha=beta"]


@pytest.mark.parametrize("argv, expected", [
    (["allocate", "--preset", "demo", "--budget", "1e20"], "needs the chinchilla form"),
    (["allocate", "--preset", "demo", "--budget", "lots"], "--budget 'lots': not a number"),
    (["predict", "--preset", "demo", "--compute", "1e20", "--shape", "nope"], "unknown shape"),
])
def test_bad_input_is_one_line(argv: list[str], expected: str) -> None:
    _one_line_error(CliRunner().invoke(main, argv), expected)


PORIAN = (Path(__file__).resolve().parents[1].parent / "shared" / "data"
          / "porian_resolving_discrepancies" / "porian_isoflop_points.csv")


@pytest.mark.skipif(not PORIAN.is_file(), reason=f"needs the shared data at {PORIAN}")
def test_isoflop_on_porian_points_one_sweep_per_configuration() -> None:
    groups = [arg for col in ("dataset", "hparams", "warmup", "decay", "param_count",
                              "loss_split") for arg in ("--group-col", col)]
    result = CliRunner().invoke(main, ["isoflop", str(PORIAN), "--compute-col", "flops",
                                       "--params-col", "N", "--loss-col", "loss", *groups,
                                       "--bootstrap", "100", "--inside-only", "--json"])
    assert result.exit_code == 0, result.output
    sweeps = {s["name"]: s for s in json.loads(result.output)["sweeps"]}
    assert len(sweeps) == 10
    tuned = sweeps["rw-tuned-short-const-standard-val"]
    assert tuned["a_interval"][0] <= tuned["a"] <= tuned["a_interval"][1]
    kaplan = sweeps["rw-base-long-kaplan-kaplan-train"]
    left_out = [lv for lv in kaplan["levels"] if lv.get("left_out")]
    assert left_out and all(not lv["interior"] for lv in left_out)


@pytest.mark.parametrize("command", ["allocate", "isoflop", "predict"])
def test_help_does_not_load_numpy(command: str) -> None:
    probe = ("import sys; from cli import main\n"
             f"try: main([{command!r}, '--help'])\n"
             "except SystemExit: pass\n"
             "print('NUMPY', 'numpy' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert "NUMPY False" in out.stdout, out.stdout + out.stderr
