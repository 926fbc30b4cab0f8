"""Output files: a restored or deployed disk, written beside its final path and renamed into place.

A user names the output; blobrep writes a hidden temporary file in the same directory
(``.{name}.blobrep-{pid}.{start}.{random}``), sized to the blob (sparse: holes stay holes),
and only when every byte checked out fsyncs it, renames it over the output and fsyncs the
directory. A failed or interrupted write leaves the old output (or nothing) behind.

What may be named as an output is checked first: a FIFO, a device node or a socket is never
replaced by a regular file (as root, ``--output /dev/null`` would otherwise replace the
system's), and neither is a directory. The temporary's name carries the writer's pid and
start time, so a later write of the same output removes the temporaries of writers that
died (a killed deployment can leave gigabytes there) and leaves a live writer's alone.

Every call here blocks: the engine runs them on worker threads. Every ``OSError`` becomes a
blobrep error that names the file and the cause.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from blobrep.core.holders import Liveness, ProcessIdentity
from blobrep.errors import InvalidInputError, StorageError, StorageFullError
from blobrep.storage.processes import holder_alive, this_process

_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


@contextlib.contextmanager
def translate(path: Path, action: str) -> Iterator[None]:
    """Map ``OSError`` to blobrep errors naming ``path`` and the cause."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFullError(f"{action} {path} failed: no space left on the device") from exc
        raise StorageError(f"{action} {path} failed: {reason}") from exc


def check_output(output: Path) -> None:
    """Refuse an output path that must not be replaced by a regular file, or cannot be.

    Raises:
        InvalidInputError: it is a directory, FIFO, device or socket (itself or through a
            link), or its directory does not exist.
    """
    for info in _infos(output):
        kind = _KINDS.get(stat.S_IFMT(info.st_mode))
        if kind is not None:
            raise InvalidInputError(
                f"output {output} is {kind}; give the path of a regular file (it is replaced atomically)"
            )
    if not output.parent.is_dir():
        raise InvalidInputError(f"output directory {output.parent} does not exist")


def _infos(path: Path) -> list[os.stat_result]:
    found = []
    for follow in (False, True):
        with contextlib.suppress(OSError):
            found.append(os.stat(path, follow_symlinks=follow))
    return found


def _temp_pattern(output: Path) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(output.name)}\.blobrep-(\d+)\.(\d+|x)\.[0-9a-f]+")


def remove_stale_temporaries(output: Path) -> list[Path]:
    """Remove the temporaries of ``output`` whose writers died; return them.

    A temporary whose writer is alive, or cannot be judged, is left alone.
    """
    pattern = _temp_pattern(output)
    me = this_process()
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(output.parent):
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


@dataclass(slots=True)
class OutputFile:
    """An open temporary file that becomes ``output`` on :meth:`finish`."""

    output: Path
    temp: Path
    fd: int

    @classmethod
    def create(cls, output: Path, size: int) -> OutputFile:
        """Check ``output``, clear dead writers' temporaries, and open a sparse temporary of ``size``.

        Raises:
            InvalidInputError: see :func:`check_output`.
            StorageError, StorageFullError: the temporary cannot be created or sized.
        """
        check_output(output)
        remove_stale_temporaries(output)
        me = this_process()
        started = "x" if me.started is None else str(me.started)
        temp = output.parent / f".{output.name}.blobrep-{me.pid}.{started}.{secrets.token_hex(6)}"
        with translate(temp, "creating"):
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            with translate(temp, f"sizing to {size} bytes"):
                os.ftruncate(fd, size)
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        return cls(output, temp, fd)

    def write_at(self, data: memoryview, position: int) -> None:
        """Write all of ``data`` at ``position``."""
        with translate(self.output, "writing"):
            while data:
                written = os.pwrite(self.fd, data, position)
                data = data[written:]
                position += written

    def start_writeback(self, start: int, end: int) -> None:
        """Hand the finished range to the disk now rather than all at the final fsync."""
        with contextlib.suppress(OSError):  # advice only
            os.posix_fadvise(self.fd, start, end - start, os.POSIX_FADV_DONTNEED)

    def finish(self) -> None:
        """fsync, rename over the output, fsync the directory: the output is now whole."""
        with translate(self.output, "writing"):
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            os.replace(self.temp, self.output)
            directory = os.open(self.output.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def abandon(self) -> None:
        """Close and remove the temporary; the output stays as it was."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        with contextlib.suppress(OSError):
            self.temp.unlink(missing_ok=True)
