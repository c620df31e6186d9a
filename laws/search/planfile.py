"""The plan object of DESIGN.md ("File formats") as types, and the one place it is turned into
JSON and back: ``Plan.to_dict`` / ``Plan.from_dict``, ``write_plan`` / ``read_plan``.

Every field is named as its key in the file (a switch's ``from`` and ``to`` excepted: Python
keywords, ``from_shape`` and ``to_shape`` here), so the file format is the types' own. Reading
checks every key against its field's type and names the file and the key that is missing or
wrong; keys it does not know (``options`` of plans from before the request was recorded) are
left out. A field with a default may be absent (``assumptions`` and ``measured_switches`` of
older plans, ``uncertainty`` of laws without bootstrap samples); one whose value is None is not
written.

>>> segment = Segment("p32", 3.0, 2.5, 1e15, 0.0, 1e15)
>>> route = PlannedRoute(cost=1e15, compute=1e15, switches=0, schedule=(segment,))
>>> route.steps(), route.shapes
([('p32', 2.5)], ('p32',))
>>> Plan.from_dict({"shapes": []}, "laws.json")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
laws.errors.BadInputFile: laws.json is a law file, not a plan of `shapeshift search` (no ...
"""

from __future__ import annotations

import json
import os
import types
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from typing import Any, Union, get_args, get_origin, get_type_hints

from laws.errors import BadInputFile, InputError
from laws.io.atomic import write_text_atomic
from laws.io.jsonfile import read_json_object
from laws.search.request import LawsMismatch, PlanRequest, show_value


@dataclass(frozen=True)
class Segment:
    """One shape of a route: trained from ``loss_from`` to ``loss_to``. ``compute`` is its
    training FLOPs (the first segment's from scratch, so it includes reaching the start loss),
    ``switch_compute`` the FLOPs of the switch into it, ``cost`` both in objective units."""

    shape: str
    loss_from: float
    loss_to: float
    compute: float
    switch_compute: float
    cost: float


@dataclass(frozen=True)
class PlannedRoute:
    """A route as the plan shows it; one that does not reach the target has no schedule, and
    None for its cost, compute and switches. ``compute`` is the sum of the segments' training
    and switch FLOPs."""

    cost: float | None
    compute: float | None
    switches: int | None
    schedule: tuple[Segment, ...]

    @property
    def shapes(self) -> tuple[str, ...]:
        """The shapes in the order the route trains them."""
        return tuple(segment.shape for segment in self.schedule)

    def steps(self) -> list[tuple[str, float]]:
        """(shape, loss at which the route leaves it): what a scheduled policy follows."""
        return [(segment.shape, segment.loss_to) for segment in self.schedule]


@dataclass(frozen=True)
class StaticBest:
    """The cheapest single shape to the target: its FLOPs (None if unreachable) and cost."""

    shape: str
    compute: float | None
    cost: float


@dataclass(frozen=True)
class MeasuredSwitch:
    """A switch of the optimal route charged by a measured transition (its ``model``)."""

    from_shape: str = field(metadata={"key": "from"})
    to_shape: str = field(metadata={"key": "to"})
    model: str
    flops: float


@dataclass(frozen=True)
class LawsRecord:
    """The law set a plan was made for: its name, shapes and canonical digest."""

    name: str
    shapes: tuple[str, ...]
    digest: str


@dataclass(frozen=True)
class ProducedBy:
    tool: str
    version: str


@dataclass(frozen=True)
class Percentiles:
    """A quantity over the bootstrap samples: the median and the interval's ends (None where
    no sample has a finite value)."""

    p5: float | None
    p50: float | None
    p95: float | None


@dataclass(frozen=True)
class RobustStep:
    shape: str
    loss_from: float
    loss_to: float


@dataclass(frozen=True)
class RobustChoice:
    """The route of best saving at the ``quantile``-th percentile of the samples
    (``laws.search.uncertainty.robust_route``)."""

    quantile: float
    schedule: tuple[RobustStep, ...]
    saving_at_quantile: float
    point_cost: float
    point_cost_over_optimal: float


@dataclass(frozen=True)
class PlanUncertainty:
    """How sure a plan is, over the law file's bootstrap samples (``laws.search.uncertainty``):
    ``level`` is the intervals' level (0.9), ``schedules`` the share of samples whose optimal
    order of shapes is each key ("p32 > p16")."""

    samples: int
    level: float
    saving: Percentiles
    plan_saving: Percentiles
    p_beats_static: float
    schedules: dict[str, float]
    robust: RobustChoice | None = None


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What ``shapeshift search`` answers (``laws.search.plans.plan``). ``static`` maps every
    shape to its FLOPs to the target (None: unreachable); ``saving_vs_static`` is
    1 - optimal cost / the best static shape's; ``lower_bound`` is C* (DESIGN.md)."""

    target_loss: float
    start_loss: float
    objective: str
    compute_unit: str
    levels: int
    laws: LawsRecord
    request: PlanRequest
    solver: str
    optimal: PlannedRoute
    assumptions: tuple[str, ...] = ()
    measured_switches: tuple[MeasuredSwitch, ...] = ()
    greedy: PlannedRoute
    static: dict[str, float | None]
    static_best: StaticBest
    saving_vs_static: float
    lower_bound: float
    produced_by: ProducedBy
    uncertainty: PlanUncertainty | None = None

    @property
    def recommends_static(self) -> bool:
        """Whether the plan advises training its best static shape alone: its optimal route
        makes no switch, or the interval of its saving over that shape (``uncertainty``)
        reaches 0 or below, so that following it may lose to static."""
        if self.optimal.switches == 0:
            return True
        low = None if self.uncertainty is None else self.uncertainty.plan_saving.p5
        return low is not None and low <= 0.0

    def check_request(self, request: PlanRequest, where: str = "plan") -> None:
        """Refuse this plan where it was made for another request than ``request``: one line
        names the first field that differs, with both values (``LawsMismatch`` for the laws).

        >>> from laws.presets import load_preset
        >>> from laws.search import plan
        >>> laws = load_preset("demo")
        >>> made = plan(laws, PlanRequest.for_laws(laws, 1.6, levels=100))
        >>> made.check_request(PlanRequest.for_laws(laws, 2.0, levels=100))
        Traceback (most recent call last):
        ...
        laws.errors.InputError: plan was made for target 1.6, this command asks for target 2
        """
        for item in fields(request):
            theirs, ours = getattr(self.request, item.name), getattr(request, item.name)
            if theirs != ours:
                label = item.name.replace("_", " ")
                if item.name == "laws_digest":
                    raise LawsMismatch(f"{where} was made for other laws ({self.laws.name!r}, "
                                       f"digest {theirs[:12]}), not for the given ones (digest "
                                       f"{ours[:12]}); run `shapeshift search` again")
                raise InputError(f"{where} was made for {label} {show_value(theirs)}, this "
                                 f"command asks for {label} {show_value(ours)}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready object of the file, keys in the file's order."""
        return _to_json(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "plan") -> Plan:
        """The plan a JSON object holds. A ``BadInputFile`` names ``where`` and the key that is
        missing or of the wrong type, or says what else the object is (a law file, a summary);
        a plan without the request it answers is one from an older shapeshift."""
        if not isinstance(data, dict) or not {"optimal", "request"} & set(data):
            raise BadInputFile(f"{where} is {_what_else(data)}, not a plan of `shapeshift "
                               "search` (no 'optimal' route); write one with `shapeshift "
                               "search ... -o PLAN.json`")
        if "request" not in data:
            raise BadInputFile(f"{where}: no 'request', the search it answers (a plan from an "
                               "older shapeshift: run `search` again)")
        return _from_json(cls, data, where, "")


def _what_else(data: Any) -> str:
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}"
    if "shapes" in data:
        return "a law file"
    if "measured_saving" in data:
        return "the summary.json of `validate run`"
    return "a JSON object"


def write_plan(plan: Plan, path: str | os.PathLike) -> None:
    """Write a plan as JSON (atomically), for ``simulate --plan`` and ``compare --plan``."""
    write_text_atomic(path, json.dumps(plan.to_dict(), indent=2, allow_nan=False) + "\n")


def read_plan(path: str | os.PathLike) -> Plan:
    """The plan a file written by ``write_plan`` holds (``Plan.from_dict``)."""
    return Plan.from_dict(read_json_object(path, "plan"), str(path))


def _key(item: Field) -> str:
    return item.metadata.get("key", item.name)


def _to_json(value: Any) -> Any:
    if isinstance(value, PlanRequest):
        return value.to_dict()
    if is_dataclass(value):
        return {_key(item): _to_json(getattr(value, item.name)) for item in fields(value)
                if not (item.default is None and getattr(value, item.name) is None)}
    if isinstance(value, tuple):
        return [_to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    return value


_SCALARS = {float: "a number", int: "an integer", str: "a string"}


def _from_json(kind: Any, value: Any, where: str, path: str) -> Any:
    """``value`` (at ``path`` of the file ``where``) as the type ``kind`` of a field above."""
    origin, arguments = get_origin(kind), get_args(kind)
    if kind is PlanRequest:
        try:
            return PlanRequest.from_dict(value, f"{where}: {path}")
        except InputError as error:  # a field the request itself refuses
            raise BadInputFile(str(error)) from error
    if is_dataclass(kind):
        if not isinstance(value, dict):
            raise _mistyped(where, path, "an object", value)
        hints, values = get_type_hints(kind), {}
        for item in fields(kind):
            key = _key(item)
            if key in value:
                values[item.name] = _from_json(hints[item.name], value[key], where,
                                               _join(path, key))
            elif item.default is MISSING:
                raise BadInputFile(f"{where}: no {_join(path, key)!r} (a plan of `shapeshift "
                                   "search` has one)")
        return kind(**values)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in arguments:
            return None
        (kind,) = (argument for argument in arguments if argument is not type(None))
        return _from_json(kind, value, where, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise _mistyped(where, path, "a list", value)
        return tuple(_from_json(arguments[0], item, where, f"{path}[{index}]")
                     for index, item in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise _mistyped(where, path, "an object", value)
        return {key: _from_json(arguments[1], item, where, _join(path, key))
                for key, item in value.items()}
    allowed = (int, float) if kind is float else (kind,)
    if not isinstance(value, allowed) or isinstance(value, bool):
        raise _mistyped(where, path, _SCALARS[kind], value)
    return kind(value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _mistyped(where: str, path: str, expected: str, value: Any) -> BadInputFile:
    shown = repr(value) if len(repr(value)) <= 40 else f"a {type(value).__name__}"
    return BadInputFile(f"{where}: {path!r} must be {expected}, got {shown}")
