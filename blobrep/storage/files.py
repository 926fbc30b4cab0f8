"""Files written outside any store: restored and deployed disks, the home's configuration.

They are all written the same way, so that none is ever seen half-written and none leaves
litter behind:

* a hidden temporary beside the target, ``.{name}.blobrep-{pid}.{start}.{random}``: the
  writer's pid and start time (``x`` where ``/proc`` cannot tell) say whose it is, so a later
  write of the same target removes the temporaries of writers that died (a killed deployment
  can leave gigabytes there) and leaves a live writer's alone; the random part keeps two
  writers of one process apart. The name is cut to fit the file system's 255 bytes;
* written, fsynced, renamed over the target (or linked, when an existing target must win),
  and the directory fsynced: the target is then whole and durable;
* on any failure the temporary is removed and the target is left as it was.

Every ``OSError`` becomes a :class:`StorageError` (:class:`StorageFullError` for no space or
no quota left) that names the target, not the temporary, and says the cause in words: "cannot
write /data/vm-3.img: no space left on the device".

Every call here blocks: callers run them on worker threads.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Self

from blobrep.core.holders import Liveness, ProcessIdentity
from blobrep.errors import StorageError, StorageFullError
from blobrep.storage.processes import holder_alive, this_process

#: The longest file name (bytes) that Linux file systems take.
NAME_MAX: Final = 255
_MARK: Final = ".blobrep-"
#: Room a temporary's name needs beyond the target's name: dot, mark, pid, start, random.
_SUFFIX_ROOM: Final = 1 + len(_MARK) + 10 + 1 + 20 + 1 + 12

_FULL: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
_CAUSES: Final = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "no space left: the disk quota is used up",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.EIO: "an I/O error (the device failed)",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.ENOENT: "its directory does not exist (any more)",
    errno.EISDIR: "it is a directory",
    errno.EFBIG: "the file is too large for the file system",
    errno.EMFILE: "too many files open in this process",
    errno.ENFILE: "too many files open in the system",
    errno.ELOOP: "too many levels of symbolic links",
    errno.ETXTBSY: "it is a program that is running",
    errno.EBUSY: "it is busy (a mount point?)",
    errno.ENOMEM: "out of memory",
    errno.ESTALE: "the network file system lost it (stale file handle)",
}


def cause(exc: OSError) -> str:
    """Why ``exc`` happened, in words a user acts on."""
    known = _CAUSES.get(exc.errno or 0)
    if known is not None:
        return known
    said = exc.strerror or type(exc).__name__
    return said[:1].lower() + said[1:]


def file_error(exc: OSError, path: Path, action: str = "write") -> StorageError:
    """The blobrep error for ``exc``, met while trying to ``action`` the file ``path``."""
    kind = StorageFullError if exc.errno in _FULL else StorageError
    return kind(f"cannot {action} {path}: {cause(exc)}")


@contextlib.contextmanager
def translate(path: Path, action: str = "write") -> Iterator[None]:
    """Raise :func:`file_error` for an ``OSError`` inside, from the ``OSError``."""
    try:
        yield
    except OSError as exc:
        raise file_error(exc, path, action) from exc


def _stem(target: Path) -> str:
    """The part of a temporary's name taken from ``target``'s, cut to leave room for the rest."""
    encoded = os.fsencode(target.name)
    return os.fsdecode(encoded[: NAME_MAX - _SUFFIX_ROOM])


def temporary_for(target: Path, me: ProcessIdentity) -> Path:
    """A fresh temporary name beside ``target`` for the writer ``me``."""
    started = "x" if me.started is None else str(me.started)
    return target.parent / f".{_stem(target)}{_MARK}{me.pid}.{started}.{secrets.token_hex(6)}"


def _temp_pattern(target: Path) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(_stem(target))}{re.escape(_MARK)}(\d+)\.(\d+|x)\.[0-9a-f]+")


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporaries of ``target`` whose writers died; return them.

    A temporary whose writer is alive, or cannot be judged, is left alone; so is anything
    that cannot be listed or removed (this is housekeeping, never a reason to fail).
    """
    pattern = _temp_pattern(target)
    me = this_process()
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            match = pattern.fullmatch(entry.name)
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            started = None if match[2] == "x" else int(match[2])
            holder = ProcessIdentity(me.host, me.boot_id, me.pid_namespace, int(match[1]), started)
            if holder_alive(holder) is Liveness.DEAD:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def sync_directory(directory: Path, target: Path) -> None:
    """fsync ``directory``, so that a rename or link in it survives a power cut.

    Raises:
        StorageError: naming ``target``, whose entry it is.
    """
    with translate(target):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass(slots=True)
class AtomicFile:
    """An open temporary file that becomes ``target`` on :meth:`finish`, or nothing on
    :meth:`abandon`. Use :meth:`create`."""

    target: Path
    temp: Path
    fd: int

    @classmethod
    def create(cls, target: Path, size: int = 0, *, mode: int = 0o644) -> Self:
        """Clear dead writers' temporaries of ``target``, then open a fresh temporary beside it,
        sized to ``size`` bytes (sparse: what is never written stays a hole), with permissions
        ``mode`` (less the umask) from its first byte.

        Raises:
            StorageError, StorageFullError: the temporary cannot be created or sized (naming
                ``target`` and the cause); nothing is left behind.
        """
        remove_stale_temporaries(target)
        temp = temporary_for(target, this_process())
        with translate(target):
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        made = cls(target, temp, fd)
        if size:
            try:
                with translate(target):
                    os.ftruncate(fd, size)
            except BaseException:
                made.abandon()
                raise
        return made

    def write_at(self, data: memoryview | bytes, position: int) -> None:
        """Write all of ``data`` at ``position``.

        Raises:
            StorageError, StorageFullError: naming the target and the cause.
        """
        view = memoryview(data)
        with translate(self.target):
            while view:
                written = os.pwrite(self.fd, view, position)
                view = view[written:]
                position += written

    def start_writeback(self, start: int, end: int) -> None:
        """Hand the finished range to the disk now rather than all at the final fsync."""
        with contextlib.suppress(OSError):  # advice only
            os.posix_fadvise(self.fd, start, end - start, os.POSIX_FADV_DONTNEED)

    def finish(self, *, replace: bool = True) -> bool:
        """fsync, put the temporary in place of the target, fsync the directory; True if the
        target is now this file.

        With ``replace=False`` an existing target wins (another writer made it first): the
        temporary is removed and False returned.

        Raises:
            StorageError, StorageFullError: naming the target and the cause. The temporary
                is still there: call :meth:`abandon`.
        """
        with translate(self.target):
            os.fsync(self.fd)
            fd, self.fd = self.fd, -1
            os.close(fd)
            if replace:
                os.replace(self.temp, self.target)
                placed = True
            else:
                try:
                    os.link(self.temp, self.target)
                    placed = True
                except FileExistsError:
                    placed = False
                os.unlink(self.temp)
        sync_directory(self.target.parent, self.target)
        return placed

    def abandon(self) -> None:
        """Close and remove the temporary; the target stays as it was. Never raises."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(OSError):
            self.temp.unlink(missing_ok=True)


def write_file(target: Path, data: bytes, *, replace: bool = True, mode: int | None = None) -> bool:
    """Write ``data`` as the file ``target``, whole or not at all; True if written.

    With ``replace=False`` an existing ``target`` is kept (and False returned), also when
    another process creates it at the same moment. ``mode`` (default 0o644, less the umask)
    holds from the first byte written, so a file of secrets is never readable by others.

    Raises:
        StorageError, StorageFullError: naming ``target`` and the cause; ``target`` is as it
            was and no temporary is left.
    """
    out = AtomicFile.create(target, mode=0o644 if mode is None else mode)
    try:
        out.write_at(data, 0)
        return out.finish(replace=replace)
    except BaseException:
        out.abandon()
        raise
