"""The Revisiting benchmark end to end: held-out extrapolation error per form and for auto.

"Revisiting Neural Scaling Laws in Language and Vision" (Alabdulmohsin et al. 2022) ships
learning curves with a ``Training`` column: 1 for the points to fit on, 0 for the held-out
points at larger compute. A curve is one (Domain, Task, Model). For every curve this fits the
power and the saturating forms on its ``Training == 1`` rows, lets ``--form auto`` choose
between them from those rows alone, and measures each fit's RMSE of log-loss on the
``Training == 0`` rows. It prints the mean and median per form and for auto, how often auto
picked the better of the two (a tie, both fits within 0.1% on the held-out points, counts
either way), and which saturating fits the diagnostics flag as degenerate. Needs
../shared/data beside the checkout.

    python bench/bench_revisiting.py [--limit N] [--ratio 2] [--margin 0.05]

``--ratio`` and ``--margin`` change auto's test (``laws.fit.choice``), to see how much its
record depends on them.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from laws.fit.choice import AUTO_MARGIN, AUTO_RATIO, choose_auto
from laws.fit.curveset import fit_curves, loss_errors
from laws.fit.diagnostics import parameter_warnings
from laws.io.curves import ColumnMap, Curves, load_curves

DATA = (Path(__file__).resolve().parents[1].parent / "shared" / "data"
        / "revisiting_neural_scaling_laws")
FILES = ("benchmark.vision.csv", "benchmark.lang.csv")
COLUMNS = ColumnMap(shape=("Domain", "Task", "Model"), loss="Loss", compute="Seen Examples",
                    extra=("Training",))
FORMS = ("power", "saturating")
TIE = 1e-3  # relative difference of held-out errors below which the two forms tie


@dataclass(frozen=True)
class CurveResult:
    name: str
    train: int
    held_out: int
    errors: dict[str, float]  # held-out RMSE of log-loss per form
    auto: str
    flagged: tuple[str, ...]  # forms whose fit on the training rows the diagnostics flag

    @property
    def auto_error(self) -> float:
        return self.errors[self.auto]

    @property
    def auto_is_better(self) -> bool:
        return self.auto_error <= min(self.errors.values()) * (1.0 + TIE)


def benchmark_curves(limit: int | None = None) -> list[tuple[Curves, Curves]]:
    """(training rows, held-out rows) of each curve, as one-curve sets; the first ``limit``
    curves of each file when given."""
    pairs = []
    for name in FILES:
        curves = load_curves(DATA / name, COLUMNS)
        for curve in curves.curves[:limit]:
            training = curve.extra["Training"] == 1
            pairs.append((curves.replace([curve.subset(training)]),
                          curves.replace([curve.subset(~training)])))
    return pairs


def run_curve(train: Curves, test: Curves, ratio: float = AUTO_RATIO,
              margin: float = AUTO_MARGIN) -> CurveResult:
    """Fit both forms on ``train``, choose with auto, score every fit on ``test``."""
    errors, flagged = {}, []
    for form in FORMS:
        result = fit_curves(train, form)
        errors[form] = loss_errors(result.laws.shapes[0].law, test.curves[0])["rmse_log"]
        if parameter_warnings(result.laws):
            flagged.append(form)
    choice = choose_auto(train, ratio=ratio, margin=margin)
    curve = train.curves[0]
    return CurveResult(curve.name, len(curve), len(test.curves[0]), errors, choice.form,
                       tuple(flagged))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="only the first N curves of each file")
    parser.add_argument("--ratio", type=float, default=AUTO_RATIO,
                        help="auto holds out each curve's last factor RATIO of compute")
    parser.add_argument("--margin", type=float, default=AUTO_MARGIN,
                        help="saturating must beat power by more than this fraction")
    args = parser.parse_args()
    start = time.perf_counter()
    results = [run_curve(train, test, args.ratio, args.margin)
               for train, test in benchmark_curves(args.limit)]
    seconds = time.perf_counter() - start
    print(f"{len(results)} curves ({', '.join(FILES)}), fit on Training == 1, "
          f"scored on Training == 0: held-out RMSE of log-loss "
          f"(auto: ratio {args.ratio:g}, margin {args.margin:g})")
    for label, values in [(form, [r.errors[form] for r in results]) for form in FORMS] + [
            ("auto", [r.auto_error for r in results]),
            ("better of the two (oracle)", [min(r.errors.values()) for r in results])]:
        print(f"  {label:<27} mean {np.mean(values):.4f}  median {np.median(values):.4f}")
    better = sum(r.auto_is_better for r in results)
    ties = sum(abs(r.errors["power"] - r.errors["saturating"])
               <= TIE * min(r.errors.values()) for r in results)
    picks = {form: sum(r.auto == form for r in results) for form in FORMS}
    print(f"auto picked the better form on {better} of {len(results)} curves "
          f"({better / len(results):.0%}; {ties} ties count either way); picks: "
          + ", ".join(f"{form} {n}" for form, n in picks.items()))
    degenerate = [r for r in results if "saturating" in r.flagged]
    print(f"saturating fits flagged by the diagnostics: {len(degenerate)}")
    for r in degenerate:
        print(f"  {r.name} ({r.train} training points): auto chose {r.auto}")
    print(f"time: {seconds:.1f} s")


if __name__ == "__main__":
    main()
