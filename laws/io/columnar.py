"""A regular CSV file's mapped columns, read a block of rows at a time (per-step logs).

Per-step logs hold hundreds of thousands of rows: a dict per row and a Python conversion per
cell cost seconds and hundreds of MB (5.7 s and 755 MB for 609,638 rows of 7 columns, against
0.85 s and 135 MB this way, ``docs/FITTING.md``). This keeps, of each block of rows, the
cells of the columns a mapping reads: the shape columns as a code per row, the numeric ones
as floats (``float`` of each cell, as the row-by-row reading does). It gives up (None) on
anything irregular, for the row-by-row reading (``laws.io.curves``) to report exactly as it
always has: a row of another width, a cell over several lines, a missing column, a header
naming a column twice, a cell that is no finite number, rows that may repeat (equal hashes).

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

from laws.io.jsonfile import ENCODING

BLOCK = 1 << 16  # rows read at a time: the strings of one block are alive at most


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
    with open(path, newline="", encoding=ENCODING) as handle, _no_cycle_collection():
        reader = csv.reader(handle, delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
            named = {*shape, *(col for col, _ in filters), *numeric}
            if not header or len(set(header)) < len(header) or not named <= set(header):
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
