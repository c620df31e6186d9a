"""One writer per output: a lock file beside the output, ``.NAME.lock``, held with flock(2) by
the process that writes NAME and naming it (host and pid), so that a second writer is refused
before it does any work, with a line that says who holds the output.

The kernel releases a flock when its holder exits, however it ends (kill -9 included), so a
dead owner's lock is taken over by the next writer without a guess about whether a pid still
runs; the file, left behind by such an owner, is then rewritten with the new owner's name.
A released lock's file is removed while it is still held, and a writer that locked a file
that has since been removed tries again on the current one, so two writers never hold two
different files of the same name.

Who holds what: ``holding(path)`` for the span of a ``with`` block; ``claim(path)`` until
``release_claims()`` (the command line calls it when a command ends) or the process exits.
A claimed folder is named in the environment (``HELD_ENV``), so that the processes the claimant
starts to work in it (the loop's training workers, its Slurm jobs) do not take the lock
themselves.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from laws.errors import InputError

HELD_ENV = "SHAPESHIFT_HELD"


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of the output ``path``: beside it, as a folder replaced whole cannot
    hold its own lock."""
    target = Path(os.path.abspath(path))
    return target.with_name(f".{target.name}.lock")


def owner_text() -> str:
    """This process as a lock file names it."""
    return f"process {os.getpid()} on {socket.gethostname()}"


class OutputLock:
    """The flock on ``lock_path(path)``; ``acquire`` raises ``InputError`` while another
    process holds it."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.target = Path(path)
        self.path = lock_path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                os.close(fd)
                raise InputError(f"{self.target}: in use by {holder or 'another process'} "
                                 f"(lock {self.path.name}); wait for it to end or give "
                                 "another output") from None
            except BaseException:
                os.close(fd)
                raise
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder before us removed it after we opened it: lock the new one
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{owner_text()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # while still held: see the module's docstring
        os.close(self._fd)
        self._fd = None


def _same_file(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


_claims: dict[Path, OutputLock] = {}


def _key(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(path))


def _held_by_caller(key: Path) -> bool:
    """Whether this process, or the process that started it to work in ``key``, holds it."""
    return key in _claims or str(key) in os.environ.get(HELD_ENV, "").split(os.pathsep)


def claim(path: str | os.PathLike) -> None:
    """Hold the lock of ``path`` until ``release_claims`` or the end of the process; nothing
    when this process (or the one that started it) holds it already."""
    key = _key(path)
    if _held_by_caller(key):
        return
    lock = OutputLock(key)
    lock.acquire()
    _claims[key] = lock
    os.environ[HELD_ENV] = os.pathsep.join(
        filter(None, [os.environ.get(HELD_ENV), str(key)]))


def release_claims() -> None:
    """Release every claim this process holds (the end of a command)."""
    held = {str(key) for key in _claims}
    for lock in _claims.values():
        lock.release()
    _claims.clear()
    left = [p for p in os.environ.get(HELD_ENV, "").split(os.pathsep) if p and p not in held]
    if left:
        os.environ[HELD_ENV] = os.pathsep.join(left)
    else:
        os.environ.pop(HELD_ENV, None)


atexit.register(release_claims)


@contextlib.contextmanager
def holding(path: str | os.PathLike) -> Iterator[None]:
    """The lock of ``path`` for the block (nothing more when it is already claimed)."""
    key = _key(path)
    if _held_by_caller(key):
        yield
        return
    lock = OutputLock(key)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()
