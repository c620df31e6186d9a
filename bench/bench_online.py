"""The online policy against the plan where the plan is right, uncertain and wrong.

For each preset, 200 runs per policy with 3% evaluation noise, every policy of a replication on
the same truth and noise (paired), three truths:

(a) ``point``: the planning laws themselves; online should stay within 1 point of planned.
(b) ``samples``: one bootstrap sample per replication; online should be at least as good.
(c) ``widened:F``: that sample F times as far from the point laws, F chosen so that the optimal
    switch lies a median 30% away (in compute) from the plan's; online should recover at least
    half of the gap between planned and the plan made on each replication's true laws (the
    oracle, simulated on the same noise). Beside it, what the same policy recovers with each
    replication's true laws as its prior (how much of the gap its re-planning, from its first
    update on, can recover at all), and with the generator of the truths as its prior (the
    samples widened F-fold, each replication's truth one of them: no prior a run could hold
    is better informed).

Savings are 1 - mean compute at the true crossing / static's (the best static shape of the
planning laws), over the replications every policy reached; intervals are 90% bootstraps over
replications. A run that its noise stops (``confirm`` evaluations at or below the target)
before it reaches the plan's last shape has its true crossing along the shape it is on: the
share of runs that end on another shape is printed (those, and runs whose adopted schedule
ends elsewhere), since a schedule that leaves its last switch later has more of them.
Run: .venv/bin/python bench/bench_online.py [RUNS] [WORKERS] [PRESET ...]
(10 to 25 minutes on one core at 200 runs, by load).
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import numpy as np

from laws.presets import load_preset
from laws.search import plan
from laws.search.problem import build_problem
from laws.search.request import PlanRequest
from laws.search.uncertainty import SampleLaws, sample_optima
from sim import SimConfig, simulate
from sim.cluster import Job, run_replication
from sim.online import Online
from sim.policies import PlanningContext, planned
from sim.posterior import Prior, sure_of, widened
from sim.setup import make_setup
from sim.truth import TruthDraw

PRESETS = {"vit-patch-fmnist": 0.368752708271967, "gemstones-lm": 2.9}
NOISE, SEED, MOVE, BOOT = 0.03, 0, 0.30, 2000
WIDENINGS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)


def first_switch_compute(problem, draws) -> np.ndarray:
    """Per sample: the compute at which its optimal route leaves its first shape."""
    routes = sample_optima(problem, draws)[1]
    out = np.full(draws.count, np.nan)
    for k, route in enumerate(routes):
        legs = [leg for leg in route.legs if leg[2] > leg[1]]
        if len(legs) > 1:
            shape, _, level = legs[0]
            out[k] = draws.compute(shape, problem.grid[[level]])[k, 0]
    return out


def calibrated_widening(laws, request) -> tuple[float, float]:
    """The widening whose samples' optimal first switch lies a median ``MOVE`` from the
    point plan's (in compute), and that median."""
    problem = build_problem(laws, replace(request, levels=400))
    point = plan(laws, request).optimal.schedule[0].compute
    moves = {}
    for factor in WIDENINGS:
        switch = first_switch_compute(problem, SampleLaws(widened(laws, factor)))
        moves[factor] = float(np.nanmedian(np.abs(switch / point - 1.0)))
    factor = min(moves, key=lambda f: abs(moves[f] - MOVE))
    return factor, moves[factor]


def crossings(results, policy: str) -> dict[int, float]:
    return {r.replication: r.true_compute_to_target for r in results.runs_of(policy)
            if r.reached and r.true_compute_to_target is not None}


def oracle(laws, request, config, setup, replications) -> dict[int, float]:
    """Per replication: the plan made on its true laws, followed on them (same noise)."""
    out = {}
    base = replace(config, truth_draw="point", eval_every=setup.eval_every,
                   max_compute=setup.max_compute, trajectories=False)
    start = plan(laws, request).start_loss
    for r in replications:
        truth = setup.for_replication(r, SEED).truth
        asked = replace(request.for_other_laws(truth), start_loss=start)
        try:
            policy = planned(plan(truth, asked), truth)
        except Exception:  # the truth cannot reach the target: no oracle
            continue
        own = make_setup(truth, None, asked, base)
        record = run_replication(own, [Job(policy, SEED, 1)], r, None)[0]
        if record.reached and record.true_compute_to_target is not None:
            out[r] = record.true_compute_to_target
    return out


def online_with_prior(laws, request, setup, replications, prior_of) -> dict[int, float]:
    """Per replication: the online policy whose prior is ``prior_of(truth)`` (same noise)."""
    context = PlanningContext(laws, request)
    out = {}
    for r in replications:
        policy = Online(context, prior=prior_of(setup.for_replication(r, SEED).truth))
        record = run_replication(setup, [Job(policy, SEED, 1)], r, None)[0]
        if record.reached and record.true_compute_to_target is not None:
            out[r] = record.true_compute_to_target
    return out


def interval(statistic, columns: list[np.ndarray]) -> tuple[float, float, float]:
    """``statistic`` of the paired columns and its 90% bootstrap interval over replications."""
    picks = np.random.default_rng(0).integers(columns[0].size, size=(BOOT, columns[0].size))
    values = statistic(*(column[picks] for column in columns))
    low, high = np.quantile(values, [0.05, 0.95])
    return float(statistic(*(column[None, :] for column in columns))[0]), low, high


def saving(policy: np.ndarray, static: np.ndarray) -> np.ndarray:
    """1 - mean compute / static's mean compute, per row of replications."""
    return 1.0 - policy.mean(axis=-1) / static.mean(axis=-1)


def shown(figures: tuple[float, float, float], scale: float = 100.0, unit: str = "pp") -> str:
    value, low, high = (scale * x for x in figures)
    return f"{value:+.2f} {unit} [{low:+.2f}, {high:+.2f}]"


def scenario(name, laws, request, draw, runs, workers) -> None:
    config = SimConfig(noise=NOISE, truth_draw=draw, trajectories=False)
    started = time.perf_counter()
    results = simulate(laws, request, ["planned", "online", "static"], config, runs=runs,
                       seed=SEED, workers=workers)
    setup = make_setup(laws, None, request, config)
    c = {p: crossings(results, p) for p in results.policies}
    static = next(p for p in results.policies if p.startswith("static"))
    both = sorted(set(c["planned"]) & set(c["online"]) & set(c[static]))
    p, o, s = (np.array([c[k][r] for r in both]) for k in ("planned", "online", static))
    switches = {k: np.mean([r.switches for r in results.runs_of(k)]) for k in ("planned", "online")}
    tempered = np.mean([any(k == "posterior" and "tau=1 " not in d for _, k, d in r.events)
                        for r in results.runs_of("online")])
    last = plan(laws, request).optimal.schedule[-1].shape
    early = {k: np.mean([r.events[-1][2] != last for r in results.runs_of(k) if r.reached])
             for k in ("planned", "online")}
    print(f"  truth={draw}: {len(both)} of {runs} replications reached by all three, "
          f"{time.perf_counter() - started:.0f} s; switches on average: planned "
          f"{switches['planned']:.2f}, online {switches['online']:.2f}; "
          f"{100 * tempered:.0f}% of its runs had a tempered update")
    print(f"    ended on another shape than the plan's last ({last}; the true crossing then "
          f"follows the shape ended on): planned {early['planned']:.0%}, "
          f"online {early['online']:.0%}")
    print(f"    saving at the true crossing vs static: planned {shown(interval(saving, [p, s]))}"
          f", online {shown(interval(saving, [o, s]))}")
    print(f"    online - planned: "
          f"{shown(interval(lambda a, b, z: saving(a, z) - saving(b, z), [o, p, s]))}")
    truth_draw = TruthDraw.parse(draw)
    if truth_draw.kind == "widened":
        best = oracle(laws, request, config, setup, both)
        # Each run's true laws as its prior: what re-planning from the first update can gain
        # where the posterior is right. The generator itself (the law file's samples widened
        # F-fold, each run's truth one of them) as the prior: the best-informed prior a run
        # could honestly hold, so what no posterior of its own evaluations can beat by much.
        sure = online_with_prior(laws, request, setup, both,
                                 lambda truth: Prior(sure_of(laws, truth)))
        generator = Prior(widened(laws, truth_draw.factor))
        exact = online_with_prior(laws, request, setup, both, lambda truth: generator)
        kept = [i for i, r in enumerate(both) if r in best and r in sure and r in exact]
        b, t, g = (np.array([runs[both[i]] for i in kept]) for runs in (best, sure, exact))
        p, o, s = p[kept], o[kept], s[kept]

        def recovered(a, z, y):
            return (a.mean(-1) - z.mean(-1)) / (a.mean(-1) - y.mean(-1))

        print(f"    oracle (plan on each run's true laws), {len(kept)} runs: saving "
              f"{shown(interval(saving, [b, s]))}; gap planned - oracle "
              f"{p.mean() - b.mean():.4g} FLOPs; online recovers "
              f"{shown(interval(recovered, [p, o, b]), unit='%')} of it")
        print(f"    the same policy with each run's true laws as its prior recovers "
              f"{shown(interval(recovered, [p, t, b]), unit='%')}; with the truths' generator "
              f"(samples widened {truth_draw.factor:g}-fold) as its prior "
              f"{shown(interval(recovered, [p, g, b]), unit='%')}")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    for preset in sys.argv[3:] or PRESETS:
        target = PRESETS[preset]
        laws = load_preset(preset)
        request = PlanRequest.for_laws(laws, target)
        factor, move = calibrated_widening(laws, request)
        print(f"{preset} (target {target:g}, {NOISE:.0%} noise, {runs} runs per policy); "
              f"widened:{factor:g} moves the optimal first switch a median {move:.0%}")
        for draw in ("point", "samples", f"widened:{factor:g}"):
            scenario(preset, laws, request, draw, runs, workers)


if __name__ == "__main__":
    main()
