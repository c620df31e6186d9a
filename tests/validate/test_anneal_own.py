"""bench/bench_anneal_own.py's plumbing: one seed of a tiny constant-rate mlp-width run and its
cool-down branches, read back into ``CooldownBranches`` that hold the numbers of the run's
files (read here with json) at the steps the closed forms give, and scored held out."""

import json
import math

import numpy as np
import pytest

from bench.bench_anneal_own import Setting, branch_run, fit_cut, read_branches
from laws.errors import InputError
from laws.fit.anneal import ANNEAL_METHODS, CooldownBranches, held_out_errors
from laws.fit.problem import fit_law
from validate.config import TrainConfig

# mlp-width at width 8, batch 32 trains 22528 FLOPs a step (tests/validate/test_cooldown.py
# checks the closed form). Keep points 6e5 x 10^(i/4) of a 6e6 budget: 6e5, 1.067e6, 1.897e6
# and 3.374e6 FLOPs, kept at the first step boundary at or past each, all past the warm-up.
STEP_FLOPS, BUDGET, FIRST_KEEP, KEEP, SHARE = 22528, 6e6, 0.1, 4, 0.2
TINY = Setting({"width": 8, "batch": 32}, BUDGET, FIRST_KEEP,
               TrainConfig(lr=3e-2, warmup_steps=20, evals=4))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("anneal_own") / "seed-0"
    cooled = branch_run("mlp-width", TINY, 0, KEEP, SHARE, folder)
    return folder, cooled


def _lines(path):
    return [json.loads(line) for line in path.open()]


def test_the_branches_hold_the_numbers_of_the_run_files(run):
    folder, cooled = run
    branches = read_branches(folder, cooled)
    levels = [BUDGET * FIRST_KEEP ** (1 - i / KEEP) for i in range(KEEP)]
    kept_steps = [math.ceil(level / STEP_FLOPS) for level in levels]
    assert kept_steps == [27, 48, 85, 150]
    # Each branch trains to the last step boundary within C / 0.8, C its kept FLOPs.
    end_steps = [math.floor(step * STEP_FLOPS / (1 - SHARE) / STEP_FLOPS) for step in kept_steps]
    assert end_steps == [33, 60, 106, 187]
    assert branches.hot_steps.tolist() == kept_steps == branches.branch_steps.tolist()
    assert branches.end_steps.tolist() == end_steps
    assert (branches.flop_per_step, branches.warmup_steps) == (STEP_FLOPS, 20)
    curve = {r["step"]: r["eval_loss"] for r in _lines(folder / "curve.jsonl")
             if r["event"] == "eval"}
    rows = _lines(cooled / "annealed.jsonl")
    assert branches.hot_loss.tolist() == [curve[step] for step in kept_steps]
    assert branches.hot_loss.tolist() == [row["constant_loss"] for row in rows]
    assert branches.annealed_loss.tolist() == [row["annealed_loss"] for row in rows]
    # The annealed loss is each branch folder's last evaluation.
    for row, step in zip(rows, end_steps, strict=True):
        last = _lines(cooled / row["branch"] / "curve.jsonl")[-1]
        assert (last["step"], last["eval_loss"]) == (step, row["annealed_loss"])


def test_the_last_branch_is_scored_held_out(run):
    branches = read_branches(*run)
    runs = {"seed-0": branches}
    cut = fit_cut(runs, held_out=1)
    assert cut == 85
    errors = held_out_errors(runs, cut)
    assert set(errors) == set(ANNEAL_METHODS)
    assert all(values.shape == (1,) and np.isfinite(values).all() for values in errors.values())
    # The hot law, recomputed from the first three hot points: its error at the last end.
    law = fit_law(branches.hot_steps[:3] * STEP_FLOPS, branches.hot_loss[:3], "power")
    own = abs(math.log(law.loss(187 * STEP_FLOPS) / branches.annealed_loss[-1]))
    assert errors["hot law"][0] == pytest.approx(own, rel=1e-9)


def test_seeds_with_other_keep_points_are_refused():
    def branches(steps):
        steps = np.array(steps, dtype=float)
        return CooldownBranches(steps, np.ones(3), steps, steps * 1.25, np.ones(3), 1.0)

    with pytest.raises(InputError, match="keep points differ"):
        fit_cut({"a": branches([30, 60, 90]), "b": branches([30, 61, 90])}, held_out=1)
