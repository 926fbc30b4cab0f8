"""The stages of one publish: read -> look up -> compress -> write (see :mod:`blobrep.engine.publish`
for what comes before and after: the lease, the replicas' sync and the manifest commit).

Work moves between stages in batches of one window, so the cost of a thread hop is paid per
window, not per chunk. The streams between the stages are bounded, so at most a few windows
are alive at once whatever the size of the source.

A chunk is looked up first among the chunks the gallery already holds in packs (the index
:mod:`blobrep.engine.pack_index` builds), then as an object of its own in every replica;
only a chunk found in neither is compressed and written. New chunks are written one of two
ways:

* into packs (``pack_size`` set, the default): one task appends each frame to the pack being
  filled (:class:`~blobrep.core.packs.PackBuilder`) and hands each full pack to a writer that
  puts it to every replica while the next one fills, up to :data:`PACK_WRITERS` at once so that
  their fsyncs overlap. At most that many packs and the one being filled are in memory;
* as objects of their own (``pack_size`` None, formats 1 and 2): put one by one, on
  :data:`WRITE_TASKS` tasks so that their fsyncs overlap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeVar

import anyio
import anyio.to_thread

from blobrep.core.codec import decode_chunk, encode_chunk, new_compressor
from blobrep.core.keys import chunk_key, pack_key
from blobrep.core.manifest import ChunkRef
from blobrep.core.packs import ClosedPack, PackBuilder
from blobrep.engine._concurrency import CPU_THREADS, task_group, thread_decompressor
from blobrep.engine.reader import SourceChunk, SourceReader
from blobrep.errors import ChunkCorruptError

if TYPE_CHECKING:
    import zstandard
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from blobrep.core.chunking import ChunkingSpec
    from blobrep.engine.publish import PublishProgressCallback
    from blobrep.engine.source import PublishSource
    from blobrep.storage.base import ObjectInfo, Store

_T = TypeVar("_T")

#: Tasks writing full packs: a few, so that one pack's fsync does not hold up the next
#: (each holds one pack while it writes).
PACK_WRITERS: Final = 2
#: Tasks writing compressed chunks: many, since each put waits for its fsync.
WRITE_TASKS: Final = 8


@dataclass(slots=True)
class Stats:
    size: int = 0
    digest: str = ""
    new_chunks: int = 0
    written_bytes: int = 0
    done_bytes: int = 0
    stored_sizes: dict[str, int] = field(default_factory=dict)
    """The stored length of each distinct chunk."""
    placed: dict[str, ChunkRef] = field(default_factory=dict)
    """Where each chunk that sits in a pack (a new one or one reused) is."""
    new_packs: int = 0


@dataclass(slots=True)
class _Batch:
    """Chunks of one window that no replica holds yet, to compress in one thread hop."""

    chunks: list[SourceChunk]
    keys: list[str]
    sizes: list[list[int | None]]
    """Per chunk, the size each replica holds it at (None: missing)."""
    first: int = 0
    """The number of the first chunk among every chunk sent to be compressed, in source order."""


@dataclass(slots=True)
class _Write:
    number: int
    """Its place among the chunks compressed (the order they go into packs)."""
    digest: str
    length: int
    key: str
    frame: bytes
    stores: list[Store]


async def _hand_over(send: MemoryObjectSendStream[_T], item: _T) -> None:
    """Send ``item`` to a stage of one task; if that task failed (its end of the stream is
    closed), wait to be cancelled with the rest, so that the caller sees its error alone."""
    try:
        await send.send(item)
    except anyio.BrokenResourceError:
        await anyio.sleep_forever()


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
    current = _Batch([], [], [], batch.first)
    size = 0
    for chunk, key, sizes in zip(batch.chunks, batch.keys, batch.sizes, strict=True):
        current.chunks.append(chunk)
        current.keys.append(key)
        current.sizes.append(sizes)
        size += len(chunk.data)
        if size >= share * (len(result) + 1) and len(result) < parts - 1:
            result.append(current)
            current = _Batch([], [], [], current.first + len(current.chunks))
    if current.chunks:
        result.append(current)
    return result


class Pipeline:
    """The stages of one publish and what they share (the chunk list, the figures, the
    digests already claimed), each stage a task or a few, joined by bounded streams (see the
    module docstring). Use once: ``refs, stats = await Pipeline(...).run()``."""

    def __init__(
        self,
        source: PublishSource,
        stores: Sequence[Store],
        gallery: str,
        spec: ChunkingSpec,
        level: int,
        progress: PublishProgressCallback | None,
        *,
        pack_size: int | None,
        known: Mapping[str, ChunkRef],
    ) -> None:
        self._reader = SourceReader(source, spec)
        self._pack_size = pack_size
        self._known = known
        self._total = source.size
        self._stores = stores
        self._gallery = gallery
        self._level = level
        self._progress = progress
        self._stats = Stats()
        self._refs: list[tuple[str | None, int]] = []
        self._cpu = anyio.CapacityLimiter(CPU_THREADS)
        self._claimed: set[str] = set()
        self._compressed = 0

    async def run(self) -> tuple[list[tuple[str | None, int]], Stats]:
        """The chunks in order, as ``(digest, plain length)``, and the publish's figures."""
        window_send, window_receive = anyio.create_memory_object_stream[list[SourceChunk]](1)
        batch_send, batch_receive = anyio.create_memory_object_stream[_Batch](CPU_THREADS)
        write_send, write_receive = anyio.create_memory_object_stream[_Write](0)
        async with task_group() as group:
            group.start_soon(self._read_all, window_send)
            group.start_soon(self._look_up, window_receive, batch_send)
            for _ in range(CPU_THREADS):
                group.start_soon(self._compress, batch_receive.clone(), write_send.clone())
            if self._pack_size is None:
                for _ in range(WRITE_TASKS):
                    group.start_soon(self._write, write_receive.clone())
            else:
                pack_send, pack_receive = anyio.create_memory_object_stream[ClosedPack](0)
                group.start_soon(self._pack, self._pack_size, write_receive.clone(), pack_send)
                for _ in range(PACK_WRITERS):
                    group.start_soon(self._put_packs, pack_receive.clone())
                pack_receive.close()
            batch_receive.close()
            write_send.close()
            write_receive.close()
        self._stats.size = self._reader.size
        self._stats.digest = self._reader.digest()
        return self._refs, self._stats

    def _advance(self, length: int) -> None:
        stats = self._stats
        stats.done_bytes += length
        if self._progress is not None:
            total = self._total
            self._progress(stats.done_bytes, None if total is None else max(total, stats.done_bytes))

    async def _read_all(self, send: MemoryObjectSendStream[list[SourceChunk]]) -> None:
        async with send:
            while not self._reader.eof:
                await send.send(await self._reader.next_chunks())

    async def _look_up(
        self, receive: MemoryObjectReceiveStream[list[SourceChunk]], send: MemoryObjectSendStream[_Batch]
    ) -> None:
        """Record every chunk in order; pass on the ones some replica lacks."""
        async with receive, send:
            async for chunks in receive:
                fresh: list[SourceChunk] = []
                for chunk in chunks:
                    self._refs.append((chunk.digest, len(chunk.data)))
                    if chunk.digest is None or chunk.digest in self._claimed:
                        chunk.window.release()
                        self._advance(len(chunk.data))
                        continue
                    self._claimed.add(chunk.digest)
                    packed = self._known.get(chunk.digest)
                    if packed is not None and packed.length == len(chunk.data):
                        self._stats.stored_sizes[chunk.digest] = packed.stored_length
                        self._stats.placed[chunk.digest] = packed
                        chunk.window.release()
                        self._advance(len(chunk.data))
                    else:
                        fresh.append(chunk)
                if not fresh:
                    continue
                keys = [chunk_key(self._gallery, chunk.digest) for chunk in fresh if chunk.digest is not None]
                found = [await store.stat_many(keys) for store in self._stores]
                batch = _Batch([], [], [])
                for position, chunk in enumerate(fresh):
                    sizes = [_size(infos[position]) for infos in found]
                    first = sizes[0]
                    if first is not None and all(size == first for size in sizes):
                        assert chunk.digest is not None
                        self._stats.stored_sizes[chunk.digest] = first
                        chunk.window.release()
                        self._advance(len(chunk.data))
                    else:
                        batch.chunks.append(chunk)
                        batch.keys.append(keys[position])
                        batch.sizes.append(sizes)
                if batch.chunks:
                    batch.first = self._compressed
                    self._compressed += len(batch.chunks)
                    for part in _split(batch, CPU_THREADS):
                        await send.send(part)

    async def _compress(
        self, receive: MemoryObjectReceiveStream[_Batch], send: MemoryObjectSendStream[_Write]
    ) -> None:
        # Each compress task owns one compressor: a task runs one hop at a time, so no two
        # threads ever share it, and contexts do not multiply with the threads of the pool.
        compressor = new_compressor(self._level)
        async with receive, send:
            async for batch in receive:
                try:
                    frames = await anyio.to_thread.run_sync(
                        _compress_all, batch.chunks, compressor, limiter=self._cpu
                    )
                finally:
                    for chunk in batch.chunks:
                        chunk.window.release()
                for number, (chunk, key, sizes, frame) in enumerate(
                    zip(batch.chunks, batch.keys, batch.sizes, frames, strict=True), batch.first
                ):
                    await _hand_over(send, await self._job(number, chunk, key, sizes, frame))
                    self._advance(len(chunk.data))

    async def _job(
        self, number: int, chunk: SourceChunk, key: str, sizes: list[int | None], frame: bytes
    ) -> _Write:
        """The write of one compressed chunk: to the replicas whose copy does not match."""
        assert chunk.digest is not None
        # A replica holding a valid copy (perhaps at another level) keeps it, and the others
        # get the same frame: older manifests name its stored length.
        holders = [store for store, size in zip(self._stores, sizes, strict=True) if size is not None]
        if self._pack_size is not None:
            # Into a new pack for every replica: a replica's own copy stays where it is,
            # named by the manifests that name it.
            holders, sizes = [], [None] * len(sizes)
        if holders:
            held = await holders[0].get(key)
            if await anyio.to_thread.run_sync(
                _intact, held, chunk.digest, len(chunk.data), limiter=self._cpu
            ):
                frame = held
        self._stats.stored_sizes[chunk.digest] = len(frame)
        self._stats.new_chunks += 1
        # A damaged copy of another size is rewritten so that every replica matches the
        # manifest's stored length.
        targets = [store for store, size in zip(self._stores, sizes, strict=True) if size != len(frame)]
        return _Write(number, chunk.digest, len(chunk.data), key, frame, targets)

    async def _write(self, receive: MemoryObjectReceiveStream[_Write]) -> None:
        async with receive:
            async for job in receive:
                for store in job.stores:
                    await store.put(job.key, job.frame)
                    self._stats.written_bytes += len(job.frame)

    async def _pack(
        self,
        target: int,
        receive: MemoryObjectReceiveStream[_Write],
        send: MemoryObjectSendStream[ClosedPack],
    ) -> None:
        """Fill packs with the new frames in source order; hand over each full one.

        Frames arrive in the order the compress tasks finish them; those ahead of their turn
        wait here (no more than the batches being compressed), so the same source always
        makes the same packs and the same manifest.
        """
        builder = PackBuilder(target=target)
        waiting: dict[int, _Write] = {}
        turn = 0
        async with receive, send:
            async for arrived in receive:
                waiting[arrived.number] = arrived
                while turn in waiting:
                    job = waiting.pop(turn)
                    turn += 1
                    if builder.add(job.digest, job.length, job.frame):
                        await _hand_over(send, await self._close(builder))
            if builder.pending:
                await _hand_over(send, await self._close(builder))

    async def _close(self, builder: PackBuilder) -> ClosedPack:
        closed = await anyio.to_thread.run_sync(builder.close, limiter=self._cpu)
        assert closed is not None
        return closed

    async def _put_packs(self, receive: MemoryObjectReceiveStream[ClosedPack]) -> None:
        """Put each full pack to every replica at once; then its chunks have their place."""
        async with receive:
            async for closed in receive:
                key = pack_key(self._gallery, closed.ref.digest)
                async with task_group() as group:
                    for store in self._stores:
                        group.start_soon(store.put, key, closed.parts)
                self._stats.written_bytes += closed.ref.size * len(self._stores)
                self._stats.new_packs += 1
                sizes = self._stats.stored_sizes
                for digest, offset in closed.offsets.items():
                    # The plain length is filled in when the manifest is built.
                    self._stats.placed[digest] = ChunkRef(digest, 0, sizes[digest], closed.ref, offset)
