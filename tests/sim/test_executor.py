"""Monte Carlo through the executors: a real Dask LocalCluster (and Ray, where its extra is
installed) give the same bytes as the local pool and as one process, for any number of
workers; the command writes identical files; an executor of the caller's is used as given."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from laws.errors import InputError
from sim import FaultModel, SimConfig, simulate
from sim.executor import make_executor
from tests.components import require_module
from tests.sim.test_montecarlo import as_bytes

CONFIG = SimConfig(noise=0.02, eval_seconds=30.0,
                   faults=FaultModel(mtbf_hours=10.0, repair_hours=0.5, checkpoint_seconds=60.0))
POLICIES = ["planned", "static", "greedy"]
FOUR = Path(__file__).parent / "data" / "four_shapes.json"


@pytest.fixture(scope="module")
def reference(four, four_plan, four_request):
    """One process, one batch after another: what every executor must reproduce."""
    return as_bytes(simulate(four, four_request, POLICIES, CONFIG, runs=9, seed=11, plan=four_plan))


FRAMEWORKS = {"dask": ("dask.distributed", "Dask"), "ray": ("ray", "Ray")}


def needs(executor: str) -> None:
    """The executor's cluster framework must be installed (the local one needs none)."""
    if executor in FRAMEWORKS:
        module, component = FRAMEWORKS[executor]
        require_module(module, component, f"pip install 'shapeshift[{executor}]'")


@pytest.mark.parametrize("executor, workers", [
    ("local", 2), ("dask", 1), ("dask", 2), ("ray", 2)])
def test_every_executor_gives_the_bytes_of_one_process(four, four_plan, four_request, reference,
                                                       executor, workers):
    needs(executor)
    done = []
    results = simulate(four, four_request, POLICIES, CONFIG, runs=9, seed=11, plan=four_plan,
                       workers=workers, executor=executor, progress=done.append)
    assert as_bytes(results) == reference
    assert done[-1] == 9 and done == sorted(done)  # batches come back in order


def test_an_executor_of_the_callers_is_used_and_left_open(four, four_plan, four_request,
                                                         reference):
    needs("dask")
    with make_executor("dask", workers=2) as executor:
        first = simulate(four, four_request, POLICIES, CONFIG, runs=9, seed=11, plan=four_plan,
                         workers=2, executor=executor)
        again = simulate(four, four_request, POLICIES, CONFIG, runs=9, seed=12, plan=four_plan,
                         workers=2, executor=executor)  # still open after the first
    assert as_bytes(first) == reference and as_bytes(again) != reference


def test_the_command_writes_the_same_files_with_dask(tmp_path):
    needs("dask")
    folders = {}
    for executor in ("local", "dask"):
        folders[executor] = tmp_path / executor
        result = CliRunner().invoke(main, [
            "simulate", str(FOUR), "--target", "1.45", "--policy", "planned,greedy",
            "--noise", "0.02", "--mtbf", "10", "--repair", "0.5", "--runs", "6", "--seed", "3",
            "--workers", "2", "--executor", executor, "-o", str(folders[executor])])
        assert result.exit_code == 0, result.output
    names = sorted(p.name for p in folders["local"].iterdir())
    assert names == ["results.json", "runs.csv", "trajectories.csv"]
    for name in names:
        assert (folders["dask"] / name).read_bytes() == (folders["local"] / name).read_bytes()


def test_unknown_executor_and_bad_workers_are_input_errors():
    with pytest.raises(InputError, match="--executor 'slurm'"):
        make_executor("slurm")
    with pytest.raises(InputError, match="--workers"):
        make_executor("local", 0)
    result = CliRunner().invoke(main, ["simulate", str(FOUR), "--target", "1.45",
                                       "--executor", "nope"])
    assert result.exit_code == 2 and "'nope' is not one of" in result.output


def test_an_aborted_pool_prints_no_traceback_for_a_future_map_cancelled(monkeypatch):
    """Python 3.11's pool manager thread raises InvalidStateError when it fails a future that
    ``Executor.map`` cancelled on Ctrl-C (CPython gh-107219); while a pool is aborted exactly
    that error stays unreported, and any other thread error is still reported."""
    import threading
    from concurrent.futures import InvalidStateError

    from sim.executor import _cancelled_futures_left_alone

    reported = []
    monkeypatch.setattr(threading, "excepthook", lambda args: reported.append(args.exc_value))

    def raising(error: Exception) -> None:
        def fail() -> None:
            raise error
        thread = threading.Thread(target=fail)
        thread.start()
        thread.join()

    with _cancelled_futures_left_alone():
        raising(InvalidStateError("CANCELLED"))
        raising(ValueError("a real failure"))
    raising(InvalidStateError("after the abort"))
    assert [str(error) for error in reported] == ["a real failure", "after the abort"]
