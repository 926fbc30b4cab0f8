"""Reading a source file as chunks: windows from a small pool of reused buffers.

The reader reads one window at a time on a worker thread, hashes the new bytes into the
whole-blob digest (in order), asks the boundary finder where the chunks end and names each
chunk by its digest (or marks it zero), all in one thread hop per window: hops cost about as
much as hashing a megabyte, so they are made per window, not per chunk. Chunks are
views into the window's buffer, not copies. A window goes back to the pool once every chunk
cut from it has been dealt with and the reader has copied its unfinished tail into the next
window, so the pool size bounds memory, and reused buffers spare the page faults of fresh
allocations (expensive on virtual machines).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from blobrep.core.chunking import BoundaryFinder, ChunkingSpec
from blobrep.core.codec import digest_of, is_zero, new_blob_hasher
from blobrep.engine.buffers import BufferPool
from blobrep.storage.files import translate

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
    """Cuts an open file into :class:`SourceChunk` objects, window by window."""

    def __init__(self, fd: int, spec: ChunkingSpec, path: Path) -> None:
        self._fd = fd
        self._path = path
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

    def _fill(self, buffer: bytearray) -> tuple[int, list[tuple[int, str | None]]]:
        """Blocking part: carry over, read, hash, cut, name the chunks.

        Returns the bytes in the window and each chunk's (length, digest or None if zero).
        """
        view = memoryview(buffer)
        filled = len(self._carry)
        view[:filled] = self._carry
        while filled < len(buffer):
            with translate(self._path, "read"):
                got = os.preadv(self._fd, [view[filled:]], self._position)
            if got == 0:
                self.eof = True
                break
            self._hasher.update(view[filled : filled + got])
            filled += got
            self._position += got
        chunks: list[tuple[int, str | None]] = []
        start = 0
        for length in self._finder.cut(view[:filled], final=self.eof):
            piece = view[start : start + length]
            chunks.append((length, None if is_zero(piece) else digest_of(piece)))
            start += length
        return filled, chunks

    async def next_chunks(self) -> list[SourceChunk]:
        """The chunks of the next window (empty at the end of the file)."""
        buffer = await self._pool.acquire()
        filled, lengths = await anyio.to_thread.run_sync(self._fill, buffer)
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
