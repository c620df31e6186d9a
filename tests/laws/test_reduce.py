"""Per-step curves reduced to weighted points (laws.fit.reduce) and read column by column."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from laws.fit import fit_curves
from laws.fit.choice import AUTO_RATIO, RANKING_QUANTILES, choose_auto
from laws.fit.curveset import loss_errors
from laws.fit.objective import Objective, PowerModel, huber
from laws.fit.reduce import BINS_PER_DECADE, QUANTILES, REDUCE_ABOVE, reduce_curve
from laws.forms import PowerLaw, SaturatingLaw
from laws.io.curves import ColumnMap, Curve, Curves, load_curves
from laws.io.curves import _columnar_csv as columnar_csv

ROOT = Path(__file__).resolve().parents[2]


def _per_step(law, steps: int, flops_per_step: float = 3e12, noise: float = 0.0,
              seed: int = 0) -> Curve:
    step = np.arange(1, steps + 1)
    compute = step * flops_per_step
    loss = law.loss(compute) * np.exp(np.random.default_rng(seed).normal(0, noise, steps))
    return Curve("s", {}, compute, loss, tuple(step.tolist()))


@pytest.mark.parametrize(("law", "form"), [
    (PowerLaw(a=90.0, b=0.13, c=1.7), "power"),
    (SaturatingLaw(a=40.0, b=0.2, c=1.5, d=2e14), "saturating"),
])
def test_noiseless_law_is_recovered_exactly_from_the_reduced_points(law, form) -> None:
    curve = _per_step(law, 20_000)
    result = fit_curves(Curves("steps.csv", (curve,)), form)
    record = result.reduction["shapes"]["s"]
    assert record["rows"] == 20_000 and record["points"] < 5_000  # it was reduced
    fitted = result.laws.shape("s").law.params()
    for name, truth in law.params().items():
        if isinstance(truth, float):
            assert fitted[name] == pytest.approx(truth, rel=1e-6), name


@pytest.mark.parametrize(("law", "form", "identified"), [
    (PowerLaw(a=80.0, b=0.13, c=1.8), "power", True),
    # The saturating form's valley is flatter still: two minimisations of all the rows from
    # different starts stop at different a, b, d (objectives 5e-7 apart here), whose losses
    # differ by at most 3.2e-4 up to 10 times the last step's compute.
    (SaturatingLaw(a=40.0, b=0.2, c=1.5, d=2e14), "saturating", False),
])
def test_a_noisy_per_step_law_is_the_fit_of_every_row(law, form, identified) -> None:
    # a, b and c trade off along a flat valley: the reduced optimum alone lies up to a few
    # percent from the fit of every row; re-minimised on every row, it is that fit.
    curve = _per_step(law, 20_000, noise=0.02, seed=1)
    curves = Curves("steps.csv", (curve,))
    reduced = fit_curves(curves, form)
    every_row = fit_curves(curves, form, reduce_above=None)
    assert reduced.reduction["laws"].startswith("re-minimised on every row")
    assert every_row.reduction == {}
    assert reduced.objective == pytest.approx(every_row.objective, rel=1e-5)
    mine, theirs = reduced.laws.shape("s").law, every_row.laws.shape("s").law
    compute = np.logspace(np.log10(curve.compute[0]), np.log10(curve.compute[-1] * 10), 200)
    np.testing.assert_allclose(mine.loss(compute), theirs.loss(compute), rtol=5e-4)
    if identified:
        for name, value in theirs.params().items():
            assert mine.params()[name] == pytest.approx(value, rel=1e-4), name


def test_without_the_polish_a_fit_keeps_the_optimum_of_the_points_kept() -> None:
    curve = _per_step(PowerLaw(a=80.0, b=0.13, c=1.8), 20_000, noise=0.02, seed=1)
    quick = fit_curves(Curves("steps.csv", (curve,)), "power", polish=False)
    polished = fit_curves(Curves("steps.csv", (curve,)), "power")
    assert quick.reduction["laws"] == "the optimum on the points kept"
    law = quick.laws.shape("s").law
    # Its objective is that of the points kept, each counted by its weight, by hand:
    points = reduce_curve(curve)
    residual = np.log(law.loss(points.compute)) - np.log(points.loss)
    by_hand = np.sum(points.weights * huber(residual))
    assert quick.objective == pytest.approx(by_hand, rel=1e-12)
    # and on every row the polish, started there, ends lower.
    assert polished.objective < loss_errors(law, curve)["objective"]
    assert polished.laws.shape("s").law.params() != law.params()


def test_auto_ranks_its_candidates_on_a_coarser_reduction_without_the_polish() -> None:
    curve = _per_step(PowerLaw(a=80.0, b=0.13, c=1.8), 6_000, noise=0.02, seed=2)
    curves = Curves("steps.csv", (curve,))
    choice = choose_auto(curves, per_shape=True)
    # By hand: the curve reduced to RANKING_QUANTILES rows per bin, its points up to half the
    # largest compute fitted without the polish, scored on every row beyond.
    cut = curve.compute.max() / AUTO_RATIO
    points = reduce_curve(curve, quantiles=RANKING_QUANTILES)
    train, test = points.subset(points.compute <= cut), curve.subset(curve.compute > cut)
    assert len(train) < len(reduce_curve(curve).subset(reduce_curve(curve).compute <= cut))
    for scored in choice.candidates:
        quick = fit_curves(curves.replace([train]), scored.form, polish=False)
        law = quick.laws.shape("s").law
        assert scored.metrics["s"] == {"train": len(train), **loss_errors(law, test)}
        assert scored.metrics["s"]["points"] == np.sum(curve.compute > cut)
        polished = fit_curves(curves.replace([curve.subset(curve.compute <= cut)]), scored.form)
        assert law.params() != polished.laws.shape("s").law.params()
    assert choice.forms == {"s": "power"}


def test_weights_sum_to_the_rows_and_each_bin_keeps_rows_at_even_loss_ranks() -> None:
    rng = np.random.default_rng(4)
    # Irregular compute with repeats (two evaluations at one step) and noisy losses.
    compute = np.sort(np.repeat(10 ** rng.uniform(12, 16, 3000), rng.integers(1, 3, 3000)))
    loss = 2.0 + 10 * compute ** -0.1 * np.exp(rng.normal(0, 0.05, compute.size))
    curve = Curve("s", {}, compute, loss, tuple(range(compute.size)))
    reduced = reduce_curve(curve)
    assert reduced.weights.sum() == pytest.approx(compute.size, rel=1e-12)
    assert np.all(np.diff(reduced.compute) >= 0)
    kept = np.array(reduced.lines)  # the rows kept, by their line (here: their index)
    np.testing.assert_array_equal(reduced.compute, compute[kept])
    np.testing.assert_array_equal(reduced.loss, loss[kept])
    low = math.floor(math.log10(compute.min()) * BINS_PER_DECADE)
    high = math.floor(math.log10(compute.max()) * BINS_PER_DECADE)
    for k in range(low - 1, high + 2):  # each bin by its edges, brute force
        inside = np.flatnonzero((compute >= 10 ** (k / BINS_PER_DECADE))
                                & (compute < 10 ** ((k + 1) / BINS_PER_DECADE)))
        mine = np.isin(kept, inside)
        rows = inside.size
        if rows <= QUANTILES:
            assert sorted(kept[mine]) == inside.tolist()
            assert np.all(reduced.weights[mine] == 1.0)
            continue
        assert mine.sum() == QUANTILES
        np.testing.assert_allclose(reduced.weights[mine], rows / QUANTILES, rtol=1e-15)
        by_loss = sorted(inside.tolist(), key=lambda i: (loss[i], i))
        ranks = sorted(by_loss.index(i) for i in kept[mine])
        for j, rank in enumerate(ranks):  # evenly spaced, mirrored about the middle
            assert abs(rank - (j + 0.5) * rows / QUANTILES) < 1.0
            assert rank + ranks[QUANTILES - 1 - j] == rows - 1


def test_equal_losses_in_a_bin_are_ranked_in_order_of_compute() -> None:
    # Losses of two decimals: a bin of hundreds of rows holds few distinct values. The rows
    # kept are those at the ranks of a brute-force sort by (loss, row), bin by bin.
    steps = np.arange(1, 6001)
    compute = steps * 1e12
    rng = np.random.default_rng(9)
    loss = np.round(2.0 + 30 * compute ** -0.1 * np.exp(rng.normal(0, 0.02, steps.size)), 2)
    reduced = reduce_curve(Curve("s", {}, compute, loss, tuple(range(steps.size))))
    kept = set(reduced.lines)
    bins = np.floor(np.log10(compute) * BINS_PER_DECADE)
    half = np.arange(QUANTILES // 2)
    for k in np.unique(bins):
        inside = np.flatnonzero(bins == k).tolist()
        if len(inside) <= QUANTILES:
            continue
        by_loss = sorted(inside, key=lambda i: (loss[i], i))
        low = np.floor((half + 0.5) * len(inside) / QUANTILES).astype(int)
        ranks = [*low, *(len(inside) - 1 - low)]
        assert {by_loss[r] for r in ranks} == kept & set(inside), k


def test_a_short_curve_is_not_reduced() -> None:
    curve = _per_step(PowerLaw(a=90.0, b=0.13, c=1.7), REDUCE_ABOVE, noise=0.02)
    assert reduce_curve(curve) is curve
    assert fit_curves(Curves("steps.csv", (curve,)), "power").reduction == {}
    assert reduce_curve(curve, REDUCE_ABOVE - 1) is not curve


def test_a_bootstrap_draw_multiplies_the_points_weights() -> None:
    compute = np.logspace(15, 18, 6)
    objective = Objective(PowerModel(compute), np.log(2.0 + compute ** -0.1),
                          weights=np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    draws = np.array([0.0, 2.0, 1.0, 1.0, 0.0, 2.0])
    np.testing.assert_array_equal(objective.reweighted(draws).weights,
                                  [0.0, 4.0, 3.0, 4.0, 0.0, 12.0])


def _write_steps(path: Path, steps: int) -> None:
    lines = ["run,step,flops,loss"]
    for i, (name, per_step) in enumerate((("w256", 2e12), ("w512", 8e12))):
        curve = _per_step(PowerLaw(a=60.0 + 30 * i, b=0.12, c=1.9 - 0.2 * i), steps, per_step,
                          noise=0.02, seed=i)
        lines += [f"{name},{s},{c:.6e},{v:.6f}" for s, c, v in
                  zip(range(1, steps + 1), curve.compute, curve.loss, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def _fit_cli(source: Path, output: Path, *options: str) -> dict:
    subprocess.run([sys.executable, "-m", "cli", "fit", str(source), "--shape-col", "run",
                    "--compute-col", "flops", "--loss-col", "loss", "--bootstrap", "4",
                    *options, "-o", str(output)], cwd=ROOT,
                   env={**os.environ, "OMP_NUM_THREADS": "1"},
                   check=True, capture_output=True)
    return json.loads(output.read_text())


def test_below_the_threshold_the_law_file_is_bit_identical(tmp_path) -> None:
    at, above = tmp_path / "at.csv", tmp_path / "above.csv"
    _write_steps(at, REDUCE_ABOVE)
    _write_steps(above, REDUCE_ABOVE + 1)
    default = _fit_cli(at, tmp_path / "at-default.json")
    off = _fit_cli(at, tmp_path / "at-off.json", "--reduce-above", "none")
    # The option itself is recorded; all else, the laws and samples included, is the same.
    assert off["provenance"]["options"].pop("reduce_above") is None
    assert "reduce_above" not in default["provenance"]["options"]
    assert json.dumps(default) == json.dumps(off)
    reduced = _fit_cli(above, tmp_path / "above-default.json")
    full = _fit_cli(above, tmp_path / "above-off.json", "--reduce-above", "none")
    assert "reduction" not in full["provenance"]["fit_metrics"]
    record = reduced["provenance"]["fit_metrics"]["reduction"]
    assert {name: (s["rows"], s["weights"]["sum"]) for name, s in record["shapes"].items()} \
        == {"w256": (REDUCE_ABOVE + 1, REDUCE_ABOVE + 1), "w512": (REDUCE_ABOVE + 1,
                                                                   REDUCE_ABOVE + 1)}
    assert [s["measured"]["points"] for s in reduced["shapes"]] == [REDUCE_ABOVE + 1] * 2


CSV = """run,width,tokens,params,loss,split,note
a,8,1e9,1e8,3.2,train,x
a,8.0,2e9,1e8,3.0,train,x

b,16,1e9,2e8,3.1,train,x
b,16,3e9,2e8,2.8,test,x
a,8,4e9,1e8,2.9,train,x
"""


@pytest.mark.parametrize("columns", [
    ColumnMap(shape=("width",), loss="loss", tokens="tokens", params="params",
              extra=("tokens*params",)),
    ColumnMap(shape=("run", "width"), loss="loss", compute="tokens*params",
              filters=(("split", "train"),), shape_name="{run}{width}"),
    ColumnMap(shape=(), loss="loss", compute="tokens", filters=(("width", "8"),)),
])
def test_the_columnar_reading_gives_the_curves_of_the_row_by_row_reading(tmp_path,
                                                                         columns) -> None:
    regular = tmp_path / "regular.csv"
    regular.write_text(CSV)
    # A quoted cell over two lines, in a column no mapping reads, sends the file to the
    # row-by-row reading; the row is the last, so that the lines before it are the same.
    irregular = tmp_path / "irregular.csv"
    irregular.write_text(CSV + 'c,32,1e9,4e8,3.5,other,"two\nlines"\n')
    assert columnar_csv(str(regular), columns) is not None
    assert columnar_csv(str(irregular), columns) is None
    quick = load_curves(regular, columns)
    rows = load_curves(irregular, columns)
    wanted = [curve for curve in rows.curves if curve.name not in ("32", "c32")]
    assert len(quick.curves) == len(wanted) and quick.doubts == rows.doubts
    for mine, theirs in zip(quick.curves, wanted, strict=True):
        assert (mine.name, mine.axes, mine.lines) == (theirs.name, theirs.axes, theirs.lines)
        assert {k: type(v) for k, v in mine.axes.items()} == \
            {k: type(v) for k, v in theirs.axes.items()}
        for field in ("compute", "loss", "n_params"):
            np.testing.assert_array_equal(getattr(mine, field), getattr(theirs, field))
        assert mine.extra.keys() == theirs.extra.keys()
        for key in mine.extra:
            np.testing.assert_array_equal(mine.extra[key], theirs.extra[key])
