"""Scaling-law forms: loss against cumulative training compute, its inverse and derivative.

Every form maps compute C (FLOPs) to loss, strictly decreasing towards a ``floor``, and
provides ``loss(C)``, ``compute(E)`` (+inf at or below the floor), ``dcompute(E)`` = dC/dE
(< 0) and ``ceiling`` (the loss at zero compute, where the law starts). All are vectorised
over numpy arrays and return a float for scalar input.

>>> law = PowerLaw(a=10.0, b=0.5, c=1.0)
>>> float(law.loss(100.0))
2.0
>>> round(law.compute(2.0), 9)
100.0
"""

from __future__ import annotations

import math
import numbers
import reprlib
from abc import ABC, abstractmethod
from dataclasses import MISSING, asdict, dataclass, field
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike


def _out(values: np.ndarray) -> np.ndarray | float:
    """Return a float for 0-d results and the array otherwise."""
    return float(values) if values.ndim == 0 else values


def _require_positive(**values: float) -> None:
    for name, value in values.items():
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _require_finite(**values: float) -> None:
    for name, value in values.items():
        if not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")


class Law(ABC):
    """A strictly decreasing loss-versus-compute curve."""

    form: ClassVar[str]

    @property
    @abstractmethod
    def floor(self) -> float:
        """The loss approached as compute grows without bound."""

    @property
    def ceiling(self) -> float:
        """The loss at zero compute (+inf for laws that diverge there)."""
        return float(self.loss(0.0)) if self.offset > 0 else float("inf")

    @property
    def offset(self) -> float:
        """Compute already 'in' the law at C = 0 (only the saturating form has one)."""
        return 0.0

    @abstractmethod
    def loss(self, compute: ArrayLike) -> np.ndarray | float:
        """Loss after ``compute`` FLOPs of training."""

    @abstractmethod
    def compute(self, loss: ArrayLike) -> np.ndarray | float:
        """Compute needed to reach ``loss`` from scratch; +inf at or below the floor."""

    @abstractmethod
    def dcompute(self, loss: ArrayLike) -> np.ndarray | float:
        """dC/dE at ``loss`` (negative); -inf at or below the floor."""

    def params(self) -> dict:
        """The parameters as they appear in a law file."""
        return asdict(self)


def offset_power_compute(loss: ArrayLike, floor: ArrayLike, a: ArrayLike, b: ArrayLike,
                         d: ArrayLike) -> np.ndarray:
    """C(E) of floor + a (C + d)^-b, +inf at or below the floor; broadcasts over parameter
    arrays too (many bootstrap samples of a law at once).

    >>> offset_power_compute([2.0], np.array([[1.0], [1.5]]), 10.0, 0.5, 0.0).round(9).tolist()
    [[100.0], [400.0]]
    """
    excess = np.asarray(loss, dtype=float) - np.asarray(floor, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        c = np.where(excess > 0, np.power(np.maximum(excess, 1e-300) / a, -1.0 / b) - d, np.inf)
    return np.maximum(c, 0.0)


@dataclass(frozen=True)
class _OffsetPowerLaw(Law):
    """Shared algebra of laws of the form floor + a (C + d)^-b (power, saturating, chinchilla)."""

    @abstractmethod
    def _a_b_d(self) -> tuple[float, float, float]:
        """The law as floor + a (C + d)^-b."""

    def loss(self, compute: ArrayLike) -> np.ndarray | float:
        a, b, d = self._a_b_d()
        c = np.asarray(compute, dtype=float)
        with np.errstate(divide="ignore", over="ignore"):
            return _out(self.floor + a * np.power(c + d, -b))

    def compute(self, loss: ArrayLike) -> np.ndarray | float:
        return _out(offset_power_compute(loss, self.floor, *self._a_b_d()))

    def offset_power(self) -> tuple[float, float, float, float]:
        """(floor, a, b, d) of floor + a (C + d)^-b, for ``offset_power_compute``."""
        return (self.floor, *self._a_b_d())

    def dcompute(self, loss: ArrayLike) -> np.ndarray | float:
        a, b, d = self._a_b_d()
        excess = np.asarray(loss, dtype=float) - self.floor
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            shifted = np.power(np.maximum(excess, 1e-300) / a, -1.0 / b)
            slope = np.where(excess > 0, -shifted / (b * excess), -np.inf)
        # Above the ceiling the law has not started: more loss costs no less compute.
        return _out(np.where(shifted - d < 0, 0.0, slope))


@dataclass(frozen=True)
class PowerLaw(_OffsetPowerLaw):
    """loss = c + a C^-b."""

    a: float
    b: float
    c: float
    form: ClassVar[str] = "power"

    def __post_init__(self) -> None:
        _require_positive(a=self.a, b=self.b)
        _require_finite(c=self.c)

    @property
    def floor(self) -> float:
        return self.c

    def _a_b_d(self) -> tuple[float, float, float]:
        return self.a, self.b, 0.0


@dataclass(frozen=True)
class SaturatingLaw(_OffsetPowerLaw):
    """loss = c + a (C + d)^-b (Zhai et al. 2022): finite loss at zero compute."""

    a: float
    b: float
    c: float
    d: float
    form: ClassVar[str] = "saturating"

    def __post_init__(self) -> None:
        _require_positive(a=self.a, b=self.b, d=self.d)
        _require_finite(c=self.c)

    @property
    def floor(self) -> float:
        return self.c

    @property
    def offset(self) -> float:
        return self.d

    def _a_b_d(self) -> tuple[float, float, float]:
        return self.a, self.b, self.d


@dataclass(frozen=True)
class ChinchillaLaw(_OffsetPowerLaw):
    """loss = E0 + A/N^alpha + B/D^beta for a model of N parameters, D = C / (k N) tokens."""

    E0: float
    A: float
    B: float
    alpha: float
    beta: float
    N: float
    k: float = 6.0
    form: ClassVar[str] = "chinchilla"

    def __post_init__(self) -> None:
        _require_positive(A=self.A, B=self.B, alpha=self.alpha, beta=self.beta, N=self.N, k=self.k)
        _require_finite(E0=self.E0)
        # At an extreme N, A / N^alpha or B (k N)^beta leaves float range (Python's float power
        # raises OverflowError, its division ZeroDivisionError): no law to evaluate.
        try:
            floor, coefficient = self.floor, self._a_b_d()[0]
        except (OverflowError, ZeroDivisionError):
            floor = coefficient = math.inf
        if not (math.isfinite(floor) and 0 < coefficient < math.inf):
            raise ValueError(f"N = {self.N:g}: A / N^alpha or B (k N)^beta is beyond float "
                             "range")

    @property
    def floor(self) -> float:
        return self.E0 + self.A / self.N**self.alpha

    def _a_b_d(self) -> tuple[float, float, float]:
        # B / D^beta = B (k N)^beta C^-beta
        return self.B * (self.k * self.N) ** self.beta, self.beta, 0.0


@dataclass(frozen=True)
class TableLaw(Law):
    """A measured curve: piecewise power law between the points, extended by its end segments.

    Between consecutive points, log(loss - floor) is linear in log(compute), which keeps the
    curve monotone and makes the inverse exact; beyond the data the first and last segments
    continue as power laws (the tails).
    """

    compute_points: tuple[float, ...]
    loss_points: tuple[float, ...]
    floor_loss: float = 0.0
    form: ClassVar[str] = "table"
    _log_c: np.ndarray = field(init=False, repr=False, compare=False)
    _log_excess: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        c = np.asarray(self.compute_points, dtype=float)
        e = np.asarray(self.loss_points, dtype=float)
        if c.ndim != 1 or c.shape != e.shape or c.size < 2:
            raise ValueError("compute and loss need the same length, at least 2 points")
        if not (np.all(np.isfinite(c)) and np.all(c > 0)):
            raise ValueError("compute points must be positive and finite")
        if np.any(np.diff(c) <= 0) or np.any(np.diff(e) >= 0):
            raise ValueError("compute must increase and loss strictly decrease along the table")
        if not e[-1] > self.floor_loss:
            raise ValueError(f"floor {self.floor_loss} must lie below the lowest loss {e[-1]}")
        object.__setattr__(self, "_log_c", np.log(c))
        object.__setattr__(self, "_log_excess", np.log(e - self.floor_loss))

    @property
    def floor(self) -> float:
        return self.floor_loss

    def params(self) -> dict:
        return {
            "compute": list(self.compute_points),
            "loss": list(self.loss_points),
            "floor": self.floor_loss,
        }

    def loss(self, compute: ArrayLike) -> np.ndarray | float:
        c = np.asarray(compute, dtype=float)
        with np.errstate(divide="ignore", over="ignore"):
            log_excess = _linear_with_tails(np.log(c), self._log_c, self._log_excess)
            return _out(self.floor_loss + np.exp(log_excess))

    def compute(self, loss: ArrayLike) -> np.ndarray | float:
        excess = np.asarray(loss, dtype=float) - self.floor_loss
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_c = _linear_with_tails(
                np.log(np.maximum(excess, 1e-300)), self._log_excess[::-1], self._log_c[::-1]
            )
            return _out(np.where(excess > 0, np.exp(log_c), np.inf))

    def dcompute(self, loss: ArrayLike) -> np.ndarray | float:
        excess = np.asarray(loss, dtype=float) - self.floor_loss
        safe = np.maximum(excess, 1e-300)
        xs, ys = self._log_excess[::-1], self._log_c[::-1]
        segment = np.clip(np.searchsorted(xs, np.log(safe)) - 1, 0, xs.size - 2)
        dlogc_dlogexcess = (ys[segment + 1] - ys[segment]) / (xs[segment + 1] - xs[segment])
        with np.errstate(invalid="ignore"):
            slope = self.compute(loss) * dlogc_dlogexcess / safe
        return _out(np.where(excess > 0, slope, -np.inf))


def _linear_with_tails(x: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation through (xs, ys), xs increasing, extended linearly."""
    segment = np.clip(np.searchsorted(xs, x) - 1, 0, xs.size - 2)
    x0, x1 = xs[segment], xs[segment + 1]
    y0, y1 = ys[segment], ys[segment + 1]
    return y0 + (x - x0) * (y1 - y0) / (x1 - x0)


FORMS: dict[str, type[Law]] = {
    cls.form: cls for cls in (PowerLaw, SaturatingLaw, ChinchillaLaw, TableLaw)
}


def make_law(form: str, params: dict) -> Law:
    """Build a law from its form name and the parameters of a law file.

    >>> make_law("power", {"a": 10.0, "b": 0.5, "c": 1.0})
    PowerLaw(a=10.0, b=0.5, c=1.0)

    Raises ``ValueError`` naming the unknown form, missing or extra parameter, or bad value.
    """
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; expected one of {', '.join(FORMS)}")
    if form == "table":
        expected = {"compute", "loss"}
        optional = {"floor"}
    else:
        cls = FORMS[form]
        fields = {f.name: f for f in cls.__dataclass_fields__.values() if f.init}
        expected = {name for name, f in fields.items() if f.default is MISSING}
        optional = set(fields) - expected
    missing = expected - set(params)
    if missing:
        raise ValueError(f"form {form!r} is missing parameter(s) {', '.join(sorted(missing))}")
    unknown = set(params) - expected - optional
    if unknown:
        raise ValueError(f"form {form!r} has unknown parameter(s) {', '.join(sorted(unknown))}")
    if form == "table":
        table = (_numbers(params["compute"], "compute"), _numbers(params["loss"], "loss"),
                 finite_number(params.get("floor", 0.0), "floor"))
        return TableLaw(*table)
    return FORMS[form](**{name: finite_number(value, name) for name, value in params.items()})


def finite_number(value: object, name: str) -> float:
    """``value`` as a float when it is a finite number; JSON's true, "0.3" and integers beyond
    float range are not.

    >>> finite_number(3, "a")
    3.0
    >>> finite_number(True, "b")
    Traceback (most recent call last):
    ...
    ValueError: b: expected a number, got True
    >>> finite_number(10**400, "a")
    Traceback (most recent call last):
    ...
    ValueError: a: an integer of 401 digits is beyond the range of a float
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a number, got {reprlib.repr(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{name}: an integer of {len(str(abs(value)))} digits is beyond the "
                         "range of a float") from None
    if not math.isfinite(number):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return number


def _numbers(values: object, name: str) -> tuple[float, ...]:
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"{name}: expected a list of numbers, got {reprlib.repr(values)}")
    return tuple(finite_number(v, f"{name}[{i}]") for i, v in enumerate(values))
