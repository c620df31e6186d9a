"""Issue 23's user run, as a user does it from the public API only: docs/examples'
user_lightning_transitions.py (Lightning + timm ViT) plans with free switches, measures the
switches of that plan's runs, plans again charged with them and measures the plan it
recommends; here with fewer steps and two seeds. What it wrote is checked against the curves
it trained, read here without the library."""

import hashlib
import json
import math
import re
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
from scipy.stats import t

from tests.validate.test_round_trip import require_lightning_timm_fashion_mnist, run_script


def records(path):
    return [json.loads(line) for line in path.open()]


def switch_pairs(folder):
    """Each switch after a run's first evaluation that an evaluation follows, as the pair of
    shapes evaluated just before and just after it, counted over the runs."""
    pairs = Counter()
    for path in folder.rglob("curve.jsonl"):
        run = records(path)
        for i, record in enumerate(run):
            before = [r for r in run[:i] if r["event"] == "eval"]
            after = [r for r in run[i + 1:] if r["event"] == "eval"]
            if record["event"] == "switch" and before and after:
                pairs[before[-1]["shape_name"], after[0]["shape_name"]] += 1
    return pairs


def power_compute(params, loss):
    """FLOPs at which loss = c + a C^-b."""
    return (params["a"] / (loss - params["c"])) ** (1 / params["b"])


def extra_flops(transition, law, fired, end):
    """What ``transition`` adds to reaching ``end`` after a switch at ``fired``: a constant
    delay, a slowdown's share of the law's own FLOPs, or a fading penalty's, on a slowed law
    or not (bisection)."""
    params = transition["params"]
    if transition["model"] == "constant-flops":
        return params["flops"]
    if transition["model"] == "slowdown":
        return params["factor"] * (power_compute(law, end) - power_compute(law, fired))
    assert transition["model"] in ("transient-penalty", "penalty-slowdown")
    return penalty_extra_flops(law, params["delta"], params["tau_flops"],
                               params.get("factor", 0.0), fired, end)


def penalty_extra_flops(law, delta, tau, factor, fired, end):
    """The FLOPs a switch at loss ``fired`` adds to reaching ``end`` when the loss after it is
    the law's, ``1 + factor`` times slower, plus delta * fired * exp(-since / tau): bisection
    on the FLOPs since the switch, minus the law's own C(end) - C(fired)."""
    start = power_compute(law, fired)

    def loss(since):
        return (law["c"] + law["a"] * (start + since / (1 + factor)) ** -law["b"]
                + delta * fired * math.exp(-since / tau))

    low, high = 0.0, power_compute(law, end) - start
    while loss(high) > end:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if loss(middle) > end else (low, middle)
    return high - (power_compute(law, end) - start)


def first_crossing(path, target):
    """FLOPs where the run's evaluations first reach ``target``, interpolated in log FLOPs."""
    evals = [r for r in records(path) if r["event"] == "eval"]
    for before, after in pairwise(evals):
        if after["eval_loss"] <= target < before["eval_loss"]:
            share = (before["eval_loss"] - target) / (before["eval_loss"] - after["eval_loss"])
            return math.exp(math.log(before["flops"])
                            + share * math.log(after["flops"] / before["flops"]))
    return None


def table(text):
    """The first table in ``text`` (header, a line of dashes, rows up to a blank line) as one
    dict per row, cut at the columns the dashes mark."""
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("---"))
    spans = [match.span() for match in re.finditer(r"-+", lines[rule])]
    spans[-1] = (spans[-1][0], None)  # the last column's cells may be wider than its dashes

    def cells(line):
        return [line[start:end].strip() for start, end in spans]

    body = lines[rule + 1:]
    body = body[:body.index("")] if "" in body else body
    return [dict(zip(cells(lines[rule - 1]), cells(line), strict=True)) for line in body]


def percent(text):
    return float(text.rstrip("%")) / 100


def check_measured(report, schedule, target):
    """The measure table in ``report`` against the curves (each run's first crossing of
    ``target``), and the printed savings against the table: each seed's adaptive run (of
    ``schedule``) against the same seed's run of the static shape with the fewest FLOPs on the
    seeds' mean, their mean with a Student-t 90% interval. Returns the static runs' FLOPs per
    shape (None: not reached)."""
    rows = table(report)
    for row in rows:
        crossing = first_crossing(Path(row["run"]), target)
        assert (row["first crossing"] == "not reached" if crossing is None
                else float(row["first crossing"]) == pytest.approx(crossing, rel=1e-3))
    flops = {(row["kind"], row["shape"], int(row["seed"])):
             None if row["FLOPs"] == "not reached" else float(row["FLOPs"]) for row in rows}
    seeds = sorted(seed for (kind, _, seed) in flops if kind == "adaptive")
    static = {shape: [flops["static", shape, seed] for seed in seeds]
              for (kind, shape, _) in flops if kind == "static"}
    best = min((shape for shape, spent in static.items() if None not in spent),
               key=lambda shape: sum(static[shape]))
    adaptive = " > ".join(step["shape"] for step in schedule)
    savings = [1 - flops["adaptive", adaptive, seed] / flops["static", best, seed]
               for seed in seeds]
    printed = re.findall(r"seed (\d+): (-?[\d.]+%)", report)
    assert [int(seed) for seed, _ in printed] == seeds
    assert [percent(value) for _, value in printed] == pytest.approx(savings, abs=2e-3)
    mean = sum(savings) / len(savings)
    spread = math.sqrt(sum((s - mean) ** 2 for s in savings) / (len(savings) - 1))
    half = t.ppf(0.95, len(savings) - 1) * spread / math.sqrt(len(savings))
    line = re.search(r"measured (-?[\d.]+%) \[(-?[\d.]+%), (-?[\d.]+%)\] over (\S+)", report)
    assert line.group(4) == best
    assert [percent(line.group(k)) for k in (1, 2, 3)] == pytest.approx(
        [mean, mean - half, mean + half], abs=2e-3)
    return static


@pytest.mark.slow
def test_lightning_transitions(tmp_path):
    require_lightning_timm_fashion_mnist()
    stdout = run_script("user_lightning_transitions.py", tmp_path, 120, 2)

    # The law file keeps one transition per switch pair the free plan's runs made, fitted on
    # as many switches as those runs made of it.
    laws = json.loads((tmp_path / "laws_transitions.json").read_text())
    measured = {(m["from"], m["to"]): m for m in laws["transitions"]["measured"]}
    assert {pair: m["switches"] for pair, m in measured.items()} == dict(
        switch_pairs(tmp_path / "adaptive_free"))

    # Each pair keeps the model with parameters of least out-of-sample RMSE there (a pair
    # made in one run only: the transient penalty).
    for m in measured.values():
        fitted = {name: error for name, error in m["rmse_log"].items() if name != "free"}
        assert m["model"] == (min(fitted, key=fitted.get) if fitted else "transient-penalty")

    # The second plan was searched on that law file, and charged each switch it makes what
    # its transition costs to the end of the leg after it.
    plan = json.loads((tmp_path / "plan.json").read_text())
    canonical = json.dumps(laws, sort_keys=True, separators=(",", ":"))
    assert plan["laws"]["digest"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert plan["assumptions"] == []
    schedule = plan["optimal"]["schedule"]
    shapes = {shape["name"]: shape["params"] for shape in laws["shapes"]}
    charged = {(m["from"], m["to"]): m["flops"] for m in plan["measured_switches"]}
    assert set(charged) == {(a["shape"], b["shape"]) for a, b in pairwise(schedule)}
    for before, leg in pairwise(schedule):
        transition = measured[before["shape"], leg["shape"]]
        expected = extra_flops(transition, shapes[leg["shape"]], leg["loss_from"],
                               leg["loss_to"])
        assert charged[before["shape"], leg["shape"]] == pytest.approx(expected, rel=1e-6)

    # What the free plan's runs and, when it switches, the second plan's runs saved; a plan
    # that stays static is set against the best static shape on the seeds' mean FLOPs.
    target = plan["target_loss"]
    free_plan = json.loads((tmp_path / "plan_free.json").read_text())
    reports = stdout.split("\nits adaptive runs:\n")[1:]
    static = check_measured(reports[0], free_plan["optimal"]["schedule"], target)
    # The plan is followed unless it makes no switch or its saving's interval reaches 0.
    low = plan["uncertainty"]["plan_saving"]["p5"]
    if len(schedule) > 1 and low > 0:
        check_measured(reports[1], schedule, target)
        return
    stay = re.search(r"staying static on (\S+); measured best static shape (\S+), which \S+ "
                     r"saves (-?[\d.]+%) over", stdout)
    means = {shape: sum(spent) / len(spent) for shape, spent in static.items()
             if None not in spent}
    assert stay.group(1) == plan["static_best"]["shape"]
    assert stay.group(2) == min(means, key=means.get)
    assert percent(stay.group(3)) == pytest.approx(
        1 - means[stay.group(1)] / means[stay.group(2)], abs=2e-3)
