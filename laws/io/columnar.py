"""A regular CSV file's mapped columns, read by numpy, not row by row (per-step logs).

Per-step logs hold hundreds of thousands of rows: a dict per row and a Python conversion per
cell cost seconds and hundreds of MB (5.7 s and 755 MB for 609,638 rows of 7 columns,
``docs/FITTING.md``). This keeps the cells of the columns a mapping reads: the shape columns
as a code per row, the numeric ones as floats, each the float of its cell's text, as Python's
``float`` makes it (the row-by-row reading's numbers, bit for bit).

A plain file (ASCII, no quote, no carriage return, no blank line, every row as wide as the
header) is read whole: numpy finds its separators, checks every row's width at once, copies
each column's cells as one window of the file a row, and converts them a layout at a time
(``laws.io.decimals``: ``float``'s numbers without a call per cell).
Any other file is read a block of rows at a time through ``csv.reader``. Either gives up
(None) on anything irregular, for the row-by-row reading (``laws.io.curves``) to report
exactly as it always has: a row of another width, a cell over several lines, a missing
column, a header naming a column twice, a cell that is no finite number, rows that may
repeat.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "steps.csv")
>>> _ = open(path, "w").write("run,step,loss\\nw8,1,3.0\\nw8,2,2.9\\nw16,1,2.8\\n")
>>> table = read_mapped_columns(path, ("run",), (), ["step", "loss"], str.__eq__)
>>> table.keys, table.codes.tolist(), table.lines.tolist(), table.values["loss"].tolist()
([('w8',), ('w16',)], [0, 0, 1], [2, 3, 4], [3.0, 2.9, 2.8])
"""

from __future__ import annotations

import contextlib
import csv
import gc
import itertools
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from laws.io.decimals import decimal_floats
from laws.io.jsonfile import ENCODING

BLOCK = 1 << 16  # rows read at a time: the strings of one block are alive at most
NEWLINE = ord("\n")
CHUNK = 1 << 20  # bytes of the file searched for separators at a time
LONGEST_CELL = 128  # bytes: a plain file's column read whole is copied as wide as this
MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: a product by it modulo 2**64 loses no bit


@dataclass(frozen=True)
class MappedColumns:
    """The rows a mapping keeps: each row's shape (``codes`` into ``keys``, the shape cells in
    order of first appearance), its line, and ``values`` of each numeric column."""

    keys: list[tuple[str, ...]]
    codes: np.ndarray
    lines: np.ndarray
    values: dict[str, np.ndarray]


def read_mapped_columns(path: str, shape: tuple[str, ...], filters: tuple[tuple[str, str], ...],
                        numeric: list[str], matches: Callable[[str, str], bool]
                        ) -> MappedColumns | None:
    """The rows of ``path`` whose ``filters`` columns ``matches`` the values wanted: their
    ``shape`` cells and ``numeric`` columns; None where the file needs the row-by-row reading."""
    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    with open(path, "rb") as handle:
        whole = _plain_columns(handle.read(), delimiter, shape, filters, numeric, matches)
    if whole is not None:
        return whole
    return _block_columns(path, delimiter, shape, filters, numeric, matches)


def _plain_columns(data: bytes, delimiter: str, shape: tuple[str, ...],
                   filters: tuple[tuple[str, str], ...], numeric: list[str],
                   matches: Callable[[str, str], bool]) -> MappedColumns | None:
    """The mapped columns of a plain file (see the module's docstring), or None: the file is
    not plain, a cell is no finite number, or rows may repeat (the block reading tells)."""
    if not data.isascii() or any(mark in data for mark in (b'"', b"\r", b"\0")):
        return None
    header_end = data.find(b"\n")
    header = data[:max(header_end, 0)].decode().split(delimiter)
    named = _named(shape, filters, numeric)
    if not 0 <= header_end <= csv.field_size_limit() or not _has_columns(header, named):
        return None
    cells = _PlainCells.find(data if data.endswith(b"\n") else data + b"\n", header_end + 1,
                             ord(delimiter), len(header))
    # A column's cells are copied as wide as its longest: a file of longer ones goes by blocks.
    if cells is None or (cells.longest_line > LONGEST_CELL and any(
            cells.longest(header.index(col)) > LONGEST_CELL for col in named)):
        return None
    kept = np.ones(cells.rows, bool)
    for column, wanted in filters:
        distinct, inverse = np.unique(cells.texts(header.index(column)), return_inverse=True)
        kept &= np.array([matches(text.decode(), wanted) for text in distinct], bool)[inverse]
    rows = np.flatnonzero(kept)
    if not rows.size:
        return None
    selected = slice(None) if rows.size == kept.size else rows  # no copy of every position
    keys, codes = _first_appearance([cells.texts(header.index(col), selected)
                                     for col in shape], rows.size)
    values = {}
    for name in numeric:
        try:
            values[name] = decimal_floats(*cells.windows(header.index(name), selected))
        except ValueError:
            return None
        if not np.all(np.isfinite(values[name])):
            return None
    if _may_repeat(codes, list(values.values())):
        return None
    return MappedColumns(keys, codes, rows + 2, values)  # line 1 is the header


def _named(shape: tuple[str, ...], filters: tuple[tuple[str, str], ...],
           numeric: list[str]) -> list[str]:
    """Every column a mapping reads, once each."""
    return list(dict.fromkeys([*shape, *(col for col, _ in filters), *numeric]))


def _has_columns(header: list[str], named: list[str]) -> bool:
    """Whether ``header`` names each column once and every column in ``named``."""
    return bool(header) and len(set(header)) == len(header) and set(named) <= set(header)


@dataclass(frozen=True)
class _PlainCells:
    """Where the cells of a plain file's rows end in ``text``: at the delimiters of each row
    (``delimiters``, rows x columns - 1) and at its line break (``breaks``); the next cell
    starts one byte on."""

    text: np.ndarray
    delimiters: np.ndarray
    breaks: np.ndarray
    longest_line: int  # bytes, its line break left out

    @classmethod
    def find(cls, data: bytes, offset: int, delimiter: int, width: int) -> _PlainCells | None:
        """The cells of the rows from ``offset`` of ``data`` (which ends with a line break);
        None unless every row holds ``width`` cells (a blank line holds none)."""
        text = np.frombuffer(data, np.uint8, offset=offset)
        breaks, delimiters = _places(text, NEWLINE), _places(text, delimiter)
        if not breaks.size or delimiters.size != breaks.size * (width - 1):
            return None
        delimiters = delimiters.reshape(breaks.size, width - 1)
        # As many delimiters as the rows need, in order: each row holds its own when the
        # first of them follows the line break before it and the last precedes its own.
        if width > 1 and (np.any(delimiters[1:, 0] < breaks[:-1])
                          or np.any(delimiters[:, -1] > breaks)):
            return None
        longest_line = int(np.max(np.diff(breaks, prepend=-1))) - 1
        # A line longer than csv's field limit may hold a cell beyond it, which csv refuses.
        if longest_line > csv.field_size_limit():
            return None
        return cls(text, delimiters, breaks, longest_line)

    @property
    def rows(self) -> int:
        return len(self.breaks)

    def bounds(self, column: int) -> tuple[np.ndarray, np.ndarray]:
        """Where the cells of ``column`` start, and where they end."""
        ends = self.breaks if column == self.delimiters.shape[1] else self.delimiters[:, column]
        starts = self.delimiters[:, column - 1] + 1 if column else np.r_[0, self.breaks[:-1] + 1]
        return starts, ends

    def longest(self, column: int) -> int:
        """The length of the longest cell of ``column``, in bytes."""
        starts, ends = self.bounds(column)
        return int(np.max(ends - starts))

    def windows(self, column: int, rows: np.ndarray | slice = slice(None)
                ) -> tuple[np.ndarray, np.ndarray]:
        """The cells of ``column`` in ``rows``: a byte matrix as wide as the longest, whose
        row i starts with cell i's bytes (the file's next bytes follow), and their lengths.
        Each row is one copy of a window of the file, not a byte gathered at a time."""
        starts, ends = (where[rows] for where in self.bounds(column))
        lengths = ends - starts
        width = max(int(np.max(lengths, initial=0)), 1)
        last = self.text.size - width  # the last byte where a whole window starts
        chars = np.lib.stride_tricks.sliding_window_view(self.text, width)[
            np.minimum(starts, last)]
        for row in np.flatnonzero(starts > last):  # the file's last cells: a shorter window
            chars[row, :lengths[row]] = self.text[starts[row]:ends[row]]
        return chars, lengths

    def texts(self, column: int, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The cells of ``column`` in ``rows``, as bytes (numpy's ``S`` strings)."""
        chars, lengths = self.windows(column, rows)
        chars[np.arange(chars.shape[1]) >= lengths[:, None]] = 0  # past the cell: S drops NUL
        return chars.view(f"S{chars.shape[1]}")[:, 0]


def _places(text: np.ndarray, byte: int) -> np.ndarray:
    """Where ``byte`` occurs in ``text``, a chunk of ``CHUNK`` bytes at a time: the mask of a
    chunk stays in the cache, and places of 32 bits (for a file below 2 GB) take half the
    memory, fresh pages that cost as much to touch as to fill."""
    kind = np.int32 if text.size < 2**31 else np.int64
    return np.concatenate([(np.flatnonzero(text[first:first + CHUNK] == byte) + first
                            ).astype(kind) for first in range(0, text.size, CHUNK)]
                          or [np.zeros(0, kind)])


def _first_appearance(columns: list[np.ndarray], rows: int
                      ) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """The distinct tuples of the ``columns``' cells, in order of first appearance, and each
    row's code into them. A log lists each shape's rows together: only the first row of each
    run of equal cells is looked up."""
    changes = np.zeros(max(rows - 1, 0), bool)
    for texts in columns:
        changes |= texts[1:] != texts[:-1]
    heads = np.r_[0, np.flatnonzero(changes) + 1] if rows else np.zeros(0, int)
    keys, codes = _distinct([texts[heads] for texts in columns], heads.size)
    return keys, np.repeat(codes, np.diff(np.r_[heads, rows]))


def _distinct(columns: list[np.ndarray], rows: int) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """``_first_appearance`` by sorting every row."""
    joint = np.zeros(rows, np.int64)
    for texts in columns:
        _, code = np.unique(texts, return_inverse=True)
        # Codes stay below rows x rows: renumbered after each column, they cannot overflow.
        _, joint = np.unique(joint * (int(code.max()) + 1) + code, return_inverse=True)
    _, first, joint = np.unique(joint, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    keys = [tuple(texts[first[k]].decode() for texts in columns) for k in order]
    return keys, rank[joint]


def _may_repeat(codes: np.ndarray, values: list[np.ndarray]) -> bool:
    """Whether two rows agree in their shape and every number read, as rows that repeat do
    (a file concatenated twice): then the block reading hashes the rows whole."""
    mixed = codes.astype(np.uint64)
    for column in values:
        mixed = mixed * MIX + column.view(np.uint64)  # wraps around, as a hash does
    mixed.sort()
    return bool(np.any(mixed[1:] == mixed[:-1]))


def _block_columns(path: str, delimiter: str, shape: tuple[str, ...],
                   filters: tuple[tuple[str, str], ...], numeric: list[str],
                   matches: Callable[[str, str], bool]) -> MappedColumns | None:
    """The mapped columns of any regular CSV file, read a block of rows at a time."""
    with open(path, newline="", encoding=ENCODING) as handle, _no_cycle_collection():
        reader = csv.reader(handle, delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
            if not _has_columns(header or [], _named(shape, filters, numeric)):
                return None
            table = _Blocks(header, shape, filters, numeric, matches)
            read = reader.line_num
            while block := list(itertools.islice(reader, BLOCK)):
                if not table.add(block, read + 1, reader.line_num):
                    return None
                read = reader.line_num
        except csv.Error:
            return None
    return table.columns()


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector: rows are lists of strings, which form no cycles,
    and the collector's passes over the rows alive nearly double the time of reading them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Blocks:
    """The cells kept so far, block by block."""

    def __init__(self, header: list[str], shape: tuple[str, ...],
                 filters: tuple[tuple[str, str], ...], numeric: list[str],
                 matches: Callable[[str, str], bool]) -> None:
        self.width = len(header)
        positions = [header.index(col) for col in shape]
        # One shape column gives its cell as the key, several a tuple of cells, none ().
        self.shape_of = operator.itemgetter(*positions) if positions else None
        self.single = len(positions) == 1
        self.filters = [(header.index(col), wanted) for col, wanted in filters]
        self.matches = matches
        self.numeric_at = {name: header.index(name) for name in numeric}
        self.values: dict[str, list[np.ndarray]] = {name: [] for name in numeric}
        self.keys: dict[str | tuple, int] = {}
        self.codes: list[np.ndarray] = []
        self.lines: list[np.ndarray] = []
        self.hashes: list[np.ndarray] = []

    def add(self, rows: list[list[str]], first_line: int, last_line: int) -> bool:
        """Keep the cells of a block of rows, one line each from ``first_line`` to
        ``last_line`` (a blank line is an empty row); False when the file needs the
        row-by-row reading."""
        if last_line - first_line + 1 != len(rows):
            return False  # a quoted cell spans lines: the rows' lines are not consecutive
        lines = np.arange(first_line, last_line + 1)
        widths = np.fromiter(map(len, rows), int, len(rows))
        kept = widths > 0
        if np.any(widths[kept] != self.width):
            return False
        for position, wanted in self.filters:
            cells = list(map(operator.itemgetter(position), itertools.compress(rows, kept)))
            matching = {cell: self.matches(cell, wanted) for cell in set(cells)}
            kept[kept] = np.fromiter(map(matching.__getitem__, cells), bool, len(cells))
        rows = list(itertools.compress(rows, kept))
        keys = list(map(self.shape_of, rows)) if self.shape_of else [()] * len(rows)
        for key in dict.fromkeys(keys):
            self.keys.setdefault(key, len(self.keys))
        self.codes.append(np.fromiter(map(self.keys.__getitem__, keys), np.int64, len(rows)))
        self.lines.append(lines[kept])
        self.hashes.append(np.fromiter(map(hash, map(tuple, rows)), np.int64, len(rows)))
        for name, position in self.numeric_at.items():
            try:
                block = np.fromiter(map(float, map(operator.itemgetter(position), rows)),
                                    float, len(rows))
            except ValueError:
                return False
            if not np.all(np.isfinite(block)):
                return False
            self.values[name].append(block)
        return True

    def columns(self) -> MappedColumns | None:
        """What was kept, or None when no row was, or rows may repeat."""
        hashes = np.sort(np.concatenate(self.hashes)) if self.hashes else np.array([])
        if not hashes.size or np.any(hashes[1:] == hashes[:-1]):
            return None
        return MappedColumns([(key,) if self.single else key for key in self.keys],
                             np.concatenate(self.codes), np.concatenate(self.lines),
                             {name: np.concatenate(blocks)
                              for name, blocks in self.values.items()})
