"""Opening a source file for publishing, with errors a user can act on."""

from __future__ import annotations

import os
import stat
from contextlib import suppress
from pathlib import Path

from blobrep.errors import SourceError


def open_source(path: Path) -> tuple[int, int]:
    """Open ``path`` for sequential reading; return ``(fd, size)``. Blocking: run on a thread.

    Raises:
        SourceError: if the path is missing, a directory, not a regular file, or unreadable.
    """
    try:
        # O_NONBLOCK: opening a FIFO that has no writer must not hang; cleared below.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise SourceError(f"source {path} does not exist") from None
    except IsADirectoryError:
        raise SourceError(f"source {path} is a directory; give an image file") from None
    except PermissionError:
        raise SourceError(f"source {path} is not readable (permission denied)") from None
    except OSError as exc:
        raise SourceError(f"source {path} cannot be opened: {exc.strerror}") from None
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        os.close(fd)
        raise SourceError(f"source {path} is a directory; give an image file")
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise SourceError(f"source {path} is not a regular file (raw or VHD image expected)")
    os.set_blocking(fd, True)
    with suppress(OSError):  # advice only
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    return fd, info.st_size


def check_source(path: str | os.PathLike[str]) -> None:
    """Raise :class:`SourceError` unless ``path`` can be opened for publishing. Blocking.

    A version is recorded only once its source is known to be readable: a typo in a path must
    not leave a ``Failed`` version holding the name.
    """
    fd, _ = open_source(Path(path))
    os.close(fd)
