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
import xxhash
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from blobrep.core.chunking import BoundaryFinder, ChunkingSpec
from blobrep.core.codec import (
    DEFAULT_LEVEL,
    digest_of,
    encode_chunk,
    is_zero,
    new_blob_hasher,
    validate_level,
)
from blobrep.core.keys import chunk_key, manifest_key
from blobrep.core.manifest import ChunkRef, build_manifest
from blobrep.core.names import BlobName, validate_gallery_name
from blobrep.engine._concurrency import CPU_THREADS, IO_TASKS, task_group, thread_compressor
from blobrep.engine.manifests import commit_manifest
from blobrep.engine.source import open_source
from blobrep.errors import InvalidParameterError, NotFoundError
from blobrep.storage.base import Store

#: Bytes read per window; at least twice the largest chunk so every window yields chunks.
WINDOW_BYTES: Final = 8 * 1024 * 1024

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


@dataclass(slots=True)
class _Piece:
    index: int
    data: memoryview
    digest: str | None  # None for a zero chunk


class _Reader:
    """Reads a file window by window and turns it into pieces (runs on a worker thread)."""

    def __init__(self, fd: int, spec: ChunkingSpec) -> None:
        self.fd = fd
        self.finder = BoundaryFinder(spec)
        self.hasher: xxhash.xxh3_128 = new_blob_hasher()
        self.window = max(WINDOW_BYTES, 2 * spec.max_size)
        self.position = 0
        self.index = 0
        self.carry: memoryview = memoryview(b"")
        self.eof = False

    def next_pieces(self) -> list[_Piece]:
        carried = len(self.carry)
        buffer = bytearray(carried + self.window)
        view = memoryview(buffer)
        view[:carried] = self.carry
        filled = carried
        while filled < len(buffer):
            got = os.preadv(self.fd, [view[filled:]], self.position)
            if got == 0:
                self.eof = True
                break
            self.hasher.update(view[filled : filled + got])
            filled += got
            self.position += got
        data = view[:filled]
        pieces: list[_Piece] = []
        start = 0
        for length in self.finder.cut(data, final=self.eof):
            piece = data[start : start + length]
            digest = None if is_zero(piece) else digest_of(piece)
            pieces.append(_Piece(self.index, piece, digest))
            self.index += 1
            start += length
        self.carry = data[start:]
        return pieces


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


async def _run_pipeline(
    fd: int,
    total: int,
    stores: Sequence[Store],
    gallery: str,
    spec: ChunkingSpec,
    level: int,
    progress: ProgressCallback | None,
) -> tuple[list[tuple[str | None, int]], _Stats]:
    reader = _Reader(fd, spec)
    stats = _Stats()
    refs: dict[int, tuple[str | None, int]] = {}
    cpu = anyio.CapacityLimiter(CPU_THREADS)
    claimed: set[str] = set()
    send, receive = anyio.create_memory_object_stream[_Piece](max_buffer_size=IO_TASKS * 2)

    async def read_all(send: MemoryObjectSendStream[_Piece]) -> None:
        async with send:
            while not reader.eof:
                for piece in await anyio.to_thread.run_sync(reader.next_pieces):
                    await send.send(piece)

    async def store_chunk(piece: _Piece, digest: str) -> None:
        key = chunk_key(gallery, digest)
        sizes = [await _stored_size(store, key) for store in stores]
        if sizes[0] is not None and all(size == sizes[0] for size in sizes):
            stats.stored_sizes[digest] = sizes[0]
            return
        frame = await anyio.to_thread.run_sync(
            lambda: encode_chunk(piece.data, thread_compressor(level)), limiter=cpu
        )
        stats.stored_sizes[digest] = len(frame)
        stats.new_chunks += 1
        for store, size in zip(stores, sizes, strict=True):
            if size != len(frame):
                await store.put(key, frame)
                stats.written_bytes += len(frame)

    async def work(receive: MemoryObjectReceiveStream[_Piece]) -> None:
        async with receive:
            async for piece in receive:
                length = len(piece.data)
                refs[piece.index] = (piece.digest, length)
                if piece.digest is not None and piece.digest not in claimed:
                    claimed.add(piece.digest)
                    await store_chunk(piece, piece.digest)
                stats.done_bytes += length
                if progress is not None:
                    progress(stats.done_bytes, max(total, stats.done_bytes))

    async with task_group() as group:
        group.start_soon(read_all, send)
        for _ in range(IO_TASKS):
            group.start_soon(work, receive.clone())
        receive.close()
    stats.size = reader.position
    stats.digest = reader.hasher.hexdigest()
    return [refs[index] for index in range(len(refs))], stats
