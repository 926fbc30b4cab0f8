"""Deployments: a whole version read through a :class:`VersionReader`, one VM disk each.

A deployment either materialises the disk (a sparse file, written like a restore: zero chunks
as holes, the whole-blob digest checked in order, fsync, rename) or reads every chunk and
discards it, which is what a VM booting from a remote disk costs the replicas. Either way the
whole-blob digest is computed in blob order and must match the manifest.

:func:`deploy_many` starts N deployments together on one reader, as a scale set would, so
that they share the reader's load view and its global limit of chunks in flight. Each
deployment reads ahead only as far as its share of that limit (``max_inflight`` divided by
the deployments running at once, at least one chunk), so the chunks held in memory are
bounded by the limit and not by the number of deployments. Deployments that write files
decode into one pool of buffers they all share, as many as one file write alone uses
(:data:`~blobrep.engine.restore.WRITE_BUFFERS`): a scale set of N disks holds the buffers
of one restore, and its chunks in flight are bounded by that pool too.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from blobrep.core.codec import hash_zeros, new_blob_hasher
from blobrep.core.stats import percentile
from blobrep.engine._concurrency import IO_TASKS, task_group
from blobrep.engine.disk_dirs import directories_for
from blobrep.engine.restore import ORDER_WINDOW, write_blob_file, write_buffers
from blobrep.engine.scale_set import ScaleSetProgress, check_counts, scale_set_targets
from blobrep.errors import BlobDigestMismatchError, BlobrepError, InvalidInputError, InvalidParameterError

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from blobrep.core.manifest import ChunkRef, Manifest
    from blobrep.engine.buffers import BufferPool
    from blobrep.engine.publish import ProgressCallback
    from blobrep.engine.version_read import ReaderStatistics, VersionReader


@dataclass(frozen=True, slots=True)
class DeploymentResult:
    """One deployment that completed, its disk checked against the manifest's digest."""

    output: str | None
    """The disk file written, or None if the bytes were discarded."""
    seconds: float
    size: int
    digest: str
    ok: bool
    """The digest matched (always, for a returned result: a mismatch raises)."""
    bytes_read: int
    """Stored bytes of the chunks read (zero chunks read nothing): a chunk in a pack costs its
    frame's range, not the pack. Failovers and repairs are in the reader's statistics."""
    lun: int | None = None
    """None for the OS disk; the LUN of a data disk."""
    data_disks: tuple[DeploymentResult, ...] = ()
    """For a VM's OS disk: each of its data disks deployed with it, by LUN (the fields above
    are the OS disk's)."""


@dataclass(frozen=True, slots=True)
class DeploymentSummary:
    """What N deployments at once did."""

    count: int
    succeeded: int
    errors: int
    seconds: tuple[float, ...]
    """Time of each deployment that succeeded, in deployment order."""
    p50: float | None
    """Nearest-rank median of ``seconds``; None if none succeeded."""
    p99: float | None
    makespan: float
    """From the start of the first deployment to the end of the last."""
    size: int
    """Bytes of the disk each deployment produced."""
    statistics: ReaderStatistics
    """The reader's work during these deployments: bytes per replica, failovers, repairs."""
    failures: tuple[str, ...] = field(default=())
    """The error of each deployment that failed, in deployment order."""
    outputs: tuple[str | None, ...] = field(default=())
    """The disk file of each deployment, in deployment order (None where it failed); empty
    when the bytes were discarded."""
    data_disk_outputs: tuple[tuple[str, ...], ...] = field(default=())
    """Per deployment, the data disk files it wrote, by LUN (empty where it failed, and when
    the version has no data disk or the bytes were discarded)."""


@dataclass(slots=True)
class _Pending:
    chunk: ChunkRef
    data: bytes | memoryview | None = None
    done: anyio.Event = field(default_factory=anyio.Event)


async def _read_and_hash(
    reader: VersionReader, manifest: Manifest, ahead: int, progress: ProgressCallback | None
) -> str:
    """The whole-blob digest of every chunk read through ``reader``, at most ``ahead`` at once.

    The digest is fed on the event loop: xxh3 takes about 30 microseconds a megabyte, less
    than the hop to a worker thread would cost, and the reader has already spent a thread hop
    per chunk on decoding and verifying it.
    """
    hasher = new_blob_hasher()
    done = [0]

    def feed(chunk: ChunkRef, data: bytes | memoryview | None) -> None:
        if data is None:
            hash_zeros(hasher, chunk.length)
        else:
            hasher.update(data)
        done[0] += chunk.length
        if progress is not None:
            progress(done[0], manifest.size)

    if ahead == 1:
        # One chunk at a time (a deployment in a large storm): no tasks or streams needed.
        for chunk in manifest.chunks:
            feed(chunk, None if chunk.is_zero else await reader.read_chunk(chunk))
        return hasher.hexdigest()
    turns = anyio.Semaphore(ahead)
    send, receive = anyio.create_memory_object_stream[_Pending](ahead)

    async def fill(pending: _Pending) -> None:
        pending.data = await reader.read_chunk(pending.chunk)
        pending.done.set()

    async def produce(send: MemoryObjectSendStream[_Pending]) -> None:
        async with send:
            for chunk in manifest.chunks:
                pending = _Pending(chunk)
                if chunk.is_zero:
                    pending.done.set()
                else:
                    await turns.acquire()
                    group.start_soon(fill, pending)
                await send.send(pending)

    async def consume(receive: MemoryObjectReceiveStream[_Pending]) -> None:
        async with receive:
            async for pending in receive:
                await pending.done.wait()
                feed(pending.chunk, pending.data)
                if pending.data is not None:
                    pending.data = None
                    turns.release()

    async with task_group() as group:
        group.start_soon(produce, send)
        group.start_soon(consume, receive)
    return hasher.hexdigest()


async def deploy(
    reader: VersionReader,
    output: Path | None = None,
    *,
    progress: ProgressCallback | None = None,
    chunks_at_once: int | None = None,
    buffers: BufferPool | None = None,
) -> DeploymentResult:
    """Read the reader's version once: into the sparse file ``output``, or discarding the bytes.

    ``chunks_at_once`` bounds the chunks this deployment reads ahead (by default as many as
    a restore: one deployment alone should keep every replica busy). A file is decoded into
    buffers of ``buffers`` (:func:`~blobrep.engine.restore.write_buffers` of the reader's
    manifest; the deployments of a scale set share one), by default a pool of its own.

    Raises:
        ChunkMissingError, ChunkCorruptError, StorageError: a chunk no replica could serve.
        BlobDigestMismatchError: the chunks are fine but do not make the recorded blob.
        InvalidInputError: ``output`` is a directory or its directory does not exist.
        InvalidParameterError: ``chunks_at_once`` is below 1, or the buffers of ``buffers``
            are smaller than the largest chunk.
    """
    if chunks_at_once is not None and chunks_at_once < 1:
        raise InvalidParameterError(f"chunks_at_once {chunks_at_once!r} must be at least 1")
    manifest = reader.manifest
    what = f"deployed {reader.gallery}/{reader.blob}"
    start = anyio.current_time()
    target: Path | None = None
    if output is None:
        digest = await _read_and_hash(reader, manifest, chunks_at_once or IO_TASKS, progress)
        if digest != manifest.digest:
            raise BlobDigestMismatchError(f"{what} hashes to {digest}, manifest says {manifest.digest}")
    else:
        target = Path(output).absolute()
        written = await write_blob_file(
            reader,
            target,
            what=what,
            tasks=chunks_at_once or IO_TASKS,
            window=chunks_at_once or ORDER_WINDOW,
            buffers=buffers,
            progress=progress,
        )
        digest = written.digest
    return DeploymentResult(
        output=None if target is None else str(target),
        seconds=anyio.current_time() - start,
        size=manifest.size,
        digest=digest,
        ok=digest == manifest.digest,
        bytes_read=sum(chunk.stored_length for chunk in manifest.chunks if not chunk.is_zero),
    )


async def deploy_many(
    reader: VersionReader,
    count: int,
    *,
    output_dir: Path | None = None,
    layout: Callable[[int], str] | None = None,
    concurrency: int | None = None,
    progress: ProgressCallback | None = None,
    data_disks: Sequence[DataDiskReader] = (),
) -> DeploymentSummary:
    """Run ``count`` deployments on ``reader``, ``concurrency`` at a time (all at once by default).

    Deployment ``i`` writes ``output_dir/{layout(i)}`` (``vm-{i}.img`` without ``layout``),
    or discards its bytes without ``output_dir``; those files are decoded into one pool of
    buffers for all of them, so their memory does not grow with ``count``. A deployment makes
    the directories its file needs below ``output_dir`` (``web_3/osdisk.img``), and removes
    them again if it fails. A deployment that fails is counted and its error kept; the
    others go on.
    Each deployment also reads every disk of ``data_disks`` after ``reader``'s (into
    ``output_dir/{its layout(i)}``): it succeeds only if every disk does.
    ``progress`` is called with the image bytes deployed so far over every deployment, out
    of ``count`` x the size of every disk.

    Raises:
        InvalidParameterError: ``count`` or ``concurrency`` is below 1, or ``layout`` names a
            place outside ``output_dir``.
        InvalidInputError: ``output_dir`` is not a directory.
    """
    check_counts(count, concurrency)
    targets = scale_set_targets(output_dir, count, layout)
    if output_dir is not None and not await anyio.to_thread.run_sync(os.path.isdir, output_dir):
        raise InvalidInputError(f"output directory {output_dir} does not exist or is not a directory")
    at_once = min(count, concurrency or count)
    ahead = max(1, min(IO_TASKS, reader.max_inflight // at_once))
    buffers = None if output_dir is None else write_buffers(reader.manifest)
    extra = [
        _ExtraDisk(
            disk,
            scale_set_targets(output_dir, count, disk.layout),
            None if output_dir is None else write_buffers(disk.reader.manifest),
        )
        for disk in data_disks
    ]
    slots = anyio.CapacityLimiter(at_once)
    results: list[DeploymentResult | None] = [None] * count
    failures: list[str | None] = [None] * count
    sizes = [reader.manifest.size, *(disk.reader.manifest.size for disk in data_disks)]
    watch = ScaleSetProgress(progress, count, sizes).watch

    async def one(index: int) -> None:
        async with slots:
            try:
                if output_dir is None:
                    first = await deploy(reader, None, chunks_at_once=ahead, progress=watch(index, 0))
                    results[index] = await _deploy_extra(first, extra, index, ahead, watch)
                    return
                luns = [disk.disk.lun for disk in extra]
                async with directories_for(output_dir, targets[index], data_disks=luns):
                    first = await deploy(
                        reader,
                        targets[index],
                        chunks_at_once=ahead,
                        buffers=buffers,
                        progress=watch(index, 0),
                    )
                    results[index] = await _deploy_extra(first, extra, index, ahead, watch)
            except BlobrepError as exc:
                failures[index] = str(exc)

    before = [reader.statistics(), *(disk.reader.statistics() for disk in data_disks)]
    start = anyio.current_time()
    async with task_group() as group:
        for index in range(count):
            group.start_soon(one, index)
    makespan = anyio.current_time() - start
    statistics = reader.statistics().since(before[0])
    for disk, earlier in zip(data_disks, before[1:], strict=True):
        statistics = statistics.plus(disk.reader.statistics().since(earlier))
    return _summary(results, failures, makespan, reader, statistics, output_dir is None)


def _summary(
    results: list[DeploymentResult | None],
    failures: list[str | None],
    makespan: float,
    reader: VersionReader,
    statistics: ReaderStatistics,
    discarded: bool,
) -> DeploymentSummary:
    """The summary of the deployments whose ``results`` (None: failed) and ``failures`` these are."""
    seconds = tuple(result.seconds for result in results if result is not None)
    return DeploymentSummary(
        count=len(results),
        succeeded=len(seconds),
        errors=len(results) - len(seconds),
        seconds=seconds,
        p50=percentile(seconds, 50) if seconds else None,
        p99=percentile(seconds, 99) if seconds else None,
        makespan=makespan,
        size=reader.manifest.size,
        statistics=statistics,
        failures=tuple(failure for failure in failures if failure is not None),
        outputs=() if discarded else tuple(None if result is None else result.output for result in results),
        data_disk_outputs=()
        if discarded or not any(result is not None and result.data_disks for result in results)
        else tuple(
            () if result is None else tuple(disk.output or "" for disk in result.data_disks)
            for result in results
        ),
    )


@dataclass(frozen=True, slots=True)
class DataDiskReader:
    """A data disk a scale set deploys beside the OS disk: its reader, and where instance
    ``i`` writes it below the output directory (``layout(i)``)."""

    lun: int
    reader: VersionReader
    layout: Callable[[int], str]


@dataclass(frozen=True, slots=True)
class _ExtraDisk:
    disk: DataDiskReader
    targets: list[Path]
    buffers: BufferPool | None


async def _deploy_extra(
    first: DeploymentResult,
    extra: Sequence[_ExtraDisk],
    index: int,
    ahead: int,
    watch: Callable[[int, int], ProgressCallback | None],
) -> DeploymentResult:
    """``first`` (deployment ``index``'s OS disk) with each data disk of ``extra`` deployed after it."""
    done: list[DeploymentResult] = []
    for position, disk in enumerate(extra, 1):
        target = disk.targets[index] if disk.targets else None
        result = await deploy(
            disk.disk.reader,
            target,
            chunks_at_once=ahead,
            buffers=disk.buffers,
            progress=watch(index, position),
        )
        done.append(dataclasses.replace(result, lun=disk.disk.lun))
    return dataclasses.replace(first, data_disks=tuple(done)) if done else first
