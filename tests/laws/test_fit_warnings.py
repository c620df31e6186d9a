"""Fits that warn when they are absurd (issue 24): an exponent beyond the published range, a
bootstrap that cannot settle the exponent, shapes too sparse to fit (left out, or refused when
none is left), and a form per shape under ``--form auto``. Each warning is one line and
``--strict`` turns it into exit code 2.

Expected behaviour comes from the curves' construction: noise-free points of a known law
(its exponent, its form), or point counts against the forms' parameter counts (power 3,
saturating 4)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from laws.fit.curveset import fit_curves
from laws.fit.diagnostics import EXPONENT_LIMIT, SPREAD_FACTOR, spread_warnings
from laws.fit.pershape import PER_SHAPE, fit_forms
from laws.forms import ChinchillaLaw, PowerLaw, SaturatingLaw
from laws.io.curves import Curve, Curves
from laws.io.lawfile import read_law_file

# A curve that flattens abruptly, like the patch-7 ViT (a = 1.07e44, b = 3.72): a
# saturating law with b = 3.7 whose loss falls from 1.0 to its floor 0.35 within a decade.
FLAT_COMPUTE = np.logspace(12, 13.3, 12)
ABRUPT = SaturatingLaw(a=0.65 * 3e12 ** 3.7, b=3.7, c=0.35, d=2e12)
GENTLE = SaturatingLaw(a=0.65 * 3e12 ** 0.7, b=0.7, c=0.35, d=2e12)
COLUMNS = ["--shape-col", "shape", "--compute-col", "C", "--loss-col", "loss"]


def _write(tmp_path, points: dict[str, tuple[np.ndarray, np.ndarray]], name="runs.csv") -> str:
    lines = ["shape,C,loss"] + [f"{shape},{c:.10e},{loss:.12f}"
                                for shape, (compute, losses) in points.items()
                                for c, loss in zip(compute, losses, strict=True)]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _fit(argv: list[str]):
    return CliRunner().invoke(main, ["fit", *argv])


def _warnings(output: str) -> dict[str, str]:
    return {w["kind"]: w["message"] for w in json.loads(output)["warnings"]}


def test_a_saturating_fit_with_an_exponent_beyond_3_warns_and_strict_exits_2(tmp_path) -> None:
    curves = _write(tmp_path, {"patch7": (FLAT_COMPUTE, ABRUPT.loss(FLAT_COMPUTE))})
    result = _fit([curves, *COLUMNS, "--form", "saturating", "--json"])
    assert result.exit_code == 0, result.output
    [shape] = json.loads(result.stdout)["laws"]["shapes"]
    assert shape["params"]["b"] == pytest.approx(3.7, rel=1e-3)  # the fit finds the truth
    warnings = _warnings(result.stdout)
    assert set(warnings) == {"exponent"}
    assert warnings["exponent"].startswith("exponent of 3 or more in patch7 (a=")
    assert "b=3.7," in warnings["exponent"]
    strict = _fit([curves, *COLUMNS, "--form", "saturating", "--strict"])
    assert strict.exit_code == 2
    [line] = strict.output.strip().splitlines()
    assert line.startswith("error: --strict: 1 fit warning(s): exponent of 3 or more in patch7")


def test_an_exponent_inside_the_published_range_does_not_warn(tmp_path) -> None:
    curves = _write(tmp_path, {"patch7": (FLAT_COMPUTE, GENTLE.loss(FLAT_COMPUTE))})
    result = _fit([curves, *COLUMNS, "--form", "saturating", "--strict"])
    assert result.exit_code == 0, result.output


def test_auto_leaves_out_the_absurd_saturating_fit(tmp_path) -> None:
    # The saturating fit of all points is the truth, b = 3.7: out of the choice, like a fit at
    # a bound; power is left.
    curves = _write(tmp_path, {"patch7": (FLAT_COMPUTE, ABRUPT.loss(FLAT_COMPUTE))})
    result = _fit([curves, *COLUMNS, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    power, saturating = data["form_choice"]["candidates"]
    assert saturating["score"] is None and saturating["status"].startswith("degenerate")
    assert saturating["degenerate"] == ["patch7"]
    assert data["laws"]["shapes"][0]["form"] == "power"


def test_a_bootstrap_that_reaches_the_limit_warns(tmp_path) -> None:
    # Every resample of the noise-free abrupt curve refits b = 3.7: its interval reaches 3.
    curves = _write(tmp_path, {"patch7": (FLAT_COMPUTE, ABRUPT.loss(FLAT_COMPUTE))})
    result = _fit([curves, *COLUMNS, "--form", "saturating", "--bootstrap", "8", "--json"])
    assert result.exit_code == 0, result.output
    warnings = _warnings(result.stdout)
    assert set(warnings) == {"exponent", "spread"}
    assert warnings["spread"].startswith("bootstrap 90% interval of an exponent wider than a "
                                         "factor 10 or reaching 3 in patch7 (b [3.")


@pytest.mark.parametrize(("low", "high", "warns"), [
    (0.3, 0.6, False),   # a factor 2, below 3: the committed ViT preset's kind of spread
    (0.5, 2.9, False),   # a factor 5.8, below 3
    (0.1, 1.2, True),    # a factor 12
    (1.0, 3.0, True),    # a factor 3, but it reaches 3
])
def test_the_spread_rule_by_hand(low, high, warns) -> None:
    compute = np.logspace(18, 20, 8)
    result = fit_curves(Curves("x.csv", (Curve("s", {}, compute, 2.0 + 5e5 * compute ** -0.3,
                                               tuple(range(8))),)))
    result = dataclasses.replace(result, intervals={"s": {"a": (1.0, 1e9), "b": (low, high)}},
                                 bootstrap={"level": 0.9})
    assert (EXPONENT_LIMIT, SPREAD_FACTOR) == (3.0, 10.0)
    warnings = spread_warnings(result)
    assert bool(warnings) == warns
    if warns:
        assert warnings[0].shapes == ("s",) and f"b [{low:.3g}, {high:.3g}]" in warnings[0].message


def _three_shapes(tmp_path) -> str:
    compute = np.logspace(18, 21, 8)
    return _write(tmp_path, {"w256": (compute, 2.0 + 5e6 * compute ** -0.3),
                             "w512": (compute, 2.0 + 3e6 * compute ** -0.3),
                             "w1024": (compute[:2], 2.0 + 2e6 * compute[:2] ** -0.3)})


@pytest.mark.parametrize("form", ["power", "auto"])
def test_a_shape_of_fewer_points_than_parameters_is_left_out_with_one_line(tmp_path,
                                                                           form) -> None:
    # w1024 has 2 points; power (auto's simplest candidate) has 3 parameters.
    out = tmp_path / "laws.json"
    result = _fit([_three_shapes(tmp_path), *COLUMNS, "--form", form, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert read_law_file(out).names == ["w256", "w512"]
    [line] = [line for line in result.output.splitlines() if line.startswith("warning")]
    assert line == ("warning (points): 1 of 3 shapes left out of the law file, with fewer "
                    "points than the power form's 3 parameters (2): w1024")
    strict = _fit([_three_shapes(tmp_path), *COLUMNS, "--form", form, "--strict"])
    assert strict.exit_code == 2 and len(strict.output.strip().splitlines()) == 1


def test_saturating_needs_four_points_a_shape(tmp_path) -> None:
    compute = np.logspace(18, 21, 8)
    curves = _write(tmp_path, {"eight": (compute, GENTLE.loss(compute * 1e-7)),
                               "three": (compute[:3], GENTLE.loss(compute[:3] * 1e-7))})
    result = _fit([curves, *COLUMNS, "--form", "saturating", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [s["name"] for s in data["laws"]["shapes"]] == ["eight"]
    assert data["warnings"][0]["shapes"] == ["three"]


def _ungrouped_sizes(tmp_path) -> str:
    """Three model sizes read off a figure: each point's size jittered by up to 5%, so that
    without --group every point is a shape of its own (the issue's 142 Chinchilla shapes)."""
    law = ChinchillaLaw(E0=1.8, A=400.0, B=400.0, alpha=0.34, beta=0.28, N=1.0)
    rng = np.random.default_rng(0)
    lines = ["N,C,loss"]
    for center in (10**8.1, 10**9.1, 10**10.1):
        for tokens in np.logspace(9, 11, 8):
            n = center * rng.uniform(0.95, 1.05)
            loss = dataclasses.replace(law, N=n).loss(6 * n * tokens)
            lines.append(f"{n:.6f},{6 * n * tokens:.6e},{loss:.10f}")
    path = tmp_path / "sizes.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_ungrouped_model_sizes_are_refused_or_named_with_their_count(tmp_path) -> None:
    columns = ["--shape-col", "N", "--compute-col", "C", "--params-col", "N", "--loss-col",
               "loss"]
    sizes = _ungrouped_sizes(tmp_path)
    # Per-shape forms: no shape of one point can be fitted, and that is one line and exit 2.
    refused = _fit([sizes, *columns])
    assert refused.exit_code == 2
    [line] = refused.output.strip().splitlines()
    assert "all 24 shapes hold fewer points than the power form's 3 parameters (1 each)" in line
    assert "--group" in line
    # The chinchilla law fits all points at once: it warns, naming the count.
    joint = _fit([sizes, *columns, "--form", "chinchilla", "--json"])
    assert joint.exit_code == 0, joint.output
    assert _warnings(joint.stdout)["points"].startswith("24 of 24 shapes hold fewer than 3 points")
    assert _fit([sizes, *columns, "--form", "chinchilla", "--strict"]).exit_code == 2
    # Grouped, they are three sizes of eight points each, and nothing is said of their points.
    grouped = _fit([sizes, *columns, "--form", "chinchilla", "--group", "N", "--json"])
    assert grouped.exit_code == 0, grouped.output
    data = json.loads(grouped.stdout)
    assert len(data["laws"]["shapes"]) == 3 and "points" not in _warnings(grouped.stdout)


def _two_kinds(tmp_path) -> str:
    compute = np.logspace(6, 9, 30)
    return _write(tmp_path, {
        "bent": (compute, SaturatingLaw(a=4e3, b=0.6, c=0.2, d=1e7).loss(compute)),
        "straight": (compute, PowerLaw(a=30.0, b=0.3, c=0.2).loss(compute))})


def test_auto_gives_each_shape_its_own_form_and_the_law_file_records_it(tmp_path) -> None:
    out = tmp_path / "laws.json"
    result = _fit([_two_kinds(tmp_path), *COLUMNS, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "form chosen by --form auto: per-shape (per shape" in result.output
    laws = read_law_file(out)
    assert {s.name: s.law.form for s in laws.shapes} == {"bent": "saturating",
                                                          "straight": "power"}
    chosen = laws.provenance["form_choice"]["chosen"]
    assert chosen == {"form": PER_SHAPE, "share": [],
                      "forms": {"bent": "saturating", "straight": "power"}}
    # Noise-free points of each law: each shape's law is its truth.
    assert laws.shape("bent").law.b == pytest.approx(0.6, rel=1e-3)
    assert laws.shape("straight").law.b == pytest.approx(0.3, rel=1e-3)


def test_with_a_shared_parameter_the_form_stays_common(tmp_path) -> None:
    out = tmp_path / "laws.json"
    result = _fit([_two_kinds(tmp_path), *COLUMNS, "--share", "floor", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len({shape.law.form for shape in read_law_file(out).shapes}) == 1


def test_a_per_shape_fit_is_the_shapes_own_fits_with_joint_bootstrap_samples() -> None:
    compute = np.logspace(6, 9, 30)
    rng = np.random.default_rng(3)
    noisy = [Curve(name, {}, compute, law.loss(compute) * np.exp(rng.normal(0, 0.01, 30)),
                   tuple(range(30)))
             for name, law in (("bent", SaturatingLaw(a=4e3, b=0.6, c=0.2, d=1e7)),
                               ("straight", PowerLaw(a=30.0, b=0.3, c=0.2)))]
    curves = Curves("x.csv", tuple(noisy))
    forms = {"bent": "saturating", "straight": "power"}
    result = fit_forms(curves, forms, bootstrap=5, seed=1)
    assert result.form == PER_SHAPE and result.laws.names == ["bent", "straight"]
    for curve in noisy:
        alone = fit_curves(curves.replace([curve]), forms[curve.name]).laws.shapes[0].law
        assert result.laws.shape(curve.name).law == alone
    assert [len(s.samples) for s in result.laws.shapes] == [5, 5]
    assert set(result.intervals["bent"]) == {"a", "b", "c", "d", "compute"}
    assert set(result.intervals["straight"]) == {"a", "b", "c", "compute"}
    assert result.metrics["all"]["points"] == 60
