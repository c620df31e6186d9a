"""Per-step logs: `shapeshift fit` on a 4-curve, 609,638-row CSV, against just reading it.

Writes the CSV (per-step logging of four runs: compute = step x FLOPs per step, steps 1 to
about 150k, a power law per shape with correlated multiplicative noise), then, in the same
run and on the same machine:

* in each of ``--repeats`` rounds, times Python's ``csv`` module reading every row of it
  (``csv.reader``, nothing else), then ``shapeshift fit`` on it as a subprocess (the default
  ``--form auto``, with the reduction of per-step curves, ``laws.fit.reduce``), its peak
  memory from the children's ``ru_maxrss``, then with the form auto chose given (``--form``:
  one fit, where auto fits each candidate on each curve's first half and on all of it
  first); each fit's time is divided by the read of its round, and the median and range of
  the rounds printed (the machine is shared: its load changes from round to round);
* times pandas' ``read_csv`` too where pandas is installed (it is not a dependency);
* fits all rows once without the reduction (``--reduce-above none``), with the form the
  reduced fit chose (auto's choice on all rows costs minutes and GBs), and prints the laws'
  relative differences.

    python bench/bench_big_fit.py                  # about a minute on 2 shared cores
    python bench/bench_big_fit.py --rows-scale 0.1 --repeats 1   # a quick look, 61k rows
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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


def read_with_csv(path: Path) -> float:
    """Seconds for the ``csv`` module to read every row (and nothing else)."""
    start = time.perf_counter()
    with open(path, newline="") as handle:
        for _ in csv.reader(handle):
            pass
    return time.perf_counter() - start


def read_with_pandas(path: Path) -> float | None:
    """Seconds for pandas' ``read_csv``, or None where pandas is not installed."""
    try:
        import pandas
    except ImportError:
        return None
    start = time.perf_counter()
    pandas.read_csv(path)
    return time.perf_counter() - start


def run_fit(path: Path, output: Path, form: str, *options: str) -> tuple[float, float, dict]:
    """Seconds and peak memory (MB, the child's ru_maxrss) of ``shapeshift fit`` with further
    ``options`` in a fresh process, and its law file (written to ``output``)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "cli", "fit", str(path), "--shape-col", "run",
               "--compute-col", "flops", "--loss-col", "loss", "--form", form, *options,
               "-o", str(output)]
    # A child of its own per run: ru_maxrss of RUSAGE_CHILDREN is the largest child so far.
    probe = [sys.executable, "-c",
             "import resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
             "print(time.perf_counter() - t, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)", *command]
    done = subprocess.run(probe, env=env, check=True, capture_output=True, text=True)
    seconds, peak_kb = done.stdout.split()
    return float(seconds), int(peak_kb) / 1024, json.loads(output.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-scale", type=float, default=1.0,
                        help="fraction of each run's steps to write (1: 609,638 rows)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds of (csv read, fit --form auto, fit --form F), each fit "
                             "timed against the read of its own round")
    parser.add_argument("--skip-all-rows", action="store_true",
                        help="skip the fit of all rows without the reduction")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "per_step.csv"
        rows = write_curves(path, args.rows_scale)
        print(f"{path.name}: {rows:,} rows, {path.stat().st_size / 1e6:.1f} MB")
        pandas_read = read_with_pandas(path)
        reads, auto, given = [], [], []
        for _ in range(args.repeats):  # rounds: a busy spell slows a read and its fits alike
            reads.append(read_with_csv(path))
            seconds, peak, laws = run_fit(path, Path(folder) / "reduced.json", "auto")
            auto.append((seconds, peak))
            forms = sorted({shape["form"] for shape in laws["shapes"]})
            form = forms[0] if len(forms) == 1 else "power"
            seconds, peak, _ = run_fit(path, Path(folder) / "given.json", form)
            given.append((seconds, peak))
        print(f"csv.reader, every row:           {_spread(reads, 2)} s")
        if pandas_read is not None:
            print(f"pandas.read_csv:                 {pandas_read:6.2f} s")
        for label, runs, note in ((" (--form auto)", auto, f"chose {', '.join(forms)}"),
                                  (f" --form {form}", given, "one fit, no choice")):
            seconds = [s for s, _ in runs]
            ratios = [s / read for s, read in zip(seconds, reads, strict=True)]
            print(f"shapeshift fit{label}: {_spread(seconds, 2)} s = {_spread(ratios, 1)} x "
                  f"the csv read of its round, peak {max(p for _, p in runs):.0f} MB ({note})")
        print(f"reduction: {json.dumps(laws['provenance']['fit_metrics'].get('reduction'))}")
        if args.skip_all_rows:
            return
        all_seconds, all_peak, _ = run_fit(path, Path(folder) / "all.json", form,
                                             "--reduce-above", "none")
        print(f"all rows, no reduction (--form {form}): {all_seconds:.1f} s, peak "
              f"{all_peak:.0f} MB")
        print_differences(Path(folder) / "reduced.json", Path(folder) / "all.json")


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
