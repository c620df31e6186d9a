"""Outputs are written whole or not at all: to a temporary file beside the target, then renamed.

A temporary file or folder is named ``.NAME.HOST-PID.RANDOM.tmp`` after the writer that made it;
the next successful write of NAME removes those whose writer, on this host, is gone (a killed
run's leftovers), and leaves a live writer's alone. A folder is replaced by exchanging it with
the new one in one rename (``renameat2(RENAME_EXCHANGE)``), so that its name always holds the
old content or the new; where the file system cannot exchange, the old folder is renamed to
``.NAME.HOST-PID.RANDOM.old`` first, and a writer killed between the two renames leaves that
``.old``, which the next writer of NAME renames back before anything else. Writers of one
folder take its lock (``laws.io.lock``) around the exchange.
"""

from __future__ import annotations

import ctypes
import errno
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
from laws.io.lock import holding

# mkstemp's and mkdtemp's random part, and the longest suffix a temporary name ends with.
_RANDOM, _SUFFIX = 8, ".tmp"


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    target = Path(path)
    check_writable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_prefix(target), suffix=_SUFFIX)
    try:
        # mkstemp creates the file private (0600); give it the permissions open() would.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:
            err.filename = str(target)  # a failed write() names no file: the message must
        raise
    remove_stale_temporaries(target)


def check_writable(path: str | os.PathLike) -> None:
    """Refuse, before any work, an output path that cannot be written: one below a regular
    file or a link that leads nowhere, one whose temporary name is too long, or one whose
    folder refuses the temporary file (permissions, a read-only or pseudo file system): where
    the folder exists, the real temporary name is created there and removed.

    >>> check_writable("/dev/null/out.json")
    Traceback (most recent call last):
    ...
    laws.errors.InputError: /dev/null/out.json: /dev/null is not a folder
    """
    target = Path(path)
    folder = _existing_ancestor(target)
    if not folder.is_dir():
        raise InputError(f"{target}: {folder} is not a folder")
    limit = _name_max(folder)
    longest = len(_prefix(target).encode()) + _RANDOM + len(_SUFFIX)
    if longest > limit:
        raise InputError(f"{target}: the name is too long for its temporary file "
                         f"({len(target.name.encode())} bytes; at most "
                         f"{len(target.name.encode()) - longest + limit} here)")
    for part in target.relative_to(folder).parts[:-1]:
        if len(part.encode()) > limit:
            raise InputError(f"{target}: the folder name {part[:20]}... is longer than "
                             f"{limit} bytes")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{target}: cannot write in the folder {folder} (permission denied)")
    # Where the folders below are still to be made, the probe's name only has to be new.
    probe = _prefix(target) if folder == target.parent else ".shapeshift-probe."
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=probe, suffix=_SUFFIX)
    except OSError as err:
        raise InputError(f"{target}: cannot write in the folder {folder} "
                         f"({err.strerror})") from None
    os.close(fd)
    os.unlink(name)


def check_not_input(output: str | os.PathLike,
                    inputs: Iterable[str | os.PathLike | None]) -> None:
    """Refuse an output that is one of the command's ``inputs`` (the same file, after links
    are resolved) or, as a folder replaced whole, holds one; ``None`` inputs are skipped.

    >>> check_not_input("runs/../in.csv", ["in.csv", None])
    Traceback (most recent call last):
    ...
    laws.errors.InputError: runs/../in.csv: is the input in.csv; writing it would replace \
the input: give another output
    """
    out = Path(os.path.realpath(output))  # realpath: a link loop is check_writable's to report
    for given in inputs:
        if given is None:
            continue
        source = Path(os.path.realpath(given))
        if source == out or out in source.parents or _same_file(source, out):
            what = "is" if source == out or _same_file(source, out) else "holds"
            raise InputError(f"{output}: {what} the input {given}; writing it would replace "
                             "the input: give another output")


def _same_file(first: Path, second: Path) -> bool:
    """Whether two existing paths are one file (hard links included)."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def _existing_ancestor(target: Path) -> Path:
    """The nearest of ``target``'s folders that exists (``target``'s own parent first); a
    link on the way that leads nowhere (missing, or a loop) is an ``InputError``."""
    for candidate in target.parents:
        try:
            os.stat(candidate)
        except FileNotFoundError:
            if os.path.islink(candidate):
                raise InputError(f"{target}: {candidate} is a link to nothing") from None
            continue
        except OSError as err:  # ELOOP, ENOTDIR, EACCES...
            if err.errno == errno.ENOTDIR:
                continue  # a file further up: reported as "not a folder" below
            raise InputError(f"{target}: {candidate}: {err.strerror}") from None
        return candidate
    return Path(target.anchor or ".")


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except OSError:
        return 255


def remove_stale_temporaries(path: str | os.PathLike) -> None:
    """Remove the temporary files and folders that writers of ``path`` left when they were
    killed; a writer still running on this host keeps its own."""
    for leftover in _stale(path):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _stale(path: str | os.PathLike) -> list[Path]:
    """The temporaries of ``path`` whose writer is gone."""
    target = Path(path)
    ours = re.compile(rf"\.{re.escape(target.name)}\.(?:([^.]+-\d+)\.)?[a-z0-9_]+\.(?:tmp|old)")
    return [leftover for leftover in target.parent.glob(f".{glob.escape(target.name)}.*")
            if (match := ours.fullmatch(leftover.name)) and not _writer_alive(match.group(1))]


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
    built in a temporary folder beside it, then exchanged with it, so that a reader never
    sees a folder that mixes two runs, and a writer killed at any instant leaves the old
    folder or the new one."""
    target = Path(folder)
    check_replaceable(target, files)
    with holding(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(dir=target.parent, prefix=_prefix(target),
                                      suffix=_SUFFIX))
        try:
            os.chmod(build, 0o777 & ~_umask())
            for name, content in files.items():
                try:
                    write_bytes_atomic(build / name, content.encode()
                                       if isinstance(content, str) else content)
                except OSError as err:
                    err.filename = str(target / name)  # the output's name, not the build's
                    raise
            _swap_in(build, target)
        finally:
            shutil.rmtree(build, ignore_errors=True)  # the old folder, after the exchange
        remove_stale_temporaries(target)


def _swap_in(build: Path, target: Path) -> None:
    """Put the folder ``build`` at ``target``; the old ``target`` (if any) ends at ``build``."""
    if not os.path.lexists(target):
        os.rename(build, target)
        return
    if _exchange(build, target):
        return
    old = build.with_name(build.name.removesuffix(_SUFFIX) + ".old")
    os.rename(target, old)
    os.rename(build, target)
    os.rename(old, build)


_RENAME_EXCHANGE, _AT_FDCWD = 2, -100
_libc = ctypes.CDLL(None, use_errno=True)


def _exchange(first: Path, second: Path) -> bool:
    """Exchange two paths in one step (Linux's renameat2); False where the C library or the
    file system cannot (the caller then renames twice)."""
    renameat2 = getattr(_libc, "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                 _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _recover_folder(target: Path) -> None:
    """Put back the old folder that a writer killed between its two renames left as
    ``.NAME.HOST-PID.RANDOM.old`` (the newest, if several), when ``target`` is missing."""
    if os.path.lexists(target):
        return
    left = [p for p in _stale(target) if p.name.endswith(".old") and p.is_dir()
            and not p.is_symlink()]
    if left:
        os.rename(max(left, key=lambda p: p.stat().st_mtime), target)


def check_replaceable(folder: str | os.PathLike, names: Iterable[str]) -> None:
    """Refuse, before any work, an output folder that holds anything but the files ``names``
    (an earlier output of the same command): replacing it must not delete a user's files.
    An old folder a killed writer left aside is put back first."""
    target = Path(folder)
    check_writable(target)
    if target.parent.is_dir():
        with holding(target):
            _recover_folder(target)
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
