"""Decimal cells to floats without a Python call per cell, bit for bit as ``float`` makes them.

Casting numpy's byte strings to float calls Python's ``float`` once a cell: a quarter of the
time of reading a per-step log (``laws.io.columnar``). A log's numeric column is mostly written
by one format (``%.6e``, ``%.6f``), so its cells share a layout: their length and where the
digits, the point, the exponent mark and the signs sit. The cells of one layout are converted
at once: the digits of the significand spell an integer M (digit by digit, for all cells at
once), those of the exponent an integer, and the value is M x 10^e or M / 10^-e. Where
M < 2^53 and |e| <= 22 both factors are exact doubles and one multiplication or division
rounds once, so the result is the correctly rounded value of the decimal, which is what
``float`` returns (Clinger's fast path). Any other cell (more than 15 significant digits, a
far exponent, a layout beyond the first ``LAYOUTS``, anything that is no plain decimal:
``inf``, ``1_000``, a space) goes through ``float``, so a cell ``float`` refuses still raises
``ValueError``.

>>> cells = [b"1.500000e+13", b"-2.5e-3", b"0.125"]
>>> chars = np.array([list(cell.ljust(12, b",")) for cell in cells], np.uint8)
>>> decimal_floats(chars, np.array([len(cell) for cell in cells])).tolist()
[15000000000000.0, -0.0025, 0.125]
"""

from __future__ import annotations

import re

import numpy as np

LAYOUTS = 8  # layouts converted at once per column; cells of further layouts go one by one
EXACT_POWERS = 22  # 10^22 is the largest power of ten that a double holds exactly
SIGNIFICAND_DIGITS = 15  # any 15-digit integer is below 2^53: exact as a double
DIGIT = ord("0")  # every digit of a layout reads as this
# A plain decimal, as its layout's classes spell it: d digit, p point, e exponent mark, s sign.
PLAIN = re.compile(r"s?(d+p?d*|pd+)(es?d+)?")
_CLASSES = {DIGIT: "d", ord("."): "p", ord("e"): "e", ord("E"): "e", ord("+"): "s",
            ord("-"): "s"}
_POWERS = 10.0 ** np.arange(EXACT_POWERS + 1)


def decimal_floats(chars: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The float of each cell: row i of ``chars`` (uint8) starts with the cell's
    ``lengths[i]`` bytes, anything after them; ``float(cell)`` bit for bit, ``ValueError``
    where ``float`` raises it."""
    digits = chars - np.uint8(DIGIT)  # wraps around below "0": not a digit either
    layouts = np.where(digits < 10, np.uint8(DIGIT), chars)
    values = np.empty(len(chars))
    pending = np.arange(len(chars))
    one_by_one = []
    for _ in range(LAYOUTS):
        if not pending.size:
            break
        length = int(lengths[pending[0]])
        # Most columns hold one layout: the first comparison reads the rows in place. Empty
        # cells compare the byte after them too: however they group, they go one by one.
        rows = layouts if pending.size == len(chars) else layouts[pending]
        whole = rows[:, :max(length, 1)].view(f"V{max(length, 1)}")[:, 0]
        same = (whole == whole[0]) & (lengths[pending] == length)
        group, pending = pending[same], pending[~same]
        pattern = "".join(_CLASSES.get(byte, "x") for byte in layouts[group[0], :length])
        exact = np.zeros(group.size, bool)
        if PLAIN.fullmatch(pattern):
            signs = chars[group[0], :length].tobytes()
            everything = group.size == len(chars)  # then no copy of the rows
            converted, exact = _converted(digits if everything else digits[group], pattern,
                                          signs)
            values[slice(None) if everything else group] = converted
        one_by_one.append(group[~exact])
    rest = np.concatenate([pending, *one_by_one])
    if rest.size:
        cells = chars[rest].copy()
        cells[np.arange(chars.shape[1]) >= lengths[rest, None]] = 0  # S drops trailing NULs
        values[rest] = cells.view(f"S{chars.shape[1]}")[:, 0].astype(float)
    return values


def _converted(digits: np.ndarray, pattern: str, signs: bytes
               ) -> tuple[np.ndarray, np.ndarray]:
    """The cells of one plain layout as floats (``digits``: each byte less ``"0"``;
    ``signs``: a cell of the layout, whose sign characters every cell shares), and where
    they are exact: not where the fast path cannot promise ``float``'s bits (more than 15
    significant digits, an exponent beyond 22)."""
    mark = pattern.find("e")
    significand = pattern if mark < 0 else pattern[:mark]
    positions = [i for i, c in enumerate(significand) if c == "d"]
    if len(positions) > SIGNIFICAND_DIGITS:
        return np.zeros(len(digits)), np.zeros(len(digits), bool)
    point = significand.find("p")
    exponent = np.full(len(digits), -sum(i > point for i in positions) if point >= 0 else 0)
    if mark >= 0:
        places = [i for i in range(mark + 1, len(pattern)) if pattern[i] == "d"]
        # Four digits reach beyond 22 already: a longer exponent whose leading digits are
        # not all 0 is as far.
        power = _integer(digits, places[-4:]).astype(np.int64)
        power[np.any(digits[:, places[:-4]] != 0, axis=1)] = 10 ** 4
        exponent += -power if signs[mark + 1:mark + 2] == b"-" else power
    scale = _POWERS[np.minimum(np.abs(exponent), EXACT_POWERS)]
    whole = _integer(digits, positions)
    values = np.where(exponent >= 0, whole * scale, whole / scale)
    return (-values if signs[:1] == b"-" else values), np.abs(exponent) <= EXACT_POWERS


def _integer(digits: np.ndarray, positions: list[int]) -> np.ndarray:
    """The integer the digits at ``positions`` of each row spell, as exact doubles (at most
    15 digits: every partial result is an integer below 2^53). Digit by digit, in place: no
    matrix of doubles, which for a column of 600,000 cells would be fresh memory of 34 MB."""
    value = np.zeros(len(digits))
    for position in positions:
        value *= 10.0
        value += digits[:, position]
    return value
