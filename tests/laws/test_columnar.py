"""A plain CSV file's mapped columns read whole by numpy (laws.io.columnar), against csv.

The numbers expected come from Python's own ``csv`` and ``float`` on the same text; the
curves expected from the row-by-row reading, which a file sends there by one irregularity.
"""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest

from laws.errors import InputError
from laws.io.columnar import _block_columns, _plain_columns, read_mapped_columns
from laws.io.curves import ColumnMap, _matches, load_curves


def _number_texts(rng: np.random.Generator, count: int) -> list[str]:
    """Decimal numbers written many ways: shortest repr, 17 and 6 digits, long mantissas,
    signs, spaces around, underscores, exponents from 1e-300 to 1e300."""
    values = rng.normal(size=count) * 10.0 ** rng.integers(-300, 300, count)
    styles = [repr, "{:.17e}".format, "{:.6e}".format, " {} ".format,
              lambda v: f"{rng.normal() * 1e4:+.3f}",
              lambda v: f"0.{rng.integers(10**17, 10**18)}{rng.integers(10**17, 10**18)}",
              lambda v: f"1_{rng.integers(100, 999)}.5e{rng.integers(-20, 20)}"]
    return [styles[i % len(styles)](float(v)) for i, v in enumerate(values)]


def _plain_file(rng: np.random.Generator, rows: int) -> str:
    """A plain per-step CSV: two shape columns, a split to filter on, three numbers."""
    runs, widths, splits = ["a", "b", "w8 x"], ["8", "8.0", "16"], ["train", "test"]
    numbers = [_number_texts(rng, rows) for _ in range(3)]
    lines = ["run,width,split,x,y,z,note"]
    for i in range(rows):
        lines.append(",".join([runs[rng.integers(3)], widths[rng.integers(3)],
                               splits[rng.integers(2)], numbers[0][i], numbers[1][i],
                               numbers[2][i], "n"]))
    return "\n".join(lines) + "\n"


def _read(path, shape, filters, numeric):
    return read_mapped_columns(str(path), shape, filters, numeric, _matches)


@pytest.mark.parametrize(("shape", "filters"), [
    (("run", "width"), (("split", "train"),)),
    (("width",), ()),
    ((), (("width", "8"),)),  # a numeric filter: "8" and "8.0" match, "16" does not
])
def test_a_plain_file_gives_the_cells_python_reads(tmp_path, shape, filters) -> None:
    text = _plain_file(np.random.default_rng(7), 3000)
    path = tmp_path / "steps.csv"
    path.write_text(text)
    plain = _plain_columns(text.encode(), ",", shape, filters, ["x", "y", "z"], _matches)
    assert plain is not None  # read whole, not by blocks
    # Expected: csv and float on every row, the filters and first appearances by hand.
    header, *rows = csv.reader(io.StringIO(text))
    at = {name: header.index(name) for name in header}
    kept = [(line, row) for line, row in enumerate(rows, start=2)
            if all(_matches(row[at[col]], wanted) for col, wanted in filters)]
    keys = list(dict.fromkeys(tuple(row[at[col]] for col in shape) for _, row in kept))
    assert plain.keys == keys
    assert plain.codes.tolist() == [keys.index(tuple(row[at[col]] for col in shape))
                                    for _, row in kept]
    assert plain.lines.tolist() == [line for line, _ in kept]
    for name in ("x", "y", "z"):
        expected = np.array([float(row[at[name]]) for _, row in kept])
        assert plain.values[name].tobytes() == expected.tobytes()  # bit for bit
    blocks = _block_columns(str(path), ",", shape, filters, ["x", "y", "z"], _matches)
    assert (blocks.keys, blocks.codes.tolist(), blocks.lines.tolist()) == \
        (plain.keys, plain.codes.tolist(), plain.lines.tolist())


ROWS = "run,C,loss,note\nw8,1e18,3.0,x\nw8,1e19,2.5,x\nw16,1e18,2.9,x\n"
COLUMNS = ColumnMap(shape=("run",), loss="loss", compute="C")


@pytest.mark.parametrize(("name", "text"), [
    ("quoted", ROWS.replace("\nw16", '\n"w16"')),
    ("crlf", ROWS.replace("\n", "\r\n")),
    ("blank line", ROWS.replace("\nw16", "\n\nw16")),
    ("non-ascii", ROWS.replace("w16", "w\u00e916")),
    ("short row", ROWS + "w16,1e19,2.4\n"),
    ("long cell", ROWS + "w" + "1" * 200 + ",1e19,2.4,x\n"),
    ("repeated row", ROWS + "w8,1e19,2.5,x\n"),
    ("tab in csv", ROWS.replace("w16", "w\t16")),
])
def test_a_file_that_is_not_plain_reads_as_the_row_by_row_reading_does(tmp_path, name,
                                                                        text) -> None:
    path = tmp_path / "runs.csv"
    path.write_text(text, newline="")
    columns = (COLUMNS.shape, COLUMNS.filters, ["C", "loss"])
    if name != "tab in csv":  # a tab is a plain byte of a CSV cell
        assert _plain_columns(path.read_bytes(), ",", *columns, _matches) is None
    # The same file with a quoted cell over two lines added last: row by row, always.
    rows = tmp_path / "rows.csv"
    rows.write_text(text + 'w32,1e18,3.5,"two\nlines"\n', newline="")
    try:
        expected = load_curves(rows, COLUMNS)
    except InputError as err:
        with pytest.raises(InputError, match=re.escape(str(err).replace(str(rows), str(path)))):
            load_curves(path, COLUMNS)
        return
    mine = load_curves(path, COLUMNS)
    wanted = [curve for curve in expected.curves if curve.name != "w32"]
    assert [(c.name, c.lines) for c in mine.curves] == [(c.name, c.lines) for c in wanted]
    for ours, theirs in zip(mine.curves, wanted, strict=True):
        assert ours.compute.tobytes() == theirs.compute.tobytes()
        assert ours.loss.tobytes() == theirs.loss.tobytes()
    assert mine.doubts == tuple(d.replace(str(rows), str(path)) for d in expected.doubts)


def test_a_file_without_a_last_line_break_is_still_plain(tmp_path) -> None:
    data = ROWS.rstrip("\n").encode()  # no line break after the last row
    plain = _plain_columns(data, ",", ("run",), (), ["C", "loss"], _matches)
    assert plain.lines.tolist() == [2, 3, 4]
    assert plain.values["loss"].tolist() == [3.0, 2.5, 2.9]


@pytest.mark.parametrize(("text", "pattern"), [
    ("run,C,loss\nw8,1e18,3.0\nw8,abc,2.0\n", r"runs\.csv: line 3: column 'C': not a number"),
    ("run,C,loss\nw8,1e18,3.0\nw8,1e19,inf\n", r"runs\.csv: line 3: column 'loss': 'inf' is "
                                               r"not finite"),
    ("run,C,loss\nw8,1e18,3.0\nw8,1e19,\n", r"runs\.csv: line 3: column 'loss': not a number"),
    ("run,C,loss\nw8,1e18,3.0\nw8 ,1e19,2.0\n",
     r"runs\.csv: the shapes 'w8' \(line 2\) and 'w8 ' \(line 3\) differ only"),
])
def test_a_bad_cell_of_a_plain_file_names_its_line_and_column(tmp_path, text,
                                                              pattern) -> None:
    path = tmp_path / "runs.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=pattern):
        load_curves(path, COLUMNS)


def test_rows_filtered_out_may_hold_anything(tmp_path) -> None:
    path = tmp_path / "runs.csv"
    path.write_text("run,split,C,loss\nw8,train,1e18,3.0\nw8,test,n/a,\nw8,train,1e19,2.5\n")
    table = _read(path, ("run",), (("split", "train"),), ["C", "loss"])
    assert (table.lines.tolist(), table.values["C"].tolist()) == ([2, 4], [1e18, 1e19])
