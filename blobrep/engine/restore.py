"""Restore: a manifest in one replica -> a sparse output file, every byte verified.

Chunk tasks fetch stored chunks, decode and verify them on a CPU thread and write them at
their offsets; zero chunks are never written, so they stay holes in the sparse file. A single
ordered task feeds the whole-blob hasher in blob order (zero chunks as zeros), and the result
must equal the manifest's digest.

Writes go to a temporary file beside the output, which is fsynced and renamed over the
output only when everything checked out: a failed restore leaves nothing behind, and an
existing output is replaced atomically.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

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


@dataclass(slots=True)
class _Slot:
    offset: int
    chunk: ChunkRef
    buffer: bytearray | None = None
    """Where the plain bytes are decoded to; None for a zero chunk."""
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
    fd, temp = await anyio.to_thread.run_sync(_open_temp, target, manifest.size)
    try:
        fetched, written, digest = await _restore_into(fd, store, gallery, manifest, progress)
        if digest != manifest.digest:
            raise BlobDigestMismatchError(
                f"restored {gallery}/{blob} hashes to {digest}, manifest says {manifest.digest}"
            )
        await anyio.to_thread.run_sync(_finish, fd, temp, target)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_abandon, fd, temp)
        raise
    return RestoreResult(
        output=str(target),
        size=manifest.size,
        digest=digest,
        chunks=len(manifest.chunks),
        zero_chunks=sum(1 for chunk in manifest.chunks if chunk.is_zero),
        fetched_bytes=fetched,
        written_bytes=written,
    )


async def _restore_into(
    fd: int, store: Store, gallery: str, manifest: Manifest, progress: ProgressCallback | None
) -> tuple[int, int, str]:
    cpu = anyio.CapacityLimiter(CPU_THREADS)
    hasher = new_blob_hasher()
    counters = {"fetched": 0, "written": 0, "hashed": 0}
    ordered_send, ordered_receive = anyio.create_memory_object_stream[_Slot](ORDER_WINDOW)
    work_send, work_receive = anyio.create_memory_object_stream[_Slot](IO_TASKS)

    # Produce takes a buffer per chunk in blob order and the hasher gives it back in the
    # same order, so the pool bounds how far decoding runs ahead and can never deadlock.
    buffers = BufferPool(manifest.chunking.max_size, ORDER_WINDOW + HASH_BATCH + 1)

    def decode_and_write(frame: bytes, slot: _Slot) -> None:
        assert slot.buffer is not None and slot.chunk.digest is not None
        plain = decode_chunk_into(
            frame,
            memoryview(slot.buffer),
            digest=slot.chunk.digest,
            length=slot.chunk.length,
            stored_length=slot.chunk.stored_length,
            decompressor=thread_decompressor(),
            replica=store.name,
        )
        for start, end in data_extents(slot.buffer, slot.chunk.length):
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
                frame = await fetch_chunk(store, gallery, slot.chunk)
                counters["fetched"] += len(frame)
                await anyio.to_thread.run_sync(decode_and_write, frame, slot, limiter=cpu)
                counters["written"] += slot.chunk.length
                slot.done.set()

    flushed = [0]

    def hash_batch(batch: list[_Slot]) -> None:
        for slot in batch:
            if slot.buffer is None:
                hash_zeros(hasher, slot.chunk.length)
            else:
                hasher.update(memoryview(slot.buffer)[: slot.chunk.length])
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
                    counters["hashed"] += slot.chunk.length
                if progress is not None:
                    progress(counters["hashed"], manifest.size)

    async with task_group() as group:
        group.start_soon(produce, ordered_send, work_send)
        group.start_soon(hash_in_order, ordered_receive)
        for _ in range(IO_TASKS):
            group.start_soon(fetch, work_receive.clone())
        work_receive.close()
    return counters["fetched"], counters["written"], hasher.hexdigest()
