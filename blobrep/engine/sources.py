"""Reading chunks from a source region: least-loaded replica first, verified, failing over.

Replication reads each missing chunk once and writes it to many replicas, so a corrupt copy
read here would spread everywhere: every frame is decoded and hashed before it is handed
on, and a replica that lacks the chunk, holds it corrupt or fails is passed over for the
next one.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import anyio.to_thread

from blobrep.core.manifest import ChunkRef
from blobrep.core.replication import pick_least_loaded
from blobrep.engine._concurrency import CPU_THREADS
from blobrep.engine.restore import decode, fetch_chunk
from blobrep.errors import BlobrepError
from blobrep.storage.base import Store


class NoGoodCopyError(Exception):
    """No source replica holds a good copy of a chunk (the message names it)."""


class SourceReplicas:
    """The replicas of a source region, with the bytes outstanding on each (event loop only)."""

    def __init__(self, stores: Sequence[Store], gallery: str) -> None:
        self.stores = stores
        self.gallery = gallery
        self._loads = [0] * len(stores)
        self._picks = 0
        self._cpu = anyio.CapacityLimiter(CPU_THREADS)

    async def read_verified(self, chunk: ChunkRef) -> bytes:
        """The chunk's stored bytes from the least loaded replica that has a good copy.

        Raises:
            NoGoodCopyError: every replica lacks the chunk, holds it corrupt, or failed.
        """
        assert chunk.digest is not None
        untried = list(range(len(self.stores)))
        problems: list[str] = []
        while untried:
            position = untried.pop(pick_least_loaded([self._loads[i] for i in untried], self._picks))
            self._picks += 1
            store = self.stores[position]
            self._loads[position] += chunk.stored_length
            try:
                try:
                    frame = await fetch_chunk(store, self.gallery, chunk)
                finally:
                    self._loads[position] -= chunk.stored_length
                await anyio.to_thread.run_sync(decode, frame, chunk, store.name, limiter=self._cpu)
                return frame
            except BlobrepError as exc:  # missing, corrupt, or the store failed: try the next
                problems.append(str(exc))
        raise NoGoodCopyError(
            f"chunk {chunk.digest} has no good copy in the source region: {'; '.join(problems)}"
        )
