"""A shared cluster: queueing in order, all-or-nothing requests, sweep files."""

from __future__ import annotations

import json

import pytest

from laws.errors import InputError
from laws.forms import PowerLaw
from laws.lawset import LawSet, Shape
from laws.search import PlanRequest
from sim import SimConfig, simulate
from sim.cluster import read_sweep

# Static b to loss 1.0 takes C_b(1) = 2/(1-0.5) = 4 FLOPs; at 1 FLOP/s per accelerator.
LAWS = LawSet("one", (Shape("b", {}, PowerLaw(2.0, 1.0, 0.5), throughput=1.0),))
DX = 1e-3


def sweep_file(tmp_path, runs) -> str:
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps({"runs": runs}))
    return str(path)


def test_runs_queue_first_come_first_served(tmp_path):
    # G = 2: jobs 0 and 1 start at once; job 2 needs 2 accelerators and waits for both; job 3
    # (1 accelerator) waits behind it although one is free earlier.
    runs = [{"policy": "static", "shape": "b", "accelerators": 1},
            {"policy": "static", "shape": "b", "accelerators": 1, "seed": 9},
            {"policy": "static", "shape": "b", "accelerators": 2},
            {"policy": "static", "shape": "b", "accelerators": 1}]
    request = PlanRequest.for_laws(LAWS, 1.0)
    results = simulate(LAWS, request, config=SimConfig(eval_every=DX, confirm=1, gpus=2), runs=1,
                       sweep=read_sweep(sweep_file(tmp_path, runs)))
    first, second, pair, last = results.runs
    alone = 4.0  # seconds on one accelerator
    assert first.queue_seconds == second.queue_seconds == 0
    assert first.time_to_target == pytest.approx(alone, abs=2 * DX)
    assert pair.queue_seconds == pytest.approx(alone, abs=4 * DX)
    assert pair.time_to_target == pytest.approx(alone + alone / 2, abs=6 * DX)
    assert pair.accelerator_hours == pytest.approx(2 * (alone / 2) / 3600, abs=1e-6)
    assert last.queue_seconds == pytest.approx(alone + alone / 2, abs=8 * DX)


def test_without_a_cluster_size_nobody_waits(tmp_path):
    runs = [{"policy": "static", "shape": "b", "accelerators": 3}] * 3
    request = PlanRequest.for_laws(LAWS, 1.0)
    results = simulate(LAWS, request, config=SimConfig(eval_every=DX), runs=2,
                       sweep=read_sweep(sweep_file(tmp_path, runs)))
    assert all(run.queue_seconds == 0 for run in results.runs)


def test_a_run_larger_than_the_cluster_is_refused(tmp_path):
    runs = [{"policy": "static", "shape": "b", "accelerators": 8}]
    with pytest.raises(InputError, match="asks for 8 accelerators but the cluster has only 4"):
        request = PlanRequest.for_laws(LAWS, 1.0)
        simulate(LAWS, request, config=SimConfig(gpus=4),
                 sweep=read_sweep(sweep_file(tmp_path, runs)))
    with pytest.raises(InputError, match="cluster has only 2"):
        SimConfig(gpus=2, accelerators=3)
    with pytest.raises(InputError, match="--gpus must be at least 1"):
        SimConfig(gpus=0)


@pytest.mark.parametrize("content, message", [
    ("[1, 2]", "a sweep file is a JSON object"),
    ('{"runs": []}', "non-empty list"),
    ('{"runs": [{"shape": "b"}]}', "runs\\[0\\]: needs a \"policy\""),
    ('{"runs": [{"policy": "static", "gpus": 2}]}', "unknown field"),
    ('{"runs": [{"policy": "static", "accelerators": 0}]}', "at least 1"),
    ('{"runs": [{"policy": "static", "seed": "x"}]}', "seed: expected an integer"),
    ("{", "not valid JSON"),
])
def test_bad_sweep_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "sweep.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_sweep(str(path))
