"""Publish: stream a source file into content-addressed chunks plus a manifest.

The pipeline, for one source and every replica of one region::

    reader thread --(bounded queue)--> N chunk tasks --> each replica store
    read window -> cut -> hash           compress on a CPU thread; put where missing

* The reader reads the file window by window (never the whole file), finds chunk boundaries,
  hashes each chunk (xxh3-128) and the whole blob in order, and recognises zero chunks.
* Chunk tasks skip zero chunks and chunks every replica already holds (that is why publishing
  the same image again writes nothing), compress the rest on a thread bounded by a capacity
  limiter sized to the cores, and write them where they are missing.
* The queue between the stages is bounded, so memory does not grow with the blob: at most
  a few windows are alive at once.
* Only when every chunk is written does each replica ``sync()``; then the manifest is
  committed. A publish killed at any point leaves no manifest that names a missing chunk,
  and since chunk writes are atomic, no torn chunk either.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from blobrep.core.chunking import ChunkingSpec
from blobrep.core.codec import (
    DEFAULT_LEVEL,
    digest_of,
    encode_chunk,
    is_zero,
    validate_level,
)
from blobrep.core.keys import chunk_key, manifest_key
from blobrep.core.manifest import ChunkRef, build_manifest
from blobrep.core.names import BlobName, validate_gallery_name
from blobrep.engine._concurrency import CPU_THREADS, task_group, thread_compressor
from blobrep.engine.manifests import commit_manifest
from blobrep.engine.reader import SourceChunk, SourceReader
from blobrep.engine.source import open_source
from blobrep.errors import InvalidParameterError, NotFoundError
from blobrep.storage.base import Store

#: Tasks analysing and compressing chunks: twice the cores, so stats overlap compression.
CHUNK_TASKS: Final = 2 * CPU_THREADS
#: Tasks writing compressed chunks: many, since each put waits for its fsync.
WRITE_TASKS: Final = 8

ProgressCallback = Callable[[int, int], None]
"""Called on the event loop with (bytes done, bytes total) as the work advances."""


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What a publish did, for the user and for tests."""

    gallery: str
    blob: str
    manifest_key: str
    size: int
    digest: str
    chunks: int
    zero_chunks: int
    distinct_chunks: int
    stored_bytes: int
    """Bytes the blob's distinct chunks take in one replica."""
    new_chunks: int
    """Distinct chunks that at least one replica lacked and that were written."""
    written_bytes: int
    """Chunk bytes written, summed over every replica."""
    replicas: int
    committed: bool
    """False if every replica already held this exact manifest."""


async def _stored_size(store: Store, key: str) -> int | None:
    try:
        return (await store.stat(key)).size
    except NotFoundError:
        return None


async def publish(
    source: str | os.PathLike[str],
    stores: Sequence[Store],
    gallery: str,
    blob: BlobName,
    *,
    chunking: ChunkingSpec | None = None,
    level: int = DEFAULT_LEVEL,
    progress: ProgressCallback | None = None,
) -> PublishResult:
    """Publish ``source`` as ``blob`` of ``gallery`` into every store of ``stores``.

    Raises:
        SourceError: the source is missing, unreadable or not a regular file.
        ConflictError: a replica holds a different blob under this name.
        StorageError: a replica failed; no manifest was written to it.
    """
    validate_gallery_name(gallery)
    validate_level(level)
    spec = (chunking or ChunkingSpec.fastcdc()).validated()
    if not stores:
        raise InvalidParameterError("publish needs at least one store to write to")
    fd, total = await anyio.to_thread.run_sync(open_source, Path(source))
    try:
        refs, stats = await _run_pipeline(fd, total, stores, gallery, spec, level, progress)
        reader_digest, size = stats.digest, stats.size
    finally:
        os.close(fd)
    stored_sizes = stats.stored_sizes
    chunks = [
        ChunkRef(None, length, 0) if digest is None else ChunkRef(digest, length, stored_sizes[digest])
        for digest, length in refs
    ]
    manifest = build_manifest(size=size, digest=reader_digest, chunking=spec, level=level, chunks=chunks)
    async with task_group() as group:
        for store in stores:
            group.start_soon(store.sync)
    committed = [False] * len(stores)

    async def commit(position: int, store: Store) -> None:
        committed[position] = await commit_manifest(store, gallery, blob, manifest)

    async with task_group() as group:
        for position, store in enumerate(stores):
            group.start_soon(commit, position, store)
    return PublishResult(
        gallery=gallery,
        blob=str(blob),
        manifest_key=manifest_key(gallery, blob),
        size=size,
        digest=reader_digest,
        chunks=len(chunks),
        zero_chunks=sum(1 for chunk in chunks if chunk.is_zero),
        distinct_chunks=len(stored_sizes),
        stored_bytes=manifest.stored_bytes,
        new_chunks=stats.new_chunks,
        written_bytes=stats.written_bytes,
        replicas=len(stores),
        committed=any(committed),
    )


@dataclass(slots=True)
class _Stats:
    size: int = 0
    digest: str = ""
    new_chunks: int = 0
    written_bytes: int = 0
    done_bytes: int = 0
    stored_sizes: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Write:
    key: str
    frame: bytes
    stores: list[Store]


def _analyse(data: memoryview) -> str | None:
    """The chunk's digest, or None for a zero chunk (CPU work: runs on a thread)."""
    return None if is_zero(data) else digest_of(data)


async def _run_pipeline(
    fd: int,
    total: int,
    stores: Sequence[Store],
    gallery: str,
    spec: ChunkingSpec,
    level: int,
    progress: ProgressCallback | None,
) -> tuple[list[tuple[str | None, int]], _Stats]:
    reader = SourceReader(fd, spec)
    stats = _Stats()
    refs: dict[int, tuple[str | None, int]] = {}
    cpu = anyio.CapacityLimiter(CPU_THREADS)
    claimed: set[str] = set()
    chunk_send, chunk_receive = anyio.create_memory_object_stream[SourceChunk](CHUNK_TASKS)
    write_send, write_receive = anyio.create_memory_object_stream[_Write](WRITE_TASKS * 2)

    async def read_all(send: MemoryObjectSendStream[SourceChunk]) -> None:
        async with send:
            while not reader.eof:
                for chunk in await reader.next_chunks():
                    await send.send(chunk)

    async def prepare(chunk: SourceChunk, send: MemoryObjectSendStream[_Write]) -> None:
        try:
            digest = await anyio.to_thread.run_sync(_analyse, chunk.data, limiter=cpu)
            refs[chunk.index] = (digest, len(chunk.data))
            if digest is None or digest in claimed:
                return
            claimed.add(digest)
            key = chunk_key(gallery, digest)
            sizes = [await _stored_size(store, key) for store in stores]
            if sizes[0] is not None and all(size == sizes[0] for size in sizes):
                stats.stored_sizes[digest] = sizes[0]
                return
            frame = await anyio.to_thread.run_sync(
                lambda: encode_chunk(chunk.data, thread_compressor(level)), limiter=cpu
            )
        finally:
            chunk.window.release()
        stats.stored_sizes[digest] = len(frame)
        stats.new_chunks += 1
        # A replica holding the chunk at another size wrote it at another level: rewrite it
        # so that every replica matches the manifest's stored length.
        targets = [store for store, size in zip(stores, sizes, strict=True) if size != len(frame)]
        await send.send(_Write(key, frame, targets))

    async def compress(
        receive: MemoryObjectReceiveStream[SourceChunk], send: MemoryObjectSendStream[_Write]
    ) -> None:
        async with receive, send:
            async for chunk in receive:
                length = len(chunk.data)
                await prepare(chunk, send)
                stats.done_bytes += length
                if progress is not None:
                    progress(stats.done_bytes, max(total, stats.done_bytes))

    async def write(receive: MemoryObjectReceiveStream[_Write]) -> None:
        async with receive:
            async for job in receive:
                for store in job.stores:
                    await store.put(job.key, job.frame)
                    stats.written_bytes += len(job.frame)

    async with task_group() as group:
        group.start_soon(read_all, chunk_send)
        for _ in range(CHUNK_TASKS):
            group.start_soon(compress, chunk_receive.clone(), write_send.clone())
        for _ in range(WRITE_TASKS):
            group.start_soon(write, write_receive.clone())
        chunk_receive.close()
        write_send.close()
        write_receive.close()
    stats.size = reader.size
    stats.digest = reader.digest()
    return [refs[index] for index in range(len(refs))], stats
