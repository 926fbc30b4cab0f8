"""Garbage collection: delete the chunks of a gallery that no manifest in a replica references.

Chunks are shared between the versions of a gallery, so deleting a version removes only its
manifest; what it alone used stays until this mark-and-sweep removes it, one replica at a time:

1. take an *exclusive* lease on the gallery in the replica (see :mod:`blobrep.engine.leases`),
   failing fast if a publish or a replication holds a live shared lease: such a writer may
   have found a chunk present and skipped it, or written chunks its manifest does not yet name;
2. mark every chunk that any manifest of the gallery names. A manifest that does not parse
   stops the collection of that replica before anything is deleted: the chunks it names
   cannot be known, and deleting them could lose a version;
3. sweep: delete each unreferenced chunk last written more than ``grace`` seconds ago (by the
   store's clock). The grace protects writers outside the lease protocol and holders stalled
   past their lease; ``0`` trusts the leases alone;
4. remove the temporary objects that interrupted puts left under the gallery (stores do not
   list them, so nothing else ever would), again only those older than ``grace``, and never
   younger than a minute: acquirers retrying their leases keep writing under the gallery
   while we hold ours, so even with ``grace=0`` a fresh temporary may be a put in progress;
5. remove leases whose holders died or stopped refreshing (stale), and ``sync()`` the replica.

A full replica. Taking the lease is a write, so a replica with no space left would refuse the
one operation that can free space. When the put of its lease fails with
:class:`StorageFullError`, garbage collection makes room first, without a lease:

* it reads the gallery's leases; if any is live, it gives up with :class:`BusyError`: that
  writer may depend on unreferenced chunks, and only the lease protocol protects them;
* otherwise no writer can be working, and none can start while the replica stays full: a
  writer's first act is the put of its own lease, which fails like ours. (A writer that was
  leased before the disk filled cannot refresh its lease either; it shows as live until it
  has stopped itself, see :mod:`blobrep.engine.leases`.)
* so it removes old temporaries (garbage by any account) and tries its lease again; then it
  deletes unreferenced chunks older than ``grace`` one at a time, oldest first, trying its
  lease again after each. A writer can lease only once space is free, so a chunk deleted
  before that is already gone when the writer looks for it; the leases are read again before
  each further deletion, so a writer that got in first stops them (:class:`BusyError`).
  Deleting one at a time frees no more than the lease needs; the rest of the collection then
  runs as usual, under the lease.

Without a write there is no reading of the store's clock, so while making room "now" is the
newest modification time seen (leases, unreferenced chunks): never later than the store's
real time, so a lease or a chunk can only look younger than it is, and every misjudgement
keeps rather than deletes. A dry run deletes nothing, so it cannot make room for its lease.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Final

import anyio
import anyio.to_thread

from blobrep.core.keys import MANIFEST_FILENAME, chunk_key, chunks_prefix, is_digest
from blobrep.core.manifest import parse_manifest
from blobrep.core.names import validate_gallery_name
from blobrep.engine._concurrency import CPU_THREADS, IO_TASKS, task_group
from blobrep.engine.leases import Lease, LeaseInfo, hold_lease, list_leases
from blobrep.errors import (
    BlobrepError,
    BusyError,
    InvalidParameterError,
    ManifestError,
    NotFoundError,
    StorageFullError,
)
from blobrep.storage.base import ObjectInfo, Store

#: Replicas collected at once by :func:`gc_gallery`.
GC_REPLICAS: Final = 4
#: Chunk keys looked up (``stat_many``) per round trip while sweeping.
_SWEEP_BATCH: Final = 1000
#: Temporaries younger than this are never removed, whatever the grace (seconds).
_TEMPORARY_MIN_AGE: Final = 60.0

GcProgress = Callable[[int, int], None]
"""Called on the event loop with (chunks examined, chunks listed) as the sweep advances."""


@dataclass(frozen=True, slots=True)
class GcReport:
    """What garbage collection did (or, with ``dry_run``, would do) in one replica.

    Every chunk seen is referenced, deleted, kept young, or vanished meanwhile.
    """

    replica: str
    gallery: str
    manifests: int = 0
    """Manifests read (and marked)."""
    chunks_seen: int = 0
    """Chunks of the gallery the replica holds."""
    referenced_chunks: int = 0
    """Chunks held that some manifest names."""
    deleted_chunks: int = 0
    deleted_bytes: int = 0
    """Stored bytes of the deleted chunks."""
    kept_young: int = 0
    """Unreferenced chunks kept because they were written within the grace period."""
    stale_leases_removed: int = 0
    dry_run: bool = False
    error: str | None = None
    """Why this replica was not collected (busy, unreadable manifest, store failure), or None.
    Only :func:`gc_gallery` fills it; :func:`collect_garbage` raises instead."""
    temporaries_removed: int = 0
    """Temporary objects that interrupted puts left in the gallery, removed (older than the
    grace, and than a minute)."""
    temporary_bytes: int = 0
    """Their bytes."""

    @property
    def ok(self) -> bool:
        return self.error is None


def _check_grace(grace: float) -> None:
    if not (math.isfinite(grace) and grace >= 0):
        raise InvalidParameterError(f"gc grace must be zero or more seconds, not {grace!r}")


async def collect_garbage(
    store: Store,
    gallery: str,
    *,
    grace: float = 3600.0,
    dry_run: bool = False,
    progress: GcProgress | None = None,
) -> GcReport:
    """Delete the chunks of ``gallery`` in ``store`` that no manifest there references.

    Args:
        store: the replica.
        gallery: the gallery whose chunks to collect (chunks are per gallery).
        grace: seconds; an unreferenced chunk written more recently than this is kept.
        dry_run: count what would be deleted, delete nothing (not even stale leases, nor the
            leases of dead holders).
        progress: see :data:`GcProgress`.

    Raises:
        BusyError: the replica is busy: a publish or replication holds a live lease (the
            message names it). Nothing was deleted.
        ManifestError: a manifest of the gallery does not parse. Nothing was deleted.
        StorageFullError: the replica is full and nothing could be deleted to make room for
            the lease (or this is a dry run, which deletes nothing).
        InvalidParameterError: ``grace`` is negative.
        StorageError: the store failed; chunks deleted before that stay deleted (they were
            unreferenced), the rest stay.
    """
    validate_gallery_name(gallery)
    _check_grace(grace)
    room = _Room(store, gallery, grace)
    async with AsyncExitStack() as stack:
        lease = await _take_lease(stack, room, dry_run)
        manifests, referenced = await _mark(store, gallery)
        sweep = await _sweep(store, gallery, referenced, lease.acquired - grace, dry_run, progress)
        temporaries = await store.sweep_temporaries(
            f"galleries/{gallery}/", older_than=max(grace, _TEMPORARY_MIN_AGE), dry_run=dry_run
        )
        removed = await _remove_stale_leases(store, lease, dry_run)
        if not dry_run:
            await store.sync()
    temporaries = room.temporaries + temporaries
    return GcReport(
        replica=store.name,
        gallery=gallery,
        manifests=manifests,
        chunks_seen=sweep.seen + len(room.chunks),
        referenced_chunks=sweep.referenced,
        deleted_chunks=sweep.deleted + len(room.chunks),
        deleted_bytes=sweep.deleted_bytes + sum(info.size for info in room.chunks),
        kept_young=sweep.young,
        stale_leases_removed=removed,
        dry_run=dry_run,
        temporaries_removed=len(temporaries),
        temporary_bytes=sum(info.size for info in temporaries),
    )


async def gc_gallery(
    stores: Sequence[Store],
    gallery: str,
    *,
    grace: float = 3600.0,
    dry_run: bool = False,
    concurrency: int = GC_REPLICAS,
    progress: GcProgress | None = None,
) -> list[GcReport]:
    """Collect garbage in every replica of ``stores`` at once (up to ``concurrency`` at a time).

    Replicas fail independently: a busy replica, an unreadable manifest or a failing store
    is recorded in that replica's report (``error``) and the others are still collected, so
    one busy replica does not stop the cleanup of the rest. Reports come in the order of
    ``stores``.

    Raises:
        InvalidParameterError: ``grace`` is negative or ``concurrency`` is below 1.
        InvalidNameError: ``gallery`` is not a valid gallery name.
    """
    validate_gallery_name(gallery)
    _check_grace(grace)
    if concurrency < 1:
        raise InvalidParameterError(f"gc concurrency must be at least 1, not {concurrency}")
    reports: list[GcReport] = [GcReport(store.name, gallery, dry_run=dry_run) for store in stores]
    limiter = anyio.CapacityLimiter(concurrency)
    counts: dict[int, tuple[int, int]] = {}

    def advance(position: int) -> GcProgress | None:
        if progress is None:
            return None
        report = progress

        def update(done: int, total: int) -> None:
            counts[position] = (done, total)
            report(sum(done for done, _ in counts.values()), sum(total for _, total in counts.values()))

        return update

    async def collect(position: int, store: Store) -> None:
        async with limiter:
            try:
                reports[position] = await collect_garbage(
                    store, gallery, grace=grace, dry_run=dry_run, progress=advance(position)
                )
            except BlobrepError as exc:
                reports[position] = GcReport(store.name, gallery, dry_run=dry_run, error=str(exc))

    async with task_group() as group:
        for position, store in enumerate(stores):
            group.start_soon(collect, position, store)
    return reports


async def _mark(store: Store, gallery: str) -> tuple[int, set[str]]:
    """(manifests read, digests they name) for every manifest of ``gallery`` in ``store``.

    Raises:
        ManifestError: a manifest does not parse.
    """
    prefix = f"galleries/{gallery}/images/"
    keys = [key async for key in store.list(prefix) if key.endswith(f"/{MANIFEST_FILENAME}")]
    referenced: set[str] = set()
    read = 0
    io = anyio.CapacityLimiter(IO_TASKS)
    cpu = anyio.CapacityLimiter(CPU_THREADS)

    async def mark(key: str) -> None:
        nonlocal read
        async with io:
            try:
                document = await store.get(key)
            except NotFoundError:
                return  # deleted since the listing: its chunks are garbage now
        try:
            manifest = await anyio.to_thread.run_sync(parse_manifest, document, limiter=cpu)
        except ManifestError as exc:
            raise ManifestError(
                f"garbage collection of gallery {gallery!r} in {store.name} stopped before deleting"
                f" anything: manifest {key} does not parse ({exc}), so the chunks it names are"
                " unknown; repair or delete that manifest, then collect again"
            ) from exc
        referenced.update(manifest.stored_digests())
        read += 1

    async with task_group() as group:
        for key in keys:
            group.start_soon(mark, key)
    return read, referenced


@dataclass(slots=True)
class _Sweep:
    seen: int = 0
    referenced: int = 0
    deleted: int = 0
    deleted_bytes: int = 0
    young: int = 0


def _digest_of(gallery: str, key: str) -> str | None:
    """The digest a chunk key names; None for anything else under the chunks prefix."""
    digest = key.rpartition("/")[2]
    return digest if is_digest(digest) and chunk_key(gallery, digest) == key else None


async def _chunk_keys(store: Store, gallery: str) -> list[str]:
    """Every chunk key of ``gallery`` in ``store`` (nothing else under the chunks prefix)."""
    return [key async for key in store.list(chunks_prefix(gallery)) if _digest_of(gallery, key) is not None]


async def _stat_unreferenced(
    store: Store, gallery: str, batch: list[str], referenced: set[str]
) -> list[ObjectInfo | None]:
    """``stat`` of the chunks of ``batch`` that no manifest names (None: deleted meanwhile)."""
    unreferenced = [key for key in batch if _digest_of(gallery, key) not in referenced]
    return await store.stat_many(unreferenced) if unreferenced else []


async def _sweep(
    store: Store,
    gallery: str,
    referenced: set[str],
    cutoff: float,
    dry_run: bool,
    progress: GcProgress | None,
) -> _Sweep:
    """Delete unreferenced chunks last written at or before ``cutoff`` (store time).

    "At" counts as old: file times tick coarsely, and with ``grace=0`` a chunk stamped in the
    same tick as our lease was still written before it (no writer can hold a lease now).
    """
    keys = await _chunk_keys(store, gallery)
    result = _Sweep(seen=len(keys))
    limiter = anyio.CapacityLimiter(IO_TASKS)

    async def delete(info: ObjectInfo) -> None:
        async with limiter:
            if await store.delete(info.key):
                result.deleted += 1
                result.deleted_bytes += info.size

    for start in range(0, len(keys), _SWEEP_BATCH):
        batch = keys[start : start + _SWEEP_BATCH]
        unreferenced = await _stat_unreferenced(store, gallery, batch, referenced)
        result.referenced += len(batch) - len(unreferenced)
        old: list[ObjectInfo] = []
        for info in unreferenced:
            if info is None:
                continue  # deleted meanwhile (outside the lease protocol)
            if info.modified > cutoff:
                result.young += 1
            else:
                old.append(info)
        if dry_run:
            result.deleted += len(old)
            result.deleted_bytes += sum(info.size for info in old)
        else:
            async with task_group() as group:
                for info in old:
                    group.start_soon(delete, info)
        if progress is not None:
            progress(start + len(batch), len(keys))
    return result


async def _remove_stale_leases(store: Store, lease: Lease, dry_run: bool) -> int:
    """Delete the leases of holders that died or stopped refreshing them; count them, with
    those of dead holders that taking our lease already deleted.

    "Now" is the store time of our own lease's latest refresh, so no host clock is trusted.
    """
    leases = await list_leases(store, lease.gallery, default_ttl=lease.ttl)
    now = max((found.modified for found in leases if found.key == lease.key), default=lease.acquired)
    stale = [found for found in leases if found.key != lease.key and not found.live_at(now)]
    if dry_run:
        return len(stale)
    removed = len(lease.cleared)
    for found in stale:
        if await store.delete(found.key):
            removed += 1
    return removed


# --- a full replica (see the module docstring) ------------------------------------------


async def _take_lease(stack: AsyncExitStack, room: _Room, dry_run: bool) -> Lease:
    """Our exclusive lease, held until ``stack`` closes; on a full replica, taken once
    ``room`` has made just enough space for it.

    Raises:
        BusyError: a live lease is held (before or while making room).
        StorageFullError: no room could be made (or this is a dry run).
    """
    store, gallery = room.store, room.gallery
    while True:
        try:
            return await stack.enter_async_context(
                hold_lease(
                    store,
                    gallery,
                    exclusive=True,
                    holder=f"garbage collection of {gallery}",
                    wait=0,
                    remove_dead=not dry_run,
                )
            )
        except StorageFullError as full:
            if dry_run:
                raise StorageFullError(
                    f"replica {store.name} is full: a dry run deletes nothing, so garbage collection"
                    f" of gallery {gallery!r} cannot make room for its lease; collect without a dry"
                    f" run to free space ({full})"
                ) from full
            await room.make()


@dataclass(slots=True)
class _Room:
    """Space made without a lease on a full replica: what was deleted, and what may be next."""

    store: Store
    gallery: str
    grace: float
    temporaries: list[ObjectInfo] = field(default_factory=list)
    chunks: list[ObjectInfo] = field(default_factory=list)
    """Chunks deleted to make room."""
    candidates: list[ObjectInfo] | None = None
    """Unreferenced chunks older than the grace, newest first (so ``pop`` gives the oldest)."""
    young: int = 0
    newest: float = -math.inf
    """The newest store time seen: a lower bound of the store's clock."""
    swept: bool = False

    async def make(self) -> None:
        """Free a little space: old temporaries the first time, then one old unreferenced chunk.

        Raises:
            BusyError: a live lease is held: a writer may depend on unreferenced chunks.
            StorageFullError: nothing is left that may be deleted.
            ManifestError: a manifest does not parse (nothing was deleted).
        """
        leases = await list_leases(self.store, self.gallery)
        if self.candidates is None:
            await self._plan(leases)
        now = max([self.newest, *(lease.modified for lease in leases)])
        live = [lease for lease in leases if lease.live_at(now)]
        if live:
            raise BusyError(self._busy(live))
        if not self.swept:
            self.swept = True
            self.temporaries = await self.store.sweep_temporaries(
                f"galleries/{self.gallery}/", older_than=max(self.grace, _TEMPORARY_MIN_AGE)
            )
            if self.temporaries:
                return
        if not self.candidates:
            raise StorageFullError(
                f"replica {self.store.name} is full and garbage collection of gallery"
                f" {self.gallery!r} found nothing it may delete to make room for its lease"
                f" ({self.young} unreferenced chunks are younger than the grace of {self.grace:g}s);"
                " free space in the replica another way, then collect again"
            )
        chunk = self.candidates.pop()
        if await self.store.delete(chunk.key):
            self.chunks.append(chunk)

    async def _plan(self, leases: list[LeaseInfo]) -> None:
        """Mark (read-only) and find the unreferenced chunks old enough to delete."""
        _, referenced = await _mark(self.store, self.gallery)
        keys = await _chunk_keys(self.store, self.gallery)
        unreferenced: list[ObjectInfo] = []
        for start in range(0, len(keys), _SWEEP_BATCH):
            batch = keys[start : start + _SWEEP_BATCH]
            found = await _stat_unreferenced(self.store, self.gallery, batch, referenced)
            unreferenced.extend(info for info in found if info is not None)
        seen = [info.modified for info in unreferenced] + [lease.modified for lease in leases]
        self.newest = max([self.newest, *seen])
        cutoff = self.newest - self.grace
        old = [info for info in unreferenced if info.modified <= cutoff]
        self.young = len(unreferenced) - len(old)
        self.candidates = sorted(old, key=lambda info: info.modified, reverse=True)

    def _busy(self, live: list[LeaseInfo]) -> str:
        names = "; ".join(lease.describe() for lease in live)
        return (
            f"replica {self.store.name} is full and busy: gallery {self.gallery!r} is leased by"
            f" {names}; garbage collection cannot make room while a writer may depend on"
            " unreferenced chunks; retry later"
        )
