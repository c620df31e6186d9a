"""Porian et al.'s IsoFLOP points: the exponent a of N* ~ C^a per configuration, by the IsoFLOP
method and by the Chinchilla-form fit of the same points, each with its bootstrap interval.

IsoFLOP: per compute level a parabola of loss in log N, then N* = k C^a through the minima
(`laws.optimal.isoflop`, the points resampled within each level); once over every level, once
without the levels whose minimum lies outside the sizes measured there. Chinchilla form:
E0 + A/N^alpha + B/D^beta fitted to the same points (Epoch AI's recipe without dropping
points), a = beta/(alpha+beta) (`laws.optimal.allocate`), the project's joint block
bootstrap. Needs ../shared/data beside the checkout (Porian et al. 2024, arXiv 2406.19146,
MIT licence).

    python bench/bench_isoflop.py [--resamples 1000] [--fit-resamples 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from laws.fit import fit_curves  # noqa: E402
from laws.io.curves import ColumnMap, load_curves  # noqa: E402
from laws.optimal.allocate import allocate  # noqa: E402
from laws.optimal.isoflop import isoflop_fit  # noqa: E402
from laws.tables import format_number, format_table  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
POINTS = DATA / "porian_resolving_discrepancies" / "porian_isoflop_points.csv"
CONFIGURATION = ("dataset", "hparams", "warmup", "decay", "param_count", "loss_split")


def _interval(pair: tuple[float, float] | None) -> str:
    return "" if pair is None else f"{format_number(pair[0])} – {format_number(pair[1])}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000, help="IsoFLOP bootstrap")
    parser.add_argument("--fit-resamples", type=int, default=200,
                        help="bootstrap of the Chinchilla-form fit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not POINTS.is_file():
        sys.exit(f"needs the shared data at {POINTS}")
    sweeps = load_curves(POINTS, ColumnMap(shape=CONFIGURATION, loss="loss", compute="flops",
                                           params="N"))
    rows, iso_seconds, fit_seconds = [], 0.0, 0.0
    for sweep in sweeps.curves:
        start = time.perf_counter()
        iso, inside = (isoflop_fit(sweep.compute, sweep.n_params, sweep.loss,
                                   resamples=args.resamples, seed=args.seed, inside_only=only)
                       for only in (False, True))
        iso_seconds += time.perf_counter() - start
        filters = tuple((col, str(sweep.axes[col])) for col in CONFIGURATION)
        by_size = load_curves(POINTS, ColumnMap(shape=("N",), loss="loss", compute="flops",
                                                params="N", filters=filters))
        start = time.perf_counter()
        fitted = fit_curves(by_size, form="chinchilla", bootstrap=args.fit_resamples,
                            seed=args.seed)
        fit_seconds += time.perf_counter() - start
        chinchilla = allocate(fitted.laws, [1e18])
        rows.append(["/".join(str(sweep.axes[c]) for c in CONFIGURATION), len(sweep),
                     f"{sum(level.interior for level in iso.levels)}/{len(iso.levels)}",
                     iso.a, _interval(iso.interval), inside.a, _interval(inside.interval),
                     chinchilla.a, _interval(chinchilla.intervals.get("a")),
                     fitted.shared["alpha"], fitted.shared["beta"]])
    headers = ["dataset/hparams/warmup/decay/param_count/loss", "points", "min inside",
               "a isoflop", "90% interval", "a inside-only", "90% interval", "a chinchilla",
               "90% interval", "alpha", "beta"]
    print(format_table(headers, rows))
    print("\nmin inside: levels whose parabola minimum lies within the sizes measured there")
    print(f"IsoFLOP: {args.resamples} resamples per fit, {iso_seconds:.2f} s in all; "
          f"Chinchilla form: {args.fit_resamples} joint resamples, {fit_seconds:.1f} s in all "
          f"(seed {args.seed})")


if __name__ == "__main__":
    main()
