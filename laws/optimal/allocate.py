"""Compute-optimal allocation from a Chinchilla-form law: the model size N and data D that
reach the lowest loss for a budget C = k N D.

Minimising E0 + A/N^alpha + B/D^beta with D = C / (k N) gives (Hoffmann et al. 2022, eq. 4)

    N_opt = G (C/k)^a,   D_opt = (C/k) / N_opt = (C/k)^b / G,
    G = (alpha A / (beta B))^(1/(alpha+beta)),   a = beta/(alpha+beta),   b = alpha/(alpha+beta).

A law file fitted with ``fit --form chinchilla --bootstrap K`` carries K samples of the law;
each gives its own N_opt, D_opt, loss and exponents, and the intervals are their percentiles.

>>> from laws.forms import ChinchillaLaw
>>> law = ChinchillaLaw(E0=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, N=1e9)
>>> n, d, loss = optimal_allocation(law, 6e20)
>>> round(float(n * d * 6 / 6e20), 12), round(exponents(law)[0], 4)
(1.0, 0.4516)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from laws.errors import InputError
from laws.forms import ChinchillaLaw
from laws.lawset import LawSet
from laws.stats import LEVEL, percentile_interval
from laws.tables import format_number, format_table

_SHARED = ("E0", "A", "B", "alpha", "beta", "k")  # every shape of a chinchilla fit has these


def exponents(law: ChinchillaLaw) -> tuple[float, float]:
    """(a, b) of N_opt ~ C^a and D_opt ~ C^b; a + b = 1."""
    total = law.alpha + law.beta
    return law.beta / total, law.alpha / total


def optimal_allocation(law: ChinchillaLaw, budget: ArrayLike
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """N_opt, D_opt and the loss there for each budget (FLOPs), by the closed form."""
    budget = np.asarray(budget, dtype=float)
    a, b = exponents(law)
    g = (law.alpha * law.A / (law.beta * law.B)) ** (1.0 / (law.alpha + law.beta))
    n_opt = g * (budget / law.k) ** a
    d_opt = budget / (law.k * n_opt)
    loss = law.E0 + law.A / n_opt**law.alpha + law.B / d_opt**law.beta
    return n_opt, d_opt, loss


def chinchilla_laws(laws: LawSet) -> tuple[ChinchillaLaw, list[ChinchillaLaw]]:
    """The law set's Chinchilla law and its bootstrap samples (the first shape's: every shape
    of a chinchilla fit shares E0, A, B, alpha, beta and k, and only N differs).

    Raises ``InputError`` when a shape is of another form or the shapes disagree.
    """
    first = laws.shapes[0]
    for shape in laws.shapes:
        if not isinstance(shape.law, ChinchillaLaw):
            raise InputError(f"law set {laws.name!r}: shape {shape.name!r} has form "
                             f"{shape.law.form!r}; compute-optimal allocation needs the "
                             "chinchilla form (fit --form chinchilla)")
        for key in _SHARED:
            if not np.isclose(getattr(shape.law, key), getattr(first.law, key), rtol=1e-9,
                              atol=0.0):
                raise InputError(f"law set {laws.name!r}: shapes {first.name!r} and "
                                 f"{shape.name!r} differ in {key}; allocation needs one "
                                 "chinchilla law shared by all shapes")
    return first.law, list(first.samples)


@dataclass(frozen=True)
class Allocation:
    """Optimal N, D and loss per budget, the exponents a and b, and (with bootstrap samples)
    their ``level`` intervals: ``intervals`` maps ``n``, ``d``, ``loss`` to (budgets, 2)
    arrays and ``a``, ``b`` to (low, high)."""

    budgets: np.ndarray
    n_opt: np.ndarray
    d_opt: np.ndarray
    loss: np.ndarray
    a: float
    b: float
    samples: int = 0
    level: float = LEVEL
    intervals: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready: one row per budget, then the exponents."""
        def bounds(key: str, row: int | None = None) -> list[float] | None:
            if key not in self.intervals:
                return None
            pair = self.intervals[key] if row is None else self.intervals[key][row]
            return [float(v) for v in pair]

        rows = [{"budget": float(c), "N": float(n), "D": float(d), "loss": float(e),
                 "tokens_per_param": float(d / n),
                 **({"N_interval": bounds("n", i), "D_interval": bounds("d", i),
                     "loss_interval": bounds("loss", i)} if self.intervals else {})}
                for i, (c, n, d, e) in enumerate(zip(self.budgets, self.n_opt, self.d_opt,
                                                     self.loss, strict=True))]
        return {"allocations": rows, "a": self.a, "b": self.b, "a_interval": bounds("a"),
                "b_interval": bounds("b"), "samples": self.samples, "level": self.level}


def allocate(laws: LawSet, budgets: ArrayLike, level: float = LEVEL) -> Allocation:
    """The compute-optimal allocation of each budget under the law set's Chinchilla law,
    with intervals over its bootstrap samples when it has any.

    >>> from laws.forms import ChinchillaLaw
    >>> from laws.lawset import Shape
    >>> law = ChinchillaLaw(E0=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, N=1e9)
    >>> result = allocate(LawSet("c", (Shape("n1e9", {}, law),)), [5.76e23])
    >>> round(float(6 * result.n_opt[0] * result.d_opt[0] / 5.76e23), 9), result.samples
    (1.0, 0)
    """
    budgets = np.atleast_1d(np.asarray(budgets, dtype=float))
    if budgets.size == 0 or not np.all(np.isfinite(budgets) & (budgets > 0)):
        raise InputError("budgets must be positive finite FLOPs (at least one)")
    law, samples = chinchilla_laws(laws)
    n_opt, d_opt, loss = optimal_allocation(law, budgets)
    a, b = exponents(law)
    intervals: dict[str, object] = {}
    if samples:
        drawn = [optimal_allocation(sample, budgets) for sample in samples]
        for i, key in enumerate(("n", "d", "loss")):
            per_budget = np.array([row[i] for row in drawn]).T  # (budgets, samples)
            intervals[key] = [percentile_interval(values, level) for values in per_budget]
        pairs = np.array([exponents(sample) for sample in samples])
        intervals["a"] = percentile_interval(pairs[:, 0], level)
        intervals["b"] = percentile_interval(pairs[:, 1], level)
    return Allocation(budgets, n_opt, d_opt, loss, a, b, len(samples), level, intervals)


def with_interval(value: float, pair: object = None) -> str:
    """``value [low – high]``, or the value alone without an interval."""
    if pair is None:
        return format_number(float(value))
    low, high = pair
    return f"{format_number(float(value))} [{format_number(float(low))} – " \
           f"{format_number(float(high))}]"


def format_allocation(result: Allocation) -> str:
    """A table of budgets with N_opt, D_opt, D/N and the loss, then the exponents."""
    rows = []
    for i in range(result.budgets.size):
        row = [result.budgets[i]]
        for key, values in (("n", result.n_opt), ("d", result.d_opt)):
            row.append(with_interval(values[i], result.intervals[key][i]
                                     if result.intervals else None))
        row.append(result.d_opt[i] / result.n_opt[i])
        row.append(with_interval(result.loss[i], result.intervals["loss"][i]
                                 if result.intervals else None))
        rows.append(row)
    lines = [format_table(["budget (FLOP)", "N_opt", "D_opt", "D/N", "loss"], rows), ""]
    lines.append(f"N_opt ~ C^a: a = {with_interval(result.a, result.intervals.get('a'))}")
    lines.append(f"D_opt ~ C^b: b = {with_interval(result.b, result.intervals.get('b'))}")
    if result.samples:
        lines.append(f"intervals: {100 * result.level:g}% over {result.samples} bootstrap "
                     "samples of the law")
    else:
        lines.append("no bootstrap samples in the law file: no intervals "
                     "(fit --bootstrap N keeps them)")
    return "\n".join(lines)
