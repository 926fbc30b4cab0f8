"""Donors: replicas of other regions, read as a last resort for a good copy.

Scrub repairs a replica from its siblings first; only a chunk, a pack (or a pinned manifest)
that no replica of the region holds whole is looked for in the other regions. Chunks are read
from the donors through the one read path (:class:`~blobrep.engine.chunk_read.ReplicaSet`),
so whatever they give is verified; a pack is taken from a donor only whole and checked by size
and digest (:func:`~blobrep.engine.pack_repair.mend_pack` reads :attr:`Donors.stores`), and a
frame of one for patching comes through :meth:`Donors.frame` like any chunk. The donors are
never written or checked themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from blobrep.engine.chunk_read import ReplicaSet
from blobrep.errors import BlobrepError

if TYPE_CHECKING:
    from blobrep.core.manifest import ChunkRef
    from blobrep.storage.base import Store


class Donors:
    """Replicas of other regions, as a last resort for a good copy (an empty set reads nothing)."""

    def __init__(self, stores: Sequence[Store], gallery: str) -> None:
        self.stores = tuple(stores)
        self._set = ReplicaSet(stores, gallery) if stores else None

    async def __aenter__(self) -> Donors:
        if self._set is not None:
            await self._set.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._set is not None:
            await self._set.__aexit__(None, None, None)

    async def frame(self, chunk: ChunkRef) -> tuple[bytes, str] | None:
        """A verified frame of ``chunk`` and the donor it came from, or None if none has one."""
        if self._set is None:
            return None
        try:
            served = await self._set.read(chunk)
        except BlobrepError:
            return None
        return served.frame, self._set.names[served.index]
