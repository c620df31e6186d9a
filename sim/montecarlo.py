"""Monte Carlo: R replications of every policy on the same laws and seeds, in worker processes.

Replication r of a run with seed s draws from ``SeedSequence(s, spawn_key=(r,))`` whatever
process simulates it, and records are put back in (replication, job) order, so the results are
the same, byte for byte, for any number of workers. Workers get batches of replications, so
that start-up and pickling costs are paid per batch, not per run.

>>> from laws.forms import PowerLaw
>>> from laws.lawset import LawSet, Shape
>>> from laws.search.request import PlanRequest
>>> laws = LawSet("t", (Shape("a", {}, PowerLaw(4.0, 0.5, 1.0), throughput=1.0),))
>>> request = PlanRequest.for_laws(laws, 2.0)
>>> results = simulate(laws, request, ["static:a"], SimConfig(confirm=1), runs=2, seed=7)
>>> round(results.summary()["static:a"]["compute_to_target"]["mean"], 6)  # C_a(2) = 16
16.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from laws.errors import InputError
from laws.lawset import LawSet
from laws.search.planfile import Plan
from laws.search.request import PlanRequest
from sim.cluster import Job, SweepEntry, check_capacity, run_replication
from sim.config import DEFAULT_PEAK_FLOPS, DEFAULT_UTILISATION, SimConfig, best_static_compute
from sim.policies import PlanningContext, Policy
from sim.policy_spec import make_policy
from sim.results import RunRecord, SimResults
from sim.setup import RunSetup, make_setup

BATCHES_PER_WORKER = 4


def simulate(laws: LawSet, request: PlanRequest, policies: Sequence[str | Policy] = ("planned",),
             config: SimConfig | None = None, *, runs: int = 100, seed: int = 0,
             workers: int = 1, truth: LawSet | None = None, plan: Plan | None = None,
             sweep: Sequence[SweepEntry] | None = None, plans: dict[str, Plan] | None = None,
             progress: Callable[[int], None] | None = None,
             executor: str | Executor = "local") -> SimResults:
    """Simulate ``runs`` replications of each policy (or of each ``sweep`` entry).

    ``laws`` are what policies plan with, ``truth`` (default: ``laws``) what the runs follow;
    ``request`` is the search the plans answer (its target is the runs' target, its switch
    options what switches cost); ``plan`` is a plan object made for ``request`` (the search
    runs when a policy needs one and none is given); ``plans`` maps the plan paths named in
    ``sweep`` to their plan objects; ``progress`` is called with the number of replications
    finished so far. ``executor`` runs the batches of replications: a name from
    ``sim.executor.EXECUTORS`` (started here with ``workers`` workers, and shut down), or an
    executor of the caller's (``workers`` then only sets the batch size); the results are the
    same whatever it is.
    """
    config = config or SimConfig()
    if runs < 1:
        raise InputError(f"--runs must be at least 1, got {runs}")
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    target = request.target
    if plan is not None:
        plan.check_request(request)
    setup = make_setup(laws, truth, request, config)
    context = PlanningContext(laws, request, plan, budget=config.max_compute)
    jobs = _jobs(policies, sweep, plans or {}, context, config, seed)
    check_capacity(jobs, config.gpus)
    records = _run_all(setup, jobs, runs, workers, executor, progress)
    names = list(dict.fromkeys(job.policy.name for job in jobs))
    return SimResults(target=target, policies=names, runs=records,
                      settings=_settings(laws, setup, runs, seed),
                      baseline=_baseline(laws, target, names, records),
                      plan_saving=None if context.plan is None else context.plan.saving_vs_static,
                      plan_compute=None if context.plan is None else context.plan.optimal.compute)


def _jobs(policies: Sequence[str | Policy], sweep: Sequence[SweepEntry] | None,
          plans: dict[str, Plan], context: PlanningContext, config: SimConfig,
          seed: int) -> list[Job]:
    if sweep is None:
        built = [p if isinstance(p, Policy) else make_policy(p, context) for p in policies]
        if not built:
            raise InputError("give at least one policy")
        return [Job(policy, seed, config.accelerators) for policy in built]
    jobs = []
    for entry in sweep:
        job_context = context
        if entry.plan is not None:
            plans[entry.plan].check_request(context.request, entry.plan)
            job_context = PlanningContext(context.laws, context.request, plans[entry.plan],
                                          context.budget)
        jobs.append(Job(make_policy(entry.policy, job_context),
                        seed if entry.seed is None else entry.seed,
                        entry.accelerators or config.accelerators))
    return jobs


def _run_batch(task: tuple[RunSetup, list[Job], range]) -> list[RunRecord]:
    setup, jobs, replications = task
    records: list[RunRecord] = []
    for replication in replications:
        records.extend(run_replication(setup, jobs, replication, setup.config.gpus))
    return records


def _run_all(setup: RunSetup, jobs: list[Job], runs: int, workers: int,
             executor: str | Executor,
             progress: Callable[[int], None] | None) -> list[RunRecord]:
    from sim.executor import abort, make_executor

    size = max(1, math.ceil(runs / (workers * BATCHES_PER_WORKER)))
    tasks = [(setup, jobs, range(start, min(start + size, runs)))
             for start in range(0, runs, size)]
    records: list[RunRecord] = []
    owned = isinstance(executor, str)
    pool = make_executor(executor, min(workers, len(tasks))) if owned else executor
    try:
        # map yields the batches in order, whichever worker finished first.
        for task, batch in zip(tasks, pool.map(_run_batch, tasks), strict=True):
            records.extend(batch)
            if progress:
                progress(task[2].stop)
    except BaseException:  # Ctrl-C, SIGTERM (laws.errors.Terminated), a batch's error
        if owned:
            abort(pool)
        raise
    if owned:
        pool.shutdown()
    return records


def _baseline(laws: LawSet, target: float, names: list[str],
              records: list[RunRecord]) -> dict[str, Any]:
    """The best static shape's compute, as observed and at the true crossing: simulated when
    it ran, else its closed form (where the two agree)."""
    shape, closed_form = best_static_compute(laws, target)
    reached = [r for r in records if r.policy == f"static:{shape}" and r.reached]
    if f"static:{shape}" in names and reached:
        true = [r.true_compute_to_target for r in reached]
        return {"shape": shape, "compute": sum(r.compute_to_target for r in reached) / len(reached),
                "true_compute": None if None in true else sum(true) / len(true),
                "source": "simulated"}
    return {"shape": shape, "compute": closed_form, "true_compute": closed_form,
            "source": "closed form (planning laws)"}


def _settings(laws: LawSet, setup: RunSetup, runs: int, seed: int) -> dict[str, Any]:
    return {
        "laws": laws.name,
        "truth": setup.truth.name,
        "runs": runs,
        "seed": seed,
        "eval_every": setup.eval_every,
        "max_compute": setup.max_compute,
        "throughput": setup.throughput,
        "hardware": _hardware(setup.truth, setup.config),
        "config": setup.config.to_dict(),
    }


def _hardware(truth: LawSet, config: SimConfig) -> dict[str, Any]:
    """Where the FLOP/s that turn compute into hours come from: ``source`` is ``law file``
    (every shape's measured throughput, ``note`` the file's provenance of them), ``given``
    (``SimConfig.hardware``) or ``assumed`` (``assumed`` names the shapes that had none and
    ran at the default peak x utilisation)."""
    if config.hardware is not None:
        return {"source": "given", "note": None, "assumed": []}
    assumed = [shape.name for shape in truth.shapes if not shape.throughput]
    if not assumed:
        return {"source": "law file", "note": truth.provenance.get("throughput"),
                "assumed": []}
    return {"source": "assumed", "note": f"{DEFAULT_PEAK_FLOPS:g} FLOP/s peak x "
                                         f"{DEFAULT_UTILISATION:g} utilisation",
            "assumed": assumed}
