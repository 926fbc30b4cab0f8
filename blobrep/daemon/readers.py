"""The shared readers: one open :class:`~blobrep.service.VersionReader` per disk of a version
and region (the OS disk, or a data disk by LUN: each disk is a blob of its own).

Downloads of the same disk of a version in the same region share one reader, so its replica selector
sees every download's chunk reads at once and spreads them over the replicas by load, and its
limit of chunk reads in flight holds for all of them together. A reader is keyed by what it
reads: gallery, image, version, disk (its LUN), region, the blob the catalog recorded (its manifest pin) and
the names of the replicas it reads from, so a version republished under the same name, or a
region that gained replicas, gets a reader of its own rather than a stale one.

Lifetime: a reader opens on the first download that needs it (later ones wait for that same
opening instead of starting another), is counted per download, and closes :data:`LINGER`
seconds after the last download using it is done (completed, failed, or cancelled because its
client went away) unless another takes it up meanwhile, or when the daemon stops. The linger
is for clients that read a disk by ranges, one request after another: they keep one reader
and the edge chunks it holds (:class:`EdgeChunks`) instead of opening one per range.
A ``VersionReader`` holds a task group (its repairs), which must be
entered and left by one task, so each reader lives in a task of the pool's own task group
(the daemon's lifespan holds it) that opens it, waits for its last download, and closes it.
Whoever asks is checked by the service first (:meth:`GalleryService.readable_version`); the
pool never decides who may read.

Memory: every chunk a download reads takes its length from the pool's
:class:`~blobrep.daemon.budget.ByteBudget` (:data:`DOWNLOAD_BYTES`) until it is sent, so the
chunks held by all downloads together stay bounded however many clients read; the edge
chunks each reader keeps are bounded apart (:data:`EDGE_BYTES`).

Statistics for ``/metrics``, read at scrape time: :meth:`ReaderPool.replica_statistics`
returns a :class:`PoolStatistics` whose ``replicas`` are one row per replica, ``(region,
replica name, stored bytes served, chunk reads, failed chunk reads)``, with ``failovers`` and
``repairs``, all summed over every reader the pool has opened, closed ones included, so the
numbers only grow, as Prometheus counters must; ``open`` and ``opened`` count the readers.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import anyio

from blobrep.core.disks import version_disks
from blobrep.core.names import BlobName
from blobrep.core.selection import Policy
from blobrep.daemon.budget import ByteBudget
from blobrep.errors import BusyError
from blobrep.service import VersionReader

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from blobrep.core.gallery import BlobInfo, GalleryImageVersion
    from blobrep.core.manifest import ChunkRef
    from blobrep.service import ReaderStatistics, Store

#: Chunks one download holds at most: the one it sends and those it reads ahead. Its share of
#: the reader's limit of reads in flight is smaller when many downloads share the reader.
MAX_AHEAD: Final = 8

#: Seconds a shared reader stays open after its last download, for the next range request.
LINGER: Final = 2.0

#: The most bytes of edge chunks one shared reader keeps (see :class:`EdgeChunks`).
EDGE_BYTES: Final = 32 * 1024 * 1024

#: The most plain bytes of chunks all downloads of the pool hold at once, read ahead or being
#: sent (:class:`~blobrep.daemon.budget.ByteBudget`): enough for both cores to decode while
#: the loop sends, whatever the number of clients.
DOWNLOAD_BYTES: Final = 160 * 1024 * 1024

_log = logging.getLogger(__name__)

Row = tuple[str, str, int, int, int]
"""``(region, replica name, stored bytes served, chunk reads, failed chunk reads)``."""


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """What every reader of the pool did so far (closed ones included)."""

    replicas: tuple[Row, ...]
    """One row per replica ever read, in (region, replica) order."""
    failovers: int
    """Chunk reads that moved on to another replica after one failed."""
    repairs: int
    """Chunks written back to a replica that lacked them or held them corrupt."""
    open: int
    """Readers open now."""
    opened: int
    """Readers opened since the daemon started."""
    budget_held: int = 0
    """Bytes of chunks downloads hold now, of the pool's budget."""
    budget_capacity: int = 0
    """The pool's budget of chunk bytes held by downloads at once."""
    budget_waits: int = 0
    """Chunk reads that waited for the budget since the daemon started."""


@dataclass(frozen=True, slots=True)
class _Key:
    gallery: str
    image: str
    version: str
    lun: int | None
    region: str
    blob: BlobInfo | None
    replicas: tuple[str, ...]


class EdgeChunks:
    """Decoded chunks a range ended inside of, kept for the range that starts where it ended.

    A client reading a disk by ranges cuts chunks at every range boundary, and without this
    each cut chunk would be fetched, decompressed and verified once for each of the two
    ranges (a third more chunk reads for 4 MiB ranges over ~1.6 MiB chunks). A chunk is kept
    until it is taken (once) or pushed out by newer ones beyond :data:`EDGE_BYTES`, so the
    memory is bounded whatever the clients do. Keyed by digest: the bytes were verified
    against it when they were read.
    """

    __slots__ = ("_chunks", "_held", "hits")

    def __init__(self) -> None:
        self._chunks: OrderedDict[str, bytes | memoryview] = OrderedDict()
        self._held = 0
        self.hits = 0

    def take(self, digest: str) -> bytes | memoryview | None:
        data = self._chunks.pop(digest, None)
        if data is not None:
            self._held -= len(data)
            self.hits += 1
        return data

    def keep(self, digest: str, data: bytes | memoryview) -> None:
        if digest in self._chunks or len(data) > EDGE_BYTES:
            return
        self._chunks[digest] = data
        self._held += len(data)
        while self._held > EDGE_BYTES:
            _, dropped = self._chunks.popitem(last=False)
            self._held -= len(dropped)


@dataclass(eq=False, slots=True)
class _Shared:
    """One reader and the downloads using it."""

    key: _Key
    users: int = 0
    reader: VersionReader | None = None
    offsets: tuple[int, ...] = ()
    lengths: tuple[int, ...] = ()
    error: Exception | None = None
    ready: anyio.Event = field(default_factory=anyio.Event)
    """Set once the reader is open, or failed to open (``error``)."""
    unused: anyio.Event = field(default_factory=anyio.Event)
    """Set when the last download using it is done: the reader closes."""
    edges: EdgeChunks = field(default_factory=EdgeChunks)


@dataclass(frozen=True, slots=True)
class Lease:
    """One download's use of a shared reader: the open reader and the chunks' layout."""

    _shared: _Shared
    reader: VersionReader
    budget: ByteBudget
    """The pool's budget of chunk bytes held by downloads, which every chunk read takes from."""
    offsets: tuple[int, ...]
    """First byte of each chunk of the manifest, in order."""
    lengths: tuple[int, ...]
    """Plain length of each chunk of the manifest, in order."""

    async def read_chunk(self, ref: ChunkRef) -> bytes | memoryview:
        """The verified plain bytes of ``ref``: the edge a previous range left, or read through
        the shared reader (verified, with failover)."""
        if ref.digest is not None:
            kept = self._shared.edges.take(ref.digest)
            if kept is not None:
                return kept
        return await self.reader.read_chunk(ref)

    def keep_edge(self, ref: ChunkRef, data: bytes | memoryview) -> None:
        """Keep ``data``, the bytes of ``ref`` that a range ended inside of, for the next range."""
        if ref.digest is not None:
            self._shared.edges.keep(ref.digest, data)

    def ahead(self) -> int:
        """Chunks this download may hold now (the one it sends and those it reads ahead): its
        share of the reader's reads in flight, at least one."""
        return max(1, min(MAX_AHEAD, self.reader.max_inflight // max(1, self._shared.users)))


class ReaderPool:
    """The daemon's shared readers; see the module docstring. Use :func:`open_pool`."""

    def __init__(self, group: TaskGroup, budget: int = DOWNLOAD_BYTES) -> None:
        self._group = group
        self.budget = ByteBudget(budget)
        self._shared: dict[_Key, _Shared] = {}
        self._live: set[_Shared] = set()
        self._opened = 0
        self._closed_rows: dict[tuple[str, str], tuple[int, int, int]] = {}
        self._closed_failovers = 0
        self._closed_repairs = 0

    @asynccontextmanager
    async def reading(
        self, version: GalleryImageVersion, region: str, stores: Sequence[Store], lun: int | None = None
    ) -> AsyncIterator[Lease]:
        """A lease of the reader of the disk ``lun`` (None: the OS disk) of ``version`` in
        ``region`` (``stores``: its Completed replicas), opened if no download holds one, for
        as long as the block runs.

        The caller must have been checked for this version and region by the service.

        Raises:
            ManifestNotFoundError, ManifestError, StorageError: the reader could not open
                (no replica holds the version's pinned manifest).
        """
        blob = next((disk.info for disk in version_disks(version) if disk.lun == lun), None)
        key = _Key(
            version.gallery,
            version.image,
            str(version.version),
            lun,
            region,
            blob,
            tuple(store.name for store in stores),
        )
        shared = self._shared.get(key)
        if shared is None:
            shared = self._shared[key] = _Shared(key)
            self._group.start_soon(self._keep, shared, version, list(stores), name=f"reader {key}")
        if shared.users == 0 and shared.unused.is_set():
            shared.unused = anyio.Event()  # a lingering reader taken up again
        shared.users += 1
        try:
            await shared.ready.wait()
            if shared.error is not None:
                raise shared.error
            if shared.reader is None:
                raise BusyError(
                    f"the daemon is stopping: {version.gallery}/{version.image} cannot be read now; retry"
                )
            yield Lease(shared, shared.reader, self.budget, shared.offsets, shared.lengths)
        finally:
            shared.users -= 1
            if shared.users == 0:
                shared.unused.set()  # it lingers, then closes in its own task (see _keep)

    async def _keep(self, shared: _Shared, version: GalleryImageVersion, stores: list[Store]) -> None:
        """Open the reader, hold it open while downloads use it, close it; never raises, since
        a failure here must reach the downloads waiting for the reader, not stop the daemon."""
        reader = VersionReader(
            stores,
            version.gallery,
            BlobName(version.image, version.version, shared.key.lun),
            expect=shared.key.blob,
            policy=Policy.LEAST_LOADED,
        )
        opened = False
        try:
            async with reader:
                opened = True
                manifest = reader.manifest
                shared.offsets = tuple(offset for offset, _ in manifest.with_offsets())
                shared.lengths = tuple(chunk.length for chunk in manifest.chunks)
                shared.reader = reader
                self._opened += 1
                self._live.add(shared)
                shared.ready.set()
                while True:
                    await shared.unused.wait()
                    # A client reading a disk range after range comes back at once: the reader
                    # (and the edge chunks it keeps) waits for it a little before closing.
                    await anyio.sleep(LINGER)
                    if shared.users == 0:
                        break
                # No await between the check and this: nobody can take it up in between.
                if self._shared.get(shared.key) is shared:
                    del self._shared[shared.key]
        except Exception as exc:
            if opened:
                _log.warning("closing the shared reader of %s failed: %s", shared.key, exc)
            else:
                shared.error = exc
        finally:
            if self._shared.get(shared.key) is shared and not opened:
                del self._shared[shared.key]
            if shared in self._live:
                self._live.discard(shared)
                self._tally(shared.key.region, reader.statistics())
            shared.ready.set()

    def _tally(self, region: str, statistics: ReaderStatistics) -> None:
        """Add the work of a reader that closed to the totals."""
        _add(self._closed_rows, region, statistics)
        self._closed_failovers += statistics.failovers
        self._closed_repairs += statistics.repairs

    def replica_statistics(self) -> PoolStatistics:
        """A snapshot of the work of every reader the pool has opened, closed ones included:
        per replica ``(region, replica name, stored bytes served, chunk reads, failed chunk
        reads)`` rows, failovers and repairs (see :class:`PoolStatistics`)."""
        rows = dict(self._closed_rows)
        failovers, repairs = self._closed_failovers, self._closed_repairs
        for shared in self._live:
            assert shared.reader is not None
            statistics = shared.reader.statistics()
            _add(rows, shared.key.region, statistics)
            failovers += statistics.failovers
            repairs += statistics.repairs
        return PoolStatistics(
            replicas=tuple((region, name, *counts) for (region, name), counts in sorted(rows.items())),
            failovers=failovers,
            repairs=repairs,
            open=len(self._live),
            opened=self._opened,
            budget_held=self.budget.held,
            budget_capacity=self.budget.capacity,
            budget_waits=self.budget.waits,
        )


def _add(
    rows: dict[tuple[str, str], tuple[int, int, int]], region: str, statistics: ReaderStatistics
) -> None:
    """Add a reader's per-replica work in ``region`` to ``rows``."""
    for name, replica in statistics.replicas.items():
        served, requests, failures = rows.get((region, name), (0, 0, 0))
        rows[region, name] = (
            served + replica.bytes_served,
            requests + replica.requests,
            failures + replica.failures,
        )


@asynccontextmanager
async def open_pool(budget: int = DOWNLOAD_BYTES) -> AsyncIterator[ReaderPool]:
    """A pool whose readers live until the block ends; any still open then are closed.
    ``budget``: the most chunk bytes its downloads hold at once."""
    async with anyio.create_task_group() as group:
        yield ReaderPool(group, budget)
        group.cancel_scope.cancel()
