"""The one way a test says it needs a real component (Slurm, Ray, Dask, Lightning, Hugging
Face transformers, timm, chromium, the Fashion-MNIST package): skipped with the reason on a
machine without it, but failed, naming it, under CI (the variable ``CI`` set; ``.ci/run`` sets
it), where ``make test`` and ``.ci/run`` install every one, so that a test of a real component
that cannot run is never a quiet pass."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest


def require(component: str, reason: str) -> NoReturn:
    """``component`` is unavailable for ``reason``: skip (also a whole module, when called at
    import), or under CI fail with both."""
    message = f"{component} is unavailable: {reason}"
    if os.environ.get("CI"):
        pytest.fail(f"under CI every real component must run; {message}", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require_module(name: str, component: str, hint: str) -> ModuleType:
    """The module ``name`` imported, or ``require(component, ...)`` with the import error and
    ``hint`` (how to install it)."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        require(component, f"{err} ({hint})")
