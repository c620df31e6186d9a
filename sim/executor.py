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

A local pool's workers belong to the command: they ignore Ctrl-C (the command, which gets it
too, stops them; a worker's own ``KeyboardInterrupt`` would print a traceback and break the
pool), and each watches its parent and exits when the parent is gone, even killed with
SIGKILL. ``abort`` ends an executor's work at once (Ctrl-C, SIGTERM, an error).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, InvalidStateError, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing.context import BaseContext
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
        return InProcessExecutor() if workers == 1 else LocalPool(workers)
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


PARENT_POLL_S = 0.2  # how soon a worker notices that its parent is gone
_STOPPING = {signal.SIGINT, signal.SIGTERM}


class LocalPool(ProcessPoolExecutor):
    """A process pool whose workers ignore Ctrl-C and end with their parent."""

    def __init__(self, workers: int, mp_context: BaseContext | None = None) -> None:
        super().__init__(workers, mp_context=mp_context, initializer=_start_worker,
                         initargs=(os.getpid(),))

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        # A worker forks here: blocked, a signal cannot reach it before it set SIGINT aside.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
        try:
            return super().submit(fn, *args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def terminate(self) -> None:
        """Stop every worker now, its batch unfinished."""
        for process in list((self._processes or {}).values()):
            process.terminate()


def _start_worker(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the command's handler, forked along
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPPING)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    """Exit this worker once ``parent`` is no longer its parent (it died: the worker was given
    to another process)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def abort(executor: Executor) -> None:
    """End ``executor``'s work now: a local pool's workers are stopped mid-batch, other
    executors drop the calls not yet started."""
    if not isinstance(executor, LocalPool):
        executor.shutdown(wait=False, cancel_futures=True)
        return
    with _cancelled_futures_left_alone():
        executor.terminate()
        executor.shutdown(wait=True, cancel_futures=True)  # joins the pool's manager thread


@contextmanager
def _cancelled_futures_left_alone() -> Iterator[None]:
    """Stopped workers make the pool's manager thread fail every pending future; one that
    ``Executor.map`` cancelled on the interrupt raises ``InvalidStateError`` there, printed as
    a thread traceback (CPython gh-107219, ignored there from Python 3.12 on). Leave exactly
    that one unprinted while the pool is aborted."""
    report = threading.excepthook

    def quiet(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not InvalidStateError:
            report(args)

    threading.excepthook = quiet
    try:
        yield
    finally:
        threading.excepthook = report


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
