"""The one way chunks are read from replicas: choose, fetch, decode and verify, fail over, repair.

Restore, verify, scrub, replication and deployments all read chunks through a
:class:`ReplicaSet`, the replicas of one region for one gallery:

* **choose**: a policy from :mod:`blobrep.core.selection` picks the replica for each read
  from a snapshot of the bytes outstanding at each one. The counts live here, on the event
  loop, and change as each choice is made, so the policy never sees stale load;
* **fetch**: the stored frame, at most one byte more than the manifest's stored length (a
  huge or sparse file where a chunk should be costs nothing), from a regular file only: a
  key that is a FIFO, device, directory or link is a damaged copy (:class:`DamagedObjectError`
  from the store becomes :class:`ChunkCorruptError` here);
* **decode**: on a worker thread, by the one decoder (:func:`blobrep.core.codec.decode_chunk_into`
  or :func:`~blobrep.core.codec.decode_chunk`, which share every check), optionally followed
  in the same thread hop by the caller's ``then`` (a restore writes the plain bytes there,
  so a chunk costs one hop however it is consumed);
* **fail over**: a replica that lacks the chunk, holds it corrupt or fails is passed over for
  the next choice among those not tried; every fault is reported with the replica it was in;
* **repair**: with ``repair=True``, once another replica served a good copy, the verified
  frame is written back over each missing or corrupt copy, in the set's own task group so it
  never delays the read that found the damage, at most once per (replica, chunk), and
  finished (or cancelled, on error) before the set closes. A replica that merely failed
  with an I/O error is not repaired: nothing says its copy is bad.

Memory: pending repairs are bounded (:data:`PENDING_REPAIRS`, each holding one frame);
callers bound their own reads in flight.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Final, Literal

import anyio
import anyio.to_thread

from blobrep.core.codec import decode_chunk, decode_chunk_into
from blobrep.core.keys import chunk_key
from blobrep.core.names import validate_gallery_name
from blobrep.core.selection import Policy, choose_replica
from blobrep.engine._concurrency import CPU_THREADS, task_group, thread_decompressor
from blobrep.engine.read_stats import ReaderStatistics, ReplicaStatistics
from blobrep.errors import (
    BlobrepError,
    ChunkCorruptError,
    ChunkMissingError,
    DamagedObjectError,
    InvalidParameterError,
    NotFoundError,
    StorageError,
)

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from blobrep.core.manifest import ChunkRef
    from blobrep.storage.base import Store

__all__ = [
    "PENDING_REPAIRS",
    "ChunkFault",
    "Consumer",
    "FaultKind",
    "ReaderStatistics",
    "ReplicaSet",
    "ReplicaStatistics",
    "Served",
    "fault_kind",
]

#: Repairs written or waiting at once; each holds one stored frame.
PENDING_REPAIRS: Final = 16

FaultKind = Literal["missing", "corrupt", "failed"]
Consumer = Callable[[memoryview], None]
"""Runs on the worker thread with a chunk's verified plain bytes, right after decoding."""

_Damage = ChunkMissingError | ChunkCorruptError


@dataclass(frozen=True, slots=True)
class ChunkFault:
    """Why one replica could not serve one chunk."""

    replica: str
    index: int
    """Position of the replica in the set."""
    kind: FaultKind
    """``missing`` or ``corrupt`` (the copy is bad: repairable), ``failed`` (the store failed)."""
    detail: str


@dataclass(frozen=True, slots=True)
class Served:
    """A chunk read that succeeded: its verified plain bytes, its frame, and who served it."""

    plain: bytes | memoryview
    frame: bytes
    index: int
    faults: tuple[ChunkFault, ...]
    """Replicas tried before this one, and what was wrong with each."""


_EVERY_REPLICA: Final = "every replica failed: "


def failure_detail(error: BlobrepError) -> str:
    """What a failed :meth:`ReplicaSet.read` says: every replica's fault when several were
    tried (the note the read added), else the error itself."""
    notes = [note for note in getattr(error, "__notes__", ()) if note.startswith(_EVERY_REPLICA)]
    return notes[-1] if notes else str(error)


def fault_kind(error: BlobrepError) -> FaultKind:
    """How a read error counts: a bad copy (``missing``/``corrupt``) or a failing store."""
    if isinstance(error, ChunkMissingError):
        return "missing"
    if isinstance(error, ChunkCorruptError):
        return "corrupt"
    return "failed"


class _ConsumerError(Exception):
    """Carries an error of the caller's ``then`` past the fault handling, which it is not."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _decode(
    frame: bytes, ref: ChunkRef, replica: str, buffer: bytearray | None, then: Consumer | None
) -> bytes | memoryview:
    """On a worker thread: decode and verify ``frame``, then hand the plain bytes to ``then``."""
    assert ref.digest is not None
    decompressor = thread_decompressor()
    plain: bytes | memoryview
    if buffer is None:
        plain = decode_chunk(
            frame,
            digest=ref.digest,
            length=ref.length,
            stored_length=ref.stored_length,
            decompressor=decompressor,
            replica=replica,
        )
    else:
        plain = decode_chunk_into(
            frame,
            memoryview(buffer),
            digest=ref.digest,
            length=ref.length,
            stored_length=ref.stored_length,
            decompressor=decompressor,
            replica=replica,
        )
    if then is not None:
        try:
            then(memoryview(plain))
        except BaseException as exc:
            raise _ConsumerError(exc) from exc
    return plain


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
        self._chunks = self._failovers = self._repairs = self._repair_failures = 0
        self._repairs_started: set[tuple[int, str]] = set()
        self._cpu = anyio.CapacityLimiter(CPU_THREADS)
        self._repair_slots = anyio.Semaphore(PENDING_REPAIRS)
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
        return ReaderStatistics(
            MappingProxyType(replicas), self._chunks, self._failovers, self._repairs, self._repair_failures
        )

    async def fetch(self, index: int, ref: ChunkRef) -> bytes:
        """The stored frame of ``ref`` in replica ``index``, counted as outstanding while awaited.

        At most one byte more than the manifest's stored length is read, so a file of any
        size where the chunk should be costs no more memory than the chunk. A frame in a
        pack is read by its range: exactly its stored length (the pack goes on past it).

        Raises:
            ChunkMissingError: the replica lacks the chunk.
            ChunkCorruptError: the key is not a regular file there.
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
            raise ChunkCorruptError(digest, store.name, f"{exc.kind}, not a regular file") from None
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
        except _ConsumerError as carried:
            raise carried.error from carried.error.__cause__

    async def _read_from(
        self, index: int, ref: ChunkRef, buffer: bytearray | None, then: Consumer | None
    ) -> tuple[bytes | memoryview, bytes]:
        """:meth:`read_from`, with an error of ``then`` still wrapped in :class:`_ConsumerError`."""
        frame = await self.fetch(index, ref)
        plain = await anyio.to_thread.run_sync(
            _decode, frame, ref, self.stores[index].name, buffer, then, limiter=self._cpu
        )
        return plain, frame

    async def read(
        self,
        ref: ChunkRef,
        *,
        buffer: bytearray | None = None,
        then: Consumer | None = None,
        exclude: Collection[int] = (),
    ) -> Served:
        """``ref`` from whichever replica serves it well, failing over; see the module docstring.

        ``exclude`` names replicas not to ask (known bad for this chunk).

        An error raised by ``then`` propagates as itself at once: it is not counted against
        the replica, and no other replica is tried.

        Raises:
            ChunkMissingError, ChunkCorruptError: the last replica's error, if every replica
                lacks the chunk or holds it corrupt (a note lists every replica's fault).
            StorageError: naming the chunk, if the last replica tried failed with an I/O error.
            InvalidParameterError: every replica is excluded.
        """
        digest = ref.digest
        assert digest is not None
        tried: set[int] = set(exclude)
        faults: list[ChunkFault] = []
        errors: list[BlobrepError] = []
        while len(tried) < len(self.stores):
            if errors:
                self._failovers += 1
            index = choose_replica(
                self.policy, self._outstanding, rng=self._rng, turn=self._turn, exclude=tried
            )
            self._turn += 1
            tried.add(index)
            try:
                plain, frame = await self._read_from(index, ref, buffer, then)
            except _ConsumerError as carried:
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
            if damaged and self._repair:
                await self._schedule_repairs(damaged, digest, frame)
            return Served(plain, frame, index, tuple(faults))
        if not errors:
            raise InvalidParameterError(f"no replica left to read chunk {digest} from: all are excluded")
        raise self._exhausted(digest, errors)

    async def write_back(self, index: int, ref: ChunkRef, frame: bytes) -> None:
        """Write the verified ``frame`` of ``ref`` over the copy in replica ``index`` (atomically).

        Raises:
            StorageError: the write failed.
        """
        assert ref.digest is not None
        await self.stores[index].put(chunk_key(self.gallery, ref.digest), frame)

    def _exhausted(self, digest: str, errors: list[BlobrepError]) -> BlobrepError:
        last = errors[-1]
        if not isinstance(last, _Damage):
            return StorageError(
                f"chunk {digest} could not be read from any of the {len(self.stores)} replicas;"
                f" the last failed with: {last}"
            )
        if len(errors) > 1:
            last.add_note(_EVERY_REPLICA + "; ".join(str(error) for error in errors))
        return last

    async def _schedule_repairs(self, damaged: list[int], digest: str, frame: bytes) -> None:
        if self._group is None or self._closed:
            raise RuntimeError("a repairing ReplicaSet must be open: use 'async with ReplicaSet(...)'")
        for index in damaged:
            if (index, digest) in self._repairs_started:
                continue
            self._repairs_started.add((index, digest))
            await self._repair_slots.acquire()
            self._group.start_soon(self._repair_one, index, digest, frame)

    async def _repair_one(self, index: int, digest: str, frame: bytes) -> None:
        try:
            await self.stores[index].put(chunk_key(self.gallery, digest), frame)
        except BlobrepError:
            self._repair_failures += 1
        else:
            self._repairs += 1
        finally:
            self._repair_slots.release()
