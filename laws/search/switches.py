"""Which switches between shapes a search may make, and where a penalised switch lands.

>>> parse_allowed("p32:p16, p16:p8")
(('p32', 'p16'), ('p16', 'p8'))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from laws.errors import InputError
from laws.lawset import LawSet, Shape


def parse_allowed(spec: str) -> str | tuple[tuple[str, str], ...]:
    """The ``--allowed`` option: ``all``, ``one-axis`` or ``FROM:TO,FROM:TO,...``."""
    if spec in ("all", "one-axis"):
        return spec
    pairs = []
    for item in spec.split(","):
        parts = [p.strip() for p in item.split(":")]
        if len(parts) != 2 or not all(parts):
            raise InputError(f"--allowed: expected all, one-axis or FROM:TO pairs separated by "
                             f"commas, got {item.strip()!r}")
        pairs.append((parts[0], parts[1]))
    return tuple(pairs)


def allowed_switches(laws: LawSet, allowed: Any = "all", only_grow: Sequence[str] = (),
                     only_shrink: Sequence[str] = ()) -> np.ndarray:
    """Boolean matrix: may a run switch from shape P (row) to shape Q (column)?

    ``allowed`` is ``"all"``, ``"one-axis"`` (shapes that differ in exactly one axis) or
    (from, to) name pairs; ``only_grow``/``only_shrink`` axes may never decrease/increase.
    """
    names = laws.names
    n = len(names)
    if allowed == "all":
        ok = ~np.eye(n, dtype=bool)
    elif allowed == "one-axis":
        ok = np.array([[_axes_changed(p.axes, q.axes) == 1 for q in laws.shapes]
                       for p in laws.shapes])
    elif isinstance(allowed, str):
        raise InputError(f"allowed switches: expected all, one-axis or pairs, got {allowed!r}")
    else:
        ok = np.zeros((n, n), dtype=bool)
        for src, dst in allowed:
            for name in (src, dst):
                if name not in names:
                    raise InputError(f"allowed switches: unknown shape {name!r}; known shapes: "
                                     f"{', '.join(names)}")
            ok[names.index(src), names.index(dst)] = src != dst
    for axes, grow in ((only_grow, True), (only_shrink, False)):
        for axis in axes:
            values = np.array([_axis_value(s, axis, grow) for s in laws.shapes])
            ok &= (values[None, :] >= values[:, None]) if grow else (
                values[None, :] <= values[:, None])
    return ok


def _axes_changed(a: dict, b: dict) -> int:
    return sum(a.get(k) != b.get(k) for k in set(a) | set(b))


def _axis_value(shape: Shape, axis: str, grow: bool) -> float:
    option = "--only-grow" if grow else "--only-shrink"
    value = shape.axes.get(axis)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{option} {axis}: shape {shape.name!r} has no numeric axis {axis!r} "
                         f"(its axes: {shape.axes})")
    return float(value)


def landing_levels(grid: np.ndarray, penalty: float) -> np.ndarray:
    """For each level i, the level at or above grid[i] + penalty (level 0 at the most)."""
    ascending = grid[::-1]
    # Count of levels strictly below grid[i] + penalty, seen from the low end.
    below = np.searchsorted(ascending, grid + penalty, side="left")
    return np.maximum(grid.size - 1 - below, 0).astype(np.int64)
