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

A sparse file's large holes are not read at all: with chunking ended by zero runs, the
reader asks the file where its next hole is (:meth:`FileSource.next_hole`), fills the window
only up to it, hashes the hole's zeros from a zero page and tells the boundary finder they
follow the window. The hole's zero chunks then point into one shared zero buffer, not into
the window. An image that is mostly free space is read for its data alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from blobrep.core.chunking import BoundaryFinder, ChunkingSpec
from blobrep.core.codec import digest_of, hash_zeros, is_zero, new_blob_hasher
from blobrep.core.zero_runs import BLOCK_SIZE
from blobrep.engine.buffers import BufferPool
from blobrep.engine.source import MIN_SKIPPED_HOLE, AsyncBlobSource, BlobSource, FileSource

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
        # Holes are skipped only where zero runs end segments: then a hole's chunks are the
        # same whether it is read or not.
        self._holes: FileSource | None = None
        if isinstance(source, FileSource) and spec.zero_run is not None:
            self._holes = source
        self._least_hole = max(MIN_SKIPPED_HOLE, self._finder.least_known_zeros)
        # Zero chunks of a hole, and a carried-over tail of one, are views of this, made at the
        # first hole (calloc'd: the pages that nobody reads are never touched).
        self._zeros = memoryview(b"")
        self._zeros_size = spec.max_size + (spec.zero_run or 0) + BLOCK_SIZE

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

    def _fill(self, buffer: bytearray, received: int | None) -> tuple[int, int, list[tuple[int, str | None]]]:
        """Blocking part: carry over, read (unless ``received`` says how far the window is
        filled already), hash the new bytes, cut, name the chunks.

        Returns the bytes in the window, the zeros of a skipped hole after them, and each
        chunk's (length, digest or None if zero).
        """
        view = memoryview(buffer)
        start = len(self._carry)
        zeros = 0
        if received is None:
            assert self._blocking is not None
            view[:start] = self._carry
            end = len(view)
            hole = None if self._holes is None else self._holes.next_hole(end - start, self._least_hole)
            if hole is not None:
                end = start + hole[0]
            filled = self._read(self._blocking, view[:end], start)
            if hole is not None and filled == end and self._holes is not None:
                self._holes.skip(hole[1])
                zeros = hole[1]
                if not self._zeros:
                    self._zeros = memoryview(bytes(self._zeros_size))
        else:
            filled = received
        self._hasher.update(view[start:filled])
        hash_zeros(self._hasher, zeros)
        self._position += filled - start + zeros
        # The whole buffer itself: the finder scans it for zero runs in place.
        offset = self._position - filled - zeros
        cut = self._finder.cut(buffer, final=self.eof, offset=offset, length=filled, zeros=zeros)
        chunks: list[tuple[int, str | None]] = []
        start = 0
        for length in cut:
            if start + length > filled:
                chunks.append((length, None))  # in the hole
            else:
                piece = view[start : start + length]
                chunks.append((length, None if is_zero(piece) else digest_of(piece)))
            start += length
        return filled, zeros, chunks

    async def next_chunks(self) -> list[SourceChunk]:
        """The chunks of the next window (empty at the end of the source)."""
        buffer = await self._pool.acquire()
        received: int | None = None
        if self._streaming is not None:
            view = memoryview(buffer)
            view[: len(self._carry)] = self._carry
            received = await self._receive(self._streaming, view, len(self._carry))
        filled, zeros, lengths = await anyio.to_thread.run_sync(self._fill, buffer, received)
        if self._previous is not None:
            self._previous.release()  # its tail is copied; only its chunks hold it now
        window = Window(self._pool, buffer, len(lengths) + 1)
        view = memoryview(buffer)[:filled]
        chunks = []
        start = 0
        for length, digest in lengths:
            data = view[start : start + length] if start + length <= filled else self._zeros[:length]
            chunks.append(SourceChunk(self._index, data, digest, window))
            self._index += 1
            start += length
        self._carry = self._tail(view, start, zeros)
        if self.eof:
            self._previous = None
            window.release()
        else:
            self._previous = window
        return chunks

    def _tail(self, view: memoryview, cut: int, zeros: int) -> memoryview:
        """What leads the next window: the window's bytes after ``cut``; after a hole, the
        rest of the zero run it belongs to (the finder stops in it: shorter than a chunk
        and a run)."""
        if not zeros:
            return view[cut:]
        tail = len(view) + zeros - cut
        if tail > len(self._zeros):  # never: a slice would quietly come out short
            raise RuntimeError(f"the tail after a hole is {tail} bytes, more than a run and a chunk")
        return self._zeros[:tail]
