"""Reproduces Epoch AI's Chinchilla replication (Besiroglu et al. 2024) with their recipe.

Huber (delta 1e-3) on log-loss, summed over points, L-BFGS-B from their grid of starts,
the five highest-loss points dropped: E, alpha, beta within 0.5% of the published values and
an objective no worse than theirs at their published parameters on the same points.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from laws.fit import fit_curves
from laws.io.curves import ColumnMap, load_curves

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CSV = DATA / "chinchilla_epoch" / "svg_extracted_data.csv"
PUBLISHED = {"E0": 1.8172, "A": 477.8, "B": 2143.9, "alpha": 0.3473, "beta": 0.3672}

pytestmark = pytest.mark.skipif(not CSV.is_file(), reason=f"needs the shared data at {CSV}")


def _their_objective(params: dict) -> float:
    """Epoch AI's objective written out independently: N, D = C / 6N, loss from the CSV,
    the five highest losses dropped, sum of Huber(1e-3) of log prediction - log loss."""
    with open(CSV, newline="") as handle:
        rows = list(csv.DictReader(handle))
    n = np.array([float(r["Model Size"]) for r in rows])
    d = np.array([float(r["Training FLOP"]) for r in rows]) / (6 * n)
    loss = np.array([float(r["loss"]) for r in rows])
    keep = loss < np.sort(loss)[-5]
    predicted = params["E0"] + params["A"] / n**params["alpha"] + params["B"] / d**params["beta"]
    r = np.abs(np.log(predicted[keep]) - np.log(loss[keep]))
    delta = 1e-3
    return float(np.sum(np.where(r <= delta, 0.5 * r**2, delta * (r - 0.5 * delta))))


@pytest.fixture(scope="module")
def result():
    curves = load_curves(CSV, ColumnMap(shape=("Model Size",), loss="loss",
                                        compute="Training FLOP", params="Model Size"))
    return fit_curves(curves, form="chinchilla", drop_highest=5)


def test_parameters_within_half_a_percent(result) -> None:
    assert result.dropped == 5 and result.metrics["all"]["points"] == 240
    for key in ("E0", "alpha", "beta"):
        assert result.shared[key] == pytest.approx(PUBLISHED[key], rel=0.005), key
    # A and B are less well determined (Epoch's own BFGS variant gives B = 2085); 1% here.
    for key in ("A", "B"):
        assert result.shared[key] == pytest.approx(PUBLISHED[key], rel=0.01), key


def test_objective_no_worse_than_theirs(result) -> None:
    ours = _their_objective(result.shared)
    assert ours == pytest.approx(result.objective, rel=1e-9)  # same objective, computed twice
    assert ours <= _their_objective(PUBLISHED)


def test_cli_reproduction(tmp_path) -> None:
    out = tmp_path / "chinchilla.json"
    res = CliRunner().invoke(main, [
        "fit", str(CSV), "--shape-col", "Model Size", "--compute-col", "Training FLOP",
        "--params-col", "Model Size", "--loss-col", "loss", "--form", "chinchilla",
        "--drop-highest", "5", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "shared: E0=1.817" in res.output and "alpha=0.3473" in res.output
