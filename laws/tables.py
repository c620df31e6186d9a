"""Aligned text tables for people (stdout); machines get ``--json`` instead.

>>> print(format_table(["shape", "loss"], [["p16", 2.5], ["p8", 2.25]]))
shape  loss
-----  ----
p16     2.5
p8     2.25
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from laws.lawset import LawSet, Transitions


def natural_key(name: str) -> tuple:
    """Sorts names as people do, numbers by value: w256 before w1024.

    >>> sorted(["w1024-d2", "w256-d12", "w256-d2"], key=natural_key)
    ['w256-d2', 'w256-d12', 'w1024-d2']
    """
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def format_number(value: object) -> str:
    """Numbers in a readable, compact form: 4 significant digits, scientific when large."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    if value != value:  # NaN
        return "nan"
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4g}"


def format_percent(value: float | None, missing: str = "") -> str:
    """A share as a percentage with one decimal, ``missing`` for None.

    >>> format_percent(0.25), format_percent(-1e-9), format_percent(None, "n/a")
    ('25.0%', '0.0%', 'n/a')
    """
    if value is None:
        return missing
    return f"{100 * value + 0.0:.1f}%".replace("-0.0%", "0.0%")


def format_spread(stats: dict, scale: float = 1.0, missing: str = "",
                  separator: str = " – ") -> str:
    """``mean [p5 - p95]`` of a summarised quantity, each divided by ``scale``.

    >>> format_spread({"mean": 7200.0, "p5": 3600.0, "p95": 10800.0}, 3600)
    '2 [1 – 3]'
    """
    if stats["mean"] is None:
        return missing
    low, mean, high = (format_number(stats[k] / scale) for k in ("p5", "mean", "p95"))
    return f"{mean} [{low}{separator}{high}]"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns aligned by width; numbers right-aligned, text left-aligned."""
    cells = [[format_number(v) for v in row] for row in rows]
    numeric = [
        all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in rows)
        and bool(rows)
        for i in range(len(headers))
    ]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        columns = zip(values, widths, numeric, strict=True)
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in columns]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def format_law_set(laws: LawSet) -> str:
    """The shapes of a law set with their forms, parameters, floors and throughputs; for
    fitted shapes also the first measured loss and the compute range fitted, and the number
    of bootstrap samples."""
    measured = any(shape.measured is not None for shape in laws.shapes)
    rows = []
    for shape in sorted(laws.shapes, key=lambda s: natural_key(s.name)):
        params = shape.law.params()
        if shape.law.form == "table":
            params = {"points": len(params["compute"]), "floor": params["floor"]}
        rows.append([
            shape.name,
            " ".join(f"{k}={v}" for k, v in shape.axes.items()),
            shape.law.form,
            " ".join(f"{k}={format_number(v)}" for k, v in params.items()),
            shape.law.floor,
            shape.throughput,
        ])
        if measured:
            m = shape.measured
            rows[-1] += [None, None] if m is None else [
                m.first_loss, " – ".join(format_number(c) for c in m.compute_range)]
    head = f"{laws.name}: {len(laws.shapes)} shapes, compute in {laws.compute_unit}"
    t = laws.transitions
    allowed = t.allowed if isinstance(t.allowed, str) else f"{len(t.allowed)} pairs"
    tail = (f"transitions: flops={format_number(t.flops)} seconds={format_number(t.seconds)} "
            f"loss_penalty={format_number(t.loss_penalty)} allowed={allowed}")
    headers = ["shape", "axes", "form", "params", "floor", "FLOP/s"]
    headers += ["first loss", "fitted compute"] if measured else []
    lines = [head, "", format_table(headers, rows), "", tail, *format_measured_transitions(t)]
    if measured:
        lines.append(f"measured start loss: {format_number(laws.measured_start_loss())}")
    if laws.shapes[0].samples:
        lines.append(f"bootstrap samples: {len(laws.shapes[0].samples)} joint law sets")
    for key, value in laws.provenance.items():
        if not isinstance(value, (dict, list)):
            lines.append(f"{key}: {value}")
    return "\n".join(lines)


def format_measured_transitions(transitions: Transitions) -> list[str]:
    r"""One line per measured switch pair: its model's parameters with their 90% bootstrap
    intervals, and each model's out-of-sample RMSE of log-loss.

    >>> from laws.lawset import MeasuredTransition
    >>> (line,) = format_measured_transitions(Transitions(measured=(MeasuredTransition(
    ...     "p14", "p7", "transient-penalty", {"delta": 0.6, "tau_flops": 2.0},
    ...     ((0.5, 1.0), (0.7, 3.0)), 8, {"free": 0.14, "transient-penalty": 0.05}),)))
    >>> print(*line.split("; "), sep="\n")
    transition p14 -> p7 (8 switches): transient-penalty delta=0.6 [0.5 – 0.7] tau_flops=2 [1 – 3]
    RMSE of log-loss, one run left out: free 0.14, transient-penalty 0.05
    """
    from laws.stats import percentile_interval

    lines = []
    for m in transitions.measured:
        columns = list(zip(*m.samples, strict=True)) if m.samples else [()] * len(m.params)
        params = " ".join(
            f"{name}={format_number(value)}" + (
                " [{} – {}]".format(*map(format_number, percentile_interval(column)))
                if column else "")
            for (name, value), column in zip(m.params.items(), columns, strict=True))
        scores = ", ".join(f"{model} {format_number(value)}" for model, value in m.rmse.items())
        lines.append(f"transition {m.source} -> {m.destination} ({m.switches} switches): "
                     f"{m.model} {params}" + (f"; RMSE of log-loss, one run left out: {scores}"
                                             if scores else ""))
    return lines
