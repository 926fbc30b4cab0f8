"""Restore: a manifest in one replica -> a sparse output file, every byte verified.

Chunk tasks read chunks through a :class:`~blobrep.engine.version_read.VersionReader` (the one
read path: verified, failing over between replicas where there are several) and write each
one at its offset on the worker thread that decoded it, in the same hop; zero chunks are
never written, so they stay holes in the sparse file. A single ordered task feeds the
whole-blob hasher in blob order (zero chunks as zeros), and the result must equal the
manifest's digest.

Chunks whose frames lie back to back in one pack (a version's new chunks are packed in blob
order, the zero chunks between them stored nowhere) are read as a run: one ranged request and
one decode hop for up to :data:`RUN_CHUNKS` of them and :data:`RUN_BYTES` of frames. Each chunk's
thread hops cost the event loop about as much as decoding it: v3 of the real chain restored
at 1.05x `zstd -d` reading its 326 stored chunks one by one; it reads them in 94 runs.

Writes go to a temporary file beside the output (:mod:`blobrep.storage.outputs`), which is
fsynced and renamed over the output only when everything checked out: a failed restore
leaves nothing behind, and an existing output is replaced atomically.

A restore reads one replica; a deployment reads through a reader over a region's replicas.
Both write files through :func:`write_blob_file`, decoding every chunk into a buffer of a
:class:`~blobrep.engine.buffers.BufferPool`: a pool of its own (:func:`write_buffers`), or
one that several writes share, so that N files written at once hold the buffers of one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, cast

import anyio
import anyio.to_thread

from blobrep.core.codec import data_extents, hash_zeros, new_blob_hasher
from blobrep.core.runs import read_run
from blobrep.engine._concurrency import CPU_THREADS, IO_TASKS, task_group
from blobrep.engine.buffers import BufferPool
from blobrep.engine.version_read import VersionReader
from blobrep.errors import BlobDigestMismatchError, InvalidParameterError
from blobrep.storage.outputs import OutputFile

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from blobrep.core.manifest import ChunkRef, Manifest
    from blobrep.core.names import BlobName
    from blobrep.engine.chunk_decode import Consumer
    from blobrep.engine.publish import ProgressCallback
    from blobrep.storage.base import Store

#: Chunks decoded ahead of the ordered hasher; with the hash batch, bounds the buffers.
ORDER_WINDOW: Final = 12
#: Bytes of finished output handed to writeback at once.
WRITEBACK_BYTES: Final = 8 * 1024 * 1024
#: Chunks the hasher takes in one thread hop.
HASH_BATCH: Final = 8
#: Buffers of a file write: chunks being read, waiting for the hasher, and one hash batch.
WRITE_BUFFERS: Final = ORDER_WINDOW + HASH_BATCH + 1
#: The most chunks read as one run.
RUN_CHUNKS: Final = 8
#: The most frame bytes read as one run (a run of one chunk may hold more): a default chunk's
#: plain size, so a run loads a replica about as much as one chunk does and the replica
#: selector spreads a storm of deployments as finely as it did chunk by chunk (runs of up to
#: the largest chunk's size, 4 MiB, made the replica-bound storms 2-7 % slower).
RUN_BYTES: Final = 1024 * 1024


def write_buffers(manifest: Manifest) -> BufferPool:
    """The pool one file write of ``manifest``'s blob decodes into, as fast as one write goes.

    Each buffer holds the largest chunk the manifest allows. Writes at once that share one
    such pool together hold no more memory than one write alone, however many there are.
    """
    return BufferPool(manifest.chunking.max_size, WRITE_BUFFERS)


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """What a restore did."""

    output: str
    size: int
    digest: str
    chunks: int
    zero_chunks: int
    fetched_bytes: int
    """Stored bytes read: each stored chunk's frame (for a chunk in a pack, its range)."""
    written_bytes: int


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What :func:`write_blob_file` did: stored bytes fetched, plain bytes written, the digest."""

    fetched_bytes: int
    written_bytes: int
    digest: str


@dataclass(slots=True)
class _Slot:
    offset: int
    chunk: ChunkRef
    buffer: bytearray | None = None
    """The pool buffer the source may decode into; None for a zero chunk."""
    plain: memoryview | None = None
    """The chunk's verified plain bytes once decoded; None for a zero chunk."""
    done: anyio.Event = field(default_factory=anyio.Event)


async def restore(
    store: Store,
    gallery: str,
    blob: BlobName,
    output: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
) -> RestoreResult:
    """Write ``blob`` of ``gallery`` from ``store`` to the file ``output``.

    Without a catalog, the manifest is only checked to be well formed and consistent: that it
    is the version's own manifest cannot be checked here (the gallery commands check it
    against the catalog's pin). Every chunk and the whole blob are checked against it.

    Raises:
        ManifestNotFoundError, ManifestError: no usable manifest.
        ChunkMissingError, ChunkCorruptError: a chunk is absent or bad (named, with the replica).
        BlobDigestMismatchError: the chunks are fine but do not make the recorded blob.
        InvalidInputError: ``output`` is a directory, FIFO, device or socket, or its
            directory does not exist.
    """
    target = Path(output).absolute()
    async with VersionReader([store], gallery, blob, repair=False) as reader:
        written = await write_blob_file(reader, target, what=f"restored {gallery}/{blob}", progress=progress)
    manifest = reader.manifest
    return RestoreResult(
        output=str(target),
        size=manifest.size,
        digest=written.digest,
        chunks=len(manifest.chunks),
        zero_chunks=sum(1 for chunk in manifest.chunks if chunk.is_zero),
        fetched_bytes=written.fetched_bytes,
        written_bytes=written.written_bytes,
    )


async def write_blob_file(
    reader: VersionReader,
    output: Path,
    *,
    what: str,
    tasks: int = IO_TASKS,
    window: int = ORDER_WINDOW,
    buffers: BufferPool | None = None,
    progress: ProgressCallback | None = None,
) -> WriteResult:
    """Write the reader's version to the file ``output`` (absolute), every byte verified.

    ``tasks`` chunks are read at once and at most ``window`` finished ones wait for the
    ordered hasher; ``what`` names the blob in the mismatch message. Every chunk is decoded
    into a buffer of ``buffers`` (by default a pool of its own, :func:`write_buffers`), held
    until the hasher is done with it: the pool bounds the memory, and a pool shared by many
    writes (a scale set) bounds theirs together.

    Raises:
        InvalidParameterError: the buffers of ``buffers`` are smaller than the largest chunk.
        InvalidInputError: ``output`` is a directory, FIFO, device or socket, or its
            directory does not exist.
        StorageError, StorageFullError: the output cannot be written (naming it and why).
        ChunkMissingError, ChunkCorruptError: a chunk no replica could serve.
        BlobDigestMismatchError: the chunks are fine but do not make the recorded blob.
    """
    manifest = reader.manifest
    if buffers is None:
        buffers = write_buffers(manifest)
    elif buffers.size < manifest.chunking.max_size:
        raise InvalidParameterError(
            f"buffers of {buffers.size} bytes cannot hold the chunks of {what}:"
            f" they need {manifest.chunking.max_size}"
        )
    out = await anyio.to_thread.run_sync(OutputFile.create, output, manifest.size)
    try:
        result = await _SparseWriter(reader, out, tasks, window, buffers, progress).run()
        if result.digest != manifest.digest:
            raise BlobDigestMismatchError(
                f"{what} hashes to {result.digest}, manifest says {manifest.digest}"
            )
        await anyio.to_thread.run_sync(out.finish)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(out.abandon)
        raise
    return result


class _SparseWriter:
    """One file write: read and write chunks out of order, hash them in order.

    ``produce`` takes a buffer per chunk in blob order and the hasher gives it back in the
    same order, so the pool bounds how far decoding runs ahead. Nor can a pool shared by
    several writers deadlock: a buffer taken belongs to a chunk its writer will read and hash
    without taking another, so every buffer taken comes back.
    """

    def __init__(
        self,
        reader: VersionReader,
        out: OutputFile,
        tasks: int,
        window: int,
        buffers: BufferPool,
        progress: ProgressCallback | None,
    ) -> None:
        self.reader = reader
        self.out = out
        self.manifest = reader.manifest
        self.tasks = tasks
        self.window = window
        self.buffers = buffers
        self.progress = progress
        self.cpu = anyio.CapacityLimiter(CPU_THREADS)
        self.hasher = new_blob_hasher()
        self.fetched = self.written = self.hashed = self.flushed = 0

    async def run(self) -> WriteResult:
        ordered_send, ordered_receive = anyio.create_memory_object_stream[_Slot](self.window)
        work_send, work_receive = anyio.create_memory_object_stream[list[_Slot]](self.tasks)
        async with task_group() as group:
            group.start_soon(self.produce, ordered_send, work_send)
            group.start_soon(self.hash_in_order, ordered_receive)
            for _ in range(self.tasks):
                group.start_soon(self.read, work_receive.clone())
            work_receive.close()
        return WriteResult(self.fetched, self.written, self.hasher.hexdigest())

    async def produce(
        self, ordered: MemoryObjectSendStream[_Slot], work: MemoryObjectSendStream[list[_Slot]]
    ) -> None:
        """Every chunk to the hasher in order, and the stored ones to the readers in runs.

        A run is sent to the readers as soon as its first chunk comes up, with a buffer for
        each of its chunks; only the first buffer may be waited for: waiting while holding
        buffers of chunks no reader has would deadlock writers sharing a pool, so a run ends
        where no buffer is free.
        """
        manifest = self.manifest
        ahead: dict[int, _Slot] = {}
        async with ordered, work:
            for position, (offset, chunk) in enumerate(manifest.with_offsets()):
                slot = ahead.pop(position, None)
                if slot is None:
                    slot = _Slot(offset, chunk)
                    if chunk.is_zero:
                        slot.done.set()
                    else:
                        slot.buffer = await self.buffers.acquire()
                        run = [slot]
                        for later in read_run(manifest.chunks, position, RUN_CHUNKS, RUN_BYTES)[1:]:
                            buffer = self.buffers.take()
                            if buffer is None:
                                break
                            ahead[later] = _Slot(manifest.offset(later), manifest.chunks[later], buffer)
                            run.append(ahead[later])
                        await work.send(run)
                await ordered.send(slot)

    async def read(self, work: MemoryObjectReceiveStream[list[_Slot]]) -> None:
        async with work:
            async for run in work:
                if len(run) == 1:
                    slot = run[0]
                    await self.reader.read_chunk(slot.chunk, buffer=slot.buffer, then=self._writer(slot))
                else:
                    refs = [slot.chunk for slot in run]
                    buffers = [slot.buffer for slot in run if slot.buffer is not None]
                    await self.reader.read_run(refs, buffers, [self._writer(slot) for slot in run])
                for slot in run:
                    self.fetched += slot.chunk.stored_length
                    self.written += slot.chunk.length
                    slot.done.set()

    def _writer(self, slot: _Slot) -> Consumer:
        """What the decoding thread does with ``slot``'s verified bytes: keep them for the
        hasher, and write the non-holes."""

        def write(plain: memoryview) -> None:
            slot.plain = plain
            # The view starts at its object's first byte (a pool buffer), which
            # ``data_extents`` searches for holes without copying.
            whole = cast(bytes | bytearray, plain.obj)
            for start, end in data_extents(whole, slot.chunk.length):
                self.out.write_at(plain[start:end], slot.offset + start)

        return write

    def hash_batch(self, batch: list[_Slot]) -> None:
        for slot in batch:
            if slot.plain is None:
                hash_zeros(self.hasher, slot.chunk.length)
            else:
                self.hasher.update(slot.plain)
        # Everything before this point is written: start writing it back now, in one large
        # range, rather than all at the final fsync, so the disk works while later chunks
        # are decoded (the kernel would otherwise let gigabytes of dirty pages pile up).
        done = batch[-1].offset + batch[-1].chunk.length
        if done - self.flushed >= WRITEBACK_BYTES or done == self.manifest.size:
            self.out.start_writeback(self.flushed, done)
            self.flushed = done

    async def hash_in_order(self, ordered: MemoryObjectReceiveStream[_Slot]) -> None:
        async with ordered:
            async for first in ordered:
                batch = [first]
                await first.done.wait()
                while len(batch) < HASH_BATCH:
                    try:
                        slot = ordered.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                    await slot.done.wait()
                    batch.append(slot)
                await anyio.to_thread.run_sync(self.hash_batch, batch, limiter=self.cpu)
                for slot in batch:
                    if slot.buffer is not None:
                        self.buffers.release(slot.buffer)
                        slot.buffer = None
                    slot.plain = None
                    self.hashed += slot.chunk.length
                if self.progress is not None:
                    self.progress(self.hashed, self.manifest.size)
