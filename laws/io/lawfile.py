"""Law files (JSON, see DESIGN.md "File formats"): read with validation, write atomically.

A fitted shape may carry ``measured`` (what it was fitted on), ``samples`` (bootstrap refits
of its parameters, each an object like ``params``; sample k of every shape is one joint
resample) and ``annealed`` (the law of its loss after a final cool-down: ``cooldown``, ``form``,
``params``). Files without them stay valid, with the same digest. Containers of plain values
are written on one line each, so that a thousand samples take a thousand lines.

>>> from laws.forms import PowerLaw
>>> from laws.lawset import LawSet, Measured, Shape
>>> laws = LawSet("toy", (Shape("s", {"width": 8}, PowerLaw(a=2.0, b=0.3, c=1.0),
...                             samples=(PowerLaw(a=2.1, b=0.3, c=1.0),),
...                             measured=Measured(2.9, (1e15, 1e17), 6)),))
>>> law_set_from_dict(law_set_to_dict(laws), "toy.json") == laws
True
>>> print(_dumps({"params": {"a": 1, "b": 2}, "samples": [{"a": 1}, {"a": 2}]}))
{
  "params": {"a": 1, "b": 2},
  "samples": [
    {"a": 1},
    {"a": 2}
  ]
}
"""

from __future__ import annotations

import json
import os
import reprlib
from typing import Any

from laws.errors import BadInputFile, InputError
from laws.forms import Law, finite_number, make_law
from laws.io.atomic import write_text_atomic
from laws.io.jsonfile import read_json_object, shown
from laws.lawset import Annealed, LawSet, Measured, MeasuredTransition, Shape, Transitions

_SHAPE_KEYS = {"name", "axes", "form", "params", "throughput", "samples", "measured",
               "annealed"}
_TRANSITION_KEYS = {"flops", "seconds", "loss_penalty", "allowed", "measured"}
_TOP_KEYS = {"name", "compute_unit", "shapes", "transitions", "provenance"}
_JSON_KINDS = {dict: "an object", list: "a list", str: "a string"}


def read_law_file(path: str | os.PathLike) -> LawSet:
    """Load and validate a law file; every problem is a ``BadInputFile`` naming file and field."""
    return law_set_from_dict(read_json_object(path, "law"), str(path))


def write_law_file(laws: LawSet, path: str | os.PathLike) -> None:
    """Write ``laws`` as a law file, atomically."""
    write_text_atomic(path, _dumps(law_set_to_dict(laws)) + "\n")


def _dumps(value: Any, indent: str = "") -> str:
    """JSON indented by two spaces, with every list or object that holds no list or object on
    one line."""
    inner = indent + "  "
    if isinstance(value, dict) and any(isinstance(v, (dict, list)) for v in value.values()):
        items = [f"{inner}{json.dumps(k)}: {_dumps(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(inner + _dumps(v, inner) for v in value) + f"\n{indent}]"
    return json.dumps(value)


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
        if shape.measured is not None:
            entry["measured"] = _measured_to_dict(shape.measured)
        if shape.samples:
            entry["samples"] = [law.params() for law in shape.samples]
        if shape.annealed is not None:
            entry["annealed"] = {"cooldown": shape.annealed.cooldown,
                                 "form": shape.annealed.law.form,
                                 "params": shape.annealed.law.params()}
        shapes.append({**entry, **shape.extra})
    t = laws.transitions
    allowed = t.allowed if isinstance(t.allowed, str) else [list(pair) for pair in t.allowed]
    transitions = {"flops": t.flops, "seconds": t.seconds, "loss_penalty": t.loss_penalty,
                   "allowed": allowed, **t.extra}
    if t.measured:  # absent otherwise: the files (and digests) of laws without them stay
        transitions["measured"] = [_measured_transition_to_dict(m) for m in t.measured]
    return {"name": laws.name, "compute_unit": laws.compute_unit, "shapes": shapes,
            "transitions": transitions, "provenance": laws.provenance, **laws.extra}


def law_set_from_dict(data: Any, where: str) -> LawSet:
    """Validate a parsed law file; ``where`` (usually the path) prefixes every error."""
    if not isinstance(data, dict):
        raise BadInputFile(f"{where}: a law file is a JSON object")
    shapes_data = _field(data, "shapes", list, where)
    if not shapes_data:
        raise BadInputFile(f"{where}: shapes: needs at least one shape")
    shapes = tuple(_shape(entry, f"{where}: shapes[{i}]") for i, entry in enumerate(shapes_data))
    transitions = _transitions(data.get("transitions", {}), f"{where}: transitions")
    name = _optional(data, "name", str, os.path.splitext(os.path.basename(where))[0], where)
    compute_unit = _optional(data, "compute_unit", str, "FLOP", where)
    provenance = _optional(data, "provenance", dict, {}, where)
    try:
        return LawSet(
            name=name,
            shapes=shapes,
            compute_unit=compute_unit,
            transitions=transitions,
            provenance=dict(provenance),
            extra={k: v for k, v in data.items() if k not in _TOP_KEYS},
        )
    except InputError as err:
        raise BadInputFile(f"{where}: {err}") from None


def _field(data: dict, key: str, kind: type, where: str) -> Any:
    if key not in data:
        raise BadInputFile(f"{where}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind):
        wanted = _JSON_KINDS.get(kind, kind.__name__)
        raise BadInputFile(f"{where}.{key}: expected {wanted}, got {reprlib.repr(value)}")
    return value


def _optional(data: dict, key: str, kind: type, default: Any, where: str) -> Any:
    return _field(data, key, kind, where) if key in data else default


def _number(value: Any, where: str, minimum: float | None = None) -> float:
    try:
        number = finite_number(value, where)
    except ValueError as err:
        raise BadInputFile(str(err)) from None
    if minimum is not None and not number >= minimum:
        raise BadInputFile(f"{where}: must be >= {minimum:g}, got {value!r}")
    return number


def _shape(entry: Any, where: str) -> Shape:
    if not isinstance(entry, dict):
        raise BadInputFile(f"{where}: a shape is a JSON object")
    name = _field(entry, "name", str, where)
    where = f"{where} ({shown(name)})"
    form = _field(entry, "form", str, where)
    law = _law(form, _field(entry, "params", dict, where), f"{where}.params")
    samples = entry.get("samples", [])
    if not isinstance(samples, list):
        raise BadInputFile(f"{where}.samples: expected a list of parameter objects like params")
    sample_laws = tuple(_law(form, sample, f"{where}.samples[{k}]")
                        for k, sample in enumerate(samples))
    measured = entry.get("measured")
    if measured is not None:
        measured = _measured(measured, f"{where}.measured")
    throughput = entry.get("throughput")
    if throughput is not None:
        throughput = _number(throughput, f"{where}.throughput", minimum=0.0)
        if throughput == 0:
            raise BadInputFile(f"{where}.throughput: must be positive")
    axes = entry.get("axes", {})
    if not isinstance(axes, dict):
        raise BadInputFile(f"{where}.axes: expected an object such as {{\"patch\": 16}}")
    for axis, value in axes.items():
        if not isinstance(value, str):
            _number(value, f"{where}.axes.{shown(axis)}")  # a size or a name, nothing else
    annealed = entry.get("annealed")
    if annealed is not None:
        annealed = _annealed(annealed, f"{where}.annealed")
    return Shape(name, axes, law, throughput,
                 extra={k: v for k, v in entry.items() if k not in _SHAPE_KEYS},
                 samples=sample_laws, measured=measured, annealed=annealed)


def _annealed(data: Any, where: str) -> Annealed:
    if not isinstance(data, dict):
        raise BadInputFile(f"{where}: expected an object with cooldown, form and params")
    cooldown = _number(data.get("cooldown"), f"{where}.cooldown")
    law = _law(_field(data, "form", str, where), _field(data, "params", dict, where),
               f"{where}.params")
    try:
        return Annealed(law, cooldown)
    except InputError as err:
        raise BadInputFile(f"{where}: {err}") from None


def _law(form: str, params: Any, where: str) -> Law:
    if not isinstance(params, dict):
        raise BadInputFile(f"{where}: expected an object of parameters")
    try:
        return make_law(form, params)
    except ValueError as err:
        raise BadInputFile(f"{where}: {err}") from None


def _measured_to_dict(measured: Measured) -> dict[str, Any]:
    data: dict[str, Any] = {"first_loss": measured.first_loss,
                            "compute_range": list(measured.compute_range),
                            "points": measured.points}
    if measured.axes_range:
        data["axes_range"] = {axis: list(pair) for axis, pair in measured.axes_range.items()}
    return data


def _measured(data: Any, where: str) -> Measured:
    if not isinstance(data, dict):
        raise BadInputFile(f"{where}: expected an object with first_loss, compute_range, points")
    first_loss = _number(_field(data, "first_loss", object, where), f"{where}.first_loss")
    if not first_loss > 0:
        raise BadInputFile(f"{where}.first_loss: must be positive, got {first_loss!r}")
    points = _field(data, "points", object, where)
    if isinstance(points, bool) or not isinstance(points, int) or points < 1:
        raise BadInputFile(f"{where}.points: expected a whole number >= 1, got {points!r}")
    axes_range = data.get("axes_range", {})
    if not isinstance(axes_range, dict):
        raise BadInputFile(f"{where}.axes_range: expected an object of [low, high] pairs")
    return Measured(first_loss, _range(_field(data, "compute_range", object, where),
                                       f"{where}.compute_range"), points,
                    {axis: _range(pair, f"{where}.axes_range.{axis}")
                     for axis, pair in axes_range.items()})


def _range(pair: Any, where: str) -> tuple[float, float]:
    if not isinstance(pair, list) or len(pair) != 2:
        raise BadInputFile(f"{where}: expected [low, high]")
    low, high = (_number(v, where, minimum=0.0) for v in pair)
    if not low <= high:
        raise BadInputFile(f"{where}: low {low!r} is above high {high!r}")
    return low, high


def _transitions(data: Any, where: str) -> Transitions:
    if not isinstance(data, dict):
        raise BadInputFile(f"{where}: expected an object")
    allowed = data.get("allowed", "all")
    if allowed not in ("all", "one-axis"):
        if not isinstance(allowed, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p)
            for p in allowed
        ):
            raise BadInputFile(
                f"{where}.allowed: expected \"all\", \"one-axis\" or a list of [from, to] pairs"
            )
        allowed = tuple((a, b) for a, b in allowed)
    measured = _optional(data, "measured", list, [], where)
    return Transitions(
        flops=_number(data.get("flops", 0.0), f"{where}.flops", minimum=0.0),
        seconds=_number(data.get("seconds", 0.0), f"{where}.seconds", minimum=0.0),
        loss_penalty=_number(data.get("loss_penalty", 0.0), f"{where}.loss_penalty", minimum=0.0),
        allowed=allowed,
        extra={k: v for k, v in data.items() if k not in _TRANSITION_KEYS},
        measured=tuple(_measured_transition(entry, f"{where}.measured[{i}]")
                       for i, entry in enumerate(measured)),
    )


def _measured_transition_to_dict(m: MeasuredTransition) -> dict[str, Any]:
    return {"from": m.source, "to": m.destination, "model": m.model, "params": m.params,
            "switches": m.switches, "rmse_log": m.rmse, "samples": [list(s) for s in m.samples]}


def _measured_transition(entry: Any, where: str) -> MeasuredTransition:
    if not isinstance(entry, dict):
        raise BadInputFile(f"{where}: expected an object")
    params = _field(entry, "params", dict, where)
    values = {name: _number(value, f"{where}.params.{name}", minimum=0.0)
              for name, value in params.items()}
    samples = []
    for k, sample in enumerate(_optional(entry, "samples", list, [], where)):
        if not isinstance(sample, list) or len(sample) != len(values):
            raise BadInputFile(f"{where}.samples[{k}]: expected a list of {len(values)} "
                               "numbers, one per parameter")
        samples.append(tuple(_number(v, f"{where}.samples[{k}]", minimum=0.0) for v in sample))
    switches = _optional(entry, "switches", int, 0, where)
    rmse = _optional(entry, "rmse_log", dict, {}, where)
    return MeasuredTransition(
        _field(entry, "from", str, where), _field(entry, "to", str, where),
        _field(entry, "model", str, where), values, tuple(samples), switches,
        {name: _number(value, f"{where}.rmse_log.{name}", minimum=0.0)
         for name, value in rmse.items()})
