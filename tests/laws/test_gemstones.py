"""Gemstones (McLeish et al. 2025): per-shape and joint fits with held-out extrapolation errors
(fit on <= 50B tokens, predict 60B-100B), and the shipped gemstones-lm preset against the data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from laws.fit import holdout_check
from laws.io.curves import ColumnMap, load_curves
from laws.presets import load_preset

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HOT = DATA / "gemstones" / "wandb_df_for_fitting_hot.jsonl"
TIME = "step*seconds_per_step*num_nodes"
COLUMNS = ColumnMap(shape=("width", "depth"), loss="final_loss", tokens="tokens",
                    params="params_active_precise", extra=("tokens", TIME),
                    shape_name="w{width}-d{depth}")
CUT = 55e9  # tokens: checkpoints every 10B, so train on 10B-50B, hold out 60B-100B

needs_data = pytest.mark.skipif(not HOT.is_file(), reason=f"needs the shared data at {HOT}")


def _rows() -> list[dict]:
    return [json.loads(line) for line in HOT.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def curves():
    return load_curves(HOT, COLUMNS)


@needs_data
def test_data_is_one_run_of_ten_checkpoints_per_shape(curves) -> None:
    rows = _rows()
    assert len(curves.curves) == 22 and len(rows) == 220
    runs = {(r["width"], r["depth"]): set() for r in rows}
    for r in rows:
        runs[(r["width"], r["depth"])].add(r["run_name"])
    assert all(len(names) == 1 for names in runs.values())  # no duplicate runs per shape
    for curve in curves.curves:
        assert len(curve) == 10 and len(set(curve.extra["tokens"])) == 10
        expected = [6.0 * r["params_active_precise"] * r["tokens"] for r in rows
                    if f"w{r['width']}-d{r['depth']}" == curve.name]
        np.testing.assert_allclose(np.sort(curve.compute), np.sort(expected))


@needs_data
@pytest.mark.parametrize(("form", "share", "max_rmse"), [
    ("power", (), 0.02),
    ("power", ("exponent",), 0.02),
    ("power", ("floor",), 0.06),
    ("chinchilla", (), 0.08),
])
def test_held_out_errors(curves, form, share, max_rmse) -> None:
    report = holdout_check(curves, CUT, "tokens", form, share)
    assert set(report.metrics) == {c.name for c in curves.curves} | {"all"}
    for name, m in report.metrics.items():
        assert m["train"] == (5 if name != "all" else 110)
        assert m["points"] == (5 if name != "all" else 110)
    # Recompute one shape's error from its fitted law, independently of the report.
    curve = curves.curves[0]
    held = curve.extra["tokens"] > CUT
    predicted = report.fit.laws.shape(curve.name).law.loss(curve.compute[held])
    rmse = np.sqrt(np.mean((predicted - curve.loss[held]) ** 2))
    assert report.metrics[curve.name]["rmse"] == pytest.approx(rmse)
    assert report.metrics["all"]["rmse"] < max_rmse
    assert report.metrics["all"]["mare"] < max_rmse / 2


@needs_data
def test_preset_matches_the_data(curves) -> None:
    preset = load_preset("gemstones-lm")
    provenance = preset.provenance
    assert provenance["input"]["sha256"] == hashlib.sha256(HOT.read_bytes()).hexdigest()
    assert "2502.06857" in provenance["paper"] and "MIT" in provenance["licence"]
    rows = _rows()
    for curve in curves.curves:
        shape = preset.shape(curve.name)
        assert shape.axes == curve.axes
        # The preset's law follows this shape's measured curve closely.
        error = shape.law.loss(curve.compute) - curve.loss
        assert np.sqrt(np.mean(error**2)) < 0.02
        # Throughput per node: 6 N (tokens per step) / (seconds per step x nodes).
        row = next(r for r in rows if f"w{r['width']}-d{r['depth']}" == curve.name)
        per_node = (6 * row["params_active_precise"] * row["tokens"] / row["step"]
                    / (row["seconds_per_step"] * row["num_nodes"]))
        assert shape.throughput == pytest.approx(per_node, rel=1e-6)


def test_preset_is_usable_for_search() -> None:
    """Needs no data: every law strictly decreasing with a floor below the measured losses."""
    preset = load_preset("gemstones-lm")
    assert len(preset.shapes) == 22
    compute = np.logspace(18, 24, 50)
    for shape in preset.shapes:
        loss = shape.law.loss(compute)
        assert np.all(np.diff(loss) < 0), shape.name
        assert 1.0 < shape.law.floor < 3.4, shape.name  # measured losses reach 2.58-3.41
        assert np.all(shape.law.dcompute(loss) < 0)
        assert shape.throughput > 0
