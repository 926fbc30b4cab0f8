"""Publishing a version's disks into its source region: the OS disk, then each data disk.

Each disk is a publish of its own (:func:`blobrep.engine.publish.publish`) into the same
replicas, under its own blob name, so each is content-addressed into the gallery's one chunk
and pack store and deduplicates against every disk there, its siblings included. Each
publish syncs its replicas before it commits that disk's manifest, so no manifest names an
object that is not durable. The disks go one after the other: one publish already keeps
every core busy, and a failure stops at the disk that failed.

What a user is told adds up over the disks: progress is bytes over every disk, and the
figures handed to ``on_published`` are the sums (new chunks, bytes written, bytes read).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import anyio.to_thread

from blobrep.core.disks import check_luns
from blobrep.core.gallery import BlobInfo, DataDisk
from blobrep.core.names import BlobName

if TYPE_CHECKING:
    from blobrep.core.chunking import ChunkingSpec
    from blobrep.core.version import ImageVersion
    from blobrep.engine.publish import PublishProgressCallback, PublishResult
    from blobrep.engine.source import PublishSource
    from blobrep.storage.base import Store

DiskSource: TypeAlias = "str | os.PathLike[str] | PublishSource"
"""What a disk is published from: a file's path, or an open source."""

DataDiskSources: TypeAlias = "Mapping[int, str | os.PathLike[str] | PublishSource]"
"""The data disks of a new version: LUN (0..63) -> what to publish there."""


@dataclass(frozen=True, slots=True)
class PublishedDisks:
    """What publishing some disks of a version gave: the OS disk's blob if it was among them,
    and the data disks published (each with its blob), by LUN."""

    blob: BlobInfo | None
    data_disks: tuple[DataDisk, ...]
    result: PublishResult
    """The figures of the whole publish, summed over the disks (see the module docstring)."""


def check_data_disk_sources(data_disks: DataDiskSources | None) -> list[tuple[int, DiskSource]]:
    """The data disks to publish, by LUN, with their LUNs checked and their paths readable.

    Raises:
        InvalidNameError: a LUN is not 0..63.
        InvalidParameterError: a LUN is given twice.
        SourceError: a path is missing, unreadable or not a file.
    """
    from blobrep.engine.source import check_source

    if not data_disks:
        return []
    luns = check_luns(data_disks)
    for lun in luns:
        source = data_disks[lun]
        if isinstance(source, (str, os.PathLike)):
            check_source(source)
    return [(lun, data_disks[lun]) for lun in luns]


class _Progress:
    """One progress over several publishes: bytes done and known over every disk."""

    def __init__(self, forward: PublishProgressCallback | None, totals: list[int | None]) -> None:
        self._forward = forward
        self._totals = totals
        self._done = [0] * len(totals)

    def disk(self, position: int) -> PublishProgressCallback | None:
        if self._forward is None:
            return None

        def update(done: int, total: int | None) -> None:
            self._done[position] = done
            self._totals[position] = total
            self.report()

        return update

    def finish(self, position: int, size: int) -> None:
        self._done[position] = size
        self._totals[position] = size
        self.report()

    def report(self) -> None:
        if self._forward is None:
            return
        totals = self._totals
        total = None if any(size is None for size in totals) else sum(size or 0 for size in totals)
        self._forward(sum(self._done), total)


def _size_of(source: DiskSource) -> int | None:
    if isinstance(source, (str, os.PathLike)):
        try:
            return os.stat(source).st_size
        except OSError:
            return None
    return None


async def publish_disks(
    stores: Sequence[Store],
    gallery: str,
    image: str,
    number: ImageVersion,
    disks: Sequence[tuple[int | None, DiskSource]],
    *,
    chunking: ChunkingSpec | None,
    progress: PublishProgressCallback | None,
) -> PublishedDisks:
    """Publish each of ``disks`` (LUN None: the OS disk) into every store of ``stores``, in order.

    Raises:
        What :func:`blobrep.engine.publish.publish` raises, for the first disk that fails;
        the disks published before it stay in the replicas, named by no catalog row.
    """
    from blobrep.engine.publish import publish

    totals = [await anyio.to_thread.run_sync(_size_of, source) for _, source in disks]
    combined = _Progress(progress, totals)
    blob: BlobInfo | None = None
    published: list[DataDisk] = []
    results: list[PublishResult] = []
    for position, (lun, source) in enumerate(disks):
        result = await publish(
            source,
            stores,
            gallery,
            BlobName(image, number, lun),
            chunking=chunking,
            progress=combined.disk(position),
            replace=True,
        )
        combined.finish(position, result.size)
        info = BlobInfo(result.size, result.digest, result.stored_bytes, result.chunks, result.manifest_pin)
        if lun is None:
            blob = info
        else:
            published.append(DataDisk(lun, info))
        results.append(result)
    return PublishedDisks(blob, tuple(published), _summed(results))


def _summed(results: list[PublishResult]) -> PublishResult:
    """The first disk's result with the figures of every disk added up."""
    first = results[0]
    if len(results) == 1:
        return first
    return dataclasses.replace(
        first,
        size=sum(result.size for result in results),
        new_chunks=sum(result.new_chunks for result in results),
        written_bytes=sum(result.written_bytes for result in results),
        new_packs=sum(result.new_packs for result in results),
        committed=any(result.committed for result in results),
    )


def merge_data_disks(recorded: Sequence[DataDisk], published: Sequence[DataDisk]) -> tuple[DataDisk, ...]:
    """``recorded`` with each disk of ``published`` in place of the one at its LUN."""
    by_lun = {disk.lun: disk for disk in recorded}
    by_lun.update((disk.lun, disk) for disk in published)
    return tuple(by_lun[lun] for lun in sorted(by_lun))


__all__ = [
    "DataDiskSources",
    "DiskSource",
    "PublishedDisks",
    "check_data_disk_sources",
    "merge_data_disks",
    "publish_disks",
]
