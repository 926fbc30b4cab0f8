"""What publish reads: a file named by path, an open stream (standard input), or an
asynchronous byte stream (an HTTP request body), behind one small seam.

The bytes arrive in two ways, so there are two shapes of source:

* :class:`BlobSource` is read on a worker thread with a blocking ``readinto``. A
  :class:`FileSource` reads with ``preadv`` at its own position; a :class:`StreamSource` (a
  pipe, standard input) with ``readv``, where short reads are normal. Either way the reader
  calls ``readinto`` until its window is full or it returns 0, the end.
* :class:`AsyncBlobSource` is read on the event loop with ``await receive_into``: its bytes
  come from an async iterator that only the loop may drive (an ASGI ``request.stream()``).
  The reader fills a window from it on the loop, then hands the full window to a thread to
  hash and cut. The iterator is therefore pulled only while a window buffer is free: a
  pipeline that falls behind leaves the sender waiting (the connection's flow control does
  the rest), and memory stays bounded by the window pool plus one piece of the iterator. No
  thread hop per piece, no channel and no staging file.

Every source tells its ``size``: the bytes it expects, or None when nobody can know (a pipe;
progress then shows bytes only). A file's size is a hint for progress: the blob's size and
digest always come from what was read. An :class:`AsyncStreamSource` that is promised a
length (``Content-Length``) holds the sender to it: a stream that ends short or runs long
raises :class:`SourceError` naming both lengths, so the publish fails before its manifest,
the commit point, is written.

A path that names a FIFO stays refused (:func:`open_source`): opening it would block until
a writer came. Only a stream that is already open, like standard input, is read as one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import stat
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import suppress
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from blobrep.errors import BlobrepError, SourceError
from blobrep.storage.files import cause, translate

#: How messages name standard input.
STANDARD_INPUT: Final = "standard input"
#: The pipe buffer a stream source asks for: the default most users may set (pipe-max-size).
PIPE_BYTES: Final = 1024 * 1024
#: Holes shorter than this are read like data: skipping one ends a window early, which costs
#: more than reading a few zero pages.
MIN_SKIPPED_HOLE: Final = 1024 * 1024
#: The grid skipped holes are trimmed to (chunk boundaries' block size).
_HOLE_GRID: Final = 4096


@runtime_checkable
class BlobSource(Protocol):
    """Bytes to publish, read in order on a worker thread."""

    @property
    def name(self) -> str:
        """What messages call the source (a path, ``standard input``)."""
        ...

    @property
    def size(self) -> int | None:
        """The bytes expected, or None if unknown."""
        ...

    def readinto(self, view: memoryview) -> int:
        """Read up to ``len(view)`` bytes into ``view``; return how many, 0 at the end. Blocking.

        Raises:
            SourceError: the source cannot be read, or broke a promise about its length.
            StorageError: the source file failed while being read.
        """
        ...


@runtime_checkable
class AsyncBlobSource(Protocol):
    """Bytes to publish, received in order on the event loop."""

    @property
    def name(self) -> str:
        """What messages call the source (``the upload``)."""
        ...

    @property
    def size(self) -> int | None:
        """The bytes expected, or None if unknown."""
        ...

    async def receive_into(self, view: memoryview) -> int:
        """Receive up to ``len(view)`` bytes into ``view``; return how many, 0 at the end.

        Raises:
            SourceError: the stream broke off, or ended short of or ran past its length.
        """
        ...


PublishSource = BlobSource | AsyncBlobSource
"""Anything :func:`~blobrep.engine.publish.publish` reads besides a path."""


def open_source(path: Path) -> FileSource:
    """Open the file at ``path`` for publishing. Blocking: run on a thread; close it after.

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
        raise SourceError(
            f"source {path} is not a regular file (raw or VHD image expected; to read a stream,"
            " pipe it to standard input and give -)"
        )
    os.set_blocking(fd, True)
    with suppress(OSError):  # advice only
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    return FileSource(fd, info.st_size, path)


def check_source(path: str | os.PathLike[str]) -> None:
    """Raise :class:`SourceError` unless ``path`` can be opened for publishing. Blocking.

    A version is recorded only once its source is known to be readable: a typo in a path must
    not leave a ``Failed`` version holding the name.
    """
    open_source(Path(path)).close()


class FileSource:
    """A regular file, read with ``preadv`` at the source's own position (made by
    :func:`open_source`, which owns the descriptor: :meth:`close` it)."""

    __slots__ = ("_fd", "_path", "_position", "_size")

    def __init__(self, fd: int, size: int, path: Path) -> None:
        self._fd = fd
        self._size = size
        self._path = path
        self._position = 0

    @property
    def name(self) -> str:
        return str(self._path)

    @property
    def size(self) -> int:
        """The file's size when it was opened."""
        return self._size

    def readinto(self, view: memoryview) -> int:
        with translate(self._path, "read"):
            got = os.preadv(self._fd, [view], self._position)
        self._position += got
        return got

    def next_hole(self, within: int, least: int = MIN_SKIPPED_HOLE) -> tuple[int, int] | None:
        """The next hole of at least ``least`` bytes that starts within ``within`` bytes: the
        bytes of data before it and its length, both trimmed to the 4 KiB grid; None if none.

        Asks the filesystem (``SEEK_HOLE``/``SEEK_DATA``), which knows without reading; one
        that cannot tell has no holes.
        """
        position = self._position
        try:
            start = os.lseek(self._fd, position, os.SEEK_HOLE)
            while start < min(position + within, self._size):
                try:
                    end = os.lseek(self._fd, start, os.SEEK_DATA)
                except OSError as exc:
                    if exc.errno != errno.ENXIO:
                        raise
                    end = self._size  # a hole up to the end
                first = -(-start // _HOLE_GRID) * _HOLE_GRID
                last = min(end, self._size) // _HOLE_GRID * _HOLE_GRID
                if last - first >= least and first - position <= within:
                    return first - position, last - first
                if end >= self._size:
                    return None
                start = os.lseek(self._fd, end, os.SEEK_HOLE)
        except OSError:
            return None  # no hole support here (or the file shrank): read everything
        return None

    def skip(self, length: int) -> None:
        """Move past ``length`` bytes of a hole that :meth:`next_hole` found, without reading them."""
        self._position += length

    def close(self) -> None:
        os.close(self._fd)


class StreamSource:
    """An open descriptor read to its end in order: a pipe, a socket, or standard input
    redirected from anything. The caller owns the descriptor; this never closes it.

    Its size is known only when the descriptor is a regular file (``< image.raw``): the bytes
    from its offset to its end. A descriptor left non-blocking by whoever opened it is waited
    on with ``select`` rather than changed, since its flags are shared with other processes.
    """

    __slots__ = ("_fd", "_name", "_size")

    def __init__(self, fd: int, *, name: str) -> None:
        self._fd = fd
        self._name = name
        self._size: int | None = None
        try:
            info = os.fstat(fd)
        except OSError as exc:
            said = "it is not open" if exc.errno == errno.EBADF else cause(exc)
            raise SourceError(f"cannot read {name}: {said}") from exc
        if stat.S_ISDIR(info.st_mode):
            raise SourceError(f"cannot read {name}: it is a directory; give an image")
        if stat.S_ISREG(info.st_mode):
            with suppress(OSError):
                self._size = max(0, info.st_size - os.lseek(fd, 0, os.SEEK_CUR))
        elif stat.S_ISFIFO(info.st_mode):
            _grow_pipe(fd)

    @classmethod
    def stdin(cls) -> StreamSource:
        """Standard input (descriptor 0).

        Raises:
            SourceError: standard input is closed or a directory.
        """
        return cls(0, name=STANDARD_INPUT)

    @property
    def name(self) -> str:
        return self._name

    @property
    def size(self) -> int | None:
        return self._size

    def readinto(self, view: memoryview) -> int:
        while True:
            try:
                return os.readv(self._fd, [view])
            except BlockingIOError:
                select.select([self._fd], [], [])
            except OSError as exc:
                raise SourceError(f"cannot read {self._name}: {cause(exc)}") from exc


def _grow_pipe(fd: int) -> None:
    """Ask for a pipe buffer of :data:`PIPE_BYTES` (advice only; never shrinks it).

    A default pipe holds 64 KiB, so filling a 16 MiB window takes 256 reads, each a wake-up
    of the writer; a larger buffer publishes a pipe about 8 % faster on two cores.
    """
    with suppress(OSError, AttributeError):  # the user's pipe limit, or not Linux
        if fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) < PIPE_BYTES:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


class AsyncStreamSource:
    """Bytes from an async iterator (an ASGI request body), received on the event loop.

    Empty pieces are skipped (Starlette's ``request.stream()`` ends with one); the end is the
    end of the iteration. ``size`` is the length promised (``Content-Length``), or None:
    ending short of it, or receiving a byte beyond it, raises :class:`SourceError` naming both
    lengths. An iterator that raises (the client went away) is reported as a
    :class:`SourceError` too, chained from what it raised; cancellation passes through.
    Only what did not fit in the last ``view`` is held between calls.
    """

    __slots__ = ("_iterator", "_name", "_pending", "_received", "_size")

    def __init__(self, chunks: AsyncIterable[bytes], *, size: int | None, name: str = "the upload") -> None:
        if size is not None and size < 0:
            raise SourceError(f"{name} announces {size} bytes; a length is 0 or more")
        self._iterator: AsyncIterator[bytes] = aiter(chunks)
        self._size = size
        self._name = name
        self._pending = memoryview(b"")
        self._received = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def size(self) -> int | None:
        return self._size

    @property
    def received(self) -> int:
        """Bytes taken from the iterator so far."""
        return self._received

    async def receive_into(self, view: memoryview) -> int:
        while not self._pending:
            piece = await self._next()
            if piece is None:
                return 0
            self._pending = piece
        count = min(len(view), len(self._pending))
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    async def _next(self) -> memoryview | None:
        """The next piece as bytes (perhaps empty), None at the end; checks the promised length."""
        try:
            received = await anext(self._iterator)
        except StopAsyncIteration:
            if self._size is not None and self._received < self._size:
                raise SourceError(
                    f"{self._name} ended after {self._received} bytes, short of the"
                    f" {self._size} bytes announced"
                ) from None
            return None
        except BlobrepError:
            raise
        except Exception as exc:
            said = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise SourceError(
                f"{self._name} broke off after {self._received} bytes{self._of()} ({said})"
            ) from exc
        # Outside the try: a piece that is not bytes is a bug to show, not a broken upload.
        piece = memoryview(received).cast("B")
        self._received += piece.nbytes
        if self._size is not None and self._received > self._size:
            raise SourceError(
                f"{self._name} holds more than the {self._size} bytes announced (at least {self._received})"
            )
        return piece

    def _of(self) -> str:
        return "" if self._size is None else f" of {self._size}"
