"""From curves and a form to solved objectives: per-shape fits, shared parameters, Chinchilla.

* per shape (no sharing): one small objective per shape, each solved from its own grid;
* shared floor and/or exponent: one joint objective whose parameter vector holds the shared
  values once and every shape's own values, started from the per-shape solutions;
* ``chinchilla``: one objective over the points of all shapes (models of different sizes N),
  started from Epoch AI's grid of 4,500 starts; ``alpha=beta`` ties its two exponents into
  one parameter (Gadre et al. 2024's form for over-trained runs).

>>> compute = np.logspace(18, 20, 8)
>>> law = fit_law(compute, 2.0 + 5e5 * compute ** -0.3)
>>> round(law.b, 4), round(law.c, 4)
(0.3, 2.0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from laws.errors import InputError
from laws.fit.objective import (
    HUBER_DELTA,
    ChinchillaModel,
    Model,
    Objective,
    PowerModel,
    SaturatingModel,
)
from laws.fit.reduce import REDUCED_POLISHED
from laws.fit.solve import (
    EPOCH_GRID,
    POLISHED,
    grid_starts,
    local_hessian,
    minimize_multistart,
    polish_start,
    power_starts,
    saturating_starts,
)
from laws.forms import Law
from laws.io.curves import TOKENS_TO_FLOP, Curve

FIT_FORMS = ("power", "saturating", "chinchilla")
SHAREABLE = {"floor": 2, "exponent": 1}  # internal positions of e and b (power, saturating)
# Ties within the chinchilla law: (kept, dropped) internal names; the dropped one reads the kept.
TIES = {"alpha=beta": ("alpha", "beta")}
FITTED_PARAMS = {"power": ("a", "b", "c"), "saturating": ("a", "b", "c", "d"),
                 "chinchilla": ("E0", "A", "B", "alpha", "beta")}
_SINGLE_CURVE_MODELS: dict[str, tuple[type[Model], Callable]] = {
    "power": (PowerModel, power_starts),
    "saturating": (SaturatingModel, saturating_starts),
}


@dataclass
class Solved:
    """Objectives with their minimisers and a map from minimisers to one law per curve.

    ``objectives`` are independent problems (one per shape when nothing is shared);
    ``strata`` label each objective's points: a bootstrap resamples within each label.
    """

    objectives: list[Objective]
    thetas: list[np.ndarray]
    values: list[float]
    strata: list[np.ndarray]
    laws_of: Callable[[list[np.ndarray]], list[Law]]
    shared_of: Callable[[list[np.ndarray]], dict[str, float]] = lambda thetas: {}

    @property
    def laws(self) -> list[Law]:
        return self.laws_of(self.thetas)

    @property
    def shared(self) -> dict[str, float]:
        """Law-file values of the parameters that all shapes share (empty when none)."""
        return self.shared_of(self.thetas)

    def refit(self, weights: list[np.ndarray]) -> list[Law]:
        """The laws after re-minimising with new point weights (one array per objective),
        started from the current solution: the bootstrap step."""
        return self.laws_of([polish_start(objective.reweighted(w), theta)[0]
                             for objective, theta, w in zip(self.objectives, self.thetas,
                                                            weights, strict=True)])


def fit_law(compute: np.ndarray, loss: np.ndarray, form: str = "power",
            delta: float = HUBER_DELTA) -> Law:
    """Fit one curve (``power`` or ``saturating``); quick enough to refit online.

    Raises ``InputError`` for too few points or non-positive values.
    """
    compute = np.asarray(compute, dtype=float)
    loss = np.asarray(loss, dtype=float)
    if form not in _SINGLE_CURVE_MODELS:
        raise InputError(f"fit_law fits one curve with form power or saturating, not {form!r}")
    if compute.shape != loss.shape or compute.ndim != 1:
        raise InputError("compute and loss must be 1-d arrays of the same length")
    if not (np.all(np.isfinite(compute)) and np.all(np.isfinite(loss))
            and np.all(compute > 0) and np.all(loss > 0)):
        raise InputError("compute and loss must be positive and finite")
    model_type, starts = _SINGLE_CURVE_MODELS[form]
    model = model_type(compute)
    if compute.size < model.n_params:
        raise InputError(f"{compute.size} points; the {form} form needs at least "
                         f"{model.n_params}")
    objective = Objective(model, np.log(loss), delta=delta)
    theta, _ = minimize_multistart(objective, starts(compute, loss), polish=3)
    return model.law(theta, float(np.max(compute)))


def solve(curves: list[Curve], form: str, share: tuple[str, ...] = (), source: str = "",
          delta: float = HUBER_DELTA) -> Solved:
    """Fit ``form`` to ``curves``, sharing the parameters named in ``share`` across shapes;
    for ``chinchilla`` (whose parameters all shapes share anyway) ``share`` may only hold ties
    of two of its parameters (``TIES``: ``alpha=beta``)."""
    if form not in FIT_FORMS:
        raise InputError(f"unknown form {form!r}; expected one of {', '.join(FIT_FORMS)}")
    unknown = set(share) - set(SHAREABLE) - set(TIES)
    if unknown:
        raise InputError(f"cannot share {', '.join(sorted(unknown))}; "
                         f"shareable: {', '.join(SHAREABLE)} (and for chinchilla "
                         f"{', '.join(TIES)})")
    if form == "chinchilla":
        if set(share) & set(SHAREABLE):
            raise InputError("the chinchilla form shares all its parameters already; "
                             f"drop --share (it takes only {', '.join(TIES)})")
        return _solve_chinchilla(curves, source, delta, tuple(dict.fromkeys(share)))
    if set(share) & set(TIES):
        raise InputError(f"{', '.join(sorted(set(share) & set(TIES)))} ties parameters of the "
                         "chinchilla form; use --form chinchilla")
    per_shape = _solve_per_shape(curves, form, source, delta, len(set(share)))
    return _solve_shared(curves, form, per_shape, share, delta) if share else per_shape


def polish_on_rows(solved: Solved, fitted: list[Curve], rows: list[Curve], form: str,
                   delta: float = HUBER_DELTA) -> tuple[list[Law], list[float]]:
    """The laws and objective values of a per-shape fit of ``fitted`` (curves reduced to
    weighted points, ``laws.fit.reduce``) once each reduced shape is re-minimised on all its
    ``rows``, by L-BFGS-B from the reduced optimum. The reduced objective finds the valley;
    where a and b trade off along it, only the rows say where its floor lies. The reduced
    objective's curvature there (which the rows' is close to: the weights count the rows)
    rescales the run (``polish_start``), a third of the evaluations on the rows."""
    laws, values = list(solved.laws), list(solved.values)
    model_type, _ = _SINGLE_CURVE_MODELS[form]
    for i, (points, curve) in enumerate(zip(fitted, rows, strict=True)):
        if points is curve:
            continue
        reference = float(np.max(points.compute))  # the units of the reduced fit's theta
        model = model_type(curve.compute, reference)
        theta, values[i] = polish_start(
            Objective(model, np.log(curve.loss), delta=delta), solved.thetas[i],
            hessian=local_hessian(solved.objectives[i], solved.thetas[i]))
        laws[i] = model.law(theta, reference)
    return laws, values


def _solve_per_shape(curves: list[Curve], form: str, source: str, delta: float,
                     n_shared: int) -> Solved:
    model_type, starts = _SINGLE_CURVE_MODELS[form]
    models = [model_type(curve.compute) for curve in curves]
    p = models[0].n_params
    # With shared parameters each shape only needs points for its own ones.
    needed = p - n_shared if len(curves) > 1 else p
    for curve in curves:
        if len(curve) < needed:
            raise InputError(f"{source}: shape {curve.name!r} has {len(curve)} point(s); the "
                             f"{form} form needs at least {needed}")
    objectives, thetas, values = [], [], []
    for model, curve in zip(models, curves, strict=True):
        objective = Objective(model, np.log(curve.loss), delta=delta,
                              weights=point_weights([curve]))
        if len(curve) < p:  # too few to fit alone: the joint fit starts it from a guess
            theta, value = starts(curve.compute, curve.loss)[0], np.inf
        else:
            theta, value = minimize_multistart(
                objective, starts(curve.compute, curve.loss),
                POLISHED if curve.weights is None else REDUCED_POLISHED)
        objectives.append(objective)
        thetas.append(theta)
        values.append(value)
    references = [float(np.max(curve.compute)) for curve in curves]
    return Solved(objectives, thetas, values, [np.zeros(len(c), dtype=int) for c in curves],
                  lambda ts: [m.law(t, r)
                              for m, t, r in zip(models, ts, references, strict=True)])


def _solve_shared(curves: list[Curve], form: str, per_shape: Solved, share: tuple[str, ...],
                  delta: float) -> Solved:
    """One objective over all points: the shared values first, then each shape's own."""
    model_type, _ = _SINGLE_CURVE_MODELS[form]
    shared_positions = sorted({SHAREABLE[name] for name in share})
    p = per_shape.objectives[0].model.n_params
    own_positions = [i for i in range(p) if i not in shared_positions]
    n_shared, n_own = len(shared_positions), len(own_positions)
    shape_index = np.empty((len(curves), p), dtype=int)
    shape_index[:, shared_positions] = np.arange(n_shared)
    shape_index[:, own_positions] = (n_shared + np.arange(len(curves))[:, None] * n_own
                                     + np.arange(n_own))
    strata = np.concatenate([np.full(len(c), s) for s, c in enumerate(curves)])
    references = np.array([float(np.max(curve.compute)) for curve in curves])
    model = model_type(np.concatenate([c.compute for c in curves]), references[strata])
    n_params = n_shared + len(curves) * n_own
    if strata.size < n_params:
        raise InputError(f"{strata.size} points for {n_params} parameters of the joint fit")
    joint = Objective(model, np.log(np.concatenate([c.loss for c in curves])),
                      shape_index[strata].T, n_params, delta, point_weights(curves))

    per_theta = np.array(per_shape.thetas)
    fitted = np.isfinite(per_shape.values)
    # Candidate shared values: quantiles of the per-shape estimates, every combination.
    candidates = [np.quantile(per_theta[fitted, i], [0.0, 0.25, 0.5, 0.75, 1.0])
                  for i in shared_positions]
    combos = np.array(np.meshgrid(*candidates)).reshape(n_shared, -1).T
    starts = np.tile(np.concatenate([np.zeros(n_shared),
                                     per_theta[:, own_positions].ravel()]), (len(combos), 1))
    starts[:, :n_shared] = combos
    theta, value = minimize_multistart(joint, starts)

    def laws_of(ts: list[np.ndarray]) -> list[Law]:
        return [model.law(ts[0][row], r)
                for row, r in zip(shape_index, references, strict=True)]

    def shared_of(ts: list[np.ndarray]) -> dict[str, float]:
        params = laws_of(ts)[0].params()
        names = {SHAREABLE["floor"]: "c", SHAREABLE["exponent"]: "b"}
        return {names[i]: params[names[i]] for i in shared_positions}

    return Solved([joint], [theta], [value], [strata], laws_of, shared_of)


def _solve_chinchilla(curves: list[Curve], source: str, delta: float,
                      ties: tuple[str, ...] = ()) -> Solved:
    sizes = [_model_size(curve, source) for curve in curves]
    total = sum(len(curve) for curve in curves)
    if total < 5:
        raise InputError(f"{source}: {total} point(s); the chinchilla form needs at least 5")
    if len(set(sizes)) < 2:
        raise InputError(f"{source}: the chinchilla form needs models of at least two sizes N")
    n_params = np.concatenate([curve.n_params for curve in curves])
    compute = np.concatenate([curve.compute for curve in curves])
    model = ChinchillaModel(n_params, compute / (TOKENS_TO_FLOP * n_params))
    index, free = _tied_index(ties)
    objective = Objective(model, np.log(np.concatenate([curve.loss for curve in curves])),
                          index, delta=delta, weights=point_weights(curves))
    # A tied parameter starts where its partner does: the grid's columns of free positions,
    # each distinct start once, in the grid's order (untied: the grid itself).
    starts = grid_starts(EPOCH_GRID)[:, free]
    starts = starts[np.sort(np.unique(starts, axis=0, return_index=True)[1])]
    theta, value = minimize_multistart(objective, starts, polish=8)
    # Points are resampled across all shapes, as in Epoch AI's bootstrap (a shape may be a
    # single point); every point keeps its own N, also in a shape of grouped sizes.
    return Solved([objective], [theta], [value], [np.zeros(total, dtype=int)],
                  lambda ts: [model.law(ts[0][index], n) for n in sizes],
                  lambda ts: model.law_params(ts[0][index]))


def point_weights(curves: list[Curve]) -> np.ndarray:
    """The rows each point of ``curves`` stands for, in order: a reduced curve's weights
    (``laws.fit.reduce``), else 1.

    >>> point_weights([Curve("s", {}, np.ones(2), np.ones(2), (1, 2))]).tolist()
    [1.0, 1.0]
    """
    return np.concatenate([np.ones(len(curve)) if curve.weights is None else curve.weights
                           for curve in curves])


def _tied_index(ties: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Where each chinchilla parameter sits in the fitted vector once ``ties`` merge some
    (tied parameters read one position), and which internal parameters are fitted.

    >>> [v.tolist() for v in _tied_index(("alpha=beta",))]
    [[0, 1, 2, 3, 3], [0, 1, 2, 3]]
    """
    names = ChinchillaModel.names
    reads = np.arange(len(names))
    for tie in ties:
        kept, dropped = TIES[tie]
        reads[names.index(dropped)] = names.index(kept)
    free, index = np.unique(reads, return_inverse=True)
    return index, free


def _model_size(curve: Curve, source: str) -> float:
    """The N of a shape's chinchilla law: its points' N, or, for a shape of grouped model
    sizes, their geometric mean (the points themselves keep their own N in the fit)."""
    if curve.n_params is None:
        raise InputError("the chinchilla form needs the model size N of every point: "
                         "give the params column")
    if np.allclose(curve.n_params, curve.n_params[0], rtol=1e-9):
        return float(curve.n_params[0])
    if not curve.grouped:
        raise InputError(f"{source}: shape {curve.name!r}: the params column varies within "
                         "the shape (group the shape column to fit sizes that vary)")
    return float(np.exp(np.mean(np.log(curve.n_params))))
