"""A cluster of G accelerators shared by several runs, and sweep files that list the runs.

The accelerators are a ``simpy.Container`` of G units (a ``Resource`` hands out one unit per
request; a run needs n at once, all or nothing); requests are served first come, first served,
so a large request at the head of the queue holds back smaller ones behind it. Without a cluster
size every run gets its accelerators at once.

A sweep file (JSON) lists the runs of one replication:

    {"runs": [{"policy": "planned", "seed": 1, "accelerators": 4},
              {"policy": "static", "shape": "p16", "accelerators": 2},
              {"policy": "planned", "plan": "other-plan.json"}]}

``seed`` defaults to the simulation's seed, ``accelerators`` to the config's; ``shape`` is short
for ``static:SHAPE``; ``plan`` names the plan file the job's ``planned`` policy follows.
"""

from __future__ import annotations

import reprlib
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from laws.errors import InputError
from laws.io.jsonfile import read_json_object
from sim.policies import Policy
from sim.results import RunRecord
from sim.run import TrainingRun
from sim.setup import RunSetup


@dataclass(frozen=True)
class Job:
    """One run of a replication: its policy, seed and accelerators."""

    policy: Policy
    seed: int
    accelerators: int


@dataclass(frozen=True)
class SweepEntry:
    """One line of a sweep file, before its policy is built."""

    policy: str
    seed: int | None = None
    accelerators: int | None = None
    plan: str | None = None


def read_sweep(path: str) -> list[SweepEntry]:
    """The entries of a sweep file; an ``InputError`` names the file, entry and field."""
    data = read_json_object(path, "sweep")
    if not isinstance(data.get("runs"), list) or not data["runs"]:
        raise InputError(f"{path}: a sweep file is an object with a non-empty list \"runs\"")
    entries = []
    for i, item in enumerate(data["runs"]):
        where = f"{path}: runs[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("policy"), str):
            raise InputError(f"{where}: needs a \"policy\" string")
        unknown = set(item) - {"policy", "shape", "seed", "accelerators", "plan"}
        if unknown:
            raise InputError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        for key in ("shape", "plan"):
            if key in item and not isinstance(item[key], str):
                raise InputError(f"{where}.{key}: expected a string, got "
                                 f"{reprlib.repr(item[key])}")
        policy = item["policy"]
        if "shape" in item:
            policy = f"{policy}:{item['shape']}"
        for key, minimum in (("seed", 0), ("accelerators", 1)):
            if key in item and (not isinstance(item[key], int) or isinstance(item[key], bool)):
                raise InputError(f"{where}.{key}: expected an integer, got {item[key]!r}")
            if item.get(key, minimum) < minimum:
                raise InputError(f"{where}.{key}: must be at least {minimum}")
        entries.append(SweepEntry(policy, item.get("seed"), item.get("accelerators"),
                                  item.get("plan")))
    return entries


def check_capacity(jobs: list[Job], gpus: int | None) -> None:
    """Every job must fit on the cluster, or it would wait forever."""
    for i, job in enumerate(jobs):
        if gpus is not None and job.accelerators > gpus:
            raise InputError(f"run {i} ({job.policy.name}) asks for {job.accelerators} "
                             f"accelerators but the cluster has only {gpus} (--gpus)")


def run_replication(setup: RunSetup, jobs: list[Job], replication: int,
                    gpus: int | None) -> list[RunRecord]:
    """Simulate every job of one replication on one cluster; records in job order.

    Run j of replication r draws from ``SeedSequence(seed_j, spawn_key=(r,))``: runs with the
    same seed share their noise and failure streams across policies (common random numbers),
    and all follow the replication's truth (``RunSetup.for_replication``).
    """
    env = simpy.Environment()
    setup = setup.for_replication(replication, jobs[0].seed)
    runs = [TrainingRun(env, setup, job.policy, job.accelerators,
                        np.random.SeedSequence(job.seed, spawn_key=(replication,)),
                        {"policy": job.policy.name, "replication": replication, "job": index,
                         "seed": job.seed})
            for index, job in enumerate(jobs)]
    if gpus is None:
        processes = [env.process(run.process()) for run in runs]
    else:
        pool = simpy.Container(env, capacity=gpus, init=gpus)
        processes = [env.process(_on_cluster(env, pool, run, job.accelerators))
                     for run, job in zip(runs, jobs, strict=True)]
    env.run()
    return [process.value for process in processes]


def _on_cluster(env: simpy.Environment, pool: simpy.Container, run: TrainingRun,
                accelerators: int) -> Generator[simpy.Event, Any, RunRecord]:
    """A run that waits for its accelerators, all at once, and hands them back at its end."""
    yield pool.get(accelerators)
    record = yield env.process(run.process(submitted=0.0))
    yield pool.put(accelerators)
    return record
