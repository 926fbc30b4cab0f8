"""Reading a version in a region: chunks spread over the region's replicas, each one verified.

A region with k replicas holds k full copies of a version. A :class:`VersionReader` opens the
version once and then serves chunk reads for any number of concurrent consumers (one per
deployed VM) through the one read path, :class:`~blobrep.engine.chunk_read.ReplicaSet`:
a replica chosen per chunk by the policy, every chunk verified, failover to another replica
when one is missing or corrupt, and a repair of the bad copy: the chunk's object, or the whole
pack it is in (a chunk in a pack is read by its frame's range; the pack is only ever replaced
whole, once per replica and pack however many of its chunks were bad).

The manifest is taken from the first replica whose copy is the one expected (the catalog's
pin, see :mod:`blobrep.engine.manifests`); a replica holding another version's manifest, a
reordered or lying one, a huge file or a FIFO is passed over and reported in
:attr:`VersionReader.manifest_faults`. Its chunks are still read when asked for by digest
(each one is verified, so a damaged replica can serve nothing wrong), and scrub or fsck
rewrites its manifest once its chunks are known to be whole.

Memory: a global limit of ``max_inflight`` chunk reads at once, taken before anything else,
bounds the frames and plain chunks in flight however many deployments share the reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

from blobrep.core.selection import Policy
from blobrep.engine.chunk_read import Consumer, ReplicaSet
from blobrep.engine.manifests import read_manifest
from blobrep.engine.read_stats import ReaderStatistics, ReplicaStatistics
from blobrep.errors import (
    BlobrepError,
    InvalidParameterError,
    ManifestError,
    ManifestNotFoundError,
    StorageError,
)

if TYPE_CHECKING:
    from blobrep.core.gallery import BlobInfo
    from blobrep.core.manifest import ChunkRef, Manifest
    from blobrep.core.names import BlobName
    from blobrep.storage.base import Store

__all__ = ["ReaderStatistics", "ReplicaStatistics", "VersionReader"]


class VersionReader:
    """Reads chunks of ``blob`` of ``gallery`` from the replicas ``stores``; see the module docstring.

    Use it as ``async with VersionReader(...) as reader:``; every method is called on the
    event loop (the state is not shared with threads).

    Args:
        stores: the region's replicas, each a full copy, with distinct names.
        gallery: the gallery the blob belongs to.
        blob: which blob (image definition and version).
        expect: what the catalog recorded of the blob (its manifest pin); None for plumbing
            without a catalog, where a manifest is only checked to be well formed.
        policy: how a replica is chosen for each chunk.
        seed: seeds the policy's random choices, for reproducible runs; None for fresh ones.
        max_inflight: chunk reads in progress at once over every consumer.
        repair: write good copies back over missing or corrupt ones (for a chunk in a pack,
            the pack mended whole).

    Raises:
        InvalidParameterError: no stores, duplicate names, or ``max_inflight`` below 1.
        InvalidNameError: ``gallery`` is not a valid gallery name.
    """

    def __init__(
        self,
        stores: Sequence[Store],
        gallery: str,
        blob: BlobName,
        *,
        expect: BlobInfo | None = None,
        policy: Policy = Policy.LEAST_LOADED,
        seed: int | None = None,
        max_inflight: int = 64,
        repair: bool = True,
    ) -> None:
        if isinstance(max_inflight, bool) or not isinstance(max_inflight, int) or max_inflight < 1:
            raise InvalidParameterError(f"max_inflight {max_inflight!r} must be a whole number >= 1")
        self._replicas = ReplicaSet(stores, gallery, policy=policy, seed=seed, repair=repair)
        self.gallery = self._replicas.gallery
        self.blob = blob
        self.expect = expect
        self.policy = self._replicas.policy
        self.max_inflight = max_inflight
        self._inflight = anyio.CapacityLimiter(max_inflight)
        self._manifest: Manifest | None = None
        self._manifest_faults: dict[str, str] = {}
        self._entered = False
        self._closed = False

    @property
    def replicas(self) -> tuple[str, ...]:
        """The names of the replicas, in the order given."""
        return self._replicas.names

    @property
    def manifest(self) -> Manifest:
        """The version's manifest, as read on entering."""
        if self._manifest is None:
            raise RuntimeError("the reader is not open: use it as 'async with VersionReader(...)'")
        return self._manifest

    @property
    def manifest_faults(self) -> dict[str, str]:
        """Replicas passed over on opening because their manifest was missing or not the one
        expected, with the reason (replica name -> detail)."""
        return dict(self._manifest_faults)

    async def __aenter__(self) -> VersionReader:
        if self._entered:
            raise RuntimeError("a VersionReader can be entered only once")
        self._entered = True
        self._manifest = await self._read_manifest()
        await self._replicas.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        self._closed = True
        return await self._replicas.__aexit__(exc_type, exc, tb)

    async def _read_manifest(self) -> Manifest:
        """The manifest from the first replica holding the expected one.

        Raises:
            ManifestNotFoundError: if no replica holds one.
            ManifestError, StorageError: the last such failure, if some replica holds one
                but none is the expected, readable one.
        """
        failures: list[BlobrepError] = []
        for store in self._replicas.stores:
            try:
                return await read_manifest(store, self.gallery, self.blob, expect=self.expect)
            except (ManifestNotFoundError, ManifestError, StorageError) as exc:
                failures.append(exc)
                self._manifest_faults[store.name] = str(exc)
        worst = [exc for exc in failures if not isinstance(exc, ManifestNotFoundError)]
        if worst:
            raise worst[-1]
        raise ManifestNotFoundError(
            f"no blob {self.gallery}/{self.blob} in any of the {len(self._replicas.stores)} replicas"
            f" ({', '.join(self.replicas)})"
        )

    def statistics(self) -> ReaderStatistics:
        """A snapshot of the bytes and requests per replica, failovers and repairs so far."""
        return self._replicas.statistics()

    async def read_chunk(
        self, ref: ChunkRef, *, buffer: bytearray | None = None, then: Consumer | None = None
    ) -> bytes | memoryview:
        """The verified plain bytes of ``ref``, from whichever replica serves it well.

        A zero chunk is returned as zeros without any read (and ``then`` is not called). With
        ``buffer`` the bytes are decoded into it; ``then`` runs with them on the worker thread
        that decoded them (see :meth:`ReplicaSet.read_from`).

        Raises:
            ChunkMissingError, ChunkCorruptError: the last replica's error, if every replica
                lacks the chunk or holds it corrupt (it names the chunk; a note lists them all).
            StorageError: naming the chunk, if the last replica tried failed with an I/O error.
            RuntimeError: if the reader is not open.
        """
        if ref.digest is None:
            return bytes(ref.length)
        if self._manifest is None or self._closed:
            raise RuntimeError("the reader is not open: use it as 'async with VersionReader(...)'")
        async with self._inflight:
            served = await self._replicas.read(ref, buffer=buffer, then=then)
        return served.plain

    async def read_run(
        self, refs: Sequence[ChunkRef], buffers: Sequence[bytearray], thens: Sequence[Consumer]
    ) -> None:
        """Read ``refs``, frames back to back in one pack, each into its buffer and on to its
        consumer, with one request (see :meth:`ReplicaSet.read_run`). The run counts as one
        read in flight: its caller keeps its frames within one chunk's largest frame.

        Raises:
            what :meth:`read_chunk` raises, for the first chunk no replica serves.
            RuntimeError: if the reader is not open.
        """
        if self._manifest is None or self._closed:
            raise RuntimeError("the reader is not open: use it as 'async with VersionReader(...)'")
        async with self._inflight:
            await self._replicas.read_run(refs, buffers, thens)
