"""Built-in law sets, shipped as law files beside this module.

>>> {"demo", "gemstones-lm", "vit-patch-fmnist"} <= set(preset_names())  # the committed ones
True
"""

from __future__ import annotations

from pathlib import Path

from laws.errors import InputError
from laws.io.lawfile import read_law_file
from laws.lawset import LawSet

PRESET_DIR = Path(__file__).parent


def preset_names() -> list[str]:
    """Names of the built-in law sets, sorted."""
    return sorted(path.stem for path in PRESET_DIR.glob("*.json"))


def preset_path(name: str) -> Path:
    """The law file of preset ``name``; an ``InputError`` lists the presets otherwise."""
    path = PRESET_DIR / f"{name}.json"
    if not path.is_file():
        raise InputError(f"unknown preset {name!r}; available: {', '.join(preset_names())}")
    return path


def load_preset(name: str) -> LawSet:
    """The built-in law set called ``name``."""
    return read_law_file(preset_path(name))
