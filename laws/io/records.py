"""The rows of a curve file, one at a time: CSV (or TSV) or JSONL records, and their cells.

The row-by-row reading: each row a dict with its line number, each cell read and checked
where it is used, so that a problem names the file, the line and the column. A regular CSV
file takes the quicker reading of ``laws.io.columnar``; any other, and every JSONL file, this
one (``laws.io.curves.load_curves`` chooses). Training logs are read with it, too
(``laws.io.logs``).

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "runs.jsonl")
>>> _ = open(path, "w").write('{"width": 8, "loss": 3.0}\\n\\n{"width": 16, "loss": 2.8}\\n')
>>> [(line, cell_number(record, "loss", path, line))
...  for line, record in read_records(path, format_from_suffix(path))]
[(1, 3.0), (3, 2.8)]
"""

from __future__ import annotations

import csv
import math
import os
import reprlib
from collections.abc import Iterator

from laws.errors import BadInputFile, InputError
from laws.io.jsonfile import ENCODING, parse_json


def format_from_suffix(path: str) -> str:
    """``csv`` or ``jsonl``, by the file's suffix (``.tsv`` and ``.txt`` are CSV, ``.ndjson``
    JSONL); else a ``BadInputFile`` that asks for ``--format``."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    raise BadInputFile(f"{path}: cannot tell the format from the suffix {suffix!r}; "
                       "give --format csv or --format jsonl")


def read_records(path: str, fmt: str) -> Iterator[tuple[int, dict]]:
    """The rows of a CSV (or TSV, by the suffix) or JSONL file, each with its line number."""
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


def require_column(records: list[tuple[int, dict]], col: str, path: str) -> None:
    """Refuse ``records`` where no row has column ``col``, listing the columns they have."""
    if all(col not in record for _, record in records):
        # repr: a header cell may hold a quoted line break, and the error stays one line
        known = ", ".join(repr(k) for k in sorted({k for _, r in records for k in r
                                                   if k is not None}))
        raise BadInputFile(f"{path}: missing column {col!r} (columns: {known})")


def cell_value(record: dict, col: str, path: str, line: int) -> object:
    """The cell of ``col`` in ``record`` (line ``line``): present and a value, not a JSON
    object or list."""
    if col not in record or record[col] is None:
        raise BadInputFile(f"{path}: line {line}: missing column {col!r}")
    if isinstance(record[col], (dict, list)):
        raise BadInputFile(f"{path}: line {line}: column {col!r} holds a JSON "
                           f"{type(record[col]).__name__}, not a value (validate's curve.jsonl "
                           "names its shapes in 'shape_name')")
    return record[col]


def cell_number(record: dict, spec: str, path: str, line: int) -> float:
    """The value of column ``spec``, or the product of the columns in ``a*b``."""
    value = 1.0
    for name in spec.split("*"):
        value *= finite_number(cell_value(record, name, path, line),
                               f"{path}: line {line}: column {name!r}")
    return value


def finite_number(raw: object, where: str) -> float:
    """A cell's value as a finite float; else a ``BadInputFile`` that starts with ``where``.

    >>> finite_number("2.5", "runs.csv: line 3: column 'loss'")
    2.5
    >>> finite_number("inf", "runs.csv: line 3: column 'loss'")
    Traceback (most recent call last):
    ...
    laws.errors.BadInputFile: runs.csv: line 3: column 'loss': 'inf' is not finite
    """
    try:
        if isinstance(raw, bool):
            raise TypeError
        number = float(raw)
    except (TypeError, ValueError):
        raise BadInputFile(f"{where}: not a number: {reprlib.repr(raw)}") from None
    except OverflowError:
        number = math.inf  # an integer beyond float range
    if not math.isfinite(number):
        raise BadInputFile(f"{where}: {reprlib.repr(raw)} is not finite")
    return number
