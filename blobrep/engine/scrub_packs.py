"""Scrub's packs: each checked whole in each replica, and a bad one replaced whole.

A pack is one object holding the frames of many chunks, named by the xxh3-128 of its bytes.
Checking it is one bounded read and one hash, not a decode per frame: if its size and digest
are the ones the manifests record, every frame in it is the frame that was written. A pack is
never rewritten in part (its name is its content, and an object store cannot), so a bad one
is mended by :func:`~blobrep.engine.pack_repair.mend_pack`, in this order:

1. a whole copy, checked by size and digest, from a sibling replica (those that checked it
   good first), then from a donor of another region (read, never written);
2. failing that, the damaged copy patched: each frame of the chunks the scrubbed manifests
   place in the pack is read from the damaged copy through the one read path, and each that
   does not verify is replaced by a verified frame of the same chunk from a sibling or a
   donor. The patched pack is written only if it gives the pack's digest back, so bit rot in
   a few frames of a pack no replica holds whole is mended, and nothing else is ever written.

A pack is read with at most one byte more than its recorded size (at most
:data:`~blobrep.core.packs.MAX_PACK_SIZE`), and at most :data:`PACK_TASKS` packs are held
at once, by checks and mends together.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread

from blobrep.core.codec import digest_of
from blobrep.engine._concurrency import task_group
from blobrep.engine.pack_repair import mend_pack
from blobrep.engine.scrub_state import Finding
from blobrep.errors import (
    BlobrepError,
    ChunkCorruptError,
    ChunkMissingError,
    DamagedObjectError,
    NotFoundError,
)

if TYPE_CHECKING:
    from blobrep.core.manifest import ChunkRef
    from blobrep.core.packs import PackRef
    from blobrep.engine.chunk_read import ReplicaSet
    from blobrep.engine.donors import Donors
    from blobrep.engine.scrub_state import ScrubbedPack, ScrubbedReplica
    from blobrep.storage.base import Store

#: Packs read (checked or mended) at once: each holds up to one pack in memory.
PACK_TASKS: Final = 4


def _judge(pack: ScrubbedPack, data: bytes, replica: str) -> Finding | None:
    """What is wrong with ``data`` as ``pack`` in ``replica``, or None (CPU work: a thread)."""
    ref, where = pack.ref, f"pack {pack.key} in replica {replica}"
    held = f"; it holds {len(pack.chunks)} chunk(s) of the manifests scrubbed"
    if len(data) < ref.size:
        return Finding(
            "pack-size", f"{where} is {len(data)} bytes, not the {ref.size} recorded: truncated{held}"
        )
    if len(data) > ref.size:
        return Finding("pack-size", f"{where} is longer than the {ref.size} bytes recorded{held}")
    actual = digest_of(data)
    if actual != ref.digest:
        return Finding(
            "pack-corrupt", f"{where} has changed: its bytes hash to {actual}, not to its name{held}"
        )
    return None


async def check_pack(store: Store, pack: ScrubbedPack, cpu: anyio.CapacityLimiter) -> Finding | None:
    """Read ``pack`` whole from ``store`` and check its size and digest; what is wrong, or None.

    Raises:
        StorageError: the store failed (not a problem of this pack).
    """
    try:
        data = await store.get(pack.key, 0, pack.ref.size + 1)
    except NotFoundError:
        return Finding(
            "pack-missing",
            f"pack {pack.key} is missing in replica {store.name};"
            f" it holds {len(pack.chunks)} chunk(s) of the manifests scrubbed",
        )
    except DamagedObjectError as exc:
        return Finding(
            "pack-corrupt", f"pack {pack.key} in replica {store.name} is {exc.kind}, not a regular file"
        )
    return await anyio.to_thread.run_sync(_judge, pack, data, store.name, limiter=cpu)


async def check_packs(
    replicas: Sequence[ScrubbedReplica],
    slots: anyio.CapacityLimiter,
    cpu: anyio.CapacityLimiter,
    checked: Callable[[ScrubbedReplica, ScrubbedPack], None],
) -> None:
    """Check every pack of every replica once, recording bad ones in ``bad_packs``.

    Replicas are interleaved so that every store is busy from the start; ``checked`` is
    called on the event loop with each (replica, pack) once it has been read, good or bad.

    Raises:
        StorageError: a store failed in a way that is not about one pack.
    """
    work = [zip(itertools.repeat(replica), replica.packs.values()) for replica in replicas]
    pending = (item for item in itertools.chain.from_iterable(itertools.zip_longest(*work)) if item)

    async def check() -> None:
        for replica, pack in pending:  # shared by the checkers: each pack is taken once
            async with slots:
                found = await check_pack(replica.store, pack, cpu)
            if found is not None:
                replica.bad_packs[pack.ref] = found
            checked(replica, pack)

    total = sum(len(replica.packs) for replica in replicas)
    async with task_group() as group:
        for _ in range(min(PACK_TASKS, total)):
            group.start_soon(check)


class PackMender:
    """Mends the bad packs of a region's replicas; see the module docstring.

    ``replicas`` are the region's, in the order of ``siblings`` (the set reading them);
    ``donors`` the other regions', read only.
    """

    def __init__(
        self,
        gallery: str,
        replicas: Sequence[ScrubbedReplica],
        siblings: ReplicaSet,
        donors: Donors,
        slots: anyio.CapacityLimiter,
    ) -> None:
        self.gallery = gallery
        self.replicas = list(replicas)
        self.siblings = siblings
        self.donors = donors
        self.slots = slots

    async def mend(self, replica: ScrubbedReplica, ref: PackRef) -> str | None:
        """Write a verified copy of ``ref`` over ``replica``'s bad one.

        Returns how it was repaired ("from a verified copy in ...", "by patching ..."), or
        None with the reasons added to the finding's detail (then nothing was written).

        Raises:
            StorageError: writing into ``replica`` failed.
        """
        finding = replica.bad_packs[ref]
        others = [other for other in self.replicas if other is not replica]
        sources = [other.store for other in others if ref in other.packs and ref not in other.bad_packs]
        sources += [other.store for other in others if ref not in other.packs]
        async with self.slots:
            source = await mend_pack(
                replica.store, self.gallery, ref, sources=[*sources, *self.donors.stores]
            )
        if source is not None:
            return f"from a verified copy in {source}"
        reasons = [
            f"{other.store.name}: {other.bad_packs[ref].kind}" for other in others if ref in other.bad_packs
        ]
        patched, why_not = await self._patch(replica, replica.packs[ref])
        if patched is not None:
            return patched
        elsewhere = " or of the other regions" if self.donors.stores else ""
        finding.detail += (
            f"; not repaired: no replica of the region{elsewhere} holds it whole"
            f" ({'; '.join(reasons) or 'none'}){why_not}; replicate the blobs that name it again"
            " from their source region to restore it"
        )
        return None

    async def _patch(self, replica: ScrubbedReplica, pack: ScrubbedPack) -> tuple[str | None, str]:
        """Patch ``replica``'s damaged copy of ``pack`` with verified frames (see the module
        docstring): (where the frames came from, "") if it was written, else (None, why not,
        as a clause to add, empty if there is no copy of the recorded size to patch)."""
        try:
            info = await replica.store.stat(pack.key)
        except BlobrepError:
            return None, ""
        if info.size != pack.ref.size:
            return None, ""
        index = self.replicas.index(replica)
        frames: dict[int, bytes] = {}
        sources: set[str] = set()
        lost = 0
        for chunk in pack.chunks.values():
            try:
                await self.siblings.read_from(index, chunk)
                continue  # this frame is sound as it is
            except (ChunkMissingError, ChunkCorruptError):
                pass
            found = await self._frame(index, chunk)
            if found is None:
                lost += 1
                continue
            frames[chunk.offset], source = found
            sources.add(source)
        if lost:
            return None, f", and {lost} damaged frame(s) in it have no verified copy anywhere"
        if not frames:
            return None, ", and its damage lies outside the frames the manifests scrubbed place in it"
        async with self.slots:
            mended = await mend_pack(replica.store, self.gallery, pack.ref, sources=(), frames=frames)
        if mended is None:
            return None, f", and patching its {len(frames)} damaged frame(s) did not give it back"
        names = ", ".join(sorted(sources))
        return f"by patching its {len(frames)} damaged frame(s) with verified copies from {names}", ""

    async def _frame(self, index: int, chunk: ChunkRef) -> tuple[bytes, str] | None:
        """A verified frame of ``chunk`` from a sibling, else a donor, and where it came from."""
        try:
            served = await self.siblings.read(chunk, exclude={index})
        except BlobrepError:
            return await self.donors.frame(chunk)
        return served.frame, self.siblings.names[served.index]
