"""Chinchilla reproduction: this project's fit against the naive recipe, side by side.

Fast: Epoch AI's 4,500-start grid screened in one vectorised pass, the best starts polished
with L-BFGS-B and analytic gradients. Naive: L-BFGS-B with numerical gradients from every
start of the grid. The naive run is timed on a random subset of the starts and extrapolated
linearly to all 4,500 (said so in the output). Needs ../shared/data beside the checkout.

    python bench/bench_fit.py [--naive-starts 40]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from laws.fit import fit_curves
from laws.fit.blas import one_blas_thread
from laws.fit.objective import HUBER_DELTA
from laws.fit.solve import EPOCH_GRID, grid_starts
from laws.io.curves import ColumnMap, load_curves

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "chinchilla_epoch"
PUBLISHED = {"E0": 1.8172, "A": 477.8, "B": 2143.9, "alpha": 0.3473, "beta": 0.3672}


def naive_objective(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray,
                    log_loss: np.ndarray) -> float:
    """Epoch AI's objective as they wrote it: Huber of log-sum-exp residuals, summed."""
    a, b, e, alpha, beta = theta
    predicted = logsumexp([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)], axis=0)
    r = np.abs(predicted - log_loss)
    return float(np.sum(np.where(r <= HUBER_DELTA, 0.5 * r**2,
                                 HUBER_DELTA * (r - 0.5 * HUBER_DELTA))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--naive-starts", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    path = DATA / "svg_extracted_data.csv"
    curves = load_curves(path, ColumnMap(shape=("Model Size",), loss="loss",
                                         compute="Training FLOP", params="Model Size"))

    start = time.perf_counter()
    result = fit_curves(curves, form="chinchilla", drop_highest=5)
    fast_seconds = time.perf_counter() - start

    n = np.concatenate([c.n_params for c in curves.curves])
    compute = np.concatenate([c.compute for c in curves.curves])
    loss = np.concatenate([c.loss for c in curves.curves])
    keep = loss < np.sort(loss)[-5]
    data = (np.log(n[keep]), np.log(compute[keep] / (6 * n[keep])), np.log(loss[keep]))
    grid = grid_starts(EPOCH_GRID)
    subset = np.random.default_rng(args.seed).choice(len(grid), args.naive_starts,
                                                     replace=False)
    start = time.perf_counter()
    naive_best = np.inf
    # One BLAS thread, as the fast fit uses: the ratio measures the method, not thread wake-ups.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), one_blas_thread():
        for index in subset:
            fitted = minimize(naive_objective, grid[index], args=data, method="L-BFGS-B")
            naive_best = min(naive_best, fitted.fun)
    naive_subset_seconds = time.perf_counter() - start
    naive_seconds = naive_subset_seconds * len(grid) / args.naive_starts

    published = np.array([np.log(PUBLISHED["A"]), np.log(PUBLISHED["B"]),
                          np.log(PUBLISHED["E0"]), PUBLISHED["alpha"], PUBLISHED["beta"]])
    print(f"points fitted: {int(keep.sum())} of {keep.size} (five highest losses dropped)")
    print("fitted:    " + "  ".join(f"{k}={v:.4f}" for k, v in result.shared.items()))
    print("published: " + "  ".join(f"{k}={v}" for k, v in PUBLISHED.items()))
    print(f"objective: ours {result.objective:.10f}, theirs at their published parameters "
          f"{naive_objective(published, *data):.10f}")
    print(f"fast fit (grid screened, best starts polished): {fast_seconds:.2f} s")
    print(f"naive recipe: {naive_subset_seconds:.2f} s for {args.naive_starts} random starts of "
          f"{len(grid)} (best objective {naive_best:.10f}); extrapolated linearly to all "
          f"{len(grid)} starts: {naive_seconds:.0f} s")
    print(f"speed-up: {naive_seconds / fast_seconds:.0f}x")


if __name__ == "__main__":
    main()
