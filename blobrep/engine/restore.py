"""Restore: a manifest in one replica -> a sparse output file, every byte verified.

Chunk tasks fetch chunks from a :class:`ChunkSource`, turn them into verified plain bytes on
a CPU thread and write them at their offsets; zero chunks are never written, so they stay
holes in the sparse file. A single ordered task feeds the whole-blob hasher in blob order
(zero chunks as zeros), and the result must equal the manifest's digest.

Writes go to a temporary file beside the output, which is fsynced and renamed over the
output only when everything checked out: a failed restore leaves nothing behind, and an
existing output is replaced atomically.

Restore reads stored frames from one replica and decodes them into reused buffers
(:class:`StoreSource`); a deployment reads plain chunks through a reader that spreads them
over a region's replicas. Both write files through :func:`write_blob_file`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from blobrep.core.codec import data_extents, decode_chunk, decode_chunk_into, hash_zeros, new_blob_hasher
from blobrep.core.keys import chunk_key
from blobrep.core.manifest import ChunkRef, Manifest
from blobrep.core.names import BlobName
from blobrep.engine._concurrency import CPU_THREADS, IO_TASKS, task_group, thread_decompressor
from blobrep.engine.buffers import BufferPool
from blobrep.engine.manifests import read_manifest
from blobrep.engine.publish import ProgressCallback
from blobrep.errors import (
    BlobDigestMismatchError,
    ChunkMissingError,
    InvalidInputError,
    NotFoundError,
    StorageError,
)
from blobrep.storage.base import Store

#: Chunks decoded ahead of the ordered hasher; with the hash batch, bounds the buffers.
ORDER_WINDOW: Final = 12
#: Bytes of finished output handed to writeback at once.
WRITEBACK_BYTES: Final = 8 * 1024 * 1024
#: Chunks the hasher takes in one thread hop.
HASH_BATCH: Final = 8


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """What a restore did."""

    output: str
    size: int
    digest: str
    chunks: int
    zero_chunks: int
    fetched_bytes: int
    written_bytes: int


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What :func:`write_blob_file` did: stored bytes fetched, plain bytes written, the digest."""

    fetched_bytes: int
    written_bytes: int
    digest: str


class ChunkSource(Protocol):
    """Where the sparse writer gets the verified plain bytes of each stored chunk.

    Fetching is the I/O and runs on the event loop; ``decode`` runs on a worker thread in the
    same hop as the write, so a chunk costs one thread hop however it is decoded. Either raises
    ChunkMissingError, ChunkCorruptError or StorageError, naming the chunk, when it cannot be had.
    """

    @property
    def buffer_size(self) -> int:
        """Bytes of the buffer ``decode`` writes into; 0 if it needs none."""
        ...

    async def fetch(self, chunk: ChunkRef) -> bytes:
        """What the source holds for ``chunk``: a stored frame, or plain bytes already verified."""
        ...

    def decode(self, fetched: bytes, chunk: ChunkRef, buffer: bytearray) -> bytes | bytearray:
        """On a worker thread: what starts with the chunk's verified plain bytes (maybe ``buffer``)."""
        ...


@dataclass(slots=True)
class _Slot:
    offset: int
    chunk: ChunkRef
    buffer: bytearray | None = None
    """The pool buffer the source may decode into; None for a zero chunk."""
    plain: memoryview | None = None
    """The chunk's verified plain bytes once decoded; None for a zero chunk."""
    done: anyio.Event = field(default_factory=anyio.Event)


async def fetch_chunk(store: Store, gallery: str, chunk: ChunkRef) -> bytes:
    """The stored frame of ``chunk`` from ``store``.

    Raises:
        ChunkMissingError: naming the chunk and the replica, if the store lacks it.
    """
    assert chunk.digest is not None
    try:
        return await store.get(chunk_key(gallery, chunk.digest))
    except NotFoundError:
        raise ChunkMissingError(chunk.digest, store.name) from None


def decode(frame: bytes, chunk: ChunkRef, replica: str) -> bytes:
    """Decode and verify ``frame`` on the calling (worker) thread."""
    assert chunk.digest is not None
    return decode_chunk(
        frame,
        digest=chunk.digest,
        length=chunk.length,
        stored_length=chunk.stored_length,
        decompressor=thread_decompressor(),
        replica=replica,
    )


class StoreSource:
    """Chunks of one replica: stored frames, decoded into reused buffers as they are written."""

    def __init__(self, store: Store, gallery: str, manifest: Manifest) -> None:
        self.store = store
        self.gallery = gallery
        self.buffer_size = manifest.chunking.max_size

    async def fetch(self, chunk: ChunkRef) -> bytes:
        return await fetch_chunk(self.store, self.gallery, chunk)

    def decode(self, fetched: bytes, chunk: ChunkRef, buffer: bytearray) -> bytes | bytearray:
        assert chunk.digest is not None
        decode_chunk_into(
            fetched,
            memoryview(buffer),
            digest=chunk.digest,
            length=chunk.length,
            stored_length=chunk.stored_length,
            decompressor=thread_decompressor(),
            replica=self.store.name,
        )
        return buffer


def _open_temp(output: Path, size: int) -> tuple[int, Path]:
    if output.is_dir():
        raise InvalidInputError(f"output {output} is a directory; give a file path")
    if not output.parent.is_dir():
        raise InvalidInputError(f"output directory {output.parent} does not exist")
    temp = output.parent / f".{output.name}.blobrep-{secrets.token_hex(6)}"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StorageError(f"cannot create {temp}: {exc.strerror}") from exc
    try:
        os.ftruncate(fd, size)
    except OSError as exc:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise StorageError(f"cannot size {temp} to {size} bytes: {exc.strerror}") from exc
    return fd, temp


def _finish(fd: int, temp: Path, output: Path) -> None:
    os.fsync(fd)
    os.close(fd)
    os.replace(temp, output)
    directory = os.open(output.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _abandon(fd: int, temp: Path) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    temp.unlink(missing_ok=True)


async def restore(
    store: Store,
    gallery: str,
    blob: BlobName,
    output: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
) -> RestoreResult:
    """Write ``blob`` of ``gallery`` from ``store`` to the file ``output``.

    Raises:
        ManifestNotFoundError, ManifestError: no usable manifest.
        ChunkMissingError, ChunkCorruptError: a chunk is absent or bad (named, with the replica).
        BlobDigestMismatchError: the chunks are fine but do not make the recorded blob.
    """
    manifest = await read_manifest(store, gallery, blob)
    target = Path(output).absolute()
    written = await write_blob_file(
        StoreSource(store, gallery, manifest),
        manifest,
        target,
        what=f"restored {gallery}/{blob}",
        progress=progress,
    )
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
    source: ChunkSource,
    manifest: Manifest,
    output: Path,
    *,
    what: str,
    tasks: int = IO_TASKS,
    window: int = ORDER_WINDOW,
    progress: ProgressCallback | None = None,
) -> WriteResult:
    """Write the blob ``manifest`` describes, from ``source``, to the file ``output`` (absolute).

    ``tasks`` chunks are fetched at once and at most ``window`` finished ones wait for the
    ordered hasher, which bounds memory; ``what`` names the blob in the mismatch message.

    Raises:
        InvalidInputError: ``output`` is a directory or its directory does not exist.
        StorageError: the output cannot be created; or the source failed.
        ChunkMissingError, ChunkCorruptError: a chunk is absent or bad.
        BlobDigestMismatchError: the chunks are fine but do not make the recorded blob.
    """
    fd, temp = await anyio.to_thread.run_sync(_open_temp, output, manifest.size)
    try:
        result = await _write_sparse(fd, source, manifest, tasks, window, progress)
        if result.digest != manifest.digest:
            raise BlobDigestMismatchError(
                f"{what} hashes to {result.digest}, manifest says {manifest.digest}"
            )
        await anyio.to_thread.run_sync(_finish, fd, temp, output)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_abandon, fd, temp)
        raise
    return result


async def _write_sparse(
    fd: int,
    source: ChunkSource,
    manifest: Manifest,
    tasks: int,
    window: int,
    progress: ProgressCallback | None,
) -> WriteResult:
    cpu = anyio.CapacityLimiter(CPU_THREADS)
    hasher = new_blob_hasher()
    counters = {"fetched": 0, "written": 0, "hashed": 0}
    ordered_send, ordered_receive = anyio.create_memory_object_stream[_Slot](window)
    work_send, work_receive = anyio.create_memory_object_stream[_Slot](tasks)

    # Produce takes a buffer per chunk in blob order and the hasher gives it back in the
    # same order, so the pool bounds how far decoding runs ahead and can never deadlock.
    # A source that needs no buffer takes an empty one, which bounds the plain bytes it hands
    # over in the same way.
    buffers = BufferPool(source.buffer_size, window + HASH_BATCH + 1)

    def decode_and_write(fetched: bytes, slot: _Slot) -> None:
        assert slot.buffer is not None
        data = source.decode(fetched, slot.chunk, slot.buffer)
        plain = slot.plain = memoryview(data)[: slot.chunk.length]
        for start, end in data_extents(data, slot.chunk.length):
            view = plain[start:end]
            position = slot.offset + start
            while view:
                written = os.pwrite(fd, view, position)
                view = view[written:]
                position += written

    async def produce(ordered: MemoryObjectSendStream[_Slot], work: MemoryObjectSendStream[_Slot]) -> None:
        async with ordered, work:
            for offset, chunk in manifest.with_offsets():
                slot = _Slot(offset, chunk)
                if chunk.is_zero:
                    await ordered.send(slot)
                    slot.done.set()
                else:
                    slot.buffer = await buffers.acquire()
                    await ordered.send(slot)
                    await work.send(slot)

    async def fetch(work: MemoryObjectReceiveStream[_Slot]) -> None:
        async with work:
            async for slot in work:
                fetched = await source.fetch(slot.chunk)
                counters["fetched"] += slot.chunk.stored_length
                await anyio.to_thread.run_sync(decode_and_write, fetched, slot, limiter=cpu)
                counters["written"] += slot.chunk.length
                slot.done.set()

    flushed = [0]

    def hash_batch(batch: list[_Slot]) -> None:
        for slot in batch:
            if slot.plain is None:
                hash_zeros(hasher, slot.chunk.length)
            else:
                hasher.update(slot.plain)
        # Everything before this point is written: start writing it back now, in one large
        # range, rather than all at the final fsync, so the disk works while later chunks
        # are decoded (the kernel would otherwise let gigabytes of dirty pages pile up).
        done = batch[-1].offset + batch[-1].chunk.length
        if done - flushed[0] >= WRITEBACK_BYTES or done == manifest.size:
            os.posix_fadvise(fd, flushed[0], done - flushed[0], os.POSIX_FADV_DONTNEED)
            flushed[0] = done

    async def hash_in_order(ordered: MemoryObjectReceiveStream[_Slot]) -> None:
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
                await anyio.to_thread.run_sync(hash_batch, batch, limiter=cpu)
                for slot in batch:
                    if slot.buffer is not None:
                        buffers.release(slot.buffer)
                        slot.buffer = None
                    slot.plain = None
                    counters["hashed"] += slot.chunk.length
                if progress is not None:
                    progress(counters["hashed"], manifest.size)

    async with task_group() as group:
        group.start_soon(produce, ordered_send, work_send)
        group.start_soon(hash_in_order, ordered_receive)
        for _ in range(tasks):
            group.start_soon(fetch, work_receive.clone())
        work_receive.close()
    return WriteResult(counters["fetched"], counters["written"], hasher.hexdigest())
