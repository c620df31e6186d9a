"""``--form auto``: the extrapolation test picks the true form of synthetic curves, scores as
its definition says, leaves out degenerate fits, falls back (with a warning) when it cannot
test, chooses per shape as each shape alone would, and the Revisiting benchmark's reduced
run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from laws.errors import InputError
from laws.fit import fit_law
from laws.fit.choice import AUTO_RATIO, choose_auto
from laws.fit.curveset import fit_curves
from laws.fit.diagnostics import parameter_warnings
from laws.fit.objective import EXPONENT_BOUNDS
from laws.fit.pershape import PER_SHAPE
from laws.forms import PowerLaw, SaturatingLaw
from laws.io.curves import Curve, Curves

COMPUTE = np.logspace(6, 9, 40)
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
REVISITING = DATA / "revisiting_neural_scaling_laws" / "benchmark.vision.csv"


def _curves(law, noise: float, seed: int, compute=COMPUTE) -> Curves:
    rng = np.random.default_rng(seed)
    loss = law.loss(compute) * np.exp(rng.normal(0.0, noise, compute.size))
    return Curves("synthetic.csv", (Curve("s", {}, compute, loss,
                                          tuple(range(2, compute.size + 2))),))


@pytest.mark.parametrize("noise", [0.002, 0.01])
@pytest.mark.parametrize(("truth", "form"), [
    # The offset d = 1e7 lies inside the range: the curve flattens at small compute.
    (SaturatingLaw(a=4e3, b=0.6, c=0.2, d=1e7), "saturating"),
    (PowerLaw(a=30.0, b=0.3, c=0.2), "power"),
    (PowerLaw(a=300.0, b=0.5, c=0.5), "power"),
])
def test_auto_picks_the_true_form(truth, form, noise) -> None:
    for seed in range(4):
        choice = choose_auto(_curves(truth, noise, seed))
        assert (choice.form, choice.share) == (form, ()), (seed, choice)
        assert choice.tested and not choice.warnings()


def test_score_is_the_log_rmse_above_half_the_largest_compute() -> None:
    curves = _curves(SaturatingLaw(a=4e3, b=0.6, c=0.2, d=1e7), 0.01, 0)
    curve = curves.curves[0]
    below = curve.compute <= curve.compute.max() / 2
    choice = choose_auto(curves)
    for scored in choice.candidates:
        # Refit the points below the cut-off one curve at a time, and score by hand.
        law = fit_law(curve.compute[below], curve.loss[below], scored.form)
        error = np.log(law.loss(curve.compute[~below])) - np.log(curve.loss[~below])
        assert scored.score == pytest.approx(np.sqrt(np.mean(error**2)), rel=1e-6)
        assert scored.shapes == {"s": scored.score}
        # What the loop records as the laws' held-out error: RMSE of loss on the same points.
        loss_error = law.loss(curve.compute[~below]) - curve.loss[~below]
        assert scored.metrics["s"]["rmse"] == pytest.approx(np.sqrt(np.mean(loss_error**2)),
                                                            rel=1e-6)
        assert scored.metrics["s"]["points"] == np.sum(~below)
    assert choice.held_out() == next(c.metrics for c in choice.candidates
                                     if c.form == choice.form)
    assert AUTO_RATIO == 2.0


def test_the_margin_favours_the_simpler_form() -> None:
    # Saturating extrapolates far better here; only a margin beyond its lead hands it to power.
    curves = _curves(SaturatingLaw(a=4e3, b=0.6, c=0.2, d=1e7), 0.01, 0)
    power, saturating = choose_auto(curves).candidates
    lead = power.score / saturating.score - 1.0
    assert lead > 1.0
    assert choose_auto(curves, margin=0.0).form == "saturating"
    assert choose_auto(curves, margin=0.9 * lead).form == "saturating"
    assert choose_auto(curves, margin=1.1 * lead).form == "power"


def test_a_degenerate_fit_is_left_out() -> None:
    # An exponential decay is the saturating form's limit b -> inf, d -> inf: its fit ends at
    # the exponent bound, however well its partial fit scores.
    compute = np.logspace(6, 7.3, 20)
    loss = 0.2 + 0.7 * np.exp(-compute / 5e6)
    curves = Curves("exp.csv", (Curve("s", {}, compute, loss, tuple(range(20))),))
    choice = choose_auto(curves)
    saturating = choice.candidates[1]
    assert saturating.score is None and saturating.status.startswith("degenerate")
    assert choice.form == "power"
    assert fit_curves(curves, "saturating").laws.shapes[0].law.b == pytest.approx(
        EXPONENT_BOUNDS[1])


def test_too_few_points_below_the_cut_off_fall_back_with_a_warning() -> None:
    compute = np.array([1e6, 1e7, 1e8, 6e8, 8e8, 1e9])  # 3 points at most half of 1e9
    curves = _curves(PowerLaw(a=30.0, b=0.3, c=0.2), 0.0, 0, compute)
    choice = choose_auto(curves)
    assert (choice.form, choice.candidates, choice.tested) == ("power", (), False)
    [warning] = choice.warnings()
    assert warning.kind == "choice" and "could not test" in warning.message


def test_the_share_asked_for_goes_to_every_candidate() -> None:
    laws = {"s": SaturatingLaw(a=4e3, b=0.6, c=0.2, d=1e7),
            "t": SaturatingLaw(a=6e3, b=0.6, c=0.2, d=1e7)}
    curves = Curves("two.csv", tuple(
        Curve(name, {}, COMPUTE, law.loss(COMPUTE), tuple(range(40)))
        for name, law in laws.items()))
    choice = choose_auto(curves, share=("floor",))
    assert {c.share for c in choice.candidates} == {("floor",)}
    assert (choice.form, choice.share) == ("saturating", ("floor",))
    assert set(choice.candidates[0].shapes) == {"s", "t"}


def _named(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Curves:
    return Curves("kinds.csv", tuple(Curve(name, {}, compute, loss, tuple(range(compute.size)))
                                     for name, (compute, loss) in curves.items()))


EXPONENTIAL = (np.logspace(6, 7.3, 20), 0.2 + 0.7 * np.exp(-np.logspace(6, 7.3, 20) / 5e6))


def test_per_shape_each_shape_gets_the_choice_it_gets_alone() -> None:
    truths = {"bent": SaturatingLaw(a=4e3, b=0.6, c=0.2, d=1e7),
              "straight": PowerLaw(a=30.0, b=0.3, c=0.2),
              "steep": PowerLaw(a=300.0, b=0.5, c=0.5)}
    # The draws test_auto_picks_the_true_form checks one curve at a time.
    curves = _named({name: (COMPUTE, _curves(law, 0.01, 0).curves[0].loss)
                     for name, law in truths.items()})
    choice = choose_auto(curves, per_shape=True)
    alone = {curve.name: choose_auto(curves.replace([curve])).form for curve in curves.curves}
    assert choice.forms == alone == {"bent": "saturating", "straight": "power",
                                     "steep": "power"}
    assert choice.form == PER_SHAPE and choice.tested and not choice.warnings()
    assert choice.reason.endswith("power on 2, saturating on 1")
    # What the choice holds out: each shape's error under its own form, pooled by points.
    held = choice.held_out()
    by_form = {c.form: c.metrics for c in choice.candidates}
    assert held["bent"] == by_form["saturating"]["bent"]
    assert held["straight"] == by_form["power"]["straight"]
    assert held["all"]["points"] == sum(held[name]["points"] for name in truths)


def test_per_shape_a_degenerate_fit_is_out_for_its_shape_only() -> None:
    # The exponential's saturating fit ends at the exponent bound. One form for both: the
    # saturating candidate is out for both; per shape, only for the exponential.
    bent = SaturatingLaw(a=4e3, b=0.6, c=0.2, d=1e7)
    curves = _named({"exp": EXPONENTIAL, "bent": (COMPUTE, bent.loss(COMPUTE))})
    assert choose_auto(curves).form == "power"
    choice = choose_auto(curves, per_shape=True)
    assert choice.forms == {"exp": "power", "bent": "saturating"}
    saturating = choice.candidates[1]
    assert saturating.degenerate == ("exp",)
    assert saturating.score == pytest.approx(saturating.shapes["bent"])


def test_per_shape_a_fit_of_all_points_no_choice_needs_is_not_made() -> None:
    # By hand, each shape alone: every candidate's fit of all its points and its degeneracy,
    # then the simplest sound candidate within 5% of the best sound score. The choice must
    # agree, having skipped the saturating fits of the shapes power takes whatever they give.
    truths = {"bent": SaturatingLaw(a=4e3, b=0.6, c=0.2, d=1e7),
              "straight": PowerLaw(a=30.0, b=0.3, c=0.2),
              "steep": PowerLaw(a=300.0, b=0.5, c=0.5)}
    kinds = {name: (COMPUTE, _curves(law, 0.01, 0).curves[0].loss)
             for name, law in truths.items()}
    curves = _named({**kinds, "exp": EXPONENTIAL})
    choice = choose_auto(curves, per_shape=True)
    power, saturating = choice.candidates
    by_hand = {}
    for curve in curves.curves:
        sound = [(s.form, s.shapes[curve.name]) for s in (power, saturating)
                 if not parameter_warnings(fit_curves(curves.replace([curve]), s.form).laws)]
        best = min(score for _, score in sound)
        by_hand[curve.name] = next(form for form, score in sound if score <= best * 1.05)
    assert choice.forms == by_hand == {"bent": "saturating", "straight": "power",
                                       "steep": "power", "exp": "power"}
    assert power.unchecked == ()
    # Power takes these whatever saturating's fit of all points gives: it was not made.
    assert saturating.unchecked == tuple(name for name in ("straight", "steep")
                                         if power.shapes[name] <= 1.05 * min(
                                             power.shapes[name], saturating.shapes[name]))
    assert saturating.unchecked and "unchecked" in saturating.to_dict()


def test_per_shape_an_untestable_shape_takes_the_simplest_form() -> None:
    few = np.array([1e6, 1e7, 1e8, 6e8, 8e8, 1e9])  # 3 points at most half of 1e9
    bent = SaturatingLaw(a=4e3, b=0.6, c=0.2, d=1e7)
    curves = _named({"few": (few, bent.loss(few)), "bent": (COMPUTE, bent.loss(COMPUTE))})
    choice = choose_auto(curves, per_shape=True)
    assert choice.forms == {"few": "power", "bent": "saturating"}
    assert "1 shapes with too few points for the test take power" in choice.reason


def test_per_shape_refuses_a_shared_parameter() -> None:
    with pytest.raises(InputError, match="shares no parameter"):
        choose_auto(_curves(PowerLaw(a=30.0, b=0.3, c=0.2), 0.0, 0), ("floor",),
                    per_shape=True)


def test_ratio_must_exceed_one() -> None:
    with pytest.raises(InputError, match="must exceed 1"):
        choose_auto(_curves(PowerLaw(a=30.0, b=0.3, c=0.2), 0.0, 0), ratio=1.0)


@pytest.mark.slow
@pytest.mark.skipif(not REVISITING.is_file(), reason=f"needs the shared data at {REVISITING}")
def test_reduced_revisiting_benchmark() -> None:
    """The first 9 vision curves (MiX/B/16: bird, c, cal, inet x 5/10/25-shot, two of them
    the degenerate Caltech fits) and 3 NMT curves, through bench/bench_revisiting.py."""
    from bench.bench_revisiting import benchmark_curves, run_curve

    pairs = benchmark_curves(limit=9)[:12]
    results = [run_curve(train, test) for train, test in pairs]
    for (train, test), result in zip(pairs, results, strict=True):
        # Every held-out error recomputed by hand from a fit of the training rows alone.
        curve, held = train.curves[0], test.curves[0]
        assert np.all(curve.compute < held.compute.min())
        for form in ("power", "saturating"):
            law = fit_curves(train, form).laws.shapes[0].law
            error = np.log(law.loss(held.compute)) - np.log(held.loss)
            assert result.errors[form] == pytest.approx(np.sqrt(np.mean(error**2)), rel=1e-9)
        assert result.auto_error == result.errors[result.auto]
    flagged = {r.name for r in results if "saturating" in r.flagged}
    assert flagged == {"DomainIC-Taskcal_10-ModelMiX/B/16", "DomainIC-Taskcal_25-ModelMiX/B/16"}
    assert all(r.auto == "power" for r in results if r.name in flagged)
