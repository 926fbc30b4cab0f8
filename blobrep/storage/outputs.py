"""Output files: a restored or deployed disk, written beside its final path and renamed into place.

A user names the output; blobrep writes it the way every file outside a store is written
(:mod:`blobrep.storage.files`): a hidden temporary in the same directory, sized to the blob
(sparse: holes stay holes), fsynced, renamed over the output and the directory fsynced only
when every byte checked out. A failed or interrupted write leaves the old output (or nothing)
behind, and a later write of the same output removes the temporaries of writers that died.

What may be named as an output is checked first: a FIFO, a device node or a socket is never
replaced by a regular file (as root, ``--output /dev/null`` would otherwise replace the
system's), and neither is a directory.

Every call here blocks: the engine runs them on worker threads. Every ``OSError`` becomes a
blobrep error that names the output and the cause ("cannot write /data/vm.img: no space
left on the device").
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Self

from blobrep.errors import InvalidInputError
from blobrep.storage.files import AtomicFile, remove_stale_temporaries

__all__ = ["OutputFile", "check_output", "remove_stale_temporaries"]

_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


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


class OutputFile(AtomicFile):
    """An :class:`~blobrep.storage.files.AtomicFile` for an output that was checked first."""

    __slots__ = ()

    @classmethod
    def create(cls, target: Path, size: int = 0, *, mode: int = 0o644) -> Self:
        """Check ``target``, clear dead writers' temporaries, and open a sparse temporary of ``size``.

        Raises:
            InvalidInputError: see :func:`check_output`.
            StorageError, StorageFullError: the temporary cannot be created or sized (naming
                the output and the cause); nothing is left behind.
        """
        check_output(target)
        return super().create(target, size, mode=mode)
