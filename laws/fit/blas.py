"""Run the optimiser's tiny linear algebra on one BLAS thread.

scipy's L-BFGS-B calls BLAS on matrices of a few rows; on a busy machine, waking a BLAS
thread pool for each call costs milliseconds, ten times the work itself.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager

from threadpoolctl import ThreadpoolController


@functools.cache
def _controller() -> ThreadpoolController:
    # Inspecting the loaded libraries takes milliseconds: do it once per process.
    return ThreadpoolController()


def one_blas_thread() -> AbstractContextManager:
    """Within the block, the BLAS libraries loaded in this process use one thread."""
    return _controller().limit(limits=1, user_api="blas")
