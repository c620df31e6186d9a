"""Decimal cells to floats a layout at a time (laws.io.decimals), against Python's ``float``.

Every expected number is ``float`` of the same text; every refusal is ``float``'s.
"""

from __future__ import annotations

import numpy as np
import pytest

from laws.io.decimals import LAYOUTS, decimal_floats


def _cells(texts: list[str], after: bytes = b",9e+99\n") -> tuple[np.ndarray, np.ndarray]:
    """Each text as a row of bytes followed by what a file would hold after the cell (the
    next cells: a number that must not leak into this one)."""
    width = max(len(text) for text in texts) + len(after)
    rows = [(text.encode() + after * width)[:width] for text in texts]
    return np.frombuffer(b"".join(rows), np.uint8).reshape(len(texts), width), \
        np.array([len(text) for text in texts])


def _bits(values) -> bytes:
    return np.asarray(values, float).tobytes()


def test_a_per_step_log_s_formats_are_float_s_numbers_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(0.0, 12.0, 4000) * rng.choice([-1.0, 1.0], 4000)
    formats = ["{:.6e}", "{:.6f}", "{!r}", "{:.17g}", "{:g}", "{:.3E}", "{:.15g}", "{:.0f}",
               "{:+.2e}", "{:.1f}"]
    texts = [formats[i % len(formats)].format(float(v)) for i, v in enumerate(values)]
    assert _bits(decimal_floats(*_cells(texts))) == _bits([float(t) for t in texts])


@pytest.mark.parametrize("text", [
    "1.", ".5", "-.5", "+1", "1e5", "1E+05", "1e-0005", "1e00000022", "1e23", "1e-22", "1e-23",
    "0", "-0", "-0.0", "00012.50", "123456789012345", "1234567890123456", "9007199254740993",
    "0.1", "4.9e-324", "1e-400", "1e400", "1" * 40, "0e99999", "1e10000", "inf", "-nan",
    "1_000", " 1", "1 ", "1.5e+3_0",
])
def test_the_edges_of_the_fast_path_are_float_s_numbers_too(text: str) -> None:
    # Each cell alone (one layout) and among cells of a common layout.
    for texts in ([text], ["2.500000", text, "3.250000"]):
        assert _bits(decimal_floats(*_cells(texts))) == _bits([float(t) for t in texts])


@pytest.mark.parametrize("text", ["e5", "1e", ".", "-", "--1", "1e+-5", "1.2.3", "0x10", "",
                                  "1,5", "1e5.0", "+-1"])
def test_a_cell_float_refuses_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        float(text)
    with pytest.raises(ValueError):
        decimal_floats(*_cells(["2.5", text, "3.5"]))


def test_layouts_beyond_the_first_few_go_one_by_one_with_the_same_numbers() -> None:
    # 3 * LAYOUTS lengths of integers and decimals, in turn: most rows are left to float.
    texts = [f"{i % 997}{'.' if i % 2 else ''}{'5' * (i % (3 * LAYOUTS))}" for i in range(600)]
    assert len({(len(t), "." in t) for t in texts}) > LAYOUTS
    assert _bits(decimal_floats(*_cells(texts))) == _bits([float(t) for t in texts])
