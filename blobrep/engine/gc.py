"""Garbage collection: delete the chunk data of a gallery that no manifest in a replica references.

A replica holds a gallery's chunk data as *objects*: chunks stored alone and packs (many
chunks' frames in one object, manifest format 3). Objects are shared between the versions of a
gallery, so deleting a version removes only its manifest; what it alone used stays until this
mark-and-sweep removes it, one replica at a time. A pack is deleted only once no manifest names
it at all (packs are never rewritten in part), so a pack some of whose chunks are still used
stays whole.

1. take an *exclusive* lease on the gallery in the replica (see :mod:`blobrep.engine.leases`),
   failing fast if a publish or a replication holds a live shared lease: such a writer may
   have found an object present and skipped it, or written objects its manifest does not yet
   name;
2. mark every object that any manifest of the gallery names (:mod:`blobrep.engine.gc_mark`).
   A manifest that does not parse stops the collection of that replica before anything is
   deleted: the objects it names cannot be known, and deleting them could lose a version;
3. sweep: delete each unreferenced chunk or pack last written more than ``grace`` seconds ago
   (by the store's clock). The grace protects writers outside the lease protocol and holders
   stalled past their lease; ``0`` trusts the leases alone;
4. remove the temporary objects that interrupted puts left under the gallery (stores do not
   list them, so nothing else ever would), again only those older than ``grace``, and never
   younger than a minute: acquirers retrying their leases keep writing under the gallery
   while we hold ours, so even with ``grace=0`` a fresh temporary may be a put in progress;
5. remove leases whose holders died or stopped refreshing (stale), and ``sync()`` the replica.

The mark (step 2) is shared with making room (:mod:`blobrep.engine.gc_mark`). A full replica
cannot take the lease, since that is a write: :mod:`blobrep.engine.gc_room` says how room is
made for it first, without a lease, and why that is safe.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio

from blobrep.core.names import validate_gallery_name
from blobrep.engine._concurrency import IO_TASKS, task_group
from blobrep.engine.gc_mark import SWEEP_BATCH, is_pack, mark_manifests, object_keys, stat_unreferenced
from blobrep.engine.gc_room import Room, take_lease
from blobrep.engine.leases import Lease, list_leases
from blobrep.errors import BlobrepError, InvalidParameterError

if TYPE_CHECKING:
    from blobrep.storage.base import ObjectInfo, Store

#: Replicas collected at once by :func:`gc_gallery`.
GC_REPLICAS: Final = 4
#: Temporaries of leases younger than this are never removed, whatever the grace (seconds):
#: a writer waiting for this gc writes its lease attempts while gc runs. Chunk, pack and
#: manifest writers hold shared leases, so while gc holds its exclusive one, none of theirs is
#: live.
_TEMPORARY_MIN_AGE: Final = 60.0

GcProgress = Callable[[int, int], None]
"""Called on the event loop with (objects examined, objects listed) as the sweep advances."""


@dataclass(frozen=True, slots=True)
class GcReport:
    """What garbage collection did (or, with ``dry_run``, would do) in one replica.

    The ``*_chunks`` counts are of objects holding chunk data: chunks stored alone and packs,
    one each (a pack holding a hundred chunks is one object to keep or delete); the
    ``*_packs`` counts say how many of them were packs. Every object seen is referenced,
    deleted, kept young, or vanished meanwhile.
    """

    replica: str
    gallery: str
    manifests: int = 0
    """Manifests read (and marked)."""
    chunks_seen: int = 0
    """Objects of the gallery's chunk data the replica holds (chunks stored alone, packs)."""
    referenced_chunks: int = 0
    """Objects held that some manifest names."""
    deleted_chunks: int = 0
    """Objects deleted."""
    deleted_bytes: int = 0
    """Stored bytes of the deleted objects."""
    kept_young: int = 0
    """Unreferenced objects kept because they were written within the grace period."""
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
    packs_seen: int = 0
    """Of ``chunks_seen``, the packs."""
    referenced_packs: int = 0
    """Of ``referenced_chunks``, the packs."""
    deleted_packs: int = 0
    """Of ``deleted_chunks``, the packs."""

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
    """Delete the chunks and packs of ``gallery`` in ``store`` that no manifest there references.

    Args:
        store: the replica.
        gallery: the gallery whose objects to collect (chunks and packs are per gallery).
        grace: seconds; an unreferenced object written more recently than this is kept.
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
        StorageError: the store failed; objects deleted before that stay deleted (they were
            unreferenced), the rest stay.
    """
    validate_gallery_name(gallery)
    _check_grace(grace)
    temporary_age = max(grace, _TEMPORARY_MIN_AGE)
    room = Room(store, gallery, grace, temporary_age)
    async with AsyncExitStack() as stack:
        lease = await take_lease(stack, room, dry_run)
        manifests, referenced = await mark_manifests(store, gallery)
        sweep = await _sweep(store, gallery, referenced, lease.acquired - grace, dry_run, progress)
        temporaries = await _sweep_temporaries(store, gallery, grace, temporary_age, dry_run)
        removed = await _remove_stale_leases(store, lease, dry_run)
        if not dry_run:
            await store.sync()
    temporaries = room.temporaries + temporaries
    room_packs = sum(1 for info in room.deleted if is_pack(gallery, info.key))
    return GcReport(
        replica=store.name,
        gallery=gallery,
        manifests=manifests,
        chunks_seen=sweep.seen + len(room.deleted),
        referenced_chunks=sweep.referenced,
        deleted_chunks=sweep.deleted + len(room.deleted),
        deleted_bytes=sweep.deleted_bytes + sum(info.size for info in room.deleted),
        kept_young=sweep.young,
        stale_leases_removed=removed,
        dry_run=dry_run,
        temporaries_removed=len(temporaries),
        temporary_bytes=sum(info.size for info in temporaries),
        packs_seen=sweep.packs_seen + room_packs,
        referenced_packs=sweep.packs_referenced,
        deleted_packs=sweep.packs_deleted + room_packs,
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


@dataclass(slots=True)
class _Sweep:
    seen: int = 0
    referenced: int = 0
    deleted: int = 0
    deleted_bytes: int = 0
    young: int = 0
    packs_seen: int = 0
    packs_referenced: int = 0
    packs_deleted: int = 0

    def count_deleted(self, gallery: str, info: ObjectInfo) -> None:
        self.deleted += 1
        self.deleted_bytes += info.size
        if is_pack(gallery, info.key):
            self.packs_deleted += 1


async def _sweep(
    store: Store,
    gallery: str,
    referenced: set[str],
    cutoff: float,
    dry_run: bool,
    progress: GcProgress | None,
) -> _Sweep:
    """Delete unreferenced chunks and packs last written at or before ``cutoff`` (store time).

    "At" counts as old: file times tick coarsely, and with ``grace=0`` an object stamped in the
    same tick as our lease was still written before it (no writer can hold a lease now).
    """
    keys = await object_keys(store, gallery)
    packs = {key for key in keys if is_pack(gallery, key)}
    result = _Sweep(seen=len(keys), packs_seen=len(packs), packs_referenced=len(packs & referenced))
    limiter = anyio.CapacityLimiter(IO_TASKS)

    async def delete(info: ObjectInfo) -> None:
        async with limiter:
            if await store.delete(info.key):
                result.count_deleted(gallery, info)

    for start in range(0, len(keys), SWEEP_BATCH):
        batch = keys[start : start + SWEEP_BATCH]
        unreferenced = await stat_unreferenced(store, batch, referenced)
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
            for info in old:
                result.count_deleted(gallery, info)
        else:
            async with task_group() as group:
                for info in old:
                    group.start_soon(delete, info)
        if progress is not None:
            progress(start + len(batch), len(keys))
    return result


async def _sweep_temporaries(
    store: Store, gallery: str, grace: float, lease_age: float, dry_run: bool
) -> list[ObjectInfo]:
    """Remove temporaries of killed writers: chunks', packs' and manifests' older than the
    grace, leases' older than ``lease_age``."""
    found: list[ObjectInfo] = []
    parts = (("chunks/", grace), ("packs/", grace), ("images/", grace), ("leases/", lease_age))
    for part, older_than in parts:
        found += await store.sweep_temporaries(
            f"galleries/{gallery}/{part}", older_than=older_than, dry_run=dry_run
        )
    return found


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
