"""Law files (JSON, see DESIGN.md "File formats"): read with validation, write atomically.

>>> from laws.forms import PowerLaw
>>> from laws.lawset import LawSet, Shape
>>> laws = LawSet("toy", (Shape("s", {"width": 8}, PowerLaw(a=2.0, b=0.3, c=1.0)),))
>>> law_set_from_dict(law_set_to_dict(laws), "toy.json") == laws
True
"""

from __future__ import annotations

import json
import os
from typing import Any

from laws.errors import InputError
from laws.forms import make_law
from laws.io.atomic import write_text_atomic
from laws.io.jsonfile import read_json_object
from laws.lawset import LawSet, Shape, Transitions

_SHAPE_KEYS = {"name", "axes", "form", "params", "throughput"}
_TRANSITION_KEYS = {"flops", "seconds", "loss_penalty", "allowed"}
_TOP_KEYS = {"name", "compute_unit", "shapes", "transitions", "provenance"}


def read_law_file(path: str | os.PathLike) -> LawSet:
    """Load and validate a law file; every problem is an ``InputError`` naming file and field."""
    return law_set_from_dict(read_json_object(path, "law"), str(path))


def write_law_file(laws: LawSet, path: str | os.PathLike) -> None:
    """Write ``laws`` as a law file, atomically."""
    write_text_atomic(path, json.dumps(law_set_to_dict(laws), indent=2) + "\n")


def law_set_to_dict(laws: LawSet) -> dict[str, Any]:
    """The JSON object of a law file; extra keys read from a file are kept."""
    shapes = []
    for shape in laws.shapes:
        entry: dict[str, Any] = {
            "name": shape.name,
            "axes": shape.axes,
            "form": shape.law.form,
            "params": shape.law.params(),
        }
        if shape.throughput is not None:
            entry["throughput"] = shape.throughput
        shapes.append({**entry, **shape.extra})
    t = laws.transitions
    allowed = t.allowed if isinstance(t.allowed, str) else [list(pair) for pair in t.allowed]
    transitions = {"flops": t.flops, "seconds": t.seconds, "loss_penalty": t.loss_penalty,
                   "allowed": allowed, **t.extra}
    return {"name": laws.name, "compute_unit": laws.compute_unit, "shapes": shapes,
            "transitions": transitions, "provenance": laws.provenance, **laws.extra}


def law_set_from_dict(data: Any, where: str) -> LawSet:
    """Validate a parsed law file; ``where`` (usually the path) prefixes every error."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: a law file is a JSON object")
    shapes_data = _field(data, "shapes", list, where)
    if not shapes_data:
        raise InputError(f"{where}: shapes: needs at least one shape")
    shapes = tuple(_shape(entry, f"{where}: shapes[{i}]") for i, entry in enumerate(shapes_data))
    transitions = _transitions(data.get("transitions", {}), f"{where}: transitions")
    return LawSet(
        name=str(data.get("name", os.path.splitext(os.path.basename(where))[0])),
        shapes=shapes,
        compute_unit=str(data.get("compute_unit", "FLOP")),
        transitions=transitions,
        provenance=dict(data.get("provenance", {})),
        extra={k: v for k, v in data.items() if k not in _TOP_KEYS},
    )


def _field(data: dict, key: str, kind: type, where: str) -> Any:
    if key not in data:
        raise InputError(f"{where}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        raise InputError(f"{where}.{key}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _number(value: Any, where: str, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where}: expected a number, got {value!r}")
    if minimum is not None and not value >= minimum:
        raise InputError(f"{where}: must be >= {minimum:g}, got {value!r}")
    return float(value)


def _shape(entry: Any, where: str) -> Shape:
    if not isinstance(entry, dict):
        raise InputError(f"{where}: a shape is a JSON object")
    name = _field(entry, "name", str, where)
    where = f"{where} ({name})"
    form = _field(entry, "form", str, where)
    params = _field(entry, "params", dict, where)
    try:
        law = make_law(form, params)
    except ValueError as err:
        raise InputError(f"{where}.params: {err}") from None
    throughput = entry.get("throughput")
    if throughput is not None:
        throughput = _number(throughput, f"{where}.throughput", minimum=0.0)
        if throughput == 0:
            raise InputError(f"{where}.throughput: must be positive")
    axes = entry.get("axes", {})
    if not isinstance(axes, dict):
        raise InputError(f"{where}.axes: expected an object such as {{\"patch\": 16}}")
    return Shape(name, axes, law, throughput,
                 extra={k: v for k, v in entry.items() if k not in _SHAPE_KEYS})


def _transitions(data: Any, where: str) -> Transitions:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected an object")
    allowed = data.get("allowed", "all")
    if allowed not in ("all", "one-axis"):
        if not isinstance(allowed, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p)
            for p in allowed
        ):
            raise InputError(
                f"{where}.allowed: expected \"all\", \"one-axis\" or a list of [from, to] pairs"
            )
        allowed = tuple((a, b) for a, b in allowed)
    return Transitions(
        flops=_number(data.get("flops", 0.0), f"{where}.flops", minimum=0.0),
        seconds=_number(data.get("seconds", 0.0), f"{where}.seconds", minimum=0.0),
        loss_penalty=_number(data.get("loss_penalty", 0.0), f"{where}.loss_penalty", minimum=0.0),
        allowed=allowed,
        extra={k: v for k, v in data.items() if k not in _TRANSITION_KEYS},
    )
