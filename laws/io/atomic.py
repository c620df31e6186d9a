"""Outputs are written whole or not at all: to a temporary file beside the target, then renamed."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from laws.errors import InputError


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file private (0600); give it the permissions open() would.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, recorded in outputs so that they name their inputs."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_folder_atomic(folder: str | os.PathLike, files: Mapping[str, str | bytes]) -> None:
    """Write ``files`` (relative path -> text or bytes) as the whole content of ``folder``:
    built in a temporary folder beside it, then swapped in, so that a reader never sees a
    folder that mixes two runs, and a killed writer leaves the old folder as it was."""
    target = Path(folder)
    check_replaceable(target, files)
    target.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    old = build.with_name(build.name.replace(".tmp", ".old"))
    try:
        os.chmod(build, 0o777 & ~_umask())
        for name, content in files.items():
            write_bytes_atomic(build / name, content.encode() if isinstance(content, str)
                               else content)
        if target.exists():
            os.replace(target, old)
        os.replace(build, target)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def check_replaceable(folder: str | os.PathLike, names: Iterable[str]) -> None:
    """Refuse, before any work, an output folder that holds anything but the files ``names``
    (an earlier output of the same command): replacing it must not delete a user's files."""
    target = Path(folder)
    if not target.exists():
        return
    if not target.is_dir():
        raise InputError(f"{target}: exists and is not a folder")
    ours = {Path(name) for name in names}
    ours |= {parent for name in ours for parent in name.parents}
    foreign = sorted(str(p.relative_to(target)) for p in target.rglob("*")
                     if p.relative_to(target) not in ours)
    if foreign:
        raise InputError(f"{target}: the output folder holds other files ({foreign[0]}, ...); "
                         "give a new or empty folder")
