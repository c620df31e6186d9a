"""What a fit prints and records: a parameter table with intervals, metrics, the form choice,
warnings and provenance."""

from __future__ import annotations

import dataclasses
import datetime
import os

from laws.fit.choice import FormChoice
from laws.fit.curveset import FitResult
from laws.fit.diagnostics import FitWarning
from laws.fit.holdout import HOLDOUT_FIT, HoldoutReport
from laws.fit.problem import FITTED_PARAMS
from laws.io.atomic import file_sha256
from laws.lawset import LawSet
from laws.tables import format_number, format_table
from laws.version import shapeshift_version


def format_fit(result: FitResult, holdout: HoldoutReport | None = None,
               choice: FormChoice | None = None, warnings: tuple[FitWarning, ...] = ()) -> str:
    """The form choice (``--form auto``), fitted parameters (with bootstrap intervals when
    there are any) and fit metrics per shape, the pooled metrics, the extrapolation check and
    the warnings."""
    # The shapes' forms may differ (--form auto per shape): a column per parameter of any.
    forms = list(dict.fromkeys(shape.law.form for shape in result.laws.shapes))
    params = dict.fromkeys(p for form in forms for p in FITTED_PARAMS[form])
    per_shape = [p for p in params if p not in result.shared] if result.form != "chinchilla" \
        else []
    rows = []
    for shape in result.laws.shapes:
        values = shape.law.params()
        bounds = result.intervals.get(shape.name, {})
        rows.append([shape.name, *([shape.law.form] if len(forms) > 1 else []),
                     *(_with_interval(values[p], bounds.get(p)) if p in values else ""
                       for p in per_shape),
                     *([shape.law.floor] if "c" not in per_shape else []),
                     *(result.metrics[shape.name][k] for k in ("points", "rmse", "mare"))])
    headers = ["shape", *(["form"] if len(forms) > 1 else []), *per_shape,
               *(["floor"] if "c" not in per_shape else []), "points", "rmse", "mare"]
    if result.intervals:
        headers.append("compute to target")
        for row, shape in zip(rows, result.laws.shapes, strict=True):
            row.append(_with_interval(float(shape.law.compute(result.target_loss[shape.name])),
                                      result.intervals[shape.name]["compute"]))
    lines = [f"{result.form} fit of {len(result.laws.shapes)} shapes"
             + (f", shared: {', '.join(result.share)}" if result.share else "")
             + (f", {result.dropped} highest-loss points dropped" if result.dropped else ""),
             *_choice_lines(choice), "", format_table(headers, rows), ""]
    if result.shared:
        first = result.intervals.get(result.laws.shapes[0].name, {})
        lines.append("shared: " + "  ".join(
            f"{k}={_with_interval(v, first.get(k))}" for k, v in result.shared.items()))
    overall = result.metrics["all"]
    lines.append(f"measured start loss: {format_number(result.laws.measured_start_loss())} "
                 "(the highest loss at a shape's lowest fitted compute)")
    if result.bootstrap:
        lines.append(f"bootstrap: {result.bootstrap['resamples']} joint resamples "
                     f"({result.bootstrap['method']}), kept as the shapes' samples; "
                     f"[low, high]: their {100 * result.bootstrap['level']:g}% percentile "
                     "intervals")
    lines.append(f"all points: {overall['points']}  objective={format_number(overall['objective'])}"
                 f"  rmse={format_number(overall['rmse'])}  mare={format_number(overall['mare'])}")
    if holdout is not None:
        lines += ["", f"extrapolation check: fit on {holdout.column} <= "
                  f"{format_number(holdout.above)}, error on the points above; the fit: "
                  f"{HOLDOUT_FIT}",
                  format_table(["shape", "train", "held out", "rmse", "mare", "rmse log"], [
                      [name, m["train"], m["points"], m["rmse"], m["mare"], m["rmse_log"]]
                      for name, m in holdout.metrics.items()])]
    if warnings:
        lines += ["", *(f"warning ({w.kind}): {w.message}" for w in warnings)]
    return "\n".join(lines)


def _choice_lines(choice: FormChoice | None) -> list[str]:
    if choice is None:
        return []
    scores = ", ".join(f"{c.form}{'+' + '+'.join(c.share) if c.share else ''} "
                       + (format_number(c.score) if c.score is not None else f"({c.status})")
                       for c in choice.candidates)
    lines = [f"form chosen by --form auto: {choice.form} ({choice.reason})"]
    if scores:
        lines.append(f"  RMSE of log-loss on each curve's last factor {choice.ratio:g} of compute, "
                     f"fitted below it: {scores}")
    return lines


def _with_interval(value: float, bounds: tuple[float, float] | None) -> str:
    text = format_number(value)
    if bounds is None:
        return text
    return f"{text} [{format_number(bounds[0])}, {format_number(bounds[1])}]"


def with_provenance(result: FitResult, curves_path: str | os.PathLike, options: dict,
                    holdout: HoldoutReport | None = None, extra: dict | None = None,
                    choice: FormChoice | None = None,
                    warnings: tuple[FitWarning, ...] = ()) -> LawSet:
    """The fitted law set, recording its input (name and sha256), the options, the tool's
    version, the date, the form choice, the fit metrics, the extrapolation check and the
    warnings (a list, empty when there are none); ``extra`` keys (attribution, licence) come
    last and win."""
    provenance = {
        "source": os.path.basename(str(curves_path)),
        "input": {"file": os.path.basename(str(curves_path)),
                  "sha256": file_sha256(curves_path)},
        "fitted_on": datetime.date.today().isoformat(),
        "tool": f"shapeshift fit {shapeshift_version()}",
        "options": options,
        "fit_metrics": result.to_dict(),
    }
    if choice is not None:
        provenance["form_choice"] = choice.to_dict()
    if holdout is not None:
        provenance["holdout"] = holdout.to_dict()
    provenance["warnings"] = [w.to_dict() for w in warnings]
    provenance.update(extra or {})
    return dataclasses.replace(result.laws, provenance=provenance)
