"""Porian et al.'s IsoFLOP estimator (laws/optimal/porian.py): the closed-form exponent of a
Chinchilla law recovered to the grid's resolution, intervals that cover the truth under seed
noise, the same numbers as a draw-by-draw reimplementation of their published code (on
synthetic sweeps and on their own points), levels left out as theirs are, and the command."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.interpolate import Akima1DInterpolator

from cli import main
from laws.errors import InputError
from laws.optimal.porian import porian_fit
from tests.components import require

PORIAN = (Path(__file__).resolve().parents[2].parent / "shared" / "data"
          / "porian_resolving_discrepancies" / "porian_isoflop_points.csv")

# A Chinchilla-form law L = E0 + A/N^alpha + B/D^beta with D = C / (6 N): at fixed C the loss
# is lowest at N_opt(C) = G (C/6)^a, G = (alpha A / (beta B))^(1/(alpha+beta)),
# a = beta/(alpha+beta) (Hoffmann et al. 2022, eq. 4).
E0, A, B, ALPHA, BETA = 1.8, 480.0, 2100.0, 0.35, 0.37
EXPONENT = BETA / (ALPHA + BETA)
G = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
BUDGETS = 1e17 * 2.0 ** np.arange(-3, 9)  # theirs (configs.FLOP_VALS): 4 digits, exact
OFFSETS = np.linspace(-1.0, 1.0, 9)  # sizes around each level's centre, in log N
# Sweeps are centred near, not on, the optimum, by a different amount at each level, so that
# the optimum falls at a different place between grid points at each level.
SHIFTS = 0.3 * np.sin(np.arange(BUDGETS.size))


def _n_opt(compute: np.ndarray) -> np.ndarray:
    return G * (compute / 6) ** EXPONENT


def _chinchilla_sweeps() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = (_n_opt(BUDGETS)[:, None] * np.exp(OFFSETS[None, :] + SHIFTS[:, None])).ravel()
    compute = np.repeat(BUDGETS, OFFSETS.size)
    return compute, n, E0 + A / n**ALPHA + B / (compute / (6 * n)) ** BETA


def test_chinchilla_sweeps_give_the_closed_form_exponent_to_the_grid_resolution() -> None:
    compute, n, loss = _chinchilla_sweeps()
    fit = porian_fit(compute, n, loss, seed_noise=0.0, resamples=10)
    # The minimum is read off a grid of (9 - 1) x 25 points over 2 units of log N: step h.
    step = 2.0 / (8 * 25 - 1)
    # Half a step for the grid, up to half a step for the Akima spline between sizes.
    for level in fit.levels:
        assert abs(np.log(level.n_opt / _n_opt(level.compute))) <= step
    # Without noise every draw agrees, so every level's spread is the floor, 0.33 x 25 grid
    # steps, and the levels weigh alike: an unweighted least-squares slope, whose error is at
    # most sum|x - mean x| e / sum (x - mean x)^2 when no level errs by more than e.
    assert [lv.spread for lv in fit.levels] == pytest.approx([0.33 * 25 * step] * 12,
                                                             rel=1e-9)
    x = np.log(BUDGETS) - np.log(BUDGETS).mean()
    bound = np.abs(x).sum() * step / (x**2).sum()  # 0.0037
    assert abs(fit.a - EXPONENT) <= bound
    assert fit.interval == pytest.approx((fit.a, fit.a), rel=1e-12)  # the draws all agree
    assert fit.method == "porian" and fit.valid == 10


def test_intervals_cover_the_exponent_under_seed_noise() -> None:
    compute, n, loss = _chinchilla_sweeps()
    rng = np.random.default_rng(7)
    sweeps = 40
    covered = 0
    for sweep in range(sweeps):
        noisy = loss + rng.normal(0.0, 0.005, loss.size)
        fit = porian_fit(compute, n, noisy, seed_noise=0.005, resamples=500, seed=sweep)
        covered += fit.interval[0] <= EXPONENT <= fit.interval[1]
    # A calibrated 90% interval covers Binomial(40, 0.9) times: 31 or fewer has chance 1.1%.
    assert covered >= 32


def _lowest_on_grid(sizes: np.ndarray, losses: np.ndarray, grid: np.ndarray) -> int:
    """Their interpolation's argmin: an Akima spline of log loss in log N, read at grid."""
    spline = Akima1DInterpolator(np.log(sizes), np.log(losses))
    return int(np.argmin(np.exp(spline(np.log(grid)))))


def _their_way(compute, n, loss, seed_noise: float, resamples: int, seed: int,
               level: float) -> dict:
    """Porian et al.'s analysis.py, draw by draw (interp_flop, interpolation,
    vectorized_interp_with_seed_noise, power_law_fit(weighted=True), extract_CI), on given
    points, with this project's draw order and percentile rule."""
    rng = np.random.default_rng(seed)
    points = defaultdict(dict)
    for c, size, value in zip(compute, n, loss, strict=True):
        points[c][size] = min(value, points[c].get(size, np.inf))
    kept = []
    for c in sorted(points):
        sizes = np.array(sorted(points[c]))
        losses = np.array([points[c][s] for s in sizes])
        noise = rng.standard_normal((resamples, sizes.size))
        if sizes.size < 3:
            continue
        grid = np.geomspace(sizes[0], sizes[-1], (sizes.size - 1) * 25)
        if _lowest_on_grid(sizes, losses, grid) in (0, grid.size - 1):
            continue
        stars = []
        for draw in range(resamples):
            at = _lowest_on_grid(sizes, losses + seed_noise * noise[draw], grid)
            if at not in (0, grid.size - 1):
                stars.append(grid[at])
        if len(stars) < resamples // 2:
            continue
        floor = 0.33 * 25 * np.log(grid[1] / grid[0])
        spread = max(np.std(np.log(stars)), floor) * resamples / len(stars)
        kept.append((c, np.median(stars), spread, stars))
    log_c = np.log([c for c, *_ in kept])
    root_weights = [1 / spread for _, _, spread, _ in kept]  # polyfit squares w
    slope, intercept = np.polyfit(log_c, np.log([m for _, m, _, _ in kept]), 1,
                                  w=root_weights)
    paired = min(len(stars) for *_, stars in kept)
    slopes = [np.polyfit(log_c, np.log([stars[i] for *_, stars in kept]), 1,
                         w=root_weights)[0] for i in range(paired)]
    tail = (1 - level) / 2
    low, high = np.quantile(slopes, [tail, 1 - tail], method="inverted_cdf")
    return {"a": slope, "k": np.exp(intercept), "interval": (low, high), "paired": paired,
            "medians": [m for _, m, _, _ in kept], "spreads": [s for _, _, s, _ in kept]}


def _agree(fit, theirs: dict) -> None:
    used = [lv for lv in fit.levels if lv.n_opt is not None]
    assert [lv.n_opt for lv in used] == pytest.approx(theirs["medians"], rel=1e-9)
    assert [lv.spread for lv in used] == pytest.approx(theirs["spreads"], rel=1e-9)
    assert fit.a == pytest.approx(theirs["a"], rel=1e-9)
    assert fit.k == pytest.approx(theirs["k"], rel=1e-7)
    assert fit.interval == pytest.approx(theirs["interval"], rel=1e-9)
    assert fit.valid == theirs["paired"]


def test_noisy_sweeps_match_a_draw_by_draw_reimplementation() -> None:
    compute, n, loss = _chinchilla_sweeps()
    noisy = loss + np.random.default_rng(2).normal(0.0, 0.01, loss.size)
    fit = porian_fit(compute, n, noisy, seed_noise=0.01, resamples=150, seed=4, level=0.95)
    _agree(fit, _their_way(compute, n, noisy, 0.01, 150, 4, 0.95))


def test_porian_points_match_a_draw_by_draw_reimplementation() -> None:
    if not PORIAN.is_file():
        require("Porian et al.'s points", f"{PORIAN} is absent (../shared/data beside the "
                                          "checkout)")
    with open(PORIAN, newline="") as handle:
        rows = [row for row in csv.DictReader(handle)
                if (row["dataset"], row["hparams"], row["warmup"], row["decay"],
                    row["param_count"], row["loss_split"])
                == ("rw", "tuned", "short", "const", "standard", "val")]
    compute, n, loss = (np.array([float(row[col]) for row in rows])
                        for col in ("flops", "N", "loss"))
    fit = porian_fit(compute, n, loss, seed_noise=0.002, resamples=200, level=0.95)
    assert len(fit.levels) == 12 and all(lv.interior for lv in fit.levels)
    _agree(fit, _their_way(compute, n, loss, 0.002, 200, 0, 0.95))
    # Their paper's table of exponents was not found in a readable source (docs/OPTIMAL.md).


def test_levels_are_left_out_as_theirs_are() -> None:
    compute, n, loss = _chinchilla_sweeps()
    falling = np.array([5.0, 4.0, 3.0, 2.5])  # the loss falls to the largest size measured
    compute = np.r_[compute, np.full(4, 1e23), 1e24, 1e24]
    n = np.r_[n, 1e9 * np.arange(1.0, 5.0), 1e9, 2e9]
    loss = np.r_[loss, falling, 3.0, 2.9]
    fit = porian_fit(compute, n, loss, seed_noise=0.0, resamples=10)
    reasons = {lv.compute: lv.reason for lv in fit.levels}
    assert reasons[1e23] == "minimum at the edge of the sizes measured"
    assert reasons[1e24] == "fewer than 3 sizes"
    exact = porian_fit(*_chinchilla_sweeps(), seed_noise=0.0, resamples=10)
    assert fit.a == exact.a  # the two levels left out change nothing
    # The lowest loss per size is the one kept: a worse duplicate changes nothing either.
    compute, n, loss = _chinchilla_sweeps()
    doubled = porian_fit(np.r_[compute, compute], np.r_[n, n], np.r_[loss, loss + 0.1],
                         seed_noise=0.0, resamples=10)
    assert doubled.a == exact.a


def test_most_draws_at_the_edge_leave_the_level_out() -> None:
    # Three sizes on a loss flat to within the noise: most draws put the minimum at an end.
    compute, n, loss = _chinchilla_sweeps()
    fit = porian_fit(np.r_[compute, np.full(3, 1e23)], np.r_[n, [1e9, 2e9, 4e9]],
                     np.r_[loss, [3.0, 2.9999, 3.0]], seed_noise=0.05, resamples=200)
    assert "fewer than half" in fit.levels[-1].reason and fit.levels[-1].n_opt is None


@pytest.mark.parametrize("options, message", [
    ({"seed_noise": -0.1}, "cannot be negative"),
    ({"seed_noise": 0.0, "resamples": 1}, "at least 2 seed-noise draws"),
    ({"seed_noise": 5.0}, "non-positive"),
])
def test_bad_options_are_input_errors(options: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        porian_fit(*_chinchilla_sweeps(), **options)


def test_one_level_is_not_enough() -> None:
    compute, n, loss = _chinchilla_sweeps()
    with pytest.raises(InputError, match="needs at least 2"):
        porian_fit(compute[:9], n[:9], loss[:9], seed_noise=0.0, resamples=10)


def _sweep_csv(tmp_path: Path) -> Path:
    compute, n, loss = _chinchilla_sweeps()
    path = tmp_path / "sweep.csv"
    path.write_text("C,N,loss\n" + "".join(f"{float(c)!r},{float(s)!r},{float(v)!r}\n"
                                           for c, s, v in zip(compute, n, loss, strict=True)))
    return path


def test_command_runs_the_porian_method(tmp_path) -> None:
    path = _sweep_csv(tmp_path)
    common = ["isoflop", str(path), "--compute-col", "C", "--params-col", "N", "--loss-col",
              "loss", "--bootstrap", "20"]
    result = CliRunner().invoke(main, [*common, "--method", "porian", "--seed-noise", "0",
                                       "--json"])
    assert result.exit_code == 0, result.output
    (sweep,) = json.loads(result.output)["sweeps"]
    direct = porian_fit(*_chinchilla_sweeps(), seed_noise=0.0, resamples=20)
    assert sweep["method"] == "porian" and sweep["a"] == pytest.approx(direct.a, rel=1e-12)
    assert all("log_N_opt_spread" in level for level in sweep["levels"])
    table = CliRunner().invoke(main, [*common, "--method", "porian", "--seed-noise", "0"])
    assert table.exit_code == 0 and "Akima" in table.output
    for extra, message in [(["--method", "porian"], "needs --seed-noise"),
                           (["--method", "porian", "--seed-noise", "0", "--inside-only"],
                            "--inside-only is for --method parabola"),
                           (["--seed-noise", "0.01"], "--seed-noise is for --method porian")]:
        refused = CliRunner().invoke(main, [*common, *extra])
        assert refused.exit_code == 2 and message in refused.output, refused.output
