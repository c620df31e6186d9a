"""A set of candidate shapes, each with its scaling law: the in-memory form of a law file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from laws.errors import InputError
from laws.forms import Law


@dataclass(frozen=True)
class Shape:
    """One model configuration, e.g. ``{"patch": 16}``, and the law it follows."""

    name: str
    axes: dict[str, Any]
    law: Law
    throughput: float | None = None  # achieved FLOP/s on the target hardware
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transitions:
    """What a switch between shapes costs and which switches are allowed.

    ``allowed`` is ``"all"``, ``"one-axis"`` (shapes differing in exactly one axis) or a list
    of ``(from, to)`` shape-name pairs.
    """

    flops: float = 0.0
    seconds: float = 0.0
    loss_penalty: float = 0.0
    allowed: str | tuple[tuple[str, str], ...] = "all"
    extra: dict[str, Any] = field(default_factory=dict)


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

    @property
    def names(self) -> list[str]:
        return [shape.name for shape in self.shapes]

    def shape(self, name: str) -> Shape:
        """The shape called ``name``; an ``InputError`` lists the known names otherwise."""
        for shape in self.shapes:
            if shape.name == name:
                return shape
        raise InputError(f"unknown shape {name!r}; known shapes: {', '.join(self.names)}")
