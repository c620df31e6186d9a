"""The plan request: everything a search is asked, as one frozen object.

A command builds it once from its options; the search consumes it and records it in the plan
(``Plan.request``); ``simulate``, ``compare``, the online policy and the validate loop reuse
it, and refuse a plan that was made for another request (``Plan.check_request``).

>>> from laws.presets import load_preset
>>> laws = load_preset("demo")
>>> request = PlanRequest.for_laws(laws, 2.0, switch_flops=1e18, max_switches=2)
>>> request.transitions(laws).flops, request.max_switches
(1e+18, 2)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from laws.errors import InputError
from laws.io.source import law_set_digest
from laws.lawset import LawSet, Transitions

OBJECTIVES = ("flops", "seconds", "money")
DEFAULT_LEVELS = 2000
# The search's time and memory grow with shapes x levels x (switches + 1); a million levels of
# three shapes take about 5 s, and no plan gains from a finer grid (bench_search: 100,000 levels).
MAX_LEVELS = 1_000_000


# Fields a request gained after plans were first written, at their defaults (left out of files).
_ADDED = {"end_on": None}


class LawsMismatch(InputError):
    """A plan used with other laws than those it was made for (their digests differ)."""


@dataclass(frozen=True)
class PlanRequest:
    """A search towards ``target`` on the law set whose digest is ``laws_digest``.

    ``start_loss`` None starts where the laws say (``laws.search.grid.default_start_loss``);
    ``levels`` of the loss grid run from 2 to ``MAX_LEVELS`` (a million);
    the ``switch_*`` values and ``allowed`` override the law set's transitions (None keeps
    them); ``only_grow``/``only_shrink`` name axes that may never decrease/increase;
    ``max_switches`` limits the switches; ``objective`` is flops, seconds (needs throughputs)
    or money (seconds times ``price_per_hour`` / 3600); ``robust`` (a percentile), on laws with
    bootstrap samples, also picks the route whose saving at that percentile of the samples is
    highest (``laws.search.uncertainty``).
    """

    target: float
    laws_digest: str
    start_loss: float | None = None
    levels: int = DEFAULT_LEVELS
    switch_flops: float | None = None
    switch_seconds: float | None = None
    switch_penalty: float | None = None
    allowed: str | tuple[tuple[str, str], ...] | None = None
    only_grow: tuple[str, ...] = ()
    only_shrink: tuple[str, ...] = ()
    max_switches: int | None = None
    objective: str = "flops"
    price_per_hour: float | None = None
    robust: float | None = None
    end_on: str | None = None

    def __post_init__(self) -> None:
        if not _is_number(self.target) or not math.isfinite(self.target):
            raise InputError(f"target loss must be a finite number, got {self.target!r}")
        if self.start_loss is not None and not (
                _is_number(self.start_loss) and math.isfinite(self.start_loss)
                and self.start_loss > self.target):
            raise InputError(f"start loss {self.start_loss!r} must be a finite loss above the "
                             f"target {self.target:g}")
        if not (_is_integer(self.levels) and 2 <= self.levels <= MAX_LEVELS):
            raise InputError(f"levels must be an integer from 2 to {MAX_LEVELS:,}, got "
                             f"{self.levels!r}")
        for name in ("switch_flops", "switch_seconds", "switch_penalty"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and math.isfinite(value)
                                          and value >= 0):
                raise InputError(f"--{name.replace('_', '-')} must be a finite number >= 0, "
                                 f"got {value!r}")
        if self.max_switches is not None and not (_is_integer(self.max_switches)
                                                  and self.max_switches >= 0):
            raise InputError(f"--max-switches must be an integer >= 0, got "
                             f"{self.max_switches!r}")
        if self.objective not in OBJECTIVES:
            raise InputError(f"objective must be one of {', '.join(OBJECTIVES)}, got "
                             f"{self.objective!r}")
        if (self.objective == "money") != (self.price_per_hour is not None):
            raise InputError("--price-per-hour is needed by, and only by, --objective money")
        if self.robust is not None and not (_is_number(self.robust) and 0 < self.robust < 100):
            raise InputError(f"--robust must be a percentile between 0 and 100, got "
                             f"{self.robust!r}")
        if self.price_per_hour is not None and not (
                _is_number(self.price_per_hour) and math.isfinite(self.price_per_hour)
                and self.price_per_hour > 0):
            raise InputError(f"--price-per-hour must be a positive number, got "
                             f"{self.price_per_hour!r}")

    @classmethod
    def for_laws(cls, laws: LawSet, target: float, **options: Any) -> PlanRequest:
        """The request of ``options`` (the fields above) for ``laws``."""
        return cls(target, law_set_digest(laws), **options)

    def for_other_laws(self, laws: LawSet) -> PlanRequest:
        """The same question asked of other laws (the online policy's refits)."""
        return replace(self, laws_digest=law_set_digest(laws))

    def transitions(self, laws: LawSet) -> Transitions:
        """The transitions of ``laws`` with this request's overrides: what switches cost."""
        return laws.transitions.override(flops=self.switch_flops, seconds=self.switch_seconds,
                                         loss_penalty=self.switch_penalty, allowed=self.allowed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: tuples become lists. Fields added since plans were first written are
        left out at their defaults, so that the plans of older searches read the same."""
        data = asdict(self)
        for key, default in _ADDED.items():
            if data[key] == default:
                del data[key]
        for key in ("only_grow", "only_shrink"):
            data[key] = list(data[key])
        if isinstance(self.allowed, tuple):
            data["allowed"] = [list(pair) for pair in self.allowed]
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "plan request") -> PlanRequest:
        """The request recorded in a plan; an ``InputError`` names a missing or bad field."""
        names = [f.name for f in fields(cls)]
        if isinstance(data, dict):
            data = {**_ADDED, **data}
        if not isinstance(data, dict) or set(data) != set(names):
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise InputError(f"{where}: expected an object with the fields {', '.join(names)}; "
                             f"got {got} (a plan from an older shapeshift: run `search` again)")
        values = dict(data)
        for key in ("only_grow", "only_shrink"):
            if not isinstance(values[key], list) or not all(isinstance(a, str)
                                                            for a in values[key]):
                raise InputError(f"{where}.{key}: expected a list of axis names")
            values[key] = tuple(values[key])
        if isinstance(values["allowed"], list):
            values["allowed"] = tuple(tuple(pair) for pair in values["allowed"])
        return cls(**values)


def describe_request(data: dict[str, Any]) -> str:
    """The search options of a recorded request (``PlanRequest.to_dict``) that differ from the
    defaults, for tables and reports; the target and the laws are shown elsewhere.

    >>> describe_request(PlanRequest(2.0, "0" * 64, switch_flops=1e17, max_switches=1).to_dict())
    'switch flops 1e+17, max switches 1'
    """
    shown = []
    for field in fields(PlanRequest):
        if field.name in ("target", "laws_digest"):
            continue
        value, default = data.get(field.name, field.default), field.default
        if value != default and not (value == [] and default == ()):
            shown.append(f"{field.name.replace('_', ' ')} {show_value(value)}")
    return ", ".join(shown) or "default search options"


def show_value(value: Any) -> str:
    """A request field's value as messages and tables show it."""
    if value is None:
        return "none (the law set's)"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def default_target(laws: LawSet) -> float:
    """The target loss a law set suggests (its ``default_target`` key), for demos.

    >>> from laws.presets import load_preset
    >>> default_target(load_preset("demo"))
    2.1
    """
    target = laws.extra.get("default_target")
    if not _is_number(target):
        raise InputError(f"give --target LOSS (law set {laws.name!r} has no default_target)")
    return float(target)
