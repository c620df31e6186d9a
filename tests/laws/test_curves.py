"""Loading curves from CSV and JSONL: column mapping, derived compute, filters, bad input."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from laws.errors import InputError
from laws.io.curves import ColumnMap, LogBins, load_curves

CSV = """run,width,depth,tokens,params,loss,split
a,512,12,1e9,1e8,3.2,train
a,512,12,2e9,1e8,3.0,train
b,512,16,1e9,2e8,3.1,train
b,512,16,3e9,2e8,2.8,test
"""
TOKENS = ColumnMap(shape=("width", "depth"), loss="loss", tokens="tokens", params="params")


def _file(tmp_path, text: str, name: str = "runs.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _assert_same_curves(a, b) -> None:
    for x, y in zip(a.curves, b.curves, strict=True):
        assert x.name == y.name and x.axes == y.axes
        np.testing.assert_allclose(x.compute, y.compute)
        np.testing.assert_allclose(x.loss, y.loss)


def test_csv_multi_axis_shapes_and_derived_compute(tmp_path) -> None:
    curves = load_curves(_file(tmp_path, CSV), TOKENS)
    assert [c.name for c in curves.curves] == ["width512-depth12", "width512-depth16"]
    first, second = curves.curves
    assert first.axes == {"width": 512, "depth": 12}
    assert isinstance(first.axes["width"], int)
    np.testing.assert_allclose(first.compute, [6 * 1e8 * 1e9, 6 * 1e8 * 2e9])
    np.testing.assert_allclose(second.loss, [3.1, 2.8])
    np.testing.assert_allclose(second.n_params, [2e8, 2e8])
    assert second.lines == (4, 5)  # file lines of the rows (header is line 1)
    assert len(curves) == 4


def test_jsonl_matches_csv(tmp_path) -> None:
    rows = [dict(zip(CSV.splitlines()[0].split(","), line.split(","), strict=True))
            for line in CSV.splitlines()[1:]]
    jsonl = "\n".join(json.dumps({k: (float(v) if k != "run" and k != "split" else v)
                                  for k, v in r.items()}) for r in rows)
    a = load_curves(_file(tmp_path, CSV), TOKENS)
    b = load_curves(_file(tmp_path, jsonl, "runs.jsonl"), TOKENS)
    _assert_same_curves(a, b)


def test_tsv_matches_csv(tmp_path) -> None:
    a = load_curves(_file(tmp_path, CSV), TOKENS)
    b = load_curves(_file(tmp_path, CSV.replace(",", "\t"), "runs.tsv"), TOKENS)
    _assert_same_curves(a, b)


def test_compute_column_filters_template_and_product_columns(tmp_path) -> None:
    text = ("w,C,loss,keep,steps,secs\n"
            "8,1e18,3.0,yes,10,2\n8,2e18,2.5,no,20,2\n8,4e18,2.2,yes,40,2\n")
    columns = ColumnMap(shape=("w",), loss="loss", compute="C", filters=(("keep", "yes"),),
                        extra=("steps*secs",), shape_name="w{w}")
    (curve,) = load_curves(_file(tmp_path, text), columns).curves
    assert curve.name == "w8"
    np.testing.assert_allclose(curve.compute, [1e18, 4e18])
    np.testing.assert_allclose(curve.extra["steps*secs"], [20.0, 80.0])


def test_numeric_filter_matches_numbers(tmp_path) -> None:
    columns = ColumnMap(shape=("width",), loss="loss", tokens="tokens", params="params",
                        filters=(("depth", "16.0"),))
    (curve,) = load_curves(_file(tmp_path, CSV), columns).curves
    assert len(curve) == 2


def test_points_are_sorted_by_compute(tmp_path) -> None:
    text = "s,C,loss\nx,3e18,2.0\nx,1e18,3.0\nx,2e18,2.5\n"
    (curve,) = load_curves(_file(tmp_path, text),
                           ColumnMap(shape=("s",), loss="loss", compute="C")).curves
    np.testing.assert_allclose(curve.compute, [1e18, 2e18, 3e18])
    assert curve.lines == (3, 4, 2)


@pytest.mark.parametrize(("text", "columns", "pattern"), [
    (CSV, ColumnMap(shape=("width",), loss="lost", tokens="tokens", params="params"),
     r"runs\.csv: missing column 'lost' \(columns: "),
    ("s,C,loss\nx,1e18,3.0\nx,abc,2.0\n", ColumnMap(shape=("s",), loss="loss", compute="C"),
     r"runs\.csv: line 3: column 'C': not a number: 'abc'"),
    ("s,C,loss\nx,1e18,nan\n", ColumnMap(shape=("s",), loss="loss", compute="C"),
     r"runs\.csv: line 2: column 'loss': 'nan' is not finite"),
    ("s,C,loss\nx,1e18,3.0\nx,-2e18,2.0\n", ColumnMap(shape=("s",), loss="loss", compute="C"),
     r"runs\.csv: line 3: column 'C': compute must be positive, got -2e\+18"),
    ("s,C,loss\n", ColumnMap(shape=("s",), loss="loss", compute="C"),
     r"runs\.csv: empty file"),
    ("", ColumnMap(shape=("s",), loss="loss", compute="C"), r"runs\.csv: empty file"),
    ("s,C,loss\nx,1e18,3.0\n", ColumnMap(shape=("s",), loss="loss", compute="C",
                                         filters=(("s", "y"),)),
     r"runs\.csv: no rows match the filters s=y"),
    ("s,C,loss\nx,1e18,\n", ColumnMap(shape=("s",), loss="loss", compute="C"),
     r"runs\.csv: line 2: column 'loss': not a number: ''"),
])
def test_bad_csv_names_file_line_and_column(tmp_path, text, columns, pattern) -> None:
    with pytest.raises(InputError, match=pattern):
        load_curves(_file(tmp_path, text), columns)


def test_bad_jsonl(tmp_path) -> None:
    columns = ColumnMap(shape=("s",), loss="loss", compute="C")
    with pytest.raises(InputError, match=r"runs\.jsonl: line 2: not valid JSON"):
        load_curves(_file(tmp_path, '{"s": 1, "C": 1, "loss": 2}\n{oops\n', "runs.jsonl"),
                    columns)
    with pytest.raises(InputError, match=r"runs\.jsonl: line 2: missing column 'loss'"):
        load_curves(_file(tmp_path, '{"s": 1, "C": 1, "loss": 2}\n{"s": 1, "C": 2}\n',
                          "runs.jsonl"), columns)
    with pytest.raises(InputError, match=r"line 1: column 'loss': 'NaN' is not finite"):
        load_curves(_file(tmp_path, '{"s": 1, "C": 1, "loss": "NaN"}\n', "runs.jsonl"), columns)
    # validate's curve.jsonl: "shape" is an object of axes (was a TypeError traceback).
    with pytest.raises(InputError, match=r"line 1: column 's' holds a JSON dict, not a value"):
        load_curves(_file(tmp_path, '{"s": {"patch": 7}, "C": 1, "loss": 2}\n', "runs.jsonl"),
                    columns)


def test_column_map_needs_compute_or_tokens_with_params() -> None:
    with pytest.raises(InputError, match="exactly one"):
        ColumnMap(shape=("s",), loss="loss")
    with pytest.raises(InputError, match="exactly one"):
        ColumnMap(shape=("s",), loss="loss", compute="C", tokens="D", params="N")
    with pytest.raises(InputError, match="needs the params column"):
        ColumnMap(shape=("s",), loss="loss", tokens="D")


def test_unknown_suffix_and_missing_file(tmp_path) -> None:
    columns = ColumnMap(shape=("s",), loss="loss", compute="C")
    with pytest.raises(InputError, match="give --format"):
        load_curves(_file(tmp_path, CSV, "runs.dat"), columns)
    assert len(load_curves(_file(tmp_path, "s,C,loss\nx,1,2\n", "runs.dat"), columns,
                           fmt="csv")) == 1
    with pytest.raises(InputError, match="no such file"):
        load_curves(tmp_path / "absent.csv", columns)


def test_log_bins_group_a_numeric_shape_column(tmp_path) -> None:
    sizes = [7.38e7, 7.39e7, 9.9e7, 1.0e8, 1.5e8, 5e8, 3.1e9]
    rows = [f"{n},{c},{3.0 - 0.1 * i}" for n in sizes for i, c in enumerate((1e18, 2e18))]
    path = _file(tmp_path, "N,C,loss\n" + "\n".join(rows) + "\n")
    columns = ColumnMap(shape=("N",), loss="loss", compute="C", params="N",
                        bins=(LogBins("N", 4),))
    curves = load_curves(path, columns).curves
    # Bins by brute force: bin k holds 10^(k/4) <= N < 10^((k+1)/4).
    edges = 10.0 ** (np.arange(0, 60) / 4)
    expected: dict[int, list[float]] = {}
    for n in sizes:
        expected.setdefault(int(np.flatnonzero(edges <= n)[-1]), []).append(n)
    assert len(curves) == len(expected) == 4
    for curve, members in zip(curves, expected.values(), strict=True):
        mean = float(np.exp(np.mean(np.log(members))))
        assert curve.axes["N"] == pytest.approx(mean, rel=5e-3)  # 3 significant digits
        assert curve.name == str(curve.axes["N"])
        assert curve.grouped == {"N": (min(members), max(members))}
        assert len(curve) == 2 * len(members)
        np.testing.assert_allclose(np.sort(curve.n_params), np.sort(np.repeat(members, 2)))
    # 1.0e8 is an edge (10^(32/4)): it opens its bin rather than closing the one below.
    assert curves[0].grouped == {"N": (7.38e7, 9.9e7)}
    assert curves[1].grouped == {"N": (1.0e8, 1.5e8)}


@pytest.mark.parametrize(("text", "pattern"), [
    ("N=0", r"grouping 'N': bins per decade must be a whole number >= 1, got 0"),
    ("N=four", r"grouping 'N=four': bins per decade must be a whole number, got 'four'"),
    ("=4", r"grouping '=4': expected COL or COL=BINS_PER_DECADE"),
])
def test_bad_grouping_options(text, pattern) -> None:
    with pytest.raises(InputError, match=pattern):
        LogBins.parse(text)


def test_grouping_needs_a_positive_shape_column(tmp_path) -> None:
    with pytest.raises(InputError, match=r"cannot group 'loss': it is not a shape column"):
        ColumnMap(shape=("N",), loss="loss", compute="C", bins=(LogBins("loss"),))
    path = _file(tmp_path, "N,C,loss\n1e8,1e18,3.0\n-2e8,1e18,3.0\n")
    with pytest.raises(InputError, match=r"runs\.csv: line 3: column 'N': a grouped shape value "
                                         r"must be positive"):
        load_curves(path, ColumnMap(shape=("N",), loss="loss", compute="C",
                                    bins=(LogBins("N"),)))


# --- files and cells that are not what they claim (issue 17) ---
COLUMNS = ColumnMap(shape=("width",), loss="loss", compute="C")
ROWS = "width,C,loss\n8,1e18,3.0\n8,1e19,2.5\n"


def test_a_row_with_more_cells_than_the_header_is_refused_by_line(tmp_path) -> None:
    path = _file(tmp_path, ROWS + "8,1e20,2.2,9,9\n")
    with pytest.raises(InputError, match=r"runs\.csv: line 4: 2 more cell\(s\) than the 3 "
                                         r"columns of the header"):
        load_curves(path, COLUMNS)


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_a_file_in_another_encoding_is_not_utf8(tmp_path, encoding) -> None:
    path = tmp_path / "runs.csv"
    path.write_bytes(("width,C,loss\nbr\u00e9ve,1e18,3.0\n").encode(encoding))
    with pytest.raises(InputError, match=r"runs\.csv: not UTF-8 text \(byte \d+\); save the "
                                         r"file as UTF-8"):
        load_curves(path, COLUMNS)


def test_utf8_with_a_byte_order_mark_keeps_the_first_column_name(tmp_path) -> None:
    path = tmp_path / "runs.csv"
    path.write_bytes(ROWS.encode("utf-8-sig"))
    assert load_curves(path, COLUMNS).curves[0].axes == {"width": 8}


def test_a_fifo_is_refused_without_opening_it(tmp_path) -> None:
    fifo = tmp_path / "runs.csv"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    with pytest.raises(InputError, match=r"runs\.csv: not a regular file"):
        load_curves(fifo, COLUMNS)


@pytest.mark.parametrize(("text", "pattern"), [
    ("width,C,loss\n8,1e18,3.0\n8,1e19," + "2" * 200_000 + "\n",
     r"line 3: not valid CSV \(field larger than field limit"),
    ('{"width": 8, "C": 1e18, "loss": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
     r"line 1: nested too deeply"),
    ('{"width": 8, "C": 1' + "0" * 400 + ', "loss": 3.0}\n', r"line 1: column 'C': 1000.* is "
                                                               r"not finite"),
    ('{"width": 8, "C": 1' + "0" * 5000 + ', "loss": 3.0}\n', r"line 1: not valid JSON"),
    ('{"width": 8, "C": 1e18, "loss": true}\n', r"line 1: column 'loss': not a number: True"),
    ('{"width": 1' + "0" * 400 + ', "C": 1e18, "loss": 3.0}\n'
     '{"width": 8, "C": 1e18, "loss": 3.0}\n', None),
])
def test_cells_that_break_the_parsers_name_their_line(tmp_path, text, pattern) -> None:
    path = _file(tmp_path, text, "runs.jsonl" if text.startswith("{") else "runs.csv")
    if pattern is None:  # a shape value beyond float range is a name, not an error
        assert [len(curve) for curve in load_curves(path, COLUMNS).curves] == [1, 1]
        return
    with pytest.raises(InputError, match=pattern):
        load_curves(path, COLUMNS)
