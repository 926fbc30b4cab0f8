"""The one way chunks are read from replicas: choose, fetch, decode and verify, fail over, repair.

Restore, verify, scrub, replication and deployments all read chunks through a
:class:`ReplicaSet`, the replicas of one region for one gallery:

* **choose**: a policy of :mod:`blobrep.core.selection` picks each read's replica from the
  bytes outstanding at each, counted here on the event loop as each choice is made;
* **fetch**: the stored frame, at most one byte past the manifest's stored length, from a
  regular file only: a FIFO, device, directory or link at the key is a damaged copy
  (:class:`DamagedObjectError` from the store becomes :class:`ChunkCorruptError` here);
* **decode**: on a worker thread (:mod:`blobrep.engine.chunk_decode`), followed in the same
  hop by the caller's ``then`` if given (a restore writes the plain bytes there); frames back
  to back in one pack can be fetched and decoded together (:meth:`ReplicaSet.read_run`);
* **fail over**: a replica that lacks the chunk, holds it corrupt or fails is passed over for
  the next choice among those not tried; every fault is reported with the replica it was in.
  A replica that lacks the pack a chunk is in may still hold the chunk as its own object (an
  older version's): :meth:`ReplicaSet.read` serves that copy, verified like any other;
* **repair**: with ``repair=True``, once another replica served a good copy, each missing or
  corrupt copy is repaired in the set's own task group (never delaying the read that found
  the damage; finished or cancelled before the set closes): a chunk stored alone gets the
  verified frame, a chunk in a pack its whole pack, once per (replica, pack); see
  :mod:`blobrep.engine.read_repair`. A replica that merely failed with an I/O error is not
  repaired: nothing says its copy is bad. One that served a chunk from its own object because
  its pack is missing gets the pack.

Memory: pending repairs are bounded (:data:`~blobrep.engine.read_repair.PENDING_REPAIRS`
chunks, ``PENDING_PACK_REPAIRS`` packs); callers bound their own reads in flight.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import random
from collections.abc import Collection, Sequence
from contextlib import AsyncExitStack
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from blobrep.core.names import validate_gallery_name
from blobrep.core.selection import Policy, choose_replica
from blobrep.engine._concurrency import CPU_THREADS, task_group
from blobrep.engine.chunk_decode import Consumer, ConsumerError, decode_frame, decode_run
from blobrep.engine.read_faults import ChunkFault, FaultKind, Served, exhausted, failure_detail, fault_kind
from blobrep.engine.read_repair import PENDING_PACK_REPAIRS, PENDING_REPAIRS, ReadRepairs
from blobrep.engine.read_stats import ReaderStatistics, ReplicaStatistics
from blobrep.errors import (
    BlobrepError,
    ChunkCorruptError,
    ChunkMissingError,
    DamagedObjectError,
    InvalidKeyError,
    InvalidParameterError,
    NotFoundError,
    StorageError,
)

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from blobrep.core.manifest import ChunkRef
    from blobrep.storage.base import Store

__all__ = [
    "PENDING_PACK_REPAIRS",
    "PENDING_REPAIRS",
    "ChunkFault",
    "Consumer",
    "FaultKind",
    "ReaderStatistics",
    "ReplicaSet",
    "ReplicaStatistics",
    "Served",
    "failure_detail",
    "fault_kind",
]


class ReplicaSet:
    """The replicas of one region for one gallery; see the module docstring.

    Use it as ``async with ReplicaSet(...) as replicas:``; every method runs on the event loop.

    Args:
        stores: the replicas, each a full copy, with distinct names.
        gallery: the gallery whose chunks are read.
        policy: how a replica is chosen for each read.
        seed: seeds the policy's random choices, for reproducible runs; None for fresh ones.
        repair: write good copies back over missing or corrupt ones found by :meth:`read`.

    Raises:
        InvalidParameterError: no stores, or duplicate names.
        InvalidNameError: ``gallery`` is not a valid gallery name.
    """

    def __init__(
        self,
        stores: Sequence[Store],
        gallery: str,
        *,
        policy: Policy = Policy.LEAST_LOADED,
        seed: int | None = None,
        repair: bool = False,
    ) -> None:
        if not stores:
            raise InvalidParameterError("reading chunks needs at least one replica to read from")
        names = [store.name for store in stores]
        if len(set(names)) != len(names):
            raise InvalidParameterError(f"replica names must be distinct to tell them apart: {names}")
        self.gallery = validate_gallery_name(gallery)
        self.policy = Policy(policy)
        self.stores = tuple(stores)
        self._repair = repair
        self._rng = random.Random(seed)
        self._turn = 0
        count = len(stores)
        self._outstanding = [0] * count
        self._bytes = [0] * count
        self._requests = [0] * count
        self._failures = [0] * count
        self._chunks = self._failovers = 0
        self._repairs = ReadRepairs(self.stores, self.gallery)
        self._cpu = anyio.CapacityLimiter(CPU_THREADS)
        self._stack: AsyncExitStack | None = None
        self._group: TaskGroup | None = None
        self._closed = False

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the replicas, in the order given."""
        return tuple(store.name for store in self.stores)

    async def __aenter__(self) -> ReplicaSet:
        if self._stack is not None or self._closed:
            raise RuntimeError("a ReplicaSet can be entered only once")
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

    def statistics(self) -> ReaderStatistics:
        """A snapshot of the bytes and requests per replica, failovers and repairs so far."""
        replicas = {
            store.name: ReplicaStatistics(self._bytes[index], self._requests[index], self._failures[index])
            for index, store in enumerate(self.stores)
        }
        repairs = self._repairs
        return ReaderStatistics(
            MappingProxyType(replicas),
            self._chunks,
            self._failovers,
            repairs.repairs,
            repairs.failures,
            repairs.repaired_bytes,
        )

    async def fetch(self, index: int, ref: ChunkRef) -> bytes:
        """The stored frame of ``ref`` in replica ``index``, counted as outstanding while awaited.

        At most one byte more than the manifest's stored length is read, so a file of any
        size where the chunk should be costs no more memory than the chunk. A frame in a
        pack is read by its range: exactly its stored length (the pack goes on past it).

        Raises:
            ChunkMissingError: the replica lacks the chunk (or the pack it is in).
            ChunkCorruptError: the key is not a regular file there, or is reached through a
                link leading out of the replica.
            StorageError: the store failed.
        """
        digest = ref.digest
        assert digest is not None
        store = self.stores[index]
        self._requests[index] += 1
        self._outstanding[index] += ref.stored_length
        try:
            key, offset = ref.location(self.gallery)
            extra = 1 if ref.pack is None else 0
            frame = await store.get(key, offset, ref.stored_length + extra)
        except NotFoundError:
            raise ChunkMissingError(digest, store.name) from None
        except DamagedObjectError as exc:
            what = "" if ref.pack is None else f"its pack {ref.pack.digest} is "
            raise ChunkCorruptError(digest, store.name, f"{what}{exc.kind}, not a regular file") from None
        except InvalidKeyError as exc:  # a link on the way out of the replica: damage there
            raise ChunkCorruptError(digest, store.name, str(exc)) from None
        finally:
            self._outstanding[index] -= ref.stored_length
        self._bytes[index] += len(frame)
        return frame

    async def read_from(
        self, index: int, ref: ChunkRef, *, buffer: bytearray | None = None, then: Consumer | None = None
    ) -> tuple[bytes | memoryview, bytes]:
        """(verified plain bytes, stored frame) of ``ref`` from replica ``index`` alone.

        With ``buffer`` the plain bytes are decoded into it (a view of it is returned);
        ``then`` runs with them on the worker thread, in the same hop. An error ``then``
        raises propagates as itself and is not counted against the replica.

        Raises:
            ChunkMissingError, ChunkCorruptError: the copy there is missing or bad.
            StorageError: the store failed.
        """
        try:
            return await self._read_from(index, ref, buffer, then)
        except ConsumerError as carried:
            raise carried.error from carried.error.__cause__

    async def _read_from(
        self, index: int, ref: ChunkRef, buffer: bytearray | None, then: Consumer | None
    ) -> tuple[bytes | memoryview, bytes]:
        """:meth:`read_from`, with an error of ``then`` still wrapped in :class:`ConsumerError`."""
        frame = await self.fetch(index, ref)
        plain = await anyio.to_thread.run_sync(
            decode_frame, frame, ref, self.stores[index].name, buffer, then, limiter=self._cpu
        )
        return plain, frame

    async def check_frames(
        self, index: int, pack: bytes, refs: Sequence[ChunkRef]
    ) -> list[ChunkCorruptError | None]:
        """Per chunk of ``refs``, None if its frame in ``pack`` (the whole pack, which replica
        ``index`` holds, read by the caller) decodes to it, else why not: one worker-thread hop."""
        name = self.stores[index].name
        return await anyio.to_thread.run_sync(
            functools.partial(decode_run, pack, refs, name, start=0), limiter=self._cpu
        )

    async def _read_any_copy(
        self, index: int, ref: ChunkRef, buffer: bytearray | None, then: Consumer | None
    ) -> tuple[bytes | memoryview, bytes, bool]:
        """:meth:`_read_from`, or, where the replica lacks the pack ``ref`` is in, the chunk's
        copy stored alone there; True in the last place if that copy served.

        Raises:
            ChunkMissingError: the pack's, if the replica holds no good copy alone either.
        """
        try:
            return (*await self._read_from(index, ref, buffer, then), False)
        except ChunkMissingError as missing:
            if ref.pack is None:
                raise
            lacking = missing
        alone = dataclasses.replace(ref, pack=None, offset=0)
        try:
            return (*await self._read_from(index, alone, buffer, then), True)
        except (ChunkMissingError, ChunkCorruptError, StorageError):
            raise lacking from None

    async def read(
        self,
        ref: ChunkRef,
        *,
        buffer: bytearray | None = None,
        then: Consumer | None = None,
        exclude: Collection[int] = (),
    ) -> Served:
        """``ref`` from whichever replica serves it well, failing over; see the module docstring.

        ``exclude`` names replicas not to ask (known bad for this chunk). A replica that
        lacks the pack ``ref`` is in serves the chunk's own object if it holds a good one.

        An error raised by ``then`` propagates as itself at once: it is not counted against
        the replica, and no other replica is tried.

        Raises:
            ChunkMissingError, ChunkCorruptError: the last replica's error, if every replica
                lacks the chunk or holds it corrupt (a note lists every replica's fault).
            StorageError: naming the chunk, if the last replica tried failed with an I/O error.
            InvalidParameterError: every replica is excluded.
        """
        return await self._fail_over(ref, buffer, then, set(exclude), [], [])

    async def _fail_over(
        self,
        ref: ChunkRef,
        buffer: bytearray | None,
        then: Consumer | None,
        tried: set[int],
        faults: list[ChunkFault],
        errors: list[BlobrepError],
    ) -> Served:
        """:meth:`read`, after the replicas ``tried`` (with ``faults`` and ``errors``)."""
        digest = ref.digest
        assert digest is not None
        while len(tried) < len(self.stores):
            if errors:
                self._failovers += 1
            index = choose_replica(
                self.policy, self._outstanding, rng=self._rng, turn=self._turn, exclude=tried
            )
            self._turn += 1
            tried.add(index)
            try:
                plain, frame, alone = await self._read_any_copy(index, ref, buffer, then)
            except ConsumerError as carried:
                # The caller's own failure (its output disk is full): not the replica's fault,
                # and no other replica would do better.
                raise carried.error from carried.error.__cause__
            except (ChunkMissingError, ChunkCorruptError, StorageError) as exc:
                self._failures[index] += 1
                # Without its traceback: the traceback holds this frame, which holds
                # ``errors``, a cycle that would keep the failed read's frame and plain
                # bytes alive until the cyclic collector ran (hundreds of MiB in a storm
                # over a damaged replica).
                errors.append(exc.with_traceback(None))
                faults.append(ChunkFault(self.stores[index].name, index, fault_kind(exc), str(exc)))
                continue
            self._chunks += 1
            damaged = [fault.index for fault in faults if fault.kind != "failed"]
            if alone:  # served, but its pack is missing there
                damaged.append(index)
            if damaged and self._repair:
                if self._group is None or self._closed:
                    raise RuntimeError(
                        "a repairing ReplicaSet must be open: use 'async with ReplicaSet(...)'"
                    )
                await self._repairs.schedule(self._group, damaged, index, ref, frame)
            return Served(plain, frame, index, tuple(faults))
        if not errors:
            raise InvalidParameterError(f"no replica left to read chunk {digest} from: all are excluded")
        raise exhausted(digest, errors, len(self.stores))

    async def read_run(
        self, refs: Sequence[ChunkRef], buffers: Sequence[bytearray], thens: Sequence[Consumer]
    ) -> None:
        """Read ``refs``, frames back to back in one pack, into ``buffers`` and on to
        ``thens`` with one ranged request to one replica and one decode hop.

        Each chunk fares as a read of it alone there would: a bad frame or a failed request
        is a fault against the replica and the chunk fails over (repairing the replica); if
        the replica lacks the pack, each chunk goes through :meth:`read`, which also finds a
        copy stored alone.

        Raises:
            what :meth:`read` raises, for the first chunk no replica serves.
        """
        first = refs[0]
        assert first.pack is not None and all(ref.follows(before) for before, ref in itertools.pairwise(refs))
        index = choose_replica(self.policy, self._outstanding, rng=self._rng, turn=self._turn)
        self._turn += 1
        name = self.stores[index].name
        problems: list[ChunkCorruptError | StorageError | None]
        try:
            data = await self.fetch(
                index, dataclasses.replace(first, stored_length=sum(ref.stored_length for ref in refs))
            )
        except ChunkMissingError:
            for ref, buffer, then in zip(refs, buffers, thens, strict=True):
                await self.read(ref, buffer=buffer, then=then)
            return
        except ChunkCorruptError as exc:
            problems = [ChunkCorruptError(ref.digest or "", name, exc.reason) for ref in refs]
        except StorageError as exc:
            problems = [exc.with_traceback(None)] * len(refs)
        else:
            try:
                problems = list(
                    await anyio.to_thread.run_sync(
                        decode_run, data, refs, name, buffers, thens, limiter=self._cpu
                    )
                )
            except ConsumerError as carried:
                raise carried.error from carried.error.__cause__
        for ref, buffer, then, problem in zip(refs, buffers, thens, problems, strict=True):
            if problem is None:
                self._chunks += 1
                continue
            self._failures[index] += 1
            fault = ChunkFault(name, index, fault_kind(problem), str(problem))
            await self._fail_over(ref, buffer, then, {index}, [fault], [problem])

    async def write_back(self, index: int, ref: ChunkRef, frame: bytes) -> str:
        """Put the verified ``frame`` of ``ref`` into replica ``index`` now (atomically); what
        was written: "the frame given", or where the pack came from (a replica's name, or
        "NAME (patched)").

        A chunk stored alone gets ``frame``. A chunk in a pack gets its whole pack mended:
        copied from another replica holding it whole, else the replica's own copy patched
        with ``frame`` if that gives the pack back (a pack is never written in part).

        Raises:
            StorageError: the write failed.
            ChunkCorruptError: the chunk is in a pack of which no verified copy was found
                (nothing was written).
        """
        return await self._repairs.write_back(index, ref, frame)
