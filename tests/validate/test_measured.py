"""Reading measured curves (validate/measured.py): crossings, savings per seed and their
interval, against numbers worked out by hand."""

import math

import numpy as np
import pytest

from laws.search.planfile import Percentiles
from validate.measured import (
    crossing,
    intervals_overlap,
    mean_interval,
    paired_savings,
    reach,
    saving,
)


def _curve(*points):
    return [{"flops": f, "eval_loss": e, "time": 2 * f} for f, e in points]


def test_reach_interpolates_in_log_flops_between_the_evaluations_around_the_target():
    curve = _curve((10.0, 3.0), (1000.0, 1.0), (1e5, 0.5))
    # 2.5 lies a quarter of the way from 3.0 to 1.0: 10^(1 + 0.25 x 2) = 10^1.5 FLOPs.
    assert reach(curve, 2.5) == pytest.approx(10**1.5, rel=1e-12)
    assert reach(curve, 2.5, "time") == pytest.approx(2 * 10**1.5, rel=1e-12)
    assert reach(curve, 1.0) == pytest.approx(1000.0, rel=1e-12)  # an evaluation at it
    assert reach(curve, 0.4) is None


def test_saving_is_one_minus_the_ratio_of_adaptive_to_static_compute():
    assert saving(60.0, 80.0) == pytest.approx(0.25)
    assert saving(None, 80.0) is None and saving(60.0, None) is None


def test_paired_savings_pair_each_seed_against_one_best_static_shape():
    static = {"small": [_curve((1.0, 2.0), (100.0, 1.0)), _curve((1.0, 2.0), (10.0, 1.0))],
              "big": [_curve((1.0, 2.0), (50.0, 1.0)), _curve((1.0, 2.0), (400.0, 1.0))],
              "tiny": [_curve((1.0, 2.0), (2.0, 1.0)), _curve((1.0, 2.0), (2.0, 1.5))]}
    switch = {"event": "switch", "flops": 5.0, "eval_loss": 1.5}
    adaptive = [[*_curve((1.0, 2.0)), switch, *_curve((40.0, 1.0))],
                _curve((1.0, 2.0), (8.0, 1.0))]
    result = paired_savings(static, adaptive, 1.0, planned="big", estimator=reach)
    # Tiny misses the target on seed 1; of the others small has the fewest FLOPs on the seeds'
    # mean (55 against 225), though big is faster on seed 0 alone.
    assert result["best_static"] == "small"
    seeds = result["seeds"]
    assert [s["adaptive_flops"] for s in seeds] == pytest.approx([40.0, 8.0], rel=1e-12)
    assert seeds[0]["static_flops"] == pytest.approx({"small": 100.0, "big": 50.0, "tiny": 2.0},
                                                     rel=1e-12)
    # Seed 0: 1 - 40/100 = 0.6 (over big: 1 - 40/50 = 0.2); seed 1: 1 - 8/10 = 0.2 (1 - 8/400).
    assert [s["saving"] for s in seeds] == [pytest.approx(0.6), pytest.approx(0.2)]
    assert [s["saving_vs_planned"] for s in seeds] == [pytest.approx(0.2), pytest.approx(0.98)]
    # Their mean 0.4, s / sqrt(2) = 0.2; a table's t(0.95, 1 dof) = 6.3138.
    assert result["saving"]["mean"] == pytest.approx(0.4)
    assert result["saving"]["high"] == pytest.approx(0.4 + 6.3138 * 0.2, rel=1e-4)


def test_mean_interval_is_the_students_t_interval_at_90_percent():
    # Three values 0.1, 0.2, 0.6: mean 0.3, s = sqrt((0.04 + 0.01 + 0.09) / 2) = 0.2646,
    # s / sqrt(3) = 0.1528; a table's t(0.95, 2 dof) = 2.9200: half-width 0.4461.
    interval = mean_interval([0.1, 0.2, 0.6])
    assert interval["level"] == 0.9 and interval["n"] == 3
    half = 2.919986 * math.sqrt(0.07) / math.sqrt(3)
    assert interval["mean"] == pytest.approx(0.3)
    assert interval["low"] == pytest.approx(0.3 - half, rel=1e-5)
    assert interval["high"] == pytest.approx(0.3 + half, rel=1e-5)
    assert mean_interval([0.1, None])["mean"] is None
    single = mean_interval([0.2])
    assert single["mean"] == 0.2 and single["low"] is None


def _power_curve(shape, exponents, slope=-0.25):
    """Evaluations at 10^k FLOPs of loss 10^(slope k): a straight line in log-log."""
    return [{"flops": 10.0 ** k, "eval_loss": 10.0 ** (slope * k), "shape": shape}
            for k in exponents]


def test_crossing_reads_only_the_shape_that_crosses():
    """An adaptive run: a first shape far above the line of the second, then the second on a
    power law; the crossing is that law's, 10^4.38 for the target 10^-1.095, although the first
    shape's last evaluation (10^4.1 FLOPs) lies within the span around it."""
    first = _power_curve({"p": 14}, [3.9, 4.0, 4.1], slope=-0.1)
    second = _power_curve({"p": 7}, [4.2, 4.3, 4.35, 4.4, 4.45, 4.55, 4.7])
    curve = [*first, {"event": "switch", "flops": 10**4.1, "eval_loss": 0.4}, *second]
    assert crossing(curve, 10**-1.095) == pytest.approx(10**4.38, rel=1e-9)
    mixed = [{**point, "shape": {"p": 7}} for point in [*first, *second]]
    assert crossing(mixed, 10**-1.095) != pytest.approx(10**4.38, rel=1e-3)  # it would matter


def test_crossing_falls_back_to_the_first_crossing_without_a_falling_line():
    """Three evaluations whose line rises: no line to read, the first crossing is the answer
    (1.0 is halfway from 2 to 0 in loss: 10^1.5 FLOPs)."""
    curve = _curve((10.0, 2.0), (100.0, 0.0001), (1000.0, 3.0))
    assert crossing(curve, 1.0) == pytest.approx(reach(curve, 1.0), rel=1e-12)
    assert crossing(_curve((10.0, 2.0)), 1.0) is None


def test_crossing_spreads_less_than_the_first_crossing_on_noisy_flat_curves():
    """5% noise on a flat power law (slope -0.1 in log-log), 40 evaluations a decade: over 300
    curves the line's log error spreads at most half as much as the first crossing's, and is
    nearly unbiased (the first crossing is early: noise reaches the target first)."""
    rng = np.random.default_rng(0)
    target, truth = 10**-0.5, 5.0  # loss 10^(-0.1 k) meets 10^-0.5 at k = 5
    line, first = [], []
    for _ in range(300):
        curve = [{"flops": 10.0**k, "eval_loss": 10.0 ** (-0.1 * k) * math.exp(0.05 * z)}
                 for k, z in zip(np.arange(3, 7, 0.025), rng.standard_normal(160), strict=True)]
        line.append(math.log10(crossing(curve, target)) - truth)
        first.append(math.log10(reach(curve, target)) - truth)
    assert np.std(line) < 0.5 * np.std(first)
    assert abs(np.mean(line)) < 0.05 < -np.mean(first)


def test_intervals_overlap_when_they_share_a_point():
    measured = {"low": 0.05, "high": 0.10}
    assert intervals_overlap(measured, Percentiles(0.10, 0.15, 0.20))  # touching ends
    assert not intervals_overlap(measured, Percentiles(0.11, 0.15, 0.20))
    assert not intervals_overlap({"low": 0.21, "high": 0.3}, Percentiles(0.10, 0.15, 0.20))
    assert intervals_overlap({"low": None, "high": None}, Percentiles(0.1, 0.15, 0.2)) is None
    assert intervals_overlap(measured, None) is None
    assert intervals_overlap(measured, Percentiles(None, None, None)) is None
