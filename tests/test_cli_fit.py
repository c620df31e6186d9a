"""`shapeshift fit`: law file with provenance, tables and JSON, progress on stderr, and every
bad input ending with exit code 2 and one line naming file, row or field."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli import main
from laws.fit.reduce import REDUCE_ABOVE
from laws.io.lawfile import read_law_file

COMPUTE = np.logspace(18, 21, 8)


def _csv(tmp_path, name: str = "runs.csv") -> str:
    lines = ["width,depth,C,loss,kind"]
    for width, a in ((256, 5e6), (512, 3e6)):
        for c in COMPUTE:
            lines.append(f"{width},12,{c:.6e},{2.0 + a * c**-0.3:.8f},hot")
    lines.append("512,12,1e22,9.9,cool")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


BASE = ["--shape-col", "width", "--shape-col", "depth", "--compute-col", "C",
        "--loss-col", "loss", "--filter", "kind=hot"]


def test_help() -> None:
    result = CliRunner().invoke(main, ["fit", "--help"])
    assert result.exit_code == 0 and "--holdout-above" in result.output


def test_fit_writes_a_law_file_with_provenance(tmp_path) -> None:
    curves = _csv(tmp_path)
    out = tmp_path / "laws.json"
    result = CliRunner().invoke(main, ["fit", curves, *BASE, "--shape-name", "w{width}",
                                       "--provenance", "licence=MIT", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "w256" in result.output and "rmse" in result.output
    laws = read_law_file(out)
    assert laws.names == ["w256", "w512"]
    assert laws.shape("w512").law.b == pytest.approx(0.3, rel=1e-3)
    provenance = laws.provenance
    digest = hashlib.sha256(Path(curves).read_bytes()).hexdigest()
    assert provenance["input"] == {"file": "runs.csv", "sha256": digest}
    assert provenance["options"]["filter"] == ["kind=hot"]
    assert provenance["licence"] == "MIT"
    assert provenance["tool"].startswith("shapeshift fit ")
    assert provenance["fit_metrics"]["metrics"]["all"]["points"] == 16


def test_json_bootstrap_and_holdout(tmp_path) -> None:
    result = CliRunner().invoke(main, ["fit", _csv(tmp_path), *BASE, "--share", "floor",
                                       "--bootstrap", "5", "--holdout-above", "2e20",
                                       "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["fit"]["shared"]["c"] == pytest.approx(2.0, rel=1e-3)
    assert set(data["fit"]["intervals"]) == {"width256-depth12", "width512-depth12"}
    assert data["holdout"]["metrics"]["all"]["points"] == 2 * int(np.sum(COMPUTE > 2e20))
    assert "bootstrap 5/5" in result.stderr  # progress on stderr, never on stdout
    # Intervals at 90%, as every command's, and the table says so.
    assert data["fit"]["bootstrap"]["level"] == 0.9
    text = CliRunner().invoke(main, ["fit", _csv(tmp_path), *BASE, "--share", "floor",
                                     "--bootstrap", "5"])
    assert "[low, high]: their 90% percentile intervals" in text.stdout


def _bad_inputs(tmp_path):
    good = _csv(tmp_path)
    lines = Path(good).read_text().splitlines()
    header = lines[0].split(",")

    def edited(name: str, row: int, column: str, value: str) -> str:
        """The good file with data row ``row`` (file line row + 2) changed in ``column``."""
        copy = [line.split(",") for line in lines]
        copy[row + 1][header.index(column)] = value
        path = tmp_path / name
        path.write_text("\n".join(",".join(cells) for cells in copy) + "\n")
        return str(path)

    def written(name: str, content: str) -> str:
        path = tmp_path / name
        path.write_text(content)
        return str(path)

    return [
        (["fit", good, *BASE[:-4], "--loss-col", "lost"], "runs.csv: missing column 'lost'"),
        (["fit", edited("word.csv", 2, "loss", "abc"), *BASE],
         "word.csv: line 4: column 'loss': not a number: 'abc'"),
        (["fit", edited("nan.csv", 3, "loss", "nan"), *BASE],
         "nan.csv: line 5: column 'loss': 'nan' is not finite"),
        (["fit", edited("neg.csv", 0, "C", "-1e18"), *BASE],
         "neg.csv: line 2: column 'C': compute must be positive"),
        (["fit", written("empty.csv", ""), *BASE], "empty.csv: empty file"),
        (["fit", written("few.csv", "\n".join(lines[:3]) + "\n"), *BASE],
         "few.csv: shape 'width256-depth12' has 2 point(s); the power form needs at least 3"),
        (["fit", good, *BASE, "--filter", "kind"], "--filter 'kind': expected KEY=VALUE"),
        (["fit", str(tmp_path / "absent.csv"), *BASE], "absent.csv: no such file"),
        (["fit", good, *BASE, "--form", "chinchilla"], "params column"),
        (["fit", good, *BASE, "--holdout-above", "1e30"], "no points lie above"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_bad_input_is_one_line_and_exit_2(tmp_path, case) -> None:
    argv, expected = _bad_inputs(tmp_path)[case]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines


def test_group_and_bootstrap_go_into_the_law_file(tmp_path) -> None:
    # Model sizes as read off a figure: 1.00e8 and 1.01e8 are one model, 3e8 another.
    lines = ["N,C,loss"]
    for n in (1.00e8, 1.01e8, 3e8):
        lines += [f"{n:.4e},{c:.6e},{2.0 + 4e5 * c ** -0.3 + 1e3 * n ** -0.3:.8f}"
                  for c in COMPUTE]
    path = tmp_path / "sizes.csv"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "laws.json"
    argv = ["fit", str(path), "--shape-col", "N", "--compute-col", "C", "--loss-col", "loss",
            "--group", "N=4", "--bootstrap", "3", "-o", str(out)]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    laws = read_law_file(out)
    assert laws.names == ["100000000", "300000000"]  # geometric means, 3 significant digits
    small = laws.shape("100000000")
    assert small.measured.points == 16 and small.measured.axes_range == {"N": (1.00e8, 1.01e8)}
    assert small.measured.compute_range == (COMPUTE[0], COMPUTE[-1])
    assert all(len(shape.samples) == 3 for shape in laws.shapes)
    assert laws.provenance["options"]["group"] == ["N=4"]


@pytest.mark.parametrize(("group", "expected"), [
    ("N=0", "error: grouping 'N': bins per decade must be a whole number >= 1, got 0"),
    ("loss", "error: cannot group 'loss': it is not a shape column"),
])
def test_bad_group_is_one_line_and_exit_2(tmp_path, group, expected) -> None:
    result = CliRunner().invoke(main, ["fit", _csv(tmp_path), *BASE, "--group", group])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith(expected), lines


def test_help_shows_auto_as_the_default_and_strict() -> None:
    result = CliRunner().invoke(main, ["fit", "--help"])
    assert result.exit_code == 0
    assert "[default: auto]" in result.output and "--strict" in result.output


def test_auto_records_its_choice_and_the_holdout_says_which_fit(tmp_path) -> None:
    out = tmp_path / "laws.json"
    result = CliRunner().invoke(main, ["fit", _csv(tmp_path), *BASE, "--holdout-above", "2e20",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "form chosen by --form auto: power" in result.output
    assert "the laws are fitted on all points" in result.output
    provenance = read_law_file(out).provenance
    assert provenance["form_choice"]["chosen"]["form"] == "power"
    assert [c["form"] for c in provenance["form_choice"]["candidates"]] == ["power", "saturating"]
    assert provenance["holdout"]["fit"].startswith("points up to the cut-off")
    assert provenance["warnings"] == []


def _five_points(tmp_path) -> str:
    path = tmp_path / "five.csv"
    path.write_text("width,C,loss\n" + "".join(f"8,{c:.6e},{2.0 + 5e6 * c**-0.3:.8f}\n"
                                               for c in COMPUTE[:5]))
    return str(path)


def test_a_five_point_saturating_fit_warns_in_table_and_json(tmp_path) -> None:
    argv = ["fit", _five_points(tmp_path), "--shape-col", "width", "--compute-col", "C",
            "--loss-col", "loss", "--form", "saturating"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert "warning (points): too few points" in result.output
    assert "8 (5 points for 4 parameters)" in result.output
    data = json.loads(CliRunner().invoke(main, [*argv, "--json"]).stdout)
    assert [w["kind"] for w in data["warnings"]] == ["points"]
    assert data["laws"]["provenance"]["warnings"] == data["warnings"]


def test_strict_turns_a_warning_into_one_line_and_exit_2(tmp_path) -> None:
    out = tmp_path / "laws.json"
    result = CliRunner().invoke(main, ["fit", _five_points(tmp_path), "--shape-col", "width",
                                       "--compute-col", "C", "--loss-col", "loss", "--form",
                                       "saturating", "--strict", "-o", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --strict: 1 fit warning(s): too few")
    assert not out.exists()


def test_a_cut_off_below_every_point_is_one_line_and_exit_2(tmp_path) -> None:
    result = CliRunner().invoke(main, ["fit", _csv(tmp_path), *BASE, "--holdout-above", "0"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0] == ("error: --holdout-above 0: no shape has points both at or below the "
                        "cut-off and above it")


def _curves(tmp_path, losses: dict[int, np.ndarray]) -> str:
    lines = ["width,C,loss"] + [f"{width},{c:.6e},{loss:.8f}" for width, curve in losses.items()
                                for c, loss in zip(COMPUTE, curve, strict=True)]
    path = tmp_path / "runs.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize("rising", [2.0 + 1e-6 * COMPUTE ** 0.3, np.full(COMPUTE.size, 3.0)],
                         ids=["rising", "constant"])
def test_losses_that_do_not_fall_with_compute_are_refused_naming_the_shape(tmp_path,
                                                                            rising) -> None:
    out = tmp_path / "laws.json"
    falling = 2.0 + 5e6 * COMPUTE ** -0.3
    result = CliRunner().invoke(main, ["fit", _curves(tmp_path, {256: falling, 512: rising}),
                                       "--shape-col", "width", "--compute-col", "C",
                                       "--loss-col", "loss", "-o", str(out)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "shape '512': losses do not decrease with compute" in lines[0]
    assert not out.exists()


def test_a_noisy_but_falling_curve_still_fits(tmp_path) -> None:
    # 5% noise, more than some steps of the law between neighbouring points: two neighbours
    # rise, the curve falls overall.
    noise = 1.0 + 0.05 * np.random.default_rng(1).standard_normal(COMPUTE.size)
    losses = (2.0 + 5e5 * COMPUTE ** -0.3) * noise
    assert np.any(np.diff(losses) > 0)
    result = CliRunner().invoke(main, ["fit", _curves(tmp_path, {256: losses}), "--shape-col",
                                       "width", "--compute-col", "C", "--loss-col", "loss",
                                       "--form", "power", "--json"])
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)["laws"]["shapes"][0]["params"]
    # The fit recovers the noiseless law: within the 5% noise of a single point everywhere on
    # the fitted range (this draw: 2.8% at most), and the exponent within 0.05 of 0.3.
    fitted = params["c"] + params["a"] * COMPUTE ** -params["b"]
    assert np.max(np.abs(fitted / (2.0 + 5e5 * COMPUTE ** -0.3) - 1)) < 0.05
    assert abs(params["b"] - 0.3) < 0.05


def test_fit_and_search_refuse_an_unwritable_output_before_any_work(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for args in (["fit", _csv(tmp_path), *BASE, "--bootstrap", "100000"],
                 ["search", "--preset", "demo", "--target", "2.1", "--levels", "1000000"]):
        for option in ("-o", "--graphml") if args[0] == "search" else ("-o",):
            result = CliRunner().invoke(main, [*args, option, str(blocker / "out")])
            assert result.exit_code == 2, result.output
            assert result.output.strip() == f"error: {blocker / 'out'}: {blocker} is not a folder"


def _per_step_csv(tmp_path, steps: int = 600) -> tuple[str, np.ndarray]:
    """Two runs logged at every step (compute = step x 1e12); the file and the compute."""
    compute = np.arange(1, steps + 1) * 1e12
    noise = np.exp(0.02 * np.random.default_rng(3).standard_normal((2, steps)))
    lines = ["run,flops,loss"] + [f"{run},{c:.6e},{(2.0 + a * c ** -0.1) * e:.8f}"
                                  for run, a, row in (("w8", 40.0, noise[0]),
                                                      ("w16", 30.0, noise[1]))
                                  for c, e in zip(compute, row, strict=True)]
    path = tmp_path / "steps.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path), compute


def _points_kept(compute: np.ndarray, per_decade: int = 50, per_bin: int = 32) -> int:
    """Brute force: the rows of each bin [10^(k/50), 10^((k+1)/50)), at most 32 a bin."""
    low, high = (math.floor(math.log10(v) * per_decade) for v in (compute[0], compute[-1]))
    return sum(min(per_bin, int(np.sum((compute >= 10 ** (k / per_decade))
                                      & (compute < 10 ** ((k + 1) / per_decade)))))
               for k in range(low - 1, high + 2))


@pytest.mark.parametrize(("given", "reduced", "recorded"), [
    ([], False, None),  # the default, 2000 points, lies above the 600 of each run
    (["--reduce-above", "500"], True, 500),
    (["--reduce-above", "600"], False, 600),
    (["--reduce-above", "none"], False, "none"),
])
def test_reduce_above_sets_the_threshold_and_the_law_file_records_it(tmp_path, given, reduced,
                                                                     recorded) -> None:
    path, compute = _per_step_csv(tmp_path)
    out = tmp_path / "laws.json"
    result = CliRunner().invoke(main, ["fit", path, "--shape-col", "run", "--compute-col",
                                       "flops", "--loss-col", "loss", "--form", "power", *given,
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    provenance = read_law_file(out).provenance
    options = provenance["options"]
    if recorded is None:
        assert "reduce_above" not in options
    else:
        assert options["reduce_above"] == (None if recorded == "none" else recorded)
    record = provenance["fit_metrics"].get("reduction")
    if not reduced:
        assert record is None
        return
    assert record["above"] == recorded
    assert record["laws"].startswith("re-minimised on every row")
    assert {name: (shape["rows"], shape["points"], shape["weights"]["sum"])
            for name, shape in record["shapes"].items()} == \
        {name: (600, _points_kept(compute), 600.0) for name in ("w8", "w16")}


@pytest.mark.parametrize("value", ["-3", "1.5", "many", ""])
def test_a_bad_reduce_above_is_one_line_and_exit_2(tmp_path, value) -> None:
    path, _ = _per_step_csv(tmp_path, 20)
    result = CliRunner().invoke(main, ["fit", path, "--shape-col", "run", "--compute-col",
                                       "flops", "--loss-col", "loss", f"--reduce-above={value}"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0] == (f"error: --reduce-above {value!r}: expected a whole number of points "
                        "(>= 0) or 'none'")


def test_help_shows_reduce_above_and_its_default() -> None:
    result = CliRunner().invoke(main, ["fit", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # click wraps the help
    assert "--reduce-above N|none" in text and f"(default: {REDUCE_ABOVE};" in text
