"""Per-step curves reduced to rows kept from log-spaced bins of compute, with weights.

A per-step log holds one point per optimizer step: 150,000 points for a run of 150k steps,
nine tenths of them in its last decade of compute, where the law changes by a fraction of a
percent from one step to the next. The fit pays for every one of them (each objective
evaluation, each start of the grid, each bootstrap resample). Above ``REDUCE_ABOVE`` points
(``fit --reduce-above N``; ``none`` fits every row) a curve is cut into ``BINS_PER_DECADE``
bins per factor of ten in compute, edges at fixed powers of ten (``laws.io.curves.LogBins``).
A bin of at most ``QUANTILES`` rows keeps its rows as they are (the first 700 steps of a run).
A bin of k more rows keeps ``QUANTILES`` of them, at evenly spaced ranks of loss (mirrored
about the middle, so that the noise is not shifted either way), each weighted
k / ``QUANTILES``: a bin of k noisy rows counts k times in the objective, as its rows would,
and the weights add up to the rows. 150,000 steps become about 4,400 points.

Why rows at ranks of loss and not one mean or median per bin: the objective is a Huber loss
with delta 1e-3 on log-loss (``laws.fit.objective``), nearly L1 where per-step noise is 1 to
2%. Its optimum puts the law where, bin by bin, as many rows lie above as below, and how fast
that balance changes along the law depends on the spread of the rows, which one point per bin
does not carry. Kept rows are rows of the curve, so a noiseless curve stays exact.

What the reduction cannot keep: a, b and c of a power law trade off along a flat valley of
the objective (on ``bench/bench_big_fit.py``'s curves, 1% more a costs 2e-6 of the objective
on all rows). On those curves the reduced optimum lies, in a, 13% from the fit of all rows
with one (lower) median per bin, 2.6% with rows at 16 ranks, up to 1.05% at 32 (b and c a
quarter of that and less). So a per-shape fit (``laws.fit.problem.polish_on_rows``) takes
the reduced optimum as its start and re-minimises on every row, one L-BFGS-B run in the
coordinates in which the reduced objective's Hessian there is the identity (10 or 11
evaluations on every row instead of 21 to 50): the law is the fit of all rows (to 3e-7
there), for a fraction of its cost, since the grid of starts sees the reduced points only.
Of the grid's starts, a per-shape fit of a reduced curve polishes the best one only
(``REDUCED_POLISHED``; four for a curve of fewer points, whose objective can hold several
valleys): on those curves the four best starts of every fit, power
and saturating, on all points or on the first half, ended at one optimum (objectives within
3e-11 of one another). A joint fit (shared parameters, chinchilla) keeps the reduced optimum,
and so do the fits of ``--form auto``'s candidates (``laws.fit.choice``), which only rank the
candidates: of the five fits of ``--form auto``, only the one kept is re-minimised on every
row. The ranking fits see a coarser reduction of their own (``RANKING_QUANTILES``, 8 rows a
bin), made once per curve: a 0.5% change in the candidates' held-out scores on those curves,
against the 5% margin that decides between them. The bootstrap (``laws.fit.uncertainty``)
refits the reduced points, resampled in circular blocks, each drawn point with its weight.

>>> from laws.io.curves import Curve
>>> steps = np.arange(1, 3001)
>>> compute = 1e12 * steps
>>> curve = Curve("s", {}, compute, 2.0 + 50.0 * compute ** -0.1, tuple(steps.tolist()))
>>> binned = reduce_curve(curve)
>>> len(binned), int(binned.weights.sum())
(1715, 3000)
>>> bool(np.allclose(binned.loss, 2.0 + 50.0 * binned.compute ** -0.1, rtol=1e-15))
True
"""

from __future__ import annotations

import numpy as np

from laws.errors import InputError
from laws.io.curves import Curve, LogBins

REDUCE_ABOVE = 2000  # points per shape beyond which a curve is binned
BINS_PER_DECADE = 50  # neighbouring bins differ by 4.7% in compute
QUANTILES = 32  # points per bin of more rows: its rows at 32 evenly spaced loss ranks
REDUCED_POLISHED = 1  # starts of the grid polished in a per-shape fit of a reduced curve


def parse_threshold(text: str) -> int | None:
    """The threshold that ``fit --reduce-above`` gives: a whole number of points >= 0, or
    None (``none``: fit every row, as the comparison in ``bench/bench_big_fit.py`` does).

    >>> parse_threshold("none"), parse_threshold(" 500 ")
    (None, 500)
    """
    text = text.strip()
    if text.lower() == "none":
        return None
    if not (text.isascii() and text.isdigit()):
        raise InputError(f"--reduce-above {text!r}: expected a whole number of points (>= 0) "
                         "or 'none'")
    return int(text)


def reduce_curve(curve: Curve, above: int | None = REDUCE_ABOVE,
                 per_decade: int = BINS_PER_DECADE, quantiles: int = QUANTILES) -> Curve:
    """``curve`` reduced to weighted points when it has more than ``above`` points (None:
    never); else ``curve`` itself. A bin of at most ``quantiles`` rows keeps them, weight 1; a
    bin of k more rows keeps ``quantiles`` of them at evenly spaced ranks of loss, weight
    k / ``quantiles`` each (module docstring). A shape whose points have several model sizes N
    is kept as it is (its rows are the chinchilla form's, and a bin would mix sizes).
    """
    if above is None or len(curve) <= above or curve.weights is not None or (
            curve.n_params is not None and np.ptp(curve.n_params) > 0):
        return curve
    index = LogBins("compute", per_decade).index(curve.compute)  # sorted: compute is
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    counts = np.diff(np.r_[starts, index.size])
    small = counts <= quantiles
    kept = np.flatnonzero(np.repeat(small, counts))
    large_starts, large_counts = starts[~small], counts[~small]
    half = np.arange(quantiles // 2)
    # Ranks within each large bin, mirrored about its middle: unbiased in the noise.
    low = np.floor((half + 0.5) * large_counts[:, None] / quantiles).astype(int)
    ranks = np.hstack([low, (large_counts[:, None] - 1 - low)[:, ::-1]])
    by_loss = _by_loss_within(curve.loss, large_starts, large_counts)
    firsts = np.cumsum(large_counts) - large_counts  # each large bin's place in by_loss
    rows = np.r_[kept, by_loss[(firsts[:, None] + ranks).ravel()]]
    weights = np.r_[np.ones(kept.size), np.repeat(large_counts / quantiles, quantiles)]
    order = np.argsort(rows, kind="stable")  # rows are in order of compute
    rows = rows[order]
    return Curve(curve.name, curve.axes, curve.compute[rows], curve.loss[rows],
                 tuple(curve.lines[i] for i in rows.tolist()),
                 None if curve.n_params is None else curve.n_params[rows],
                 {key: values[rows] for key, values in curve.extra.items()},
                 curve.grouped, weights[order])


def _by_loss_within(loss: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The rows of each bin (``counts`` consecutive rows from each of ``starts``), bin by bin,
    in order of ``loss``, equal losses in order of their rows.

    One sort of distinct integers (bin, rank of the loss among equal ones merged, place): the
    order a stable sort of each bin's losses gives, in a third of its time (numpy sorts
    numbers of 64 bits with vector instructions, but not stably).

    >>> _by_loss_within(np.array([9.0, 3.0, 2.0, 3.0, 1.0, 5.0]), np.array([1, 4]),
    ...                 np.array([3, 2])).tolist()
    [2, 1, 3, 4, 5]
    """
    size = int(counts.sum())
    rows = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(size)
    values = loss[rows]
    bins = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    if counts.size * size * size >= 2**63:  # keys would overflow (10^8 rows and more)
        return rows[np.lexsort((values, bins))]
    order = np.argsort(values)
    rank = np.empty(size, np.int64)
    rank[order] = np.cumsum(np.r_[False, values[order][1:] != values[order][:-1]])
    keys = (bins * size + rank) * size + np.arange(size)
    return rows[np.sort(keys) % size]


def reduction_record(raw: list[Curve], reduced: list[Curve], above: int | None,
                     polished: bool) -> dict:
    """What the law file says of the reduction: the rule, whether the laws were re-minimised
    on every row (``polished``), and per reduced shape its rows, the points kept and their
    weights (rows per point); empty when no curve was reduced."""
    shapes = {before.name: {"rows": len(before), "points": len(after),
                            "weights": {"min": float(after.weights.min()),
                                        "max": float(after.weights.max()),
                                        "sum": float(after.weights.sum())}}
              for before, after in zip(raw, reduced, strict=True) if after is not before}
    if not shapes:
        return {}
    return {"method": f"curves of more than {above} points: {BINS_PER_DECADE} log-spaced bins "
                      f"of compute per decade; a bin of at most {QUANTILES} rows keeps them "
                      f"(weight 1), a bin of k more rows keeps {QUANTILES} of them at evenly "
                      f"spaced ranks of loss, weight k/{QUANTILES} each",
            "above": above, "bins_per_decade": BINS_PER_DECADE, "quantiles": QUANTILES,
            "laws": "re-minimised on every row from the optimum on the points kept" if polished
                    else "the optimum on the points kept",
            "bootstrap": "refits of the points kept, resampled in circular blocks, each drawn "
                         "point with its weight",
            "shapes": shapes}
