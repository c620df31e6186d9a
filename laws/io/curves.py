"""Measured training curves: (shape, compute, loss) points read from CSV or JSONL.

A column mapping says which columns name the shape (several for multi-axis shapes such as
width x depth), which hold the loss, and either the compute or the tokens D and parameters N
from which compute is derived as C = 6 N D. A column may be a product of columns,
``step*seconds_per_step``. Rows can be filtered with ``COL=VALUE``. A numeric shape column
with many nearly equal values (model sizes read off a figure) can be grouped into log-spaced
bins (``LogBins``). A problem with the file is a ``BadInputFile`` naming it, the line and the
column.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "runs.csv")
>>> _ = open(path, "w").write("width,tokens,params,loss\\n8,1e9,1e6,3.0\\n8,2e9,1e6,2.8\\n")
>>> curves = load_curves(path, ColumnMap(shape=("width",), loss="loss", tokens="tokens",
...                                      params="params"))
>>> curves.curves[0].name, curves.curves[0].compute.tolist()
('8', [6000000000000000.0, 1.2e+16])
"""

from __future__ import annotations

import csv
import math
import os
import reprlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from laws.errors import BadInputFile, InputError
from laws.io.jsonfile import ENCODING, check_input_file, not_utf8, parse_json
from laws.io.plausible import (
    check_compute,
    check_names,
    check_template,
    compute_doubt,
    repeated_rows,
)

TOKENS_TO_FLOP = 6.0  # C = 6 N D: forward and backward pass of a dense transformer


@dataclass(frozen=True)
class LogBins:
    """Group the values of a numeric shape column into ``per_decade`` bins per factor of ten.

    Bin k holds the values v with 10^(k / per_decade) <= v < 10^((k + 1) / per_decade): every
    bin spans the same ratio (a factor 1.78 at 4 per decade), and the edges sit at fixed powers
    of ten, not at places that depend on the data, so two files bin alike. (Rounding to K
    significant digits instead would make bins of uneven ratio: 1 to 2 is a factor 2, 9 to 10 a
    factor 1.1.) A shape's value on a grouped axis is the geometric mean of its points' values,
    to 3 significant digits; the range its points covered is kept (``Curve.grouped``).

    >>> LogBins.parse("Model Size=4"), LogBins.parse("width").per_decade
    (LogBins(column='Model Size', per_decade=4), 4)
    >>> LogBins("N", 4).index(np.array([1e9, 1.7e9, 1.8e9])).tolist()
    [36, 36, 37]
    """

    column: str
    per_decade: int = 4

    def __post_init__(self) -> None:
        if isinstance(self.per_decade, bool) or not isinstance(self.per_decade, int) \
                or self.per_decade < 1:
            raise InputError(f"grouping {self.column!r}: bins per decade must be a whole number "
                             f">= 1, got {self.per_decade!r}")

    @classmethod
    def parse(cls, text: str) -> LogBins:
        """``COL`` (4 bins per decade) or ``COL=K`` (K bins per decade)."""
        column, sep, count = text.rpartition("=") if "=" in text else (text, "", "")
        if not column:
            raise InputError(f"grouping {text!r}: expected COL or COL=BINS_PER_DECADE")
        if not sep:
            return cls(column)
        try:
            per_decade = int(count)
        except ValueError:
            raise InputError(f"grouping {text!r}: bins per decade must be a whole number, got "
                             f"{count!r}") from None
        return cls(column, per_decade)

    def index(self, values: np.ndarray) -> np.ndarray:
        """The bin of each (positive) value; a value within rounding of an edge goes up."""
        return np.floor(np.log10(values) * self.per_decade + 1e-9).astype(int)


@dataclass(frozen=True)
class ColumnMap:
    """Which columns hold what. Give ``compute``, or ``tokens`` with ``params``.

    ``params`` alone with ``compute`` gives the model size N that the ``chinchilla`` form
    needs; ``extra`` names further numeric columns to keep (a hold-out column, a time column).
    ``shape_name`` formats the shape's name from its columns, e.g. ``"w{width}-d{depth}"``.
    ``bins`` groups shape columns into log-spaced bins (each must be one of ``shape``).
    """

    shape: tuple[str, ...]
    loss: str
    compute: str | None = None
    tokens: str | None = None
    params: str | None = None
    filters: tuple[tuple[str, str], ...] = ()
    extra: tuple[str, ...] = ()
    shape_name: str | None = None
    bins: tuple[LogBins, ...] = ()

    def __post_init__(self) -> None:
        for grouping in self.bins:
            if grouping.column not in self.shape:
                raise InputError(f"cannot group {grouping.column!r}: it is not a shape column "
                                 f"(shape columns: {', '.join(self.shape) or 'none'})")
        if (self.compute is None) == (self.tokens is None):
            raise InputError("give the compute column, or the tokens column with the params "
                             "column (C = 6 N D), exactly one of them")
        if self.tokens is not None and self.params is None:
            raise InputError("the tokens column needs the params column to derive C = 6 N D")
        if self.shape_name is not None:
            check_template(self.shape_name, self.shape)

    def options(self) -> dict[str, Any]:
        """The columns given, as a law file's provenance records them (the command line's
        names; hold-out and time columns belong to the fit's options)."""
        given = {"shape_col": list(self.shape), "shape_name": self.shape_name,
                 "group": [f"{b.column}={b.per_decade}" for b in self.bins],
                 "compute_col": self.compute, "tokens_col": self.tokens,
                 "params_col": self.params, "loss_col": self.loss,
                 "filter": [f"{key}={value}" for key, value in self.filters]}
        return {key: value for key, value in given.items() if value not in (None, [])}

    def named(self) -> list[str]:
        """Every column the mapping reads (the factors of product columns one by one)."""
        specs = [*self.shape, self.loss, self.compute, self.tokens, self.params, *self.extra,
                 *(col for col, _ in self.filters)]
        return [name for spec in specs if spec for name in spec.split("*")]


@dataclass(frozen=True)
class Curve:
    """The points of one shape, sorted by compute; ``lines`` are the source line numbers.

    ``grouped`` maps each axis grouped into bins to the (lowest, highest) value its points had.
    """

    name: str
    axes: dict
    compute: np.ndarray
    loss: np.ndarray
    lines: tuple[int, ...]
    n_params: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    grouped: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.compute.size)

    def subset(self, mask: np.ndarray) -> Curve:
        """The points where ``mask`` holds."""
        return Curve(self.name, self.axes, self.compute[mask], self.loss[mask],
                     tuple(np.asarray(self.lines)[mask].tolist()),
                     None if self.n_params is None else self.n_params[mask],
                     {k: v[mask] for k, v in self.extra.items()}, self.grouped)


@dataclass(frozen=True)
class Curves:
    """All curves read from one file (``source``), in order of first appearance."""

    source: str
    curves: tuple[Curve, ...]
    doubts: tuple[str, ...] = ()  # what reading found implausible but possible (fit warns)

    def __len__(self) -> int:
        return sum(len(curve) for curve in self.curves)

    def replace(self, curves: list[Curve]) -> Curves:
        return Curves(self.source, tuple(curves), self.doubts)


def load_curves(path: str | os.PathLike, columns: ColumnMap, fmt: str | None = None) -> Curves:
    """Read the curves of ``path`` (CSV or JSONL, by ``fmt`` or the file suffix)."""
    path = str(path)
    fmt = fmt or _format_from_suffix(path)
    check_input_file(path, "")
    try:
        records = list(_read_records(path, fmt))
    except UnicodeDecodeError as err:
        raise not_utf8(path, err) from None
    if not records:
        raise BadInputFile(f"{path}: empty file (no data rows)")
    for col in columns.named():
        _require_column(records, col, path)
    bins = {grouping.column: grouping for grouping in columns.bins}
    points: dict[tuple, list] = {}
    for line, record in records:
        if all(_matches(record.get(col), value) for col, value in columns.filters):
            key = tuple(_bin_key(record, bins[col], path, line) if col in bins
                        else _axis_value(_cell(record, col, path, line))
                        for col in columns.shape)
            points.setdefault(key, []).append((line, record))
    if not points:
        filters = ", ".join(f"{c}={v}" for c, v in columns.filters)
        raise BadInputFile(f"{path}: no rows match the filters {filters}")
    curves = tuple(_curve(key, rows, columns, path) for key, rows in points.items())
    check_names(curves, path)
    doubts = [repeated_rows([row for rows in points.values() for row in rows], path),
              compute_doubt(curves, path) if columns.params is None else None]
    return Curves(path, curves, tuple(doubt for doubt in doubts if doubt))


def _bin_key(record: dict, grouping: LogBins, path: str, line: int) -> tuple[str, int]:
    value = _positive(record, grouping.column, "a grouped shape value", path, line)
    return ("bin", int(grouping.index(np.array(value))))


def _grouped_axes(key: tuple, rows: list[tuple[int, dict]], columns: ColumnMap,
                  path: str) -> tuple[tuple, dict[str, tuple[float, float]]]:
    """The key with each bin replaced by its points' geometric mean (3 significant digits),
    and the range of values each grouped axis covered."""
    binned = {grouping.column for grouping in columns.bins}
    grouped, values = {}, list(key)
    for position, col in enumerate(columns.shape):
        if col in binned:
            raw = np.array([_positive(r, col, "a grouped shape value", path, line)
                            for line, r in rows])
            values[position] = _axis_value(float(f"{np.exp(np.mean(np.log(raw))):.3g}"))
            grouped[col] = (float(raw.min()), float(raw.max()))
    return tuple(values), grouped


def _format_from_suffix(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    raise BadInputFile(f"{path}: cannot tell the format from the suffix {suffix!r}; "
                       "give --format csv or --format jsonl")


def _read_records(path: str, fmt: str) -> Iterator[tuple[int, dict]]:
    if fmt == "csv":
        delimiter = "\t" if path.lower().endswith(".tsv") else ","
        with open(path, newline="", encoding=ENCODING) as handle:
            # strict: a quote left open to the end of the file is an error, not one long cell
            reader = csv.DictReader(handle, delimiter=delimiter, strict=True)
            try:
                for record in reader:
                    if None in record:  # DictReader's key for the cells beyond the header
                        raise BadInputFile(f"{path}: line {reader.line_num}: "
                                           f"{len(record[None])} more cell(s) than the "
                                           f"{len(reader.fieldnames)} columns of the header")
                    yield reader.line_num, record
            except csv.Error as err:  # a cell beyond the field limit: raised before the
                # reader counts the line it is in
                raise BadInputFile(f"{path}: line {reader.line_num + 1}: not valid CSV ({err})"
                                   ) from None
    elif fmt == "jsonl":
        with open(path, encoding=ENCODING) as handle:
            for line, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                yield line, _json_record(text, path, line)
    else:
        raise InputError(f"unknown format {fmt!r}; expected csv or jsonl")


def _json_record(text: str, path: str, line: int) -> dict:
    record = parse_json(text, f"{path}: line {line}", "a record")
    if not isinstance(record, dict):
        raise BadInputFile(f"{path}: line {line}: expected a JSON object")
    return record


def _require_column(records: list[tuple[int, dict]], col: str, path: str) -> None:
    if all(col not in record for _, record in records):
        # repr: a header cell may hold a quoted line break, and the error stays one line
        known = ", ".join(repr(k) for k in sorted({k for _, r in records for k in r
                                                   if k is not None}))
        raise BadInputFile(f"{path}: missing column {col!r} (columns: {known})")


def _cell(record: dict, col: str, path: str, line: int) -> object:
    if col not in record or record[col] is None:
        raise BadInputFile(f"{path}: line {line}: missing column {col!r}")
    if isinstance(record[col], (dict, list)):
        raise BadInputFile(f"{path}: line {line}: column {col!r} holds a JSON "
                           f"{type(record[col]).__name__}, not a value (validate's curve.jsonl "
                           "names its shapes in 'shape_name')")
    return record[col]


def _number(record: dict, spec: str, path: str, line: int) -> float:
    """The value of column ``spec``, or the product of the columns in ``a*b``."""
    value = 1.0
    for name in spec.split("*"):
        raw = _cell(record, name, path, line)
        try:
            if isinstance(raw, bool):
                raise TypeError
            number = float(raw)
        except (TypeError, ValueError):
            raise BadInputFile(f"{path}: line {line}: column {name!r}: not a number: "
                               f"{reprlib.repr(raw)}") from None
        except OverflowError:
            number = math.inf  # an integer beyond float range
        if not math.isfinite(number):
            raise BadInputFile(f"{path}: line {line}: column {name!r}: {reprlib.repr(raw)} is "
                               "not finite")
        value *= number
    return value


def _matches(raw: object, wanted: str) -> bool:
    if raw is None:
        return False
    if str(raw) == wanted:
        return True
    try:
        return float(raw) == float(wanted)
    except (TypeError, ValueError, OverflowError):
        return False


def _axis_value(raw: object) -> object:
    """Axis values as numbers where they are numbers (512, not "512" or 512.0)."""
    try:
        number = float(raw)
    except (TypeError, ValueError, OverflowError):
        return raw
    if not math.isfinite(number):
        return raw
    return int(number) if number.is_integer() else number


def _curve(key: tuple, rows: list[tuple[int, dict]], columns: ColumnMap, path: str) -> Curve:
    key, grouped = _grouped_axes(key, rows, columns, path)
    axes = dict(zip(columns.shape, key, strict=True))
    lines = [line for line, _ in rows]
    if columns.shape_name:
        try:
            name = columns.shape_name.format(**axes)
        except (KeyError, IndexError, ValueError, TypeError) as err:
            raise InputError(f"shape name template {columns.shape_name!r}: {err}") from None
    else:
        name = "-".join(str(v) for v in key) if len(key) == 1 else "-".join(
            f"{col}{v}" for col, v in axes.items())
    if not columns.shape:
        name = "curve"  # one curve: the file has no shape column
    elif not name.strip():
        raise BadInputFile(f"{path}: line {lines[0]}: an empty shape name (shape columns "
                           f"{', '.join(map(repr, columns.shape))})")
    loss = np.array([_positive(r, columns.loss, "loss", path, line) for line, r in rows])
    n_params = None
    if columns.params is not None:
        n_params = np.array([_positive(r, columns.params, "parameter count", path, line)
                             for line, r in rows])
    if columns.compute is not None:
        compute = np.array([_positive(r, columns.compute, "compute", path, line)
                            for line, r in rows])
    else:
        tokens = np.array([_positive(r, columns.tokens, "token count", path, line)
                           for line, r in rows])
        compute = TOKENS_TO_FLOP * n_params * tokens
    extra = {col: np.array([_number(r, col, path, line) for line, r in rows])
             for col in columns.extra}
    if n_params is not None and columns.compute is not None:
        check_compute(name, compute, n_params, lines, path)
    order = np.argsort(compute, kind="stable")
    return Curve(name, axes, compute[order], loss[order], tuple(np.array(lines)[order].tolist()),
                 None if n_params is None else n_params[order],
                 {k: v[order] for k, v in extra.items()}, grouped)


def _positive(record: dict, spec: str, what: str, path: str, line: int) -> float:
    value = _number(record, spec, path, line)
    if value <= 0:
        raise BadInputFile(f"{path}: line {line}: column {spec!r}: {what} must be positive, "
                           f"got {value:g}")
    return value

