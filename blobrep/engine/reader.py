"""Reading a source as chunks: windows from a small pool of reused buffers.

The reader reads one window at a time on a worker thread, hashes the new bytes into the
whole-blob digest (in order), asks the boundary finder where the chunks end and names each
chunk by its digest (or marks it zero), all in one thread hop per window: hops cost about as
much as hashing a megabyte, so they are made per window, not per chunk. (An async source,
a request body, is the exception: the event loop fills its window, then the thread hashes
and cuts it.) Chunks are views into the window's buffer, not copies. A window goes back to
the pool once every chunk cut from it has been dealt with and the reader has copied its
unfinished tail into the next window, so the pool size bounds memory (and holds back any
source faster than the pipeline), and reused buffers spare the page faults of fresh
allocations (expensive on virtual machines).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from blobrep.core.chunking import BoundaryFinder, ChunkingSpec
from blobrep.core.codec import digest_of, is_zero, new_blob_hasher
from blobrep.engine.buffers import BufferPool
from blobrep.engine.source import AsyncBlobSource, BlobSource

if TYPE_CHECKING:
    import xxhash

#: Bytes per window; windows hold at least two of the largest chunks, so each yields chunks.
WINDOW_BYTES = 16 * 1024 * 1024
#: Windows alive at once: one being read, the rest holding chunks in flight.
WINDOW_COUNT = 4


class Window:
    """One buffer and the number of holders (chunks in flight, and the reader)."""

    __slots__ = ("_holders", "_pool", "buffer")

    def __init__(self, pool: BufferPool, buffer: bytearray, holders: int) -> None:
        self._pool = pool
        self.buffer = buffer
        self._holders = holders

    def release(self) -> None:
        """Drop one hold; the last one returns the buffer to the pool."""
        self._holders -= 1
        if self._holders == 0:
            self._pool.release(self.buffer)


@dataclass(slots=True)
class SourceChunk:
    """A chunk of the source: its position in the blob, a view of its bytes, its digest."""

    index: int
    data: memoryview
    digest: str | None
    """xxh3-128 of the bytes, or None for a zero chunk."""
    window: Window


class SourceReader:
    """Cuts a source into :class:`SourceChunk` objects, window by window.

    A :class:`BlobSource` is read on the worker thread that hashes and cuts the window (one
    hop per window, as for a file); an :class:`AsyncBlobSource` fills the window on the event
    loop first, since only the loop may drive it, and the thread then hashes and cuts. Either
    way a window is filled only once the pool has a buffer free, which is what holds a fast
    source back to the pace of the pipeline.
    """

    def __init__(self, source: BlobSource | AsyncBlobSource, spec: ChunkingSpec) -> None:
        # Decided once: which side of the thread hop reads the source.
        self._blocking: BlobSource | None = None
        self._streaming: AsyncBlobSource | None = None
        if isinstance(source, BlobSource):
            self._blocking = source
        else:
            self._streaming = source
        self._finder = BoundaryFinder(spec)
        self._hasher: xxhash.xxh3_128 = new_blob_hasher()
        size = max(WINDOW_BYTES, 4 * spec.max_size)
        self._pool = BufferPool(size, WINDOW_COUNT)
        self._position = 0
        self._index = 0
        self._carry: memoryview = memoryview(b"")
        self._previous: Window | None = None
        self.eof = False

    @property
    def size(self) -> int:
        """Bytes read so far (the blob's size, once ``eof``)."""
        return self._position

    def digest(self) -> str:
        """The whole-blob digest of everything read so far."""
        return self._hasher.hexdigest()

    def _read(self, source: BlobSource, view: memoryview, filled: int) -> int:
        """Blocking: fill ``view`` from ``filled`` on, looping over short reads; mark the end."""
        while filled < len(view):
            got = source.readinto(view[filled:])
            if got == 0:
                self.eof = True
                break
            filled += got
        return filled

    async def _receive(self, source: AsyncBlobSource, view: memoryview, filled: int) -> int:
        """On the loop: fill ``view`` from ``filled`` on, piece by piece; mark the end."""
        while filled < len(view):
            got = await source.receive_into(view[filled:])
            if got == 0:
                self.eof = True
                break
            filled += got
        return filled

    def _fill(self, buffer: bytearray, received: int | None) -> tuple[int, list[tuple[int, str | None]]]:
        """Blocking part: carry over, read (unless ``received`` says how far the window is
        filled already), hash the new bytes, cut, name the chunks.

        Returns the bytes in the window and each chunk's (length, digest or None if zero).
        """
        view = memoryview(buffer)
        start = len(self._carry)
        if received is None:
            assert self._blocking is not None
            view[:start] = self._carry
            filled = self._read(self._blocking, view, start)
        else:
            filled = received
        self._hasher.update(view[start:filled])
        self._position += filled - start
        chunks: list[tuple[int, str | None]] = []
        # The whole buffer itself when it is full: the finder scans it for zero runs in place.
        window = buffer if filled == len(buffer) else view[:filled]
        offset = self._position - filled
        start = 0
        for length in self._finder.cut(window, final=self.eof, offset=offset):
            piece = view[start : start + length]
            chunks.append((length, None if is_zero(piece) else digest_of(piece)))
            start += length
        return filled, chunks

    async def next_chunks(self) -> list[SourceChunk]:
        """The chunks of the next window (empty at the end of the source)."""
        buffer = await self._pool.acquire()
        received: int | None = None
        if self._streaming is not None:
            view = memoryview(buffer)
            view[: len(self._carry)] = self._carry
            received = await self._receive(self._streaming, view, len(self._carry))
        filled, lengths = await anyio.to_thread.run_sync(self._fill, buffer, received)
        if self._previous is not None:
            self._previous.release()  # its tail is copied; only its chunks hold it now
        window = Window(self._pool, buffer, len(lengths) + 1)
        view = memoryview(buffer)[:filled]
        chunks = []
        start = 0
        for length, digest in lengths:
            chunks.append(SourceChunk(self._index, view[start : start + length], digest, window))
            self._index += 1
            start += length
        self._carry = view[start:]
        if self.eof:
            self._previous = None
            window.release()
        else:
            self._previous = window
        return chunks
