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
    python bench/bench_revisiting.py --one-command

``--ratio`` and ``--margin`` change auto's test (``laws.fit.choice``), to see how much its
record depends on them. ``--one-command`` runs what a user runs instead: both files' rows in
one CSV, one ``shapeshift fit`` of its ``Training == 1`` rows with the default ``--form
auto`` (a form per shape), the law file's laws scored on the ``Training == 0`` rows; it prints
the command, the mean and median held-out error (the mean with its 90% t interval over the
curves), the forms the law file records, and on how many curves they are the form the
per-curve chooser above picks.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from laws.fit.choice import AUTO_MARGIN, AUTO_RATIO, choose_auto
from laws.fit.curveset import fit_curves, loss_errors
from laws.fit.diagnostics import parameter_warnings
from laws.io.curves import ColumnMap, Curves, load_curves
from laws.io.lawfile import read_law_file
from laws.stats import t_interval

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


def fit_command(curves_csv: Path, laws_json: Path) -> list[str]:
    """The one ``shapeshift fit`` of the training rows of ``curves_csv``, default form."""
    return [str(Path(sys.executable).with_name("shapeshift")), "fit", str(curves_csv),
            *(arg for column in COLUMNS.shape for arg in ("--shape-col", column)),
            "--compute-col", COLUMNS.compute, "--loss-col", COLUMNS.loss,
            "--filter", "Training=1", "-o", str(laws_json)]


def one_command(folder: Path) -> dict[str, tuple[float, str]]:
    """Held-out RMSE of log-loss and form of each curve's law from one ``fit`` of both files
    (their rows written to one CSV in ``folder``)."""
    rows = []
    for name in FILES:
        with open(DATA / name, newline="") as file:
            header, *body = csv.reader(file)
            rows += body
    combined, laws_json = folder / "revisiting.csv", folder / "laws.json"
    with open(combined, "w", newline="") as file:
        csv.writer(file).writerows([header, *rows])
    command = fit_command(combined, laws_json)
    print("$ " + shlex.join(command))
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    laws = read_law_file(laws_json)
    held_out = {curve.name: curve.subset(curve.extra["Training"] == 0)
                for name in FILES for curve in load_curves(DATA / name, COLUMNS).curves}
    return {shape.name: (loss_errors(shape.law, held_out[shape.name])["rmse_log"],
                         shape.law.form) for shape in laws.shapes}


def report_one_command() -> None:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        scored = one_command(Path(folder))
    seconds = time.perf_counter() - start
    errors = [error for error, _ in scored.values()]
    mean, low, high = t_interval(errors)
    print(f"{len(scored)} curves, one fit --form auto of Training == 1, scored on Training == "
          f"0: held-out RMSE of log-loss mean {mean:.4f} [90% t interval {low:.4f}, "
          f"{high:.4f}], median {np.median(errors):.4f}")
    forms = Counter(form for _, form in scored.values())
    print("forms in the law file: " + ", ".join(f"{form} {n}" for form, n in forms.items()))
    print(f"time (writing the CSV, the fit command, scoring): {seconds:.1f} s")
    per_curve = {train.curves[0].name: choose_auto(train).form
                 for train, _ in benchmark_curves()}
    same = sum(per_curve[name] == form for name, (_, form) in scored.items())
    print(f"the same form as the per-curve chooser on {same} of {len(scored)} curves")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one-command", action="store_true",
                        help="score the laws of one `shapeshift fit` of both files instead")
    parser.add_argument("--limit", type=int, help="only the first N curves of each file")
    parser.add_argument("--ratio", type=float, default=AUTO_RATIO,
                        help="auto holds out each curve's last factor RATIO of compute")
    parser.add_argument("--margin", type=float, default=AUTO_MARGIN,
                        help="saturating must beat power by more than this fraction")
    args = parser.parse_args()
    if args.one_command:
        report_one_command()
        return
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
