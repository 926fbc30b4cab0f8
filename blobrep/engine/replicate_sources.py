"""What replication copies, and how each piece is read from the source region, verified whole
before a byte of it is written anywhere.

A replica needs a blob's *objects* (:meth:`~blobrep.core.manifest.Manifest.objects`): its
packs, and the chunks it stores as their own objects. Each is read once from the source
replicas and then written to every target that lacks it, so a bad source copy must be caught
at this read, or it would spread to every region:

* a chunk stored alone is read through the one read path
  (:class:`~blobrep.engine.chunk_read.ReplicaSet`): chosen by load, decoded and hashed,
  failing over on a missing, corrupt or failing copy and repairing the bad one;
* a pack is read whole and checked against the size and xxh3-128 digest the manifest records
  (:func:`~blobrep.engine.pack_repair.read_pack`): its frames are not decoded (each chunk is
  checked again whenever it is read), but a copy that is not the pack byte for byte is never
  written. A bad copy fails over to the next source replica, starting at a different replica
  for each pack to spread the load; the verified bytes are then written back over each copy
  that was missing or damaged, as the read path repairs chunks. A copy that did not read back
  intact is read once more to say what is wrong with it, and only one found missing, of
  another size, not a regular file or with other bytes is written over: a store that merely
  failed is no evidence that its copy is bad.

A piece with no good copy in any source replica is an error naming every replica and what
was wrong with it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Final

import anyio.to_thread

from blobrep.core.codec import digest_of
from blobrep.core.keys import pack_key
from blobrep.engine.chunk_read import ReplicaSet, failure_detail
from blobrep.engine.pack_repair import read_pack
from blobrep.errors import (
    BlobrepError,
    ChunkCorruptError,
    ChunkMissingError,
    DamagedObjectError,
    IntegrityError,
    NotFoundError,
    StorageError,
)

if TYPE_CHECKING:
    from blobrep.core.manifest import ChunkRef, Manifest
    from blobrep.core.packs import PackRef
    from blobrep.storage.base import Store

#: Packs read at once by one replication: each is held whole in memory until every target
#: has it (4 MiB by default, at most 64 MiB), so they are bounded apart from chunks.
PACKS_IN_FLIGHT: Final = 4


@dataclass(frozen=True, slots=True)
class Needed:
    """One object a replica needs for the blob: a pack (``pack`` set) or a chunk stored alone
    (``chunk`` set)."""

    key: str
    size: int
    """Its size in a replica: the pack's, or the chunk's stored length."""
    chunks: int
    """Distinct chunks of the blob it carries (1 for a chunk stored alone)."""
    chunk: ChunkRef | None = None
    pack: PackRef | None = None


def needed_objects(manifest: Manifest, gallery: str) -> dict[str, Needed]:
    """Every object of ``manifest`` by key, in the order of :meth:`Manifest.objects`."""
    carried: dict[str, int] = {}
    alone: dict[str, ChunkRef] = {}
    for chunk in manifest.stored_digests().values():
        key, _ = chunk.location(gallery)
        if chunk.pack is None:
            alone[key] = chunk
        else:
            carried[key] = carried.get(key, 0) + 1
    packs = {pack_key(gallery, pack.digest): pack for pack in manifest.packs}
    needed: dict[str, Needed] = {}
    for key, size in manifest.objects(gallery).items():
        if key in alone:
            needed[key] = Needed(key, size, 1, chunk=alone[key])
        else:
            needed[key] = Needed(key, size, carried[key], pack=packs[key])
    return needed


@dataclass(frozen=True, slots=True)
class SourceRead:
    """One object read from the source region and verified: its stored bytes, the replica
    that served them, and the replicas whose copies were missing or damaged."""

    data: bytes
    source: Store
    damaged: tuple[Store, ...] = ()


class SourceObjects:
    """The source region's replicas, read object by object; see the module docstring.

    Use it as ``async with SourceObjects(...) as sources:``.
    """

    def __init__(self, stores: Sequence[Store], gallery: str) -> None:
        self.chunks = ReplicaSet(stores, gallery, repair=True)
        self.stores = self.chunks.stores
        self.gallery = gallery
        self._turn = 0

    async def __aenter__(self) -> SourceObjects:
        await self.chunks.__aenter__()  # its task group runs the repairs of chunks
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return await self.chunks.__aexit__(exc_type, exc, tb)

    async def read(self, needed: Needed) -> SourceRead:
        """``needed`` from whichever source replica holds it intact.

        Raises:
            IntegrityError: every source replica's copy is missing, damaged or failing, and
                at least one is missing or damaged; the message names each replica and what
                was wrong there.
            StorageError: every source replica's store failed.
        """
        if needed.pack is not None:
            return await self._read_pack(needed.pack)
        assert needed.chunk is not None and needed.chunk.digest is not None
        digest = needed.chunk.digest
        try:
            served = await self.chunks.read(needed.chunk)
        except (ChunkMissingError, ChunkCorruptError) as exc:
            raise IntegrityError(
                f"chunk {digest} has no good copy in the source region: {failure_detail(exc)}"
            ) from exc
        except StorageError as exc:
            raise StorageError(
                f"chunk {digest} has no good copy in the source region: {failure_detail(exc)}"
            ) from exc
        return SourceRead(served.frame, self.stores[served.index])

    async def _read_pack(self, pack: PackRef) -> SourceRead:
        count = len(self.stores)
        start = self._turn % count
        self._turn += 1
        damaged: list[Store] = []
        faults: list[str] = []
        for step in range(count):
            store = self.stores[(start + step) % count]
            data = await read_pack(store, self.gallery, pack)
            if data is not None:
                return SourceRead(data, store, tuple(damaged))
            fault, bad = await _diagnose(store, self.gallery, pack)
            faults.append(fault)
            if bad:
                damaged.append(store)
        reason = f"pack {pack.digest} has no good copy in the source region: every replica failed: "
        error = IntegrityError if damaged else StorageError
        raise error(reason + "; ".join(faults))

    async def mend(self, needed: Needed, read: SourceRead) -> None:
        """Write the verified bytes of a pack back over the copies ``read`` found missing or
        damaged. A failed write leaves that copy as it was: replication does not depend on it
        (scrub will find it again)."""
        for store in read.damaged:
            with contextlib.suppress(BlobrepError):
                await store.put(needed.key, read.data)


async def _diagnose(store: Store, gallery: str, pack: PackRef) -> tuple[str, bool]:
    """What is wrong with ``store``'s copy of ``pack``, which did not read back intact, and
    whether the copy itself is bad (missing or damaged) rather than its store failing.

    It reads the copy again to tell them apart: a copy is only called bad (and mended) on
    evidence, never because a read failed.
    """
    where = f"pack {pack.digest}"
    try:
        data = await store.get(pack_key(gallery, pack.digest), 0, pack.size + 1)
    except NotFoundError:
        return f"{where} is missing in replica {store.name}", True
    except DamagedObjectError as exc:
        return f"{where} is damaged in replica {store.name}: it is {exc.kind}, not a regular file", True
    except BlobrepError as exc:
        return f"{where} could not be read from replica {store.name}: {exc}", False
    damaged = f"{where} is damaged in replica {store.name}"
    if len(data) > pack.size:
        return f"{damaged}: it is longer than the {pack.size} bytes the manifest records", True
    if len(data) < pack.size:
        return f"{damaged}: {len(data)} bytes where the manifest records {pack.size}", True
    if await anyio.to_thread.run_sync(digest_of, data) != pack.digest:
        return f"{damaged}: its bytes do not hash to the pack's digest", True
    return f"{where} could not be read intact from replica {store.name} at first (a second read was)", False
