"""The loss a shape reaches at a given compute, with an interval from the law file's bootstrap
samples: each sample's law gives its own loss, the interval is their percentiles.

For a Chinchilla-form law file, a model size N that is not one of the shapes can be asked for:
the shared law (E0, A, B, alpha, beta) with that N, at compute C (D = C / (k N)).

>>> from laws.forms import PowerLaw
>>> from laws.lawset import LawSet, Shape
>>> laws = LawSet("toy", (Shape("s", {}, PowerLaw(a=10.0, b=0.5, c=1.0)),))
>>> [(p.shape, p.loss) for p in predict(laws, [100.0])]
[('s', 2.0)]
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from laws.errors import InputError
from laws.forms import ChinchillaLaw, Law
from laws.lawset import LawSet
from laws.optimal.allocate import chinchilla_laws, with_interval
from laws.stats import LEVEL, percentile_interval
from laws.tables import format_table


@dataclass(frozen=True)
class Prediction:
    """The loss of ``shape`` (or of a chinchilla model of ``n_params``) at ``compute``;
    ``interval`` over the bootstrap samples (None without samples); ``extrapolated`` when
    the compute lies outside the range the shape's law was fitted on."""

    shape: str | None
    n_params: float | None
    compute: float
    loss: float
    interval: tuple[float, float] | None = None
    extrapolated: bool | None = None

    def to_dict(self) -> dict:
        return {"shape": self.shape, "N": self.n_params, "compute": self.compute,
                "loss": self.loss,
                "interval": None if self.interval is None else list(self.interval),
                "extrapolated": self.extrapolated}


def predict(laws: LawSet, computes: ArrayLike, shapes: tuple[str, ...] = (),
            n_params: tuple[float, ...] = (), level: float = LEVEL) -> list[Prediction]:
    """Loss at each compute for each shape named (all shapes when neither ``shapes`` nor
    ``n_params`` is given) and for each model size in ``n_params`` (chinchilla law sets)."""
    computes = np.atleast_1d(np.asarray(computes, dtype=float))
    if computes.size == 0 or not np.all(np.isfinite(computes) & (computes > 0)):
        raise InputError("compute must be positive finite FLOPs (at least one value)")
    if any(not (np.isfinite(n) and n > 0) for n in n_params):
        raise InputError("model sizes N must be positive finite numbers")
    rows: list[tuple[str | None, float | None, Law, list[Law], tuple | None]] = []
    for name in shapes or (() if n_params else tuple(laws.names)):
        shape = laws.shape(name)
        size = shape.law.N if isinstance(shape.law, ChinchillaLaw) else None
        fitted = None if shape.measured is None else shape.measured.compute_range
        rows.append((name, size, shape.law, list(shape.samples), fitted))
    if n_params:
        law, samples = chinchilla_laws(laws)
        for size in n_params:
            rows.append((None, float(size), replace(law, N=float(size)),
                         [replace(s, N=float(size)) for s in samples], None))
    out = []
    for name, size, law, samples, fitted in rows:
        losses = np.asarray(law.loss(computes), dtype=float)
        drawn = np.array([np.asarray(s.loss(computes), dtype=float) for s in samples])
        for i, compute in enumerate(computes):
            out.append(Prediction(
                name, size, float(compute), float(losses[i]),
                percentile_interval(drawn[:, i], level) if samples else None,
                None if fitted is None else not fitted[0] <= compute <= fitted[1]))
    return out


def format_predictions(predictions: list[Prediction], level: float = LEVEL) -> str:
    """One row per prediction; the interval's level and what 'extrapolated' means below."""
    chinchilla = any(p.n_params is not None for p in predictions)
    rows = [[p.shape or "", *([p.n_params] if chinchilla else []), p.compute,
             with_interval(p.loss, p.interval),
             {None: "", True: "yes", False: "no"}[p.extrapolated]] for p in predictions]
    headers = ["shape", *(["N"] if chinchilla else []), "compute", "loss", "extrapolated"]
    lines = [format_table(headers, rows)]
    if any(p.interval is not None for p in predictions):
        lines.append(f"loss intervals: {100 * level:g}% over the law file's bootstrap samples")
    if any(p.extrapolated is not None for p in predictions):
        lines.append("extrapolated: the compute lies outside the range the shape was fitted on")
    return "\n".join(lines)
