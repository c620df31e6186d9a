"""Run the optimiser's tiny linear algebra on one BLAS thread.

scipy's L-BFGS-B calls OpenBLAS on matrices of a few rows; on a busy machine, waking
OpenBLAS's thread pool for each call costs milliseconds, ten times the work itself. This
sets the OpenBLAS libraries loaded in this process to one thread while a fit runs and puts
the old count back afterwards. Where the libraries cannot be found (not Linux, another BLAS)
it does nothing.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Iterator
from contextlib import contextmanager

_SUFFIXES = ("", "64_", "_")  # symbol suffixes of the 32- and 64-bit integer builds


@functools.cache
def _openblas_controls() -> tuple[tuple[object, object], ...]:
    """(get, set) thread-count functions of every OpenBLAS library loaded so far."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps
                            if "openblas" in line.lower() and ".so" in line})
    except OSError:
        return ()
    controls = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            names = [(f"{prefix}_get_num_threads{s}", f"{prefix}_set_num_threads{s}")
                     for s in _SUFFIXES]
            found = [(getattr(lib, g), getattr(lib, s)) for g, s in names
                     if hasattr(lib, g) and hasattr(lib, s)]
            if found:
                controls.append(found[0])
                break
    return tuple(controls)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Within the block, loaded OpenBLAS libraries use one thread."""
    controls = _openblas_controls()
    before = [get() for get, _ in controls]
    for _, set_threads in controls:
        set_threads(1)
    try:
        yield
    finally:
        for (_, set_threads), count in zip(controls, before, strict=True):
            set_threads(count)
