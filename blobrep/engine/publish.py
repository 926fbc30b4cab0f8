"""Publish: stream a source into content-addressed chunks plus a manifest.

The pipeline, for one source and every replica of one region::

    reader thread --(bounded queue)--> N chunk tasks --> each replica store
    read window -> cut -> hash           compress on a CPU thread; put where missing

* The source is a file named by path, an open stream (standard input) or an async byte stream
  (a request body): :mod:`blobrep.engine.source`. Each is read the same way and with the same
  memory: no staging file, no whole read.
* The reader reads the source window by window (never the whole of it), finds chunk boundaries,
  hashes each chunk (xxh3-128) and the whole blob in order, and recognises zero chunks.
* Chunk tasks skip zero chunks and chunks every replica already holds (that is why publishing
  the same image again writes nothing), compress the rest on a thread bounded by a capacity
  limiter sized to the cores, and write them where they are missing.
* The queue between the stages is bounded, so memory does not grow with the blob: at most
  a few windows are alive at once.
* Only when every chunk is written does each replica ``sync()``; then the manifest is
  committed. A publish killed at any point leaves no manifest that names a missing chunk,
  and since chunk writes are atomic, no torn chunk either. A source that fails (a stream
  that breaks off, or ends short of the length it announced) fails the publish before that
  point: its chunks already written are garbage for collection, and nothing names them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import anyio
import anyio.to_thread

from blobrep.core.chunking import ChunkingSpec
from blobrep.core.codec import (
    DEFAULT_LEVEL,
    decode_chunk,
    encode_chunk,
    new_compressor,
    validate_level,
)
from blobrep.core.keys import chunk_key, manifest_key
from blobrep.core.manifest import ChunkRef, build_manifest, encode_manifest
from blobrep.core.names import BlobName, validate_gallery_name
from blobrep.core.pins import ManifestPin
from blobrep.engine._concurrency import CPU_THREADS, task_group, thread_decompressor
from blobrep.engine.leases import hold_lease
from blobrep.engine.manifests import check_no_conflict, commit_manifest
from blobrep.engine.reader import SourceChunk, SourceReader
from blobrep.engine.source import AsyncBlobSource, BlobSource, FileSource, PublishSource, open_source
from blobrep.errors import ChunkCorruptError, InvalidParameterError

if TYPE_CHECKING:
    import zstandard
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from blobrep.storage.base import ObjectInfo, Store

#: Tasks writing compressed chunks: many, since each put waits for its fsync.
WRITE_TASKS: Final = 8

ProgressCallback = Callable[[int, int], None]
"""Called on the event loop with (bytes done, bytes total) as the work advances."""
PublishProgressCallback = Callable[[int, int | None], None]
"""A publish's :data:`ProgressCallback`: the total is None while the source's length is not
known (a stream whose length nobody announced)."""


class PublishFigures(Protocol):
    """What a user is told of a publish: what :class:`PublishResult` has, and what a daemon
    says of an upload it published."""

    @property
    def size(self) -> int: ...

    @property
    def new_chunks(self) -> int: ...

    @property
    def written_bytes(self) -> int: ...


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
    manifest_pin: ManifestPin
    """Size and SHA-256 of the manifest written: what the catalog pins for the version."""


async def publish(
    source: str | os.PathLike[str] | PublishSource,
    stores: Sequence[Store],
    gallery: str,
    blob: BlobName,
    *,
    chunking: ChunkingSpec | None = None,
    level: int = DEFAULT_LEVEL,
    progress: PublishProgressCallback | None = None,
    replace: bool = False,
) -> PublishResult:
    """Publish ``source`` as ``blob`` of ``gallery`` into every store of ``stores``.

    ``source`` is the path of a regular file (opened and closed here), or a source object
    (:class:`~blobrep.engine.source.BlobSource`, :class:`~blobrep.engine.source.AsyncBlobSource`)
    that the caller owns; it is read once, to its end. The blob's size and digest are those of
    the bytes read.

    With ``replace``, a manifest a replica holds under the blob's name is overwritten rather
    than a conflict: for callers whose catalog says the blob has no manifest yet (one left by
    an interrupted publish of other content is garbage).

    Raises:
        SourceError: the source is missing, unreadable or not a regular file; or a stream
            broke off, or ended short of or ran past the length it announced (nothing is
            committed).
        AlreadyExistsError: a replica holds a different blob under this name.
        BusyError: garbage collection kept a replica busy for longer than the lease wait.
        StorageError: a replica failed; no manifest was written to it.
    """
    validate_gallery_name(gallery)
    validate_level(level)
    spec = (chunking or ChunkingSpec.fastcdc()).validated()
    if not stores:
        raise InvalidParameterError("publish needs at least one store to write to")
    opened: FileSource | None = None
    if isinstance(source, (str, os.PathLike)):
        opened = await anyio.to_thread.run_sync(open_source, Path(source))
        source = opened
    elif not isinstance(source, (BlobSource, AsyncBlobSource)):
        raise InvalidParameterError(
            f"publish reads a file path or a source object, not {type(source).__name__}"
        )
    try:
        async with AsyncExitStack() as leases:
            # Shared leases from before the first chunk lookup until after the manifest
            # commit: garbage collection must not delete a chunk found present meanwhile.
            for store in stores:
                await leases.enter_async_context(
                    hold_lease(store, gallery, exclusive=False, holder=f"publish of {blob}")
                )
            return await _publish_leased(source, stores, gallery, blob, spec, level, progress, replace)
    finally:
        if opened is not None:
            opened.close()


async def _publish_leased(
    source: PublishSource,
    stores: Sequence[Store],
    gallery: str,
    blob: BlobName,
    spec: ChunkingSpec,
    level: int,
    progress: PublishProgressCallback | None,
    replace: bool,
) -> PublishResult:
    """The publish itself, run while every replica's shared lease is held."""
    refs, stats = await _run_pipeline(source, stores, gallery, spec, level, progress)
    reader_digest, size = stats.digest, stats.size
    stored_sizes = stats.stored_sizes
    chunks = [
        ChunkRef(None, length, 0) if digest is None else ChunkRef(digest, length, stored_sizes[digest])
        for digest, length in refs
    ]
    manifest = build_manifest(size=size, digest=reader_digest, chunking=spec, level=level, chunks=chunks)
    async with task_group() as group:
        for store in stores:
            group.start_soon(store.sync)
    if not replace:
        for store in stores:  # before committing anywhere: a conflict must not half-commit
            await check_no_conflict(store, gallery, blob, manifest)
    committed = [False] * len(stores)

    async def commit(position: int, store: Store) -> None:
        committed[position] = await commit_manifest(store, gallery, blob, manifest, replace=replace)

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
        manifest_pin=ManifestPin.of(encode_manifest(manifest)),
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
class _Batch:
    """Chunks of one window that no replica holds yet, to compress in one thread hop."""

    chunks: list[SourceChunk]
    keys: list[str]
    sizes: list[list[int | None]]
    """Per chunk, the size each replica holds it at (None: missing)."""


@dataclass(slots=True)
class _Write:
    key: str
    frame: bytes
    stores: list[Store]


def _size(info: ObjectInfo | None) -> int | None:
    return None if info is None else info.size


def _compress_all(chunks: list[SourceChunk], compressor: zstandard.ZstdCompressor) -> list[bytes]:
    """Compress a batch on this thread (CPU work, one hop for several chunks)."""
    return [encode_chunk(chunk.data, compressor) for chunk in chunks]


def _intact(frame: bytes, digest: str, length: int) -> bool:
    """True if ``frame`` is a valid stored form of the chunk (CPU work: run on a thread)."""
    try:
        decode_chunk(
            frame,
            digest=digest,
            length=length,
            stored_length=len(frame),
            decompressor=thread_decompressor(),
            replica="",
        )
    except ChunkCorruptError:
        return False
    return True


def _split(batch: _Batch, parts: int) -> list[_Batch]:
    """Split ``batch`` into up to ``parts`` batches of about equal bytes, so every core works."""
    total = sum(len(chunk.data) for chunk in batch.chunks)
    share = total / parts
    result: list[_Batch] = []
    current = _Batch([], [], [])
    size = 0
    for chunk, key, sizes in zip(batch.chunks, batch.keys, batch.sizes, strict=True):
        current.chunks.append(chunk)
        current.keys.append(key)
        current.sizes.append(sizes)
        size += len(chunk.data)
        if size >= share * (len(result) + 1) and len(result) < parts - 1:
            result.append(current)
            current = _Batch([], [], [])
    if current.chunks:
        result.append(current)
    return result


async def _run_pipeline(
    source: PublishSource,
    stores: Sequence[Store],
    gallery: str,
    spec: ChunkingSpec,
    level: int,
    progress: PublishProgressCallback | None,
) -> tuple[list[tuple[str | None, int]], _Stats]:
    """Read -> (per window) look up chunks in the replicas -> compress -> write.

    Work moves between stages in batches of one window, so the cost of a thread hop is paid
    per window, not per chunk; only the writes (each ending in an fsync) go one by one, on
    enough tasks that their waits overlap.
    """
    reader = SourceReader(source, spec)
    total = source.size
    stats = _Stats()
    refs: list[tuple[str | None, int]] = []
    cpu = anyio.CapacityLimiter(CPU_THREADS)
    claimed: set[str] = set()
    window_send, window_receive = anyio.create_memory_object_stream[list[SourceChunk]](1)
    batch_send, batch_receive = anyio.create_memory_object_stream[_Batch](CPU_THREADS)
    write_send, write_receive = anyio.create_memory_object_stream[_Write](0)

    def advance(length: int) -> None:
        stats.done_bytes += length
        if progress is not None:
            progress(stats.done_bytes, None if total is None else max(total, stats.done_bytes))

    async def read_all(send: MemoryObjectSendStream[list[SourceChunk]]) -> None:
        async with send:
            while not reader.eof:
                await send.send(await reader.next_chunks())

    async def look_up(
        receive: MemoryObjectReceiveStream[list[SourceChunk]], send: MemoryObjectSendStream[_Batch]
    ) -> None:
        """Record every chunk in order; pass on the ones some replica lacks."""
        async with receive, send:
            async for chunks in receive:
                fresh: list[SourceChunk] = []
                for chunk in chunks:
                    refs.append((chunk.digest, len(chunk.data)))
                    if chunk.digest is None or chunk.digest in claimed:
                        chunk.window.release()
                        advance(len(chunk.data))
                    else:
                        claimed.add(chunk.digest)
                        fresh.append(chunk)
                if not fresh:
                    continue
                keys = [chunk_key(gallery, chunk.digest) for chunk in fresh if chunk.digest is not None]
                found = [await store.stat_many(keys) for store in stores]
                batch = _Batch([], [], [])
                for position, chunk in enumerate(fresh):
                    sizes = [_size(infos[position]) for infos in found]
                    first = sizes[0]
                    if first is not None and all(size == first for size in sizes):
                        assert chunk.digest is not None
                        stats.stored_sizes[chunk.digest] = first
                        chunk.window.release()
                        advance(len(chunk.data))
                    else:
                        batch.chunks.append(chunk)
                        batch.keys.append(keys[position])
                        batch.sizes.append(sizes)
                if batch.chunks:
                    for part in _split(batch, CPU_THREADS):
                        await send.send(part)

    async def compress(
        receive: MemoryObjectReceiveStream[_Batch], send: MemoryObjectSendStream[_Write]
    ) -> None:
        # Each compress task owns one compressor: a task runs one hop at a time, so no two
        # threads ever share it, and contexts do not multiply with the threads of the pool.
        compressor = new_compressor(level)
        async with receive, send:
            async for batch in receive:
                try:
                    frames = await anyio.to_thread.run_sync(
                        _compress_all, batch.chunks, compressor, limiter=cpu
                    )
                finally:
                    for chunk in batch.chunks:
                        chunk.window.release()
                for chunk, key, sizes, frame in zip(
                    batch.chunks, batch.keys, batch.sizes, frames, strict=True
                ):
                    assert chunk.digest is not None
                    # A replica holding a valid copy (perhaps at another level) keeps it, and
                    # the others get the same frame: older manifests name its stored length.
                    holders = [store for store, size in zip(stores, sizes, strict=True) if size is not None]
                    if holders:
                        held = await holders[0].get(key)
                        if await anyio.to_thread.run_sync(
                            _intact, held, chunk.digest, len(chunk.data), limiter=cpu
                        ):
                            frame = held
                    stats.stored_sizes[chunk.digest] = len(frame)
                    stats.new_chunks += 1
                    # A damaged copy of another size is rewritten so that every replica
                    # matches the manifest's stored length.
                    targets = [store for store, size in zip(stores, sizes, strict=True) if size != len(frame)]
                    await send.send(_Write(key, frame, targets))
                    advance(len(chunk.data))

    async def write(receive: MemoryObjectReceiveStream[_Write]) -> None:
        async with receive:
            async for job in receive:
                for store in job.stores:
                    await store.put(job.key, job.frame)
                    stats.written_bytes += len(job.frame)

    async with task_group() as group:
        group.start_soon(read_all, window_send)
        group.start_soon(look_up, window_receive, batch_send)
        for _ in range(CPU_THREADS):
            group.start_soon(compress, batch_receive.clone(), write_send.clone())
        for _ in range(WRITE_TASKS):
            group.start_soon(write, write_receive.clone())
        batch_receive.close()
        write_send.close()
        write_receive.close()
    stats.size = reader.size
    stats.digest = reader.digest()
    return refs, stats
