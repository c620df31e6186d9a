"""Fits in which every shape has a form of its own.

Without shared parameters the shapes' fits are independent problems, so a law set whose
shapes have different forms is the union of one ``fit_curves`` per form, over that form's
shapes. ``fit_forms`` takes one form for all shapes (then it is ``fit_curves`` itself, shared
parameters allowed) or a form per shape name (``--form auto`` when nothing is shared).

Bootstrap: each form's group is resampled with a seed of its own, drawn from the one given
(``numpy.random.SeedSequence``), so that no two groups repeat one another's draws; sample k of
two shapes of different forms then comes from independent draws, which is what the shapes'
independent fits are anyway.

>>> from laws.forms import SaturatingLaw
>>> from laws.io.curves import Curve
>>> c = np.logspace(6, 9, 20)
>>> bent = SaturatingLaw(a=4e3, b=0.6, c=0.2, d=1e7).loss(c)
>>> curves = Curves("x", (Curve("p", {}, c, 2.0 + 30.0 * c ** -0.3, tuple(range(20))),
...                       Curve("s", {}, c, bent, tuple(range(20)))))
>>> result = fit_forms(curves, {"p": "power", "s": "saturating"})
>>> result.form, [shape.law.form for shape in result.laws.shapes]
('per-shape', ['power', 'saturating'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from laws.errors import InputError
from laws.fit.curveset import FitResult, drop_highest_losses, fit_curves, pooled_errors
from laws.fit.reduce import REDUCE_ABOVE
from laws.fit.uncertainty import Progress
from laws.io.curves import Curves
from laws.lawset import LawSet
from laws.stats import LEVEL

PER_SHAPE = "per-shape"  # a FitResult's form when its shapes have different forms
Forms = str | Mapping[str, str]  # one form for all shapes, or a form per shape name


def fit_forms(curves: Curves, forms: Forms, share: tuple[str, ...] = (),
              drop_highest: int = 0, bootstrap: int = 0, seed: int = 0,
              target_loss: float | None = None, level: float = LEVEL,
              time_column: str | None = None, name: str = "fitted",
              progress: Progress | None = None, reduce_above: int | None = REDUCE_ABOVE,
              polish: bool = True) -> FitResult:
    """``fit_curves`` with ``forms`` either one form or a form per shape (then nothing may be
    shared). The points of the ``drop_highest`` highest losses go first, across all shapes,
    as in one fit; a result of several forms has the form ``PER_SHAPE``. ``reduce_above`` and
    ``polish``: how per-step curves are reduced (``laws.fit.reduce``), as in ``fit_curves``."""
    options = {"bootstrap": bootstrap, "target_loss": target_loss, "level": level,
               "time_column": time_column, "name": name, "reduce_above": reduce_above,
               "polish": polish}
    if isinstance(forms, str):
        return fit_curves(curves, forms, share, drop_highest, seed=seed, progress=progress,
                          **options)
    if share:
        raise InputError(f"a form per shape shares no parameter; got --share {', '.join(share)}")
    kept, dropped = drop_highest_losses(list(curves.curves), drop_highest)
    groups: dict[str, list] = {}
    for curve in kept:
        groups.setdefault(forms[curve.name], []).append(curve)
    if len(groups) == 1:
        [(form, group)] = groups.items()
        result = fit_curves(curves.replace(group), form, seed=seed, progress=progress, **options)
        return replace(result, dropped=dropped)
    seeds = np.random.SeedSequence(seed).generate_state(len(groups))
    results = [fit_curves(curves.replace(group), form, seed=int(group_seed),
                          progress=_offset(progress, k * bootstrap, len(groups) * bootstrap),
                          **options)
               for k, ((form, group), group_seed) in enumerate(zip(groups.items(), seeds,
                                                                   strict=True))]
    return _merged(results, [curve.name for curve in kept], name, dropped, seed)


def _merged(results: list[FitResult], order: list[str], name: str, dropped: int,
            seed: int) -> FitResult:
    """One result of the groups' results, the shapes in ``order`` (the file's)."""
    shapes = {shape.name: shape for result in results for shape in result.laws.shapes}
    metrics = {shape: m for result in results for shape, m in result.metrics.items()
               if shape != "all"}
    metrics = {shape: metrics[shape] for shape in order}
    metrics["all"] = pooled_errors(list(metrics.values()))
    reductions = [result.reduction for result in results if result.reduction]
    return replace(
        results[0], laws=LawSet(name, tuple(shapes[shape] for shape in order)), form=PER_SHAPE,
        objective=sum(result.objective for result in results), metrics=metrics,
        intervals={k: v for result in results for k, v in result.intervals.items()},
        target_loss={k: v for result in results for k, v in result.target_loss.items()},
        dropped=dropped,
        bootstrap={**results[0].bootstrap, "seed": seed} if results[0].bootstrap else {},
        # Every group's record states the same rule; the binned shapes are all groups'.
        reduction={**reductions[0], "shapes": {shape: record for reduction in reductions
                                               for shape, record in reduction["shapes"].items()}}
        if reductions else {})


def _offset(progress: Progress | None, done_before: int, total: int) -> Progress | None:
    """Progress of one group's bootstrap as part of all groups' resamples."""
    if progress is None:
        return None
    return lambda done, _: progress(done_before + done, total)
