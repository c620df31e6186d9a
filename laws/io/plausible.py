"""Plausibility of curve files: what a well-formed file can hold and still be a mistake
(docs/FITTING.md, "Checks on the input"). Each refusal is a ``BadInputFile`` naming the file and
the line; what may be meant (a repeated row, tiny compute without model sizes) is a doubt,
a one-line message that ``fit`` reports as a warning and ``--strict`` makes exit 2.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from typing import Protocol

import numpy as np

from laws.errors import BadInputFile, InputError


class Curve(Protocol):
    """What these checks read of a curve (``laws.io.curves.Curve`` has it): this module is
    below the reader that calls it, not beside it."""

    name: str
    lines: tuple[int, ...]
    compute: np.ndarray

TEMPLATE_WIDTH = 64  # a shape name field's widest format: names are for reading
FEWEST_FLOPS = 1000.0  # below this a whole file's compute is no training run's FLOPs


def check_template(template: str, columns: tuple[str, ...]) -> None:
    """Refuse a ``--shape-name`` template that could fail or explode on a value: each field
    names a shape column, no index or attribute, and a format no wider than ``TEMPLATE_WIDTH``.

    >>> check_template("w{width[0]}", ("width",))
    Traceback (most recent call last):
    ...
    laws.errors.InputError: shape name template 'w{width[0]}': {width[0]} is not a shape \
column (width); a field names one, without an index or attribute
    """
    try:
        fields = [(name, spec) for _, name, spec, _ in string.Formatter().parse(template)
                  if name is not None]
    except ValueError as err:
        raise InputError(f"shape name template {template!r}: {err}") from None
    for name, spec in fields:
        if name not in columns:
            raise InputError(f"shape name template {template!r}: {{{name}}} is not a shape "
                             f"column ({', '.join(columns) or 'none given'}); a field names "
                             "one, without an index or attribute")
        if "{" in spec or any(int(n) > TEMPLATE_WIDTH for n in re.findall(r"\d+", spec)):
            raise InputError(f"shape name template {template!r}: the format {spec!r} of "
                             f"{{{name}}} asks for more than {TEMPLATE_WIDTH} characters")


def check_names(curves: tuple[Curve, ...], path: str) -> None:
    """Refuse shape names with control characters or line breaks, and two names that differ
    only in white space or case (``s1`` and ``s1 ``: two shapes, where one was meant)."""
    seen: dict[str, Curve] = {}
    for curve in curves:
        if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in curve.name):
            raise BadInputFile(f"{path}: line {curve.lines[0]}: the shape name "
                               f"{json.dumps(curve.name)} holds a control character")
        key = "".join(curve.name.split()).casefold()
        if key in seen:
            other = seen[key]
            raise BadInputFile(f"{path}: the shapes {other.name!r} (line {min(other.lines)}) "
                               f"and {curve.name!r} (line {min(curve.lines)}) differ only in "
                               "white space or case; write one name the same way throughout")
        seen[key] = curve


def check_compute(name: str, compute: np.ndarray, n_params: np.ndarray,
                  lines: list[int], path: str) -> None:
    """Refuse compute below 2 N FLOPs (one forward pass on one token) for a model of N
    parameters: no training run took it, so the column is in another unit (log10 FLOPs,
    PF-days) and every compute-optimal number would be wrong."""
    short = np.flatnonzero(compute < 2 * n_params)
    if short.size:
        i = int(short[0])
        raise BadInputFile(f"{path}: line {lines[i]}: shape {name!r}: compute {compute[i]:g} is "
                           f"less than 2 N = {2 * n_params[i]:g} FLOPs, one forward pass of its "
                           f"{n_params[i]:g} parameters on one token; give compute in FLOPs "
                           "(log10 values: 10**x)")


def compute_doubt(curves: tuple[Curve, ...], path: str) -> str | None:
    """Without model sizes: a warning when all of the file's compute is below
    ``FEWEST_FLOPS``, fewer FLOPs than a step of any real model (log10 FLOPs, say)."""
    largest = max(float(curve.compute.max()) for curve in curves)
    if largest >= FEWEST_FLOPS:
        return None
    smallest = min(float(curve.compute.min()) for curve in curves)
    return (f"{path}: all compute lies between {smallest:g} and {largest:g}, below "
            f"{FEWEST_FLOPS:g} FLOPs, less than any training run; if it is log10 FLOPs, give "
            "10**x (--params-col lets the fit check compute against model size)")


def repeated_rows(rows: list[tuple[int, dict]], path: str) -> str | None:
    """A warning when rows repeat earlier rows exactly (a file concatenated twice): each
    copy counts as a point of its own and weighs the fit."""
    first: dict[str, int] = {}
    repeats: list[tuple[int, int]] = []
    for line, record in rows:
        key = json.dumps(record, sort_keys=True, default=str)
        if key in first:
            repeats.append((line, first[key]))
        else:
            first[key] = line
    if not repeats:
        return None
    line, earlier = repeats[0]
    return (f"{path}: {len(repeats)} row(s) repeat earlier rows exactly (line {line} = line "
            f"{earlier}); each copy counts in the fit: remove them if they were not measured "
            "twice")
