"""The fit's bootstrap: block resampling, joint samples in the law set, and calibration."""

from __future__ import annotations

import numpy as np
import pytest

from bench.bench_fit_coverage import trial
from laws.fit import fit_curves
from laws.fit.uncertainty import BLOCKS, POINTS, block_length, resample_counts
from laws.forms import PowerLaw
from laws.io.curves import Curve, Curves

COMPUTE = np.logspace(18, 21, 15)


def _curves(laws: dict[str, PowerLaw], noise: float, seed: int = 0) -> Curves:
    rng = np.random.default_rng(seed)
    return Curves("synthetic.csv", tuple(
        Curve(name, {"size": i}, COMPUTE,
              law.loss(COMPUTE) * np.exp(rng.normal(0, noise, COMPUTE.size)),
              tuple(range(COMPUTE.size)))
        for i, (name, law) in enumerate(laws.items())))


def test_block_length_is_the_ceiling_of_the_cube_root() -> None:
    for n in range(1, 300):
        smallest = next(length for length in range(1, n + 1) if length**3 >= n)
        assert block_length(n) == smallest, n
        assert block_length(n, POINTS) == 1


def test_blocks_keep_sizes_and_weights_and_draw_neighbours_together() -> None:
    rng = np.random.default_rng(3)
    strata = np.repeat([0, 1], [15, 8])
    blocks = np.array([resample_counts(strata, rng, BLOCKS) for _ in range(20000)])
    points = np.array([resample_counts(strata, rng, POINTS) for _ in range(20000)])
    for draws in (blocks, points):
        assert np.all(draws[:, :15].sum(axis=1) == 15) and np.all(draws[:, 15:].sum(axis=1) == 8)
        # Circular blocks weigh every point alike, the ends too (mean count 1).
        np.testing.assert_allclose(draws.mean(axis=0), 1.0, atol=0.05)

    def neighbour_correlation(draws: np.ndarray) -> float:
        return float(np.corrcoef(draws[:, 5], draws[:, 6])[0, 1])

    # Multinomial counts of 15 points: correlation -1/14 between any two points.
    assert neighbour_correlation(points) == pytest.approx(-1 / 14, abs=0.02)
    # Blocks of 3 draw a point with its neighbours: positive correlation.
    assert neighbour_correlation(blocks) > 0.3


def test_joint_fit_samples_are_joint_draws_kept_in_the_law_set() -> None:
    truth = {f"s{i}": PowerLaw(a=a, b=0.3, c=2.0) for i, a in enumerate([2e6, 5e6, 1e7])}
    result = fit_curves(_curves(truth, 0.005), share=("floor",), bootstrap=12, seed=1,
                        level=0.8)
    shapes = result.laws.shapes
    assert all(len(shape.samples) == 12 for shape in shapes)
    floors = np.array([[sample.c for sample in shape.samples] for shape in shapes])
    # One resample refits all shapes together: sample k has one floor for every shape ...
    np.testing.assert_array_equal(floors, np.broadcast_to(floors[0], floors.shape))
    # ... and the floor differs from resample to resample.
    assert len(set(floors[0])) == 12
    for k, laws in enumerate(result.laws.samples()):
        assert [s.law for s in laws.shapes] == [s.samples[k] for s in shapes]
        assert all(not s.samples for s in laws.shapes)
    # The intervals are the samples' quantiles (inverted CDF: the 2nd and 11th of 12 values).
    for shape in shapes:
        b = np.sort([sample.b for sample in shape.samples])
        assert result.intervals[shape.name]["b"] == (b[1], b[10])


def test_fit_without_bootstrap_has_no_samples() -> None:
    result = fit_curves(_curves({"x": PowerLaw(a=2e6, b=0.3, c=2.0)}, 0.005))
    assert result.laws.shapes[0].samples == () and result.laws.samples() == []


@pytest.mark.slow
def test_interval_of_compute_to_target_is_calibrated() -> None:
    """The reduced CI version of bench/bench_fit_coverage.py (200 trials there): 30 trials of
    noisy curves from known laws, nominal 90%."""
    results = [trial(seed, 0.0, BLOCKS, resamples=50) for seed in range(30)]
    compute = np.mean([hit for hits, _ in results for hit in hits])
    saving = np.mean([hit for _, hit in results])
    assert 0.75 <= compute <= 0.97, compute
    assert 0.7 <= saving <= 0.97, saving
