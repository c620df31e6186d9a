"""Importing timm where torchvision cannot be imported.

timm imports torchvision when it is imported: ``torchvision.ops.misc.FrozenBatchNorm2d`` for
its norm layers, and its data package's datasets and transforms. Its ViTs use none of them.
torchvision's wheels must match the torch build exactly: beside a CPU build of torch, PyPI's
torchvision fails with ``RuntimeError: operator torchvision::nms does not exist`` (its
extension links CUDA libraries of torch), and PyPI has no CPU torchvision.

``import_timm()`` imports torchvision when it works. Otherwise, while it imports timm, every
``torchvision`` module is a stand-in: any name in it is a placeholder class that can be a
default value or a base class at import time, and raises ``ImportError`` when called; once timm
is imported the stand-ins leave ``sys.modules``, so for every other package torchvision is
absent. So timm's models work, and any part of timm that really needs torchvision fails
loudly, not wrongly.
Install timm without its dependencies on such a machine (``pip install --no-deps timm``, as
the Makefile does).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any


class _Placeholder(type):
    """The type of a torchvision name that is not there."""

    def __getattr__(cls, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(name, (), {"__module__": cls.__module__})

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise ImportError(f"{cls.__module__}.{cls.__name__} needs a torchvision that matches "
                          "this torch build")


class _StandIn(types.ModuleType):
    def __getattr__(self, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        value = _Placeholder(name, (), {"__module__": self.__name__})
        setattr(self, name, value)
        return value


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers every ``torchvision`` import with a ``_StandIn`` package."""

    def find_spec(self, fullname: str, path: Any, target: Any = None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _StandIn(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []


def _drop_torchvision() -> None:
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]


def import_timm() -> types.ModuleType:
    """The ``timm`` module, imported with torchvision stand-ins where torchvision cannot load."""
    if "timm" in sys.modules:
        return sys.modules["timm"]
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):
        _drop_torchvision()  # a half-imported torchvision must not stay behind
        finder = _StandInFinder()
        sys.meta_path.insert(0, finder)
        try:
            import timm
        finally:
            # timm keeps the placeholders it imported; for everyone else torchvision is absent
            # again (transformers, for one, would take the stand-ins for the real thing).
            sys.meta_path.remove(finder)
            _drop_torchvision()
        return timm
    import timm

    return timm
