"""The confirmation loop with a final anneal (``--schedule wsd``, validate/annealing.py), reduced:
mlp-width, two seeds, every run cooled down from its kept states. What is checked is the
pipeline against the files it wrote: which states were kept, how the adaptive run's branches
cool down, the annealed laws and the plan made with them, and the savings after the anneal
recomputed from ``annealed.jsonl`` by the hand-written readers of ``tests/crossings.py``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from laws.errors import InputError
from laws.io.lawfile import read_law_file
from laws.search import read_plan
from tests.crossings import first_crossing, line_crossing
from validate.annealing import KEEP_FROM, MIN_BRANCHES
from validate.config import LoopConfig, TrainConfig
from validate.loop import run_loop
from validate.report import format_summary

SHARE = 0.2
# A target every run's annealed curve crosses inside its branches, so that each seed pairs.
TARGET = 0.095
CONFIG = LoopConfig(
    "mlp-width", ({"width": 4}, {"width": 32}), budget=1e8, common={"batch": 32}, seeds=2,
    target=TARGET, train=TrainConfig(evals=24, warmup_steps=20, schedule="wsd", cooldown=SHARE,
                                     task_options={"noise": 0.05}))


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    out = tmp_path_factory.mktemp("wsd-loop")
    return out, run_loop(CONFIG, out, progress=False)


def rows(run_dir: Path) -> list[dict]:
    folder = run_dir / f"cooldown-{SHARE:g}"
    return [json.loads(line) for line in (folder / "annealed.jsonl").read_text().splitlines()]


def annealed(run_dir: Path) -> list[dict]:
    return [{"flops": row["annealed_flops"], "eval_loss": row["annealed_loss"],
             "shape": row["shape"]} for row in rows(run_dir)]


def test_states_are_kept_at_evaluation_levels_past_the_keep_share(loop):
    out, _ = loop
    levels = CONFIG.train.eval_levels(CONFIG.budget)  # 1e6 x 10^(2 i / 23)
    expected = [level for level in levels if KEEP_FROM * CONFIG.budget <= level < CONFIG.budget]
    assert len(expected) == 6  # i = 18 .. 23: 10^(6 + 36/23) = 0.37e8 up to 0.82e8
    run = out / "static" / "width32" / "seed0"
    evals = [json.loads(line) for line in (run / "curve.jsonl").read_text().splitlines()]
    kept = rows(run)
    assert len(kept) == len(expected) >= MIN_BRANCHES
    for row, level in zip(kept, expected, strict=True):
        # the first step boundary at or past the level, which is also an evaluation
        assert row["flops"] >= level
        assert any(record["flops"] == row["flops"] for record in evals)
        assert row["budget"] == pytest.approx(row["flops"] / (1 - SHARE), rel=1e-12)
        assert row["flops"] < row["annealed_flops"] <= row["budget"]


def test_adaptive_branches_cool_down_on_their_shape_without_switching(loop):
    out, _ = loop
    plan = read_plan(out / "plan.json")
    for seed in range(CONFIG.seeds):
        run = out / "adaptive" / f"seed{seed}"
        curve = [json.loads(line) for line in (run / "curve.jsonl").read_text().splitlines()]
        switches = [r["flops"] for r in curve if r.get("event") == "switch"]
        for row in rows(run):
            switched = sum(flops <= row["flops"] for flops in switches)
            assert row["shape"] == plan.optimal.shapes[switched]
            branch = run / f"cooldown-{SHARE:g}" / row["branch"] / "curve.jsonl"
            after = [json.loads(line) for line in branch.read_text().splitlines()]
            assert not [r for r in after if r.get("event") == "switch"
                        and r["flops"] > row["flops"]]


def test_annealed_laws_and_the_plan_to_the_anneal(loop):
    out, _ = loop
    laws = read_law_file(out / "laws.json")
    cooldown = json.loads((out / "cooldown_plan.json").read_text())
    assert cooldown["target_loss"] == TARGET
    for shape in laws.shapes:
        assert shape.annealed.cooldown == SHARE
        budget = float(shape.annealed.law.compute(TARGET))
        assert cooldown["static"][shape.name] == pytest.approx(budget, rel=1e-12)
    ending = cooldown["ending"]
    stable = read_plan(out / "plan.json")  # what the adaptive runs followed
    assert stable.target_loss == pytest.approx(ending["stable_loss"], rel=1e-12)
    assert stable.request.end_on == ending["shape"]
    last = laws.shape(ending["shape"])
    budget = float(last.annealed.law.compute(TARGET))
    assert ending["stable_loss"] == pytest.approx(float(last.law.loss((1 - SHARE) * budget)))


def test_savings_after_the_anneal_from_the_branches(loop):
    out, summary = loop
    anneal = summary["anneal"]
    static = {name: [annealed(out / "static" / name / f"seed{k}") for k in range(2)]
              for name in ("width4", "width32")}
    adaptive = [annealed(out / "adaptive" / f"seed{k}") for k in range(2)]
    line = {name: [line_crossing(run, TARGET) for run in runs] for name, runs in static.items()}
    best = min(line, key=lambda name: np.mean(line[name]))
    assert anneal["best_static"] == best
    savings = [1 - line_crossing(run, TARGET) / line[best][k] for k, run in enumerate(adaptive)]
    assert anneal["measured_interval"]["mean"] == pytest.approx(np.mean(savings), rel=1e-9)
    first = {name: [first_crossing(run, TARGET) for run in runs] for name, runs in static.items()}
    best_first = min(first, key=lambda name: np.mean(first[name]))
    first_savings = [1 - first_crossing(run, TARGET) / first[best_first][k]
                     for k, run in enumerate(adaptive)]
    assert anneal["first_crossing"]["measured_interval"]["mean"] == pytest.approx(
        np.mean(first_savings), rel=1e-9)
    cooldown = json.loads((out / "cooldown_plan.json").read_text())
    assert anneal["predicted_saving"] == cooldown["saving_vs_static"]


def test_a_loop_refuses_cosine_and_too_few_branches(tmp_path):
    cosine = LoopConfig("mlp-width", ({"width": 4}, {"width": 32}), budget=1e8,
                        train=TrainConfig(schedule="cosine"))
    with pytest.raises(InputError, match="--schedule cosine"):
        run_loop(cosine, tmp_path / "cosine", progress=False)
    few = LoopConfig("mlp-width", ({"width": 4}, {"width": 32}), budget=1e8,
                     train=TrainConfig(schedule="wsd", evals=12))
    with pytest.raises(InputError, match="--evals 12 leaves 2 of them"):
        run_loop(few, tmp_path / "few", progress=False)


def test_the_report_shows_the_comparison_after_the_anneal(loop):
    out, summary = loop
    report = (out / "report.md").read_text()
    anneal = summary["anneal"]
    lead = report[:report.index("## Compute to the target")]
    assert (f"measured after the anneal, to loss {TARGET:.4f}, the adaptive run saves "
            f"{100 * anneal['measured_saving']:.1f}% against "
            f"{100 * anneal['predicted_saving']:.1f}% predicted") in lead
    section = report[report.index("## After the anneal"):]
    assert f"target {TARGET:.4f} after the anneal" in section
    assert f"**{100 * anneal['measured_saving']:.1f}%**" in section
    assert f"**{100 * anneal['predicted_saving']:.1f}%**" in section
    interval = anneal["measured_interval"]
    assert (f"after the anneal (target {TARGET:.4f}, best static {anneal['best_static']}): "
            f"predicted {100 * anneal['predicted_saving']:.1f}%, measured "
            f"{100 * anneal['measured_saving']:.1f}% (90% interval {100 * interval['low']:.1f}% "
            f"to {100 * interval['high']:.1f}%)") in format_summary(summary)


def test_an_annealed_curve_that_rises_gets_no_law():
    """Shape a's annealed points lie on 0.2 + 3 C^-0.25 exactly, and its law is that one;
    shape b's rise after their second point (an overfitting shape), leaving two: no law."""
    from laws.forms import PowerLaw
    from laws.lawset import LawSet, Shape
    from validate.annealing import fit_annealed

    budgets = [1e6 * 2.0**k for k in range(6)]
    truth = PowerLaw(a=3.0, b=0.25, c=0.2)
    falling = [[{"flops": c, "eval_loss": float(truth.loss(c)), "step": k + 1}
                for k, c in enumerate(budgets)]]
    rising = [[{"flops": c, "eval_loss": 0.5 - 0.01 * min(k, 1) + 0.05 * max(k - 1, 0),
                "step": k + 1} for k, c in enumerate(budgets)]]
    hot = LawSet("hot", (Shape("a", {}, PowerLaw(a=4.0, b=0.25, c=0.3)),
                         Shape("b", {}, PowerLaw(a=4.0, b=0.25, c=0.3))))
    laws = fit_annealed(hot, {"a": falling, "b": rising}, [{}, {}], "power", (), 0.2, "toy")
    assert laws.shape("b").annealed is None
    fitted = laws.shape("a").annealed
    assert fitted.cooldown == 0.2
    assert (fitted.law.a, fitted.law.b, fitted.law.c) == pytest.approx((3.0, 0.25, 0.2),
                                                                      rel=1e-5)
    assert laws.shape("a").law == hot.shape("a").law
