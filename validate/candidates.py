"""A loop's candidate shapes: the ``--shapes`` option, and the short names the shapes go by in
the laws, the plan and the run folders (the axes that differ between the candidates)."""

from __future__ import annotations

from validate.tasks import Axes, parse_axes


def shape_names(candidates: list[Axes]) -> list[str]:
    """Short shape names from the axes that differ between the candidates.

    >>> shape_names([{"patch": 14, "dim": 64}, {"patch": 7, "dim": 64}])
    ['patch14', 'patch7']
    """
    varying = [axis for axis in candidates[0] if len({c[axis] for c in candidates}) > 1]
    return ["-".join(f"{axis}{c[axis]}" for axis in varying) or "only" for c in candidates]


def parse_candidates(texts: tuple[str, ...] | list[str]) -> tuple[Axes, ...]:
    """The ``--shapes`` option: candidates separated by ';' (or given as several texts), each
    ``AXIS=N,...``.

    >>> parse_candidates(["patch=14;patch=7", "patch=4"])
    ({'patch': 14}, {'patch': 7}, {'patch': 4})
    """
    return tuple(parse_axes(part, "--shapes") for text in texts
                 for part in text.split(";") if part.strip())
