"""Measured training curves: (shape, compute, loss) points read from CSV or JSONL.

A column mapping says which columns name the shape (several for multi-axis shapes such as
width x depth), which hold the loss, and either the compute or the tokens D and parameters N
from which compute is derived as C = 6 N D. A column may be a product of columns,
``step*seconds_per_step``. Rows can be filtered with ``COL=VALUE``. A numeric shape column
with many nearly equal values (model sizes read off a figure) can be grouped into log-spaced
bins (``LogBins``). A problem with the file is a ``BadInputFile`` naming it, the line and the
column. A regular CSV file is read a block of rows at a time (``laws.io.columnar``: per-step
logs of hundreds of thousands of rows), any other row by row (``laws.io.records``).

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "runs.csv")
>>> _ = open(path, "w").write("width,tokens,params,loss\\n8,1e9,1e6,3.0\\n8,2e9,1e6,2.8\\n")
>>> curves = load_curves(path, ColumnMap(shape=("width",), loss="loss", tokens="tokens",
...                                      params="params"))
>>> curves.curves[0].name, curves.curves[0].compute.tolist()
('8', [6000000000000000.0, 1.2e+16])
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from laws.errors import BadInputFile, InputError
from laws.io.columnar import read_mapped_columns
from laws.io.jsonfile import check_input_file, not_utf8
from laws.io.plausible import (
    check_compute,
    check_names,
    check_template,
    compute_doubt,
    repeated_rows,
)
from laws.io.records import (
    cell_number,
    cell_value,
    format_from_suffix,
    read_records,
    require_column,
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
    ``weights``: how many rows each point stands for, where a per-step curve was reduced to
    bins (``laws.fit.reduce``); None: one each.
    """

    name: str
    axes: dict
    compute: np.ndarray
    loss: np.ndarray
    lines: tuple[int, ...]
    n_params: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    grouped: dict[str, tuple[float, float]] = field(default_factory=dict)
    weights: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.compute.size)

    def subset(self, mask: np.ndarray) -> Curve:
        """The points where ``mask`` holds."""
        return Curve(self.name, self.axes, self.compute[mask], self.loss[mask],
                     tuple(itertools.compress(self.lines, mask.tolist())),
                     None if self.n_params is None else self.n_params[mask],
                     {k: v[mask] for k, v in self.extra.items()}, self.grouped,
                     None if self.weights is None else self.weights[mask])


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
    fmt = fmt or format_from_suffix(path)
    check_input_file(path, "")
    try:
        quick = _columnar_csv(path, columns) if fmt == "csv" else None
        if quick is not None:
            return quick
        records = list(read_records(path, fmt))
    except UnicodeDecodeError as err:
        raise not_utf8(path, err) from None
    if not records:
        raise BadInputFile(f"{path}: empty file (no data rows)")
    for col in columns.named():
        require_column(records, col, path)
    bins = {grouping.column: grouping for grouping in columns.bins}
    points: dict[tuple, list] = {}
    for line, record in records:
        if all(_matches(record.get(col), value) for col, value in columns.filters):
            key = tuple(_bin_key(record, bins[col], path, line) if col in bins
                        else _axis_value(cell_value(record, col, path, line))
                        for col in columns.shape)
            points.setdefault(key, []).append((line, record))
    if not points:
        filters = ", ".join(f"{c}={v}" for c, v in columns.filters)
        raise BadInputFile(f"{path}: no rows match the filters {filters}")
    curves = tuple(_curve(key, rows, columns, path) for key, rows in points.items())
    return _checked(curves, columns, path,
                    repeated_rows([row for rows in points.values() for row in rows], path))


def _checked(curves: tuple[Curve, ...], columns: ColumnMap, path: str,
             repeats: str | None) -> Curves:
    """The curves once their names pass, with what reading found doubtful."""
    check_names(curves, path)
    doubts = [repeats, compute_doubt(curves, path) if columns.params is None else None]
    return Curves(path, curves, tuple(doubt for doubt in doubts if doubt))


def _columnar_csv(path: str, columns: ColumnMap) -> Curves | None:
    """The curves of a regular CSV file read a block of rows at a time (``laws.io.columnar``),
    or None where the file needs the row-by-row reading, which names the line of any problem:
    an irregular file, grouped shape values, a value that must be positive and is not."""
    if columns.bins:
        return None
    table = read_mapped_columns(path, columns.shape, columns.filters, _numeric_columns(columns),
                                _matches)
    if table is None:
        return None
    specs = {spec for spec in (columns.loss, columns.compute, columns.tokens, columns.params,
                               *columns.extra) if spec}
    value = {spec: functools.reduce(operator.mul, (table.values[name]
                                                   for name in spec.split("*")))
             for spec in specs}
    if not all(np.all(value[spec] > 0) for spec in specs - set(columns.extra)):
        return None
    merged: dict[tuple, list[np.ndarray]] = {}
    for code, cells in enumerate(table.keys):  # "8" and "8.0" are one shape, 8
        merged.setdefault(tuple(_axis_value(cell) for cell in cells), []).append(
            np.flatnonzero(table.codes == code))
    curves = []
    for key, parts in merged.items():
        rows = np.sort(np.concatenate(parts))
        curves.append(_assembled(
            key, {}, columns, path, table.lines[rows], value[columns.loss][rows],
            *(None if spec is None else value[spec][rows]
              for spec in (columns.params, columns.compute, columns.tokens)),
            {col: value[col][rows] for col in columns.extra}))
    return _checked(tuple(curves), columns, path, None)


def _numeric_columns(columns: ColumnMap) -> list[str]:
    """The numeric columns a mapping reads, the factors of product columns one by one."""
    return list(dict.fromkeys(name for spec in (columns.loss, columns.compute, columns.tokens,
                                                columns.params, *columns.extra)
                              if spec for name in spec.split("*")))


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
    lines = [line for line, _ in rows]

    def positive(spec: str | None, what: str) -> np.ndarray | None:
        return None if spec is None else np.array(
            [_positive(r, spec, what, path, line) for line, r in rows])

    name = _curve_name(key, columns, path, lines)  # before the values: a bad name first
    return _assembled(key, grouped, columns, path, lines, positive(columns.loss, "loss"),
                      positive(columns.params, "parameter count"),
                      positive(columns.compute, "compute"),
                      positive(columns.tokens, "token count"),
                      {col: np.array([cell_number(r, col, path, line) for line, r in rows])
                       for col in columns.extra}, name)


def _curve_name(key: tuple, columns: ColumnMap, path: str,
                lines: list[int] | np.ndarray) -> str:
    axes = dict(zip(columns.shape, key, strict=True))
    if columns.shape_name:
        try:
            name = columns.shape_name.format(**axes)
        except (KeyError, IndexError, ValueError, TypeError) as err:
            raise InputError(f"shape name template {columns.shape_name!r}: {err}") from None
    else:
        name = "-".join(str(v) for v in key) if len(key) == 1 else "-".join(
            f"{col}{v}" for col, v in axes.items())
    if not columns.shape:
        return "curve"  # one curve: the file has no shape column
    if not name.strip():
        raise BadInputFile(f"{path}: line {lines[0]}: an empty shape name (shape columns "
                           f"{', '.join(map(repr, columns.shape))})")
    return name


def _assembled(key: tuple, grouped: dict[str, tuple[float, float]], columns: ColumnMap,
               path: str, lines: list[int] | np.ndarray, loss: np.ndarray,
               n_params: np.ndarray | None,
               compute: np.ndarray | None, tokens: np.ndarray | None,
               extra: dict[str, np.ndarray], name: str | None = None) -> Curve:
    """One shape's curve from its values in file order (compute given, or C = 6 N D from
    tokens), sorted by compute."""
    name = _curve_name(key, columns, path, lines) if name is None else name
    if compute is None:
        compute = TOKENS_TO_FLOP * n_params * tokens
    elif n_params is not None:
        check_compute(name, compute, n_params, lines, path)
    order = np.argsort(compute, kind="stable")
    return Curve(name, dict(zip(columns.shape, key, strict=True)), compute[order], loss[order],
                 tuple(np.asarray(lines)[order].tolist()),
                 None if n_params is None else n_params[order],
                 {k: v[order] for k, v in extra.items()}, grouped)


def _positive(record: dict, spec: str, what: str, path: str, line: int) -> float:
    value = cell_number(record, spec, path, line)
    if value <= 0:
        raise BadInputFile(f"{path}: line {line}: column {spec!r}: {what} must be positive, "
                           f"got {value:g}")
    return value

