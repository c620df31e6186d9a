"""Where Monte Carlo batches run: one ``concurrent.futures.Executor`` interface over a local
process pool (the default), a Dask cluster or Ray.

    with make_executor("dask", workers=4) as executor:
        records = list(executor.map(run_batch, batches))

``local`` with one worker runs in this process (no start-up, no pickling); with more, a
``ProcessPoolExecutor``. ``dask`` starts a ``distributed.LocalCluster`` of ``workers``
single-threaded worker processes (``pip install 'shapeshift[dask]'``); ``ray`` starts Ray on this
machine with ``workers`` CPUs (``pip install 'shapeshift[ray]'``). To use a cluster of your
own, pass any executor to ``simulate(..., executor=...)``, e.g. a Dask client's
``client.get_executor()``. ``map`` yields results in the order of its inputs, which is what
makes results independent of the executor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import Any

from laws.errors import InputError

EXECUTORS = ("local", "dask", "ray")


def make_executor(name: str = "local", workers: int = 1) -> Executor:
    """An executor named ``name`` (one of ``EXECUTORS``) with ``workers`` worker processes; the
    caller shuts it down (or uses it as a context manager). A missing optional extra raises
    ``InputError``."""
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if name == "local":
        from concurrent.futures import ProcessPoolExecutor  # loads multiprocessing

        return InProcessExecutor() if workers == 1 else ProcessPoolExecutor(workers)
    if name == "dask":
        return DaskExecutor(workers)
    if name == "ray":
        return RayExecutor(workers)
    raise InputError(f"--executor {name!r}: use one of {', '.join(EXECUTORS)}")


def _import_extra(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise InputError(f"--executor {extra} needs {err.name}: pip install "
                         f"'shapeshift[{extra}]'") from None


class InProcessExecutor(Executor):
    """Runs each call in this process when its result is asked for: ``map`` is lazy, like the
    built-in ``map``, so progress can be reported batch by batch."""

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # the caller sees it from result(), as with any executor
            future.set_exception(err)
        return future

    def map(self, fn: Callable, *iterables: Iterable, timeout: float | None = None,
            chunksize: int = 1) -> Iterator:
        return map(fn, *iterables)


class DaskExecutor(Executor):
    """A ``distributed.Client`` on a ``LocalCluster`` of single-threaded worker processes."""

    def __init__(self, workers: int) -> None:
        distributed = _import_extra("distributed", "dask")
        self._cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=logging.ERROR)
        self._client = distributed.Client(self._cluster)
        # pure=False: every call is a task of its own, none is deduplicated by its arguments'
        # hash (hashing a run setup costs more than shipping it).
        self._executor = self._client.get_executor(pure=False)

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        return self._executor.submit(fn, *args, **kwargs)

    def map(self, fn: Callable, *iterables: Iterable, timeout: float | None = None,
            chunksize: int = 1) -> Iterator:
        return self._executor.map(fn, *iterables, timeout=timeout)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._executor.shutdown(wait=wait and not cancel_futures)
        self._client.close()
        self._cluster.close()


class RayExecutor(Executor):
    """Ray on this machine with ``workers`` CPUs (or the Ray this process is already connected
    to, which is left running); each call is a Ray task of one CPU."""

    def __init__(self, workers: int) -> None:
        self._ray = _import_extra("ray", "ray")
        self._started = not self._ray.is_initialized()
        if self._started:
            self._ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                           configure_logging=False)
        self._remote: dict[Callable, Any] = {}

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        if fn not in self._remote:  # registered with Ray once per function
            self._remote[fn] = self._ray.remote(num_cpus=1)(fn)
        return self._remote[fn].remote(*args, **kwargs).future()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._started:
            self._ray.shutdown()
