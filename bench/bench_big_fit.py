"""Per-step logs: `shapeshift fit` on a 4-curve, 609,638-row CSV, against pandas reading it.

Writes the CSV (per-step logging of four runs: compute = step x FLOPs per step, steps 1 to
about 150k, a power law per shape with correlated multiplicative noise), then, in the same
run and on the same machine, in each of ``--repeats`` rounds (the machine is shared: its load
changes from round to round, so each fit is divided by the read of its own round):

* in this process, imports already made on both sides: ``pandas.read_csv(path)``, then
  ``laws.fit.request.fit_file`` with the request ``shapeshift fit`` builds by default
  (``--form auto``, the reduction of per-step curves, ``laws.fit.reduce``);
* each as a fresh process under ``/usr/bin/time`` (wall time and peak memory alike):
  ``python -c "import pandas; pandas.read_csv(path)"``, then ``python -m cli fit path ...``;
  Python's start and imports count on both sides.

It prints the ratios' median and range over the rounds (the issue's target, at most 10 times
pandas' read, is judged on the in-process ratio; the subprocess one is context), one untimed
round of each first (both sides' first calls touch fresh memory). Then it fits all rows once
without the reduction (``--reduce-above none``), with the form the reduced fit chose, and
prints the laws' relative differences. pandas is no dependency of the project: run the bench
with pandas' packages on ``PYTHONPATH`` (docs/FITTING.md).

    PYTHONPATH=/tmp/pdonly python bench/bench_big_fit.py --repeats 5   # about a minute
    PYTHONPATH=/tmp/pdonly python bench/bench_big_fit.py --rows-scale 0.1 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from laws.io.curves import ColumnMap

# Four runs, steps 1..N: (name, FLOPs per step, a, b, c, steps); compute C = step x FLOPs per
# step, loss = c + a C^-b. The step counts add up to 609,638 rows.
RUNS = (
    ("w256", 2.0e12, 60.0, 0.12, 1.9, 150_000),
    ("w384", 4.5e12, 75.0, 0.125, 1.8, 151_500),
    ("w512", 8.0e12, 90.0, 0.13, 1.7, 153_000),
    ("w768", 1.8e13, 110.0, 0.135, 1.6, 155_138),
)
NOISE = 0.02  # per-step log-loss noise (a training loss of one batch)
CORRELATION = 0.5  # lag-1 autocorrelation of that noise, as successive batches show
TOKENS_PER_STEP = 524_288
# What `fit --shape-col run --compute-col flops --loss-col loss` (``fit_process``) maps.
COLUMNS = ColumnMap(shape=("run",), loss="loss", compute="flops")


def write_curves(path: Path, scale: float = 1.0, seed: int = 0) -> int:
    """Write the per-step CSV (``scale`` shortens every run); returns its number of rows."""
    rng = np.random.default_rng(seed)
    rows = 0
    with open(path, "w", newline="") as handle:
        handle.write("run,step,tokens,flops,loss,lr,grad_norm,seconds\n")
        for name, per_step, a, b, c, steps in RUNS:
            step = np.arange(1, int(steps * scale) + 1)
            compute = step * per_step
            shocks = rng.normal(0.0, NOISE * np.sqrt(1 - CORRELATION**2), step.size)
            noise = np.empty(step.size)
            noise[0] = rng.normal(0.0, NOISE)
            for i in range(1, step.size):  # AR(1): the noise of successive batches
                noise[i] = CORRELATION * noise[i - 1] + shocks[i]
            loss = (c + a * compute ** -b) * np.exp(noise)
            lr = 3e-4 * np.minimum(1.0, step / 2000)
            grad_norm = 0.5 + rng.gamma(2.0, 0.1, step.size)
            seconds = np.cumsum(rng.gamma(50.0, per_step / 5e13 / 50.0, step.size))
            handle.writelines(
                f"{name},{s},{s * TOKENS_PER_STEP},{f:.6e},{v:.6f},{r:.6e},{g:.4f},{t:.3f}\n"
                for s, f, v, r, g, t in zip(step, compute, loss, lr, grad_norm, seconds,
                                            strict=True))
            rows += step.size
    return rows


def read_in_process(path: Path) -> float:
    """Seconds for ``pandas.read_csv`` in this process."""
    import pandas

    start = time.perf_counter()
    pandas.read_csv(path)
    return time.perf_counter() - start


def fit_in_process(path: Path) -> float:
    """Seconds for the library call of ``shapeshift fit`` here: ``FitRequest()`` is the
    request the command builds without fit options (``--form auto``)."""
    from laws.fit.request import FitRequest, fit_file

    start = time.perf_counter()
    fit_file(path, COLUMNS, FitRequest())
    return time.perf_counter() - start


def timed_process(command: list[str]) -> tuple[float, float]:
    """Seconds and peak memory (MB, ``/usr/bin/time``'s maximum resident set) of
    ``command`` in a fresh process."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], env=env, check=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    return seconds, int(done.stderr.split()[-1]) / 1024


def read_process(path: Path) -> tuple[float, float]:
    """``timed_process`` of pandas reading ``path``."""
    return timed_process([sys.executable, "-c", "import pandas, sys; "
                          "pandas.read_csv(sys.argv[1])", str(path)])


def fit_process(path: Path, output: Path, *options: str) -> tuple[float, float, dict]:
    """``timed_process`` of ``shapeshift fit`` with ``options``, and its law file."""
    seconds, peak = timed_process(
        [sys.executable, "-m", "cli", "fit", str(path), "--shape-col", "run",
         "--compute-col", "flops", "--loss-col", "loss", *options, "-o", str(output)])
    return seconds, peak, json.loads(output.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-scale", type=float, default=1.0,
                        help="fraction of each run's steps to write (1: 609,638 rows)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds of (pandas read, fit) in process and in processes")
    parser.add_argument("--skip-all-rows", action="store_true",
                        help="skip the fit of all rows without the reduction")
    args = parser.parse_args()
    try:
        import pandas
    except ImportError:
        sys.exit("pandas is not importable: put its packages on PYTHONPATH (docs/FITTING.md)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "per_step.csv"
        reduced = Path(folder) / "reduced.json"
        rows = write_curves(path, args.rows_scale)
        print(f"{path.name}: {rows:,} rows, {path.stat().st_size / 1e6:.1f} MB; pandas "
              f"{pandas.__version__}")
        read_in_process(path)  # untimed, each side once: imports, memory touched first
        fit_in_process(path)
        inside: list[tuple[float, float]] = []
        apart: list[tuple[tuple[float, float], tuple[float, float]]] = []
        for _ in range(args.repeats):
            inside.append((read_in_process(path), fit_in_process(path)))
            apart.append((read_process(path), fit_process(path, reduced)[:2]))
        _print_ratio("in process", inside)
        _print_ratio("processes ", [(read[0], fit[0]) for read, fit in apart])
        print(f"peak memory (/usr/bin/time): pandas {max(r[1] for r, _ in apart):.0f} MB, "
              f"fit {max(f[1] for _, f in apart):.0f} MB")
        laws = json.loads(reduced.read_text())
        forms = sorted({shape["form"] for shape in laws["shapes"]})
        print(f"fit --form auto chose {', '.join(forms)}; reduction: "
              f"{json.dumps(laws['provenance']['fit_metrics'].get('reduction'))}")
        if args.skip_all_rows:
            return
        form = forms[0] if len(forms) == 1 else "power"
        every = Path(folder) / "all.json"
        all_seconds, all_peak, _ = fit_process(path, every, "--form", form,
                                               "--reduce-above", "none")
        print(f"all rows, no reduction (--form {form}): {all_seconds:.1f} s, peak "
              f"{all_peak:.0f} MB")
        print_differences(reduced, every)


def _print_ratio(label: str, rounds: list[tuple[float, float]]) -> None:
    """One line: pandas' read, the fit, and the fit over the read of its round."""
    reads, fits = [r for r, _ in rounds], [f for _, f in rounds]
    ratios = [f / r for r, f in rounds]
    print(f"{label}: pandas.read_csv {_spread(reads, 3)} s, fit {_spread(fits, 3)} s: "
          f"{_spread(ratios, 1)} x pandas' read of its round")


def _spread(values: list[float], digits: int) -> str:
    """The median of ``values`` and, for several, their range: ``4.1 (3.9 to 4.6)``."""
    median = f"{np.median(values):.{digits}f}"
    if len(values) == 1:
        return median
    return f"{median} ({min(values):.{digits}f} to {max(values):.{digits}f})"


def print_differences(reduced: Path, full: Path) -> None:
    """Each shape's parameters, reduced against all rows, with the relative difference; then
    what the laws predict: the largest relative difference in loss over the shape's measured
    compute and up to 10 times beyond, and in the compute to reach its last measured loss."""
    from laws.io.lawfile import read_law_file

    pairs = list(zip(read_law_file(reduced).shapes, read_law_file(full).shapes, strict=True))
    worst = 0.0
    print(f"{'shape':<6} {'param':<5} {'reduced':>12} {'all rows':>12} {'rel. diff':>10}")
    for ours, theirs in pairs:
        for key, value in theirs.law.params().items():
            mine = ours.law.params()[key]
            difference = (mine - value) / abs(value)
            worst = max(worst, abs(difference))
            print(f"{ours.name:<6} {key:<5} {mine:12.6g} {value:12.6g} {difference:+10.2e}")
    print(f"largest relative difference of a parameter: {worst:.2e}")
    for ours, theirs in pairs:
        low, high = ours.measured.compute_range
        compute = np.logspace(np.log10(low), np.log10(high * 10), 400)
        loss = np.max(np.abs(ours.law.loss(compute) / theirs.law.loss(compute) - 1))
        target = float(theirs.law.loss(high))
        to_target = float(ours.law.compute(target) / theirs.law.compute(target) - 1)
        print(f"{ours.name}: loss from the first step to 10x the last: largest relative "
              f"difference {loss:.1e}; compute to reach {target:.4f}: {to_target:+.2e}")


if __name__ == "__main__":
    main()
