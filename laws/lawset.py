"""A set of candidate shapes, each with its scaling law: the in-memory form of a law file.

A fitted shape may also carry what the fit measured (``Measured``: the loss at its lowest
measured compute, the compute range fitted) and bootstrap samples of its law. Sample k of every
shape comes from one joint resample, so ``LawSet.samples()`` gives whole law sets, one per
resample, to run a search on each.

>>> from laws.forms import PowerLaw
>>> fitted = LawSet("toy", (
...     Shape("a", {}, PowerLaw(a=2.0, b=0.5, c=1.0), measured=Measured(3.1, (1.0, 9.0), 5),
...           samples=(PowerLaw(a=2.1, b=0.5, c=1.0), PowerLaw(a=1.9, b=0.5, c=1.0))),
...     Shape("b", {}, PowerLaw(a=4.0, b=0.5, c=1.0), measured=Measured(3.4, (2.0, 8.0), 4),
...           samples=(PowerLaw(a=4.2, b=0.5, c=1.0), PowerLaw(a=3.8, b=0.5, c=1.0)))))
>>> [laws.shape("b").law.a for laws in fitted.samples()]
[4.2, 3.8]
>>> fitted.measured_start_loss()
3.4
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from laws.errors import InputError
from laws.forms import Law


@dataclass(frozen=True)
class Measured:
    """What the fit of a shape measured: the loss of its point of lowest compute, the compute
    range of the points fitted, their number and, for axes grouped into bins, the range of
    values they covered. Measured points themselves are not kept (a law file may ship where
    the data may not)."""

    first_loss: float
    compute_range: tuple[float, float]
    points: int
    axes_range: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Annealed:
    """The loss a run of the shape ends at when it cools down (warm-up-stable-decay) over the
    last ``cooldown`` share of its FLOP budget, as a law of that budget: a law fitted to
    cool-down branches of constant-rate runs (``validate/cooldown.py``), whose branch from C
    FLOPs is the wsd run of budget C / (1 - cooldown)."""

    law: Law
    cooldown: float

    def __post_init__(self) -> None:
        if not 0 < self.cooldown < 1:
            raise InputError(f"cooldown {self.cooldown!r} must be a share of the budget in "
                             "(0, 1)")


@dataclass(frozen=True)
class Shape:
    """One model configuration, e.g. ``{"patch": 16}``, and the law it follows.

    ``samples`` are bootstrap refits of the law (same form); ``measured`` is what it was
    fitted on (None for laws not fitted from curves); ``annealed`` the law of the loss after a
    final cool-down (None where none was measured), which ``laws.search.cooldown`` plans with.
    """

    name: str
    axes: dict[str, Any]
    law: Law
    throughput: float | None = None  # achieved FLOP/s on the target hardware
    extra: dict[str, Any] = field(default_factory=dict)
    samples: tuple[Law, ...] = ()
    measured: Measured | None = None
    annealed: Annealed | None = None


@dataclass(frozen=True)
class MeasuredTransition:
    """What switching from ``source`` to ``destination`` did in runs that made the switch
    (``laws.fit.transitions``): the transition ``model``, its ``params`` by name, bootstrap
    ``samples`` of them (in that order), the number of ``switches`` fitted and each model's
    out-of-sample RMSE of log-loss (``rmse``; empty where no two runs made the switch)."""

    source: str
    destination: str
    model: str
    params: dict[str, float]
    samples: tuple[tuple[float, ...], ...] = ()
    switches: int = 0
    rmse: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Transitions:
    """What a switch between shapes costs and which switches are allowed.

    ``allowed`` is ``"all"``, ``"one-axis"`` (shapes differing in exactly one axis) or a list
    of ``(from, to)`` shape-name pairs. ``flops``, ``seconds`` and ``loss_penalty`` apply to
    every switch; ``measured`` pairs, fitted from runs that switch, replace ``flops`` for
    theirs in the search.
    """

    flops: float = 0.0
    seconds: float = 0.0
    loss_penalty: float = 0.0
    allowed: str | tuple[tuple[str, str], ...] = "all"
    extra: dict[str, Any] = field(default_factory=dict)
    measured: tuple[MeasuredTransition, ...] = ()

    @property
    def measured_pairs(self) -> dict[tuple[str, str], MeasuredTransition]:
        """The measured transitions by (source, destination)."""
        return {(m.source, m.destination): m for m in self.measured}

    def override(self, *, flops: float | None = None, seconds: float | None = None,
                 loss_penalty: float | None = None,
                 allowed: str | tuple[tuple[str, str], ...] | None = None) -> Transitions:
        """These transitions with every given (not None) value replaced; extra keys are kept.

        The one way a command's switch options change a law set's transitions.

        >>> Transitions(flops=1.0, seconds=2.0).override(flops=5.0, loss_penalty=None)
        Transitions(flops=5.0, seconds=2.0, loss_penalty=0.0, allowed='all', extra={}, measured=())
        """
        given = {"flops": flops, "seconds": seconds, "loss_penalty": loss_penalty,
                 "allowed": allowed}
        return replace(self, **{key: value for key, value in given.items() if value is not None})


@dataclass(frozen=True)
class LawSet:
    """Named shapes with their laws, the transition model and where the laws came from."""

    name: str
    shapes: tuple[Shape, ...]
    compute_unit: str = "FLOP"
    transitions: Transitions = field(default_factory=Transitions)
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.shapes:
            raise InputError(f"law set {self.name!r} has no shapes")
        seen: set[str] = set()
        for shape in self.shapes:
            if shape.name in seen:
                raise InputError(f"law set {self.name!r}: shape name {shape.name!r} appears twice")
            seen.add(shape.name)
        for measured in self.transitions.measured:
            for name in (measured.source, measured.destination):
                if name not in seen:
                    raise InputError(f"law set {self.name!r}: measured transition "
                                     f"{measured.source} -> {measured.destination} names no "
                                     f"shape {name!r}")
        first = self.shapes[0]
        for shape in self.shapes:
            # Sample k of every shape is one joint draw: all shapes have it, or none does.
            if len(shape.samples) != len(first.samples):
                raise InputError(
                    f"law set {self.name!r}: shape {shape.name!r} has {len(shape.samples)} "
                    f"samples, shape {first.name!r} {len(first.samples)}; every shape needs the "
                    "same number (sample k of all shapes is one joint resample)")

    @property
    def names(self) -> list[str]:
        return [shape.name for shape in self.shapes]

    def shape(self, name: str) -> Shape:
        """The shape called ``name``; an ``InputError`` lists the known names otherwise."""
        for shape in self.shapes:
            if shape.name == name:
                return shape
        raise InputError(f"unknown shape {name!r}; known shapes: {', '.join(self.names)}")

    def samples(self) -> list[LawSet]:
        """One law set per bootstrap resample (every shape's sample k; no samples of their own,
        nothing else changed); empty when the law set has no samples."""
        return [replace(self, shapes=tuple(replace(shape, law=shape.samples[k], samples=())
                                           for shape in self.shapes))
                for k in range(len(self.shapes[0].samples))]

    def with_annealed(self, annealed: LawSet, cooldown: float) -> LawSet:
        """This law set with each shape's ``Annealed`` law taken from the same-named shape of
        ``annealed`` (laws fitted to losses after a cool-down over the last ``cooldown`` share
        of the budget, as a law of the budget); shapes ``annealed`` lacks keep none. An
        ``InputError`` when it has none of these shapes.

        >>> from laws.forms import PowerLaw
        >>> hot = LawSet("hot", (Shape("a", {}, PowerLaw(a=2.0, b=0.5, c=1.0)),
        ...                      Shape("b", {}, PowerLaw(a=3.0, b=0.5, c=1.0))))
        >>> cool = LawSet("cool", (Shape("a", {}, PowerLaw(a=1.8, b=0.5, c=0.9)),))
        >>> both = hot.with_annealed(cool, 0.2)
        >>> both.shape("a").annealed, both.shape("b").annealed
        (Annealed(law=PowerLaw(a=1.8, b=0.5, c=0.9), cooldown=0.2), None)
        """
        if not set(self.names) & set(annealed.names):
            raise InputError(f"the annealed laws {annealed.name!r} have none of the shapes of "
                             f"{self.name!r} (they have: {', '.join(annealed.names)})")
        return replace(self, shapes=tuple(
            replace(shape, annealed=Annealed(annealed.shape(shape.name).law, cooldown))
            if shape.name in annealed.names else shape for shape in self.shapes))

    def measured_start_loss(self) -> float | None:
        """The highest of the shapes' first measured losses (the search's default start: a
        plan then never starts above what was measured); None when no shape carries measured
        data, and the shapes that carry none are left out."""
        losses = [s.measured.first_loss for s in self.shapes if s.measured is not None]
        return max(losses) if losses else None
