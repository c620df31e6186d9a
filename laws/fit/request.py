"""The fit request: how to fit a curve file, as one object, and the one function that does it.

The ``fit`` command builds a ``ColumnMap`` (which columns hold what) and a ``FitRequest`` (the
form and its options, the bootstrap, the hold-out check) from its options; ``fit_file`` loads,
chooses the form (``auto``, the default: ``laws.fit.choice``), fits, checks, diagnoses
(``laws.fit.diagnostics``) and records what produced the law set.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from laws.errors import InputError
from laws.fit.choice import AUTO, FormChoice, choose_auto, default_candidates
from laws.fit.curveset import FitResult, drop_highest_losses
from laws.fit.diagnostics import FitWarning, diagnose, too_few_points
from laws.fit.holdout import HoldoutReport, holdout_check
from laws.fit.pershape import fit_forms
from laws.fit.reduce import REDUCE_ABOVE
from laws.fit.report import with_provenance
from laws.io.curves import ColumnMap, load_curves
from laws.lawset import LawSet


@dataclass(frozen=True)
class FitRequest:
    """``form`` fitted per shape (``share``: parameters shared by all shapes), after dropping
    the points of the ``drop_highest`` highest losses; ``auto`` chooses power or saturating by
    an extrapolation test, for each shape when nothing is shared; ``bootstrap`` joint
    resamples (seeded); ``target_loss`` for the compute interval; ``time_column`` gives
    throughputs; ``holdout_above`` (on ``holdout_column``, default compute) adds the
    extrapolation check; ``strict`` makes any fit warning an ``InputError``; ``name`` names
    the law set (default: the file's stem); a curve of more than ``reduce_above`` points (a
    per-step log; None: no limit) is fitted on weighted points kept from it
    (``laws.fit.reduce``)."""

    form: str = AUTO
    share: tuple[str, ...] = ()
    drop_highest: int = 0
    bootstrap: int = 0
    seed: int = 0
    target_loss: float | None = None
    time_column: str | None = None
    holdout_above: float | None = None
    holdout_column: str | None = None
    strict: bool = False
    name: str | None = None
    reduce_above: int | None = REDUCE_ABOVE

    def extra_columns(self) -> tuple[str, ...]:
        """Columns beyond the ColumnMap's that this fit reads (hold-out and time)."""
        return tuple(c for c in (self.holdout_column, self.time_column) if c)

    def options(self) -> dict[str, Any]:
        """The options that differ from the defaults, as the law file's provenance records
        them (the command line's names).

        >>> FitRequest(form="chinchilla", drop_highest=5).options()
        {'form': 'chinchilla', 'drop_highest': 5}
        """
        names = {"time_column": "time_col", "holdout_column": "holdout_col"}
        return {names.get(f.name, f.name): list(value) if isinstance(value, tuple) else value
                for f in fields(self) if f.name != "name"
                for value in [getattr(self, f.name)] if value != f.default}


@dataclass(frozen=True)
class FitOutcome:
    laws: LawSet
    result: FitResult
    holdout: HoldoutReport | None
    choice: FormChoice | None = None
    warnings: tuple[FitWarning, ...] = ()


def fit_file(path: str | os.PathLike, columns: ColumnMap, request: FitRequest,
             file_format: str | None = None, provenance: dict[str, str] | None = None,
             progress: Callable[[int, int], None] | None = None) -> FitOutcome:
    """Fit the curves of ``path`` as ``request`` says; the law set records its input, the
    options, the form choice, the fit metrics, the hold-out check, the warnings and the
    ``provenance`` entries given. The points of the highest losses go first, then the shapes
    of fewer points than the form has parameters (with a warning; for ``auto``, its simplest
    candidate's). With ``request.strict``, warnings raise ``InputError``."""
    columns = replace(columns, extra=tuple(dict.fromkeys((*columns.extra,
                                                         *request.extra_columns()))))
    loaded = load_curves(path, columns, file_format)
    kept, dropped = drop_highest_losses(list(loaded.curves), request.drop_highest)
    share = request.share
    simplest = default_candidates(share)[0][0] if request.form == AUTO else request.form
    curves, left_out = too_few_points(loaded.replace(kept), simplest, share)
    forms, choice = request.form, None
    if request.form == AUTO:
        choice = choose_auto(curves, share, per_shape=not share,
                             reduce_above=request.reduce_above)
        forms, share = choice.forms or choice.form, choice.share
    result = replace(fit_forms(curves, forms, share, 0, request.bootstrap, request.seed,
                               request.target_loss, time_column=request.time_column,
                               name=request.name or Path(path).stem, progress=progress,
                               reduce_above=request.reduce_above),
                     dropped=dropped)
    holdout = None
    if request.holdout_above is not None:
        holdout = holdout_check(curves, request.holdout_above, request.holdout_column,
                                forms, share, reduce_above=request.reduce_above)
    warnings = (*left_out, *(choice.warnings() if choice else ()),
                *diagnose(result, curves, 0, holdout))
    if request.strict and warnings:
        raise InputError(f"--strict: {len(warnings)} fit warning(s): "
                         + " | ".join(w.message for w in warnings))
    laws = with_provenance(result, path, {**columns.options(), **request.options()}, holdout,
                           provenance, choice, warnings)
    return FitOutcome(laws, result, holdout, choice, warnings)
