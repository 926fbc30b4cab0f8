"""Making room on a full replica, so that garbage collection can take its exclusive lease.

Taking the lease is a write, so a replica with no space left would refuse the one operation
that can free space. When the put of its lease fails with :class:`StorageFullError`,
garbage collection (:mod:`blobrep.engine.gc`) makes room first, without a lease:

* it reads the gallery's leases; if any is live, it gives up with :class:`BusyError`: that
  writer may depend on unreferenced chunks or packs, and only the lease protocol protects them;
* otherwise no writer can be working, and none can start while the replica stays full: a
  writer's first act is the put of its own lease, which fails like ours. (A writer that was
  leased before the disk filled cannot refresh its lease either; it shows as live until it
  has stopped itself, see :mod:`blobrep.engine.leases`.)
* so it removes old temporaries (garbage by any account) and tries its lease again; then it
  deletes unreferenced objects (chunks stored alone, packs; marked as in
  :mod:`blobrep.engine.gc_mark`) older than ``grace`` one at a time, oldest first, trying its
  lease again after each. A writer can lease only once space is free, so an object deleted
  before that is already gone when the writer looks for it; the leases are read again before
  each further deletion, so a writer that got in first stops them (:class:`BusyError`).
  Deleting one at a time frees no more than the lease needs; the rest of the collection then
  runs as usual, under the lease.

Without a write there is no reading of the store's clock, so while making room "now" is the
newest modification time seen (leases, unreferenced objects): never later than the store's
real time, so a lease or an object can only look younger than it is, and every misjudgement
keeps rather than deletes. A dry run deletes nothing, so it cannot make room for its lease.
"""

from __future__ import annotations

import math
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from blobrep.engine.gc_mark import SWEEP_BATCH, is_pack, mark_manifests, object_keys, stat_unreferenced
from blobrep.engine.leases import Lease, LeaseInfo, hold_lease, list_leases
from blobrep.errors import BusyError, StorageFullError

if TYPE_CHECKING:
    from blobrep.storage.base import ObjectInfo, Store


async def take_lease(stack: AsyncExitStack, room: Room, dry_run: bool) -> Lease:
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
class Room:
    """Space made without a lease on a full replica: what was deleted, and what may be next."""

    store: Store
    gallery: str
    grace: float
    temporary_age: float
    """Temporaries at least this old (seconds) are garbage."""
    temporaries: list[ObjectInfo] = field(default_factory=list)
    deleted: list[ObjectInfo] = field(default_factory=list)
    """Chunks and packs deleted to make room."""
    candidates: list[ObjectInfo] | None = None
    """Unreferenced objects older than the grace, newest first (so ``pop`` gives the oldest)."""
    young: int = 0
    """Unreferenced objects younger than the grace."""
    young_packs: int = 0
    """Of those, the packs."""
    newest: float = -math.inf
    """The newest store time seen: a lower bound of the store's clock."""
    swept: bool = False

    async def make(self) -> None:
        """Free a little space: old temporaries the first time, then one old unreferenced object.

        Raises:
            BusyError: a live lease is held: a writer may depend on unreferenced objects.
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
                f"galleries/{self.gallery}/", older_than=self.temporary_age
            )
            if self.temporaries:
                return
        if not self.candidates:
            raise StorageFullError(
                f"replica {self.store.name} is full and garbage collection of gallery"
                f" {self.gallery!r} found nothing it may delete to make room for its lease"
                f" ({self._young()} younger than the grace of {self.grace:g}s);"
                " free space in the replica another way, then collect again"
            )
        garbage = self.candidates.pop()
        if await self.store.delete(garbage.key):
            self.deleted.append(garbage)

    async def _plan(self, leases: list[LeaseInfo]) -> None:
        """Mark (read-only) and find the unreferenced objects old enough to delete."""
        _, referenced = await mark_manifests(self.store, self.gallery)
        keys = await object_keys(self.store, self.gallery)
        unreferenced: list[ObjectInfo] = []
        for start in range(0, len(keys), SWEEP_BATCH):
            batch = keys[start : start + SWEEP_BATCH]
            found = await stat_unreferenced(self.store, batch, referenced)
            unreferenced.extend(info for info in found if info is not None)
        seen = [info.modified for info in unreferenced] + [lease.modified for lease in leases]
        self.newest = max([self.newest, *seen])
        cutoff = self.newest - self.grace
        old = [info for info in unreferenced if info.modified <= cutoff]
        self.young = len(unreferenced) - len(old)
        self.young_packs = sum(
            1 for info in unreferenced if info.modified > cutoff and is_pack(self.gallery, info.key)
        )
        self.candidates = sorted(old, key=lambda info: info.modified, reverse=True)

    def _young(self) -> str:
        chunks = f"{self.young - self.young_packs} unreferenced chunks"
        if not self.young_packs:
            return f"{chunks} are"
        return f"{chunks} and {self.young_packs} unreferenced packs are"

    def _busy(self, live: list[LeaseInfo]) -> str:
        names = "; ".join(lease.describe() for lease in live)
        return (
            f"replica {self.store.name} is full and busy: gallery {self.gallery!r} is leased by"
            f" {names}; garbage collection cannot make room while a writer may depend on"
            " unreferenced chunks or packs; retry later"
        )
