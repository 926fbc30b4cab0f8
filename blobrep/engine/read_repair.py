"""Repairs found by reads: a verified copy written over a missing or corrupt one.

A :class:`~blobrep.engine.chunk_read.ReplicaSet` that repairs hands every read that had to
fail over to :meth:`ReadRepairs.schedule`, with the verified frame the read was served. What
is written depends on where the chunk lives:

* **a chunk stored alone**: the served frame is put over the bad copy, once per (replica,
  chunk);
* **a chunk in a pack**: a pack is never rewritten in part (its name is the digest of its
  bytes, and an object store cannot write a range), so the whole pack is mended in the
  damaged replica by :func:`~blobrep.engine.pack_repair.mend_pack`: a verified whole copy from
  the replica that served the read, then from the others in order; failing that, the damaged
  copy patched with the verified frames of its chunks that reads were served while the mend
  waited (bit rot in a frame of a pack no replica holds whole is still mended). Once per
  (replica, pack), however many of its chunks the reads found bad. A mend that finds no
  verified copy writes nothing and counts as a repair failure.

Mends of one pack run one at a time, in the order they were scheduled, so a replica whose
pack is mended second can copy it whole from the one mended first.

Memory: a pending chunk repair holds one frame, and at most :data:`PENDING_REPAIRS` run or
wait at once. A pack mend holds much more: the pack read from a source or from the damaged
copy (up to :data:`~blobrep.core.packs.MAX_PACK_SIZE` plus a byte), the patched copy, and the
frames gathered for it (at most the pack's size). So pack mends have a bound of their own,
:data:`PENDING_PACK_REPAIRS`: about 24 MiB with packs of the default 4 MiB, 384 MiB with the
largest a manifest may name. Frames are gathered only for mends that hold a slot, so reads
waiting for one add nothing. A read that finds damage waits for a slot, which bounds the
repairs queued behind a badly damaged replica.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import anyio

from blobrep.core.keys import chunk_key
from blobrep.engine.pack_repair import mend_pack
from blobrep.errors import BlobrepError, ChunkCorruptError

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from blobrep.core.manifest import ChunkRef
    from blobrep.core.packs import PackRef
    from blobrep.storage.base import Store

__all__ = ["PENDING_PACK_REPAIRS", "PENDING_REPAIRS", "ReadRepairs"]

#: Chunk repairs written or waiting at once; each holds one stored frame.
PENDING_REPAIRS: Final = 16
#: Pack mends running or waiting at once; each holds up to about three times its pack.
PENDING_PACK_REPAIRS: Final = 2


@dataclass(slots=True)
class _PackMend:
    """One pack to mend in one replica, and the verified frames gathered to patch it with."""

    index: int
    pack: PackRef
    served: int
    """The replica whose read found the damage: the first place to look for the pack whole."""
    frames: dict[int, bytes] = field(default_factory=dict)


class ReadRepairs:
    """The repairs of one replica set: scheduled on its task group, counted, deduplicated.

    Every method runs on the event loop.
    """

    def __init__(self, stores: Sequence[Store], gallery: str) -> None:
        self.stores = tuple(stores)
        self.gallery = gallery
        self.repairs = 0
        """Copies written: a chunk's frame, or a whole pack."""
        self.failures = 0
        """Repairs whose write failed, or mends that found no verified copy to write."""
        self.repaired_bytes = 0
        """Bytes of the copies written."""
        self._started: set[tuple[int, str, str]] = set()
        self._gathering: dict[tuple[int, str], _PackMend] = {}
        self._chunk_slots = anyio.Semaphore(PENDING_REPAIRS)
        self._pack_slots = anyio.Semaphore(PENDING_PACK_REPAIRS)
        self._pack_turns: dict[str, anyio.Lock] = {}

    async def schedule(
        self, group: TaskGroup, damaged: Sequence[int], served: int, ref: ChunkRef, frame: bytes
    ) -> None:
        """Repair ``ref`` in each replica of ``damaged`` with ``frame``, verified from ``served``.

        Returns once every repair is started (waiting for a slot if need be), not finished.
        """
        digest = ref.digest
        assert digest is not None
        for index in damaged:
            if ref.pack is None:
                if (index, "chunk", digest) in self._started:
                    continue
                self._started.add((index, "chunk", digest))
                await self._chunk_slots.acquire()
                group.start_soon(self._put_chunk, index, digest, frame)
                continue
            gathering = self._gathering.get((index, ref.pack.digest))
            if gathering is not None:
                gathering.frames.setdefault(ref.offset, frame)
            if (index, "pack", ref.pack.digest) in self._started:
                continue
            self._started.add((index, "pack", ref.pack.digest))
            await self._pack_slots.acquire()
            mend = _PackMend(index, ref.pack, served, {ref.offset: frame})
            self._gathering[index, ref.pack.digest] = mend
            group.start_soon(self._mend, mend)

    async def write_back(self, index: int, ref: ChunkRef, frame: bytes) -> str:
        """Put the verified ``frame`` of ``ref`` into replica ``index`` now; what was written.

        A chunk stored alone gets ``frame`` ("the frame given"). For a chunk in a pack the
        whole pack is mended: copied from another replica holding it whole (that replica's
        name), else the replica's own copy patched with ``frame`` ("NAME (patched)").

        Raises:
            StorageError: the write failed.
            ChunkCorruptError: the chunk is in a pack for which no verified copy was found
                (nothing was written).
        """
        digest = ref.digest
        assert digest is not None
        target = self.stores[index]
        if ref.pack is None:
            await target.put(chunk_key(self.gallery, digest), frame)
            return "the frame given"
        others = [store for store in self.stores if store is not target]
        source = await mend_pack(target, self.gallery, ref.pack, sources=others, frames={ref.offset: frame})
        if source is None:
            raise ChunkCorruptError(
                digest,
                target.name,
                f"its pack {ref.pack.digest} cannot be mended: no other replica holds it whole, and"
                f" patching the copy there with the verified frame does not give the pack's digest back",
            )
        return source

    async def _put_chunk(self, index: int, digest: str, frame: bytes) -> None:
        try:
            await self.stores[index].put(chunk_key(self.gallery, digest), frame)
        except BlobrepError:
            self.failures += 1
        else:
            self.repairs += 1
            self.repaired_bytes += len(frame)
        finally:
            self._chunk_slots.release()

    def _sources(self, mend: _PackMend) -> list[Store]:
        """Where to look for the pack whole: the replica that served the read, then the rest."""
        order = [mend.served, *(index for index in range(len(self.stores)) if index != mend.served)]
        return [self.stores[index] for index in order if index != mend.index]

    async def _mend(self, mend: _PackMend) -> None:
        target, pack = self.stores[mend.index], mend.pack
        try:
            async with self._pack_turns.setdefault(pack.digest, anyio.Lock()):
                source = await mend_pack(target, self.gallery, pack, sources=self._sources(mend))
                if source is None:
                    # No whole copy anywhere: patch with the frames gathered so far.
                    frames = self._gathering.pop((mend.index, pack.digest)).frames
                    source = await mend_pack(target, self.gallery, pack, sources=(), frames=frames)
        except BlobrepError:
            self.failures += 1
        else:
            if source is None:
                self.failures += 1
            else:
                self.repairs += 1
                self.repaired_bytes += pack.size
        finally:
            self._gathering.pop((mend.index, pack.digest), None)
            self._pack_slots.release()
