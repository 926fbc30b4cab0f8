"""Reading a version in a region: chunks spread over the region's replicas, each one verified.

A region with k replicas holds k full copies of a version. A :class:`VersionReader` opens the
version once (the manifest from the first replica that has a valid one) and then serves chunk
reads for any number of concurrent consumers (one per deployed VM), choosing a replica per
chunk with a policy from :mod:`blobrep.core.selection` over the bytes outstanding at each
replica. The counts are kept on the event loop and updated as each choice is made, so the
policy never sees stale load.

Every chunk is decoded and verified on a worker thread. A replica that lacks the chunk, holds
a corrupt copy or fails to answer is left for the next choice among the replicas not yet
tried (a failover). When another replica serves a good copy, the stored frame is written back
to each replica that lacked it or held it corrupt: a repair, run in the reader's own task
group so that it never delays the read that found the damage, done at most once per
(replica, chunk) and finished (or cancelled, on error) before the reader closes. A replica
that merely failed with an I/O error is not repaired: nothing says its copy is bad.

Memory: a global limit of ``max_inflight`` chunk reads at once, taken before anything else,
bounds the frames and plain chunks in flight however many deployments share the reader; a
bounded number of pending repairs holds their frames, and readers wait for a repair slot when
a badly damaged replica produces repairs faster than they can be written.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Final

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup

from blobrep.core.keys import chunk_key
from blobrep.core.manifest import ChunkRef, Manifest
from blobrep.core.names import BlobName, validate_gallery_name
from blobrep.core.selection import Policy, choose_replica
from blobrep.engine._concurrency import CPU_THREADS, task_group
from blobrep.engine.manifests import read_manifest
from blobrep.engine.restore import decode, fetch_chunk
from blobrep.errors import (
    BlobrepError,
    ChunkCorruptError,
    ChunkMissingError,
    InvalidParameterError,
    ManifestError,
    ManifestNotFoundError,
    StorageError,
)
from blobrep.storage.base import Store

#: Repairs written or waiting at once; each holds one stored frame.
PENDING_REPAIRS: Final = 16

_Damage = ChunkMissingError | ChunkCorruptError


@dataclass(frozen=True, slots=True)
class ReplicaStatistics:
    """What one replica did for a reader."""

    bytes_served: int
    """Stored (compressed) bytes it returned, good or bad."""
    requests: int
    """Chunk reads sent to it."""
    failures: int
    """Reads that found the chunk missing or corrupt there, or failed with an I/O error."""


@dataclass(frozen=True, slots=True)
class ReaderStatistics:
    """A snapshot of a reader's work: per replica name, and failovers and repairs overall."""

    replicas: Mapping[str, ReplicaStatistics]
    chunks: int
    """Stored chunks served (zero chunks need no read and are not counted)."""
    failovers: int
    """Times a read moved on to another replica after one failed."""
    repairs: int
    """Chunks written back to a replica that lacked them or held them corrupt."""
    repair_failures: int
    """Repairs whose write failed; the damage stays and a later read or scrub meets it again."""

    @property
    def bytes_served(self) -> int:
        """Stored bytes returned by every replica together."""
        return sum(replica.bytes_served for replica in self.replicas.values())

    def since(self, earlier: ReaderStatistics) -> ReaderStatistics:
        """The work done between ``earlier`` (a snapshot of the same reader) and this one."""
        replicas = {
            name: ReplicaStatistics(
                now.bytes_served - earlier.replicas[name].bytes_served,
                now.requests - earlier.replicas[name].requests,
                now.failures - earlier.replicas[name].failures,
            )
            for name, now in self.replicas.items()
        }
        return ReaderStatistics(
            MappingProxyType(replicas),
            self.chunks - earlier.chunks,
            self.failovers - earlier.failovers,
            self.repairs - earlier.repairs,
            self.repair_failures - earlier.repair_failures,
        )


class VersionReader:
    """Reads chunks of ``blob`` of ``gallery`` from the replicas ``stores``; see the module docstring.

    Use it as ``async with VersionReader(...) as reader:``; every method is called on the
    event loop (the state is not shared with threads).

    Args:
        stores: the region's replicas, each a full copy, with distinct names.
        gallery: the gallery the blob belongs to.
        blob: which blob (image definition and version).
        policy: how a replica is chosen for each chunk.
        seed: seeds the policy's random choices, for reproducible runs; None for fresh ones.
        max_inflight: chunk reads in progress at once over every consumer.
        repair: write good copies back over missing or corrupt ones.

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
        policy: Policy = Policy.LEAST_LOADED,
        seed: int | None = None,
        max_inflight: int = 64,
        repair: bool = True,
    ) -> None:
        if not stores:
            raise InvalidParameterError("a version reader needs at least one replica to read from")
        names = [store.name for store in stores]
        if len(set(names)) != len(names):
            raise InvalidParameterError(f"replica names must be distinct to tell them apart: {names}")
        if isinstance(max_inflight, bool) or not isinstance(max_inflight, int) or max_inflight < 1:
            raise InvalidParameterError(f"max_inflight {max_inflight!r} must be a whole number >= 1")
        self.gallery = validate_gallery_name(gallery)
        self.blob = blob
        self.policy = Policy(policy)
        self.max_inflight = max_inflight
        self._stores = tuple(stores)
        self._repair = repair
        self._rng = random.Random(seed)
        self._turn = 0
        count = len(stores)
        self._outstanding = [0] * count
        self._bytes = [0] * count
        self._requests = [0] * count
        self._failures = [0] * count
        self._chunks = self._failovers = self._repairs = self._repair_failures = 0
        self._repairs_started: set[tuple[int, str]] = set()
        self._manifest: Manifest | None = None
        self._stack: AsyncExitStack | None = None
        self._group: TaskGroup | None = None
        self._inflight: anyio.CapacityLimiter | None = None
        self._cpu: anyio.CapacityLimiter | None = None
        self._repair_slots: anyio.Semaphore | None = None
        self._closed = False

    @property
    def replicas(self) -> tuple[str, ...]:
        """The names of the replicas, in the order given."""
        return tuple(store.name for store in self._stores)

    @property
    def manifest(self) -> Manifest:
        """The version's manifest, as read on entering."""
        if self._manifest is None:
            raise RuntimeError("the reader is not open: use it as 'async with VersionReader(...)'")
        return self._manifest

    async def __aenter__(self) -> VersionReader:
        if self._stack is not None or self._closed:
            raise RuntimeError("a VersionReader can be entered only once")
        self._manifest = await self._read_manifest()
        self._inflight = anyio.CapacityLimiter(self.max_inflight)
        self._cpu = anyio.CapacityLimiter(CPU_THREADS)
        self._repair_slots = anyio.Semaphore(PENDING_REPAIRS)
        async with AsyncExitStack() as stack:
            self._group = await stack.enter_async_context(task_group())
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._stack is not None and self._group is not None
        self._closed = True
        if exc_type is not None:
            self._group.cancel_scope.cancel()
        return await self._stack.__aexit__(exc_type, exc, tb)

    async def _read_manifest(self) -> Manifest:
        """The manifest from the first replica holding a valid one.

        Raises:
            ManifestNotFoundError: if no replica holds one.
            ManifestError, StorageError: the last such failure, if some replica holds one
                but none could be read or parsed.
        """
        failures: list[BlobrepError] = []
        for store in self._stores:
            try:
                return await read_manifest(store, self.gallery, self.blob)
            except (ManifestNotFoundError, ManifestError, StorageError) as exc:
                failures.append(exc)
        worst = [exc for exc in failures if not isinstance(exc, ManifestNotFoundError)]
        if worst:
            raise worst[-1]
        raise ManifestNotFoundError(
            f"no blob {self.gallery}/{self.blob} in any of the {len(self._stores)} replicas"
            f" ({', '.join(self.replicas)})"
        )

    def statistics(self) -> ReaderStatistics:
        """A snapshot of the bytes and requests per replica, failovers and repairs so far."""
        replicas = {
            store.name: ReplicaStatistics(self._bytes[index], self._requests[index], self._failures[index])
            for index, store in enumerate(self._stores)
        }
        return ReaderStatistics(
            MappingProxyType(replicas), self._chunks, self._failovers, self._repairs, self._repair_failures
        )

    async def read_chunk(self, ref: ChunkRef) -> bytes:
        """The verified plain bytes of ``ref``, from whichever replica serves it well.

        A zero chunk is returned as zeros without any read.

        Raises:
            ChunkMissingError, ChunkCorruptError: the last replica's error, if every replica
                lacks the chunk or holds it corrupt (it names the chunk; a note lists them all).
            StorageError: naming the chunk, if the last replica tried failed with an I/O error.
            RuntimeError: if the reader is not open.
        """
        if ref.digest is None:
            return bytes(ref.length)
        if self._inflight is None or self._closed:
            raise RuntimeError("the reader is not open: use it as 'async with VersionReader(...)'")
        async with self._inflight:
            return await self._read_stored(ref, ref.digest)

    async def _read_stored(self, ref: ChunkRef, digest: str) -> bytes:
        assert self._cpu is not None
        tried: set[int] = set()
        damaged: list[int] = []
        errors: list[BlobrepError] = []
        while len(tried) < len(self._stores):
            if errors:
                self._failovers += 1
            index = choose_replica(
                self.policy, self._outstanding, rng=self._rng, turn=self._turn, exclude=tried
            )
            self._turn += 1
            tried.add(index)
            store = self._stores[index]
            try:
                frame = await self._fetch(index, ref)
                plain = await anyio.to_thread.run_sync(decode, frame, ref, store.name, limiter=self._cpu)
            except (ChunkMissingError, ChunkCorruptError, StorageError) as exc:
                self._failures[index] += 1
                # Without its traceback: the traceback holds this frame, which holds
                # ``errors``, a cycle that would keep the failed read's frame and plain
                # bytes alive until the cyclic collector ran (hundreds of MiB in a storm
                # over a damaged replica).
                errors.append(exc.with_traceback(None))
                if isinstance(exc, _Damage):
                    damaged.append(index)
                continue
            self._chunks += 1
            if damaged and self._repair:
                await self._schedule_repairs(damaged, digest, frame)
            return plain
        raise self._exhausted(digest, errors)

    async def _fetch(self, index: int, ref: ChunkRef) -> bytes:
        """The stored frame from replica ``index``, counted as outstanding while it is awaited."""
        self._requests[index] += 1
        self._outstanding[index] += ref.stored_length
        try:
            frame = await fetch_chunk(self._stores[index], self.gallery, ref)
        finally:
            self._outstanding[index] -= ref.stored_length
        self._bytes[index] += len(frame)
        return frame

    def _exhausted(self, digest: str, errors: list[BlobrepError]) -> BlobrepError:
        last = errors[-1]
        if not isinstance(last, _Damage):
            return StorageError(
                f"chunk {digest} could not be read from any of the {len(self._stores)} replicas;"
                f" the last failed with: {last}"
            )
        if len(errors) > 1:
            last.add_note("every replica failed: " + "; ".join(str(error) for error in errors))
        return last

    async def _schedule_repairs(self, damaged: list[int], digest: str, frame: bytes) -> None:
        assert self._group is not None and self._repair_slots is not None
        for index in damaged:
            if (index, digest) in self._repairs_started:
                continue
            self._repairs_started.add((index, digest))
            await self._repair_slots.acquire()
            self._group.start_soon(self._repair_one, index, digest, frame)

    async def _repair_one(self, index: int, digest: str, frame: bytes) -> None:
        """Write the good ``frame`` over the damaged copy in replica ``index`` (atomically)."""
        assert self._repair_slots is not None
        try:
            await self._stores[index].put(chunk_key(self.gallery, digest), frame)
        except BlobrepError:
            self._repair_failures += 1
        else:
            self._repairs += 1
        finally:
            self._repair_slots.release()
