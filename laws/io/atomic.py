"""Outputs are written whole or not at all: to a temporary file beside the target, then renamed.

A temporary file or folder is named ``.NAME.HOST-PID.RANDOM.tmp`` after the writer that made it;
the next successful write of NAME removes those whose writer, on this host, is gone (a killed
run's leftovers), and leaves a live writer's alone.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import socket
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
    check_writable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_prefix(target), suffix=".tmp")
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
    remove_stale_temporaries(target)


def check_writable(path: str | os.PathLike) -> None:
    """Refuse, before any work, an output path that cannot be written: one below a regular
    file, or in a folder this process may not write in (its temporary file goes beside it).

    >>> check_writable("/dev/null/out.json")
    Traceback (most recent call last):
    ...
    laws.errors.InputError: /dev/null/out.json: /dev/null is not a folder
    """
    target = Path(path)
    folder = next(p for p in target.parents if p.exists() or p == p.parent)
    if not folder.is_dir():
        raise InputError(f"{target}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{target}: cannot write in the folder {folder} (permission denied)")


def remove_stale_temporaries(path: str | os.PathLike) -> None:
    """Remove the temporary files and folders that writers of ``path`` left when they were
    killed; a writer still running on this host keeps its own."""
    target = Path(path)
    ours = re.compile(rf"\.{re.escape(target.name)}\.(?:([^.]+-\d+)\.)?[a-z0-9_]+\.(?:tmp|old)")
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*"):
        match = ours.fullmatch(leftover.name)
        if match is None or _writer_alive(match.group(1)):
            continue
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _prefix(target: Path) -> str:
    return f".{target.name}.{socket.gethostname().replace('.', '_')}-{os.getpid()}."


def _writer_alive(writer: str | None) -> bool:
    """Whether the writer ``HOST-PID`` may still be writing: it is this process, or it runs
    on another host (which this one cannot see), or its process still exists here."""
    if writer is None:
        return False  # a name without its writer: left by an older version
    host, _, pid = writer.rpartition("-")
    if host != socket.gethostname().replace(".", "_"):
        return True
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


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
    build = Path(tempfile.mkdtemp(dir=target.parent, prefix=_prefix(target), suffix=".tmp"))
    old = build.with_name(build.name.removesuffix(".tmp") + ".old")
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
    remove_stale_temporaries(target)


def check_replaceable(folder: str | os.PathLike, names: Iterable[str]) -> None:
    """Refuse, before any work, an output folder that holds anything but the files ``names``
    (an earlier output of the same command): replacing it must not delete a user's files."""
    target = Path(folder)
    check_writable(target)
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
