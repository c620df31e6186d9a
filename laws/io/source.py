"""Where a law set comes from (a law file or a built-in preset), its identity (the digest of its
canonical JSON) and the record of it that outputs keep.

>>> source = LawSource.named(None, "demo")
>>> source.load().name, source.record(source.load())["source"]
('demo', 'preset demo')
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laws.errors import InputError
from laws.io.atomic import file_sha256
from laws.io.lawfile import law_set_to_dict, read_law_file
from laws.lawset import LawSet


@dataclass(frozen=True)
class LawSource:
    """A law file (``path``) or a preset (``preset``, whose file is ``path``)."""

    path: Path
    preset: str | None = None

    @classmethod
    def named(cls, laws_file: str | None, preset: str | None) -> LawSource:
        """The source a command line names: a file or a preset, exactly one of them."""
        from laws.presets import preset_path

        if (laws_file is None) == (preset is None):
            raise InputError("give a law file or --preset NAME (exactly one of them)")
        if preset is not None:
            return cls(preset_path(preset), preset)
        return cls(Path(laws_file))

    def load(self) -> LawSet:
        return read_law_file(self.path)

    def record(self, laws: LawSet) -> dict[str, Any]:
        """Name, origin, file hash and canonical digest of ``laws``, loaded from here."""
        origin = f"preset {self.preset}" if self.preset else f"file {self.path}"
        return law_set_record(laws, origin, file_sha256(self.path))


def law_set_record(laws: LawSet, origin: str = "in memory",
                   sha256: str | None = None) -> dict[str, Any]:
    """The record outputs keep of ``laws``: name, origin, the hash of the file it was read
    from (None for a law set made in memory), canonical digest and provenance."""
    return {"name": laws.name, "source": origin, "sha256": sha256,
            "digest": law_set_digest(laws), "provenance": laws.provenance.get("source")}


def law_set_digest(laws: LawSet) -> str:
    """SHA-256 of the law set's canonical JSON: a plan names the exact laws it was made for."""
    canonical = json.dumps(law_set_to_dict(laws), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
