"""The storage protocol: a flat key -> bytes space that every store kind implements.

Semantics every store keeps (the contract suite in ``tests/storage`` checks them):

* ``put`` is atomic: a reader sees the old value or the new one, never part of either.
  With ``if_absent=True`` it fails with :class:`AlreadyExistsError` when the key exists, which
  is how manifests and records are created exactly once.
* A ``put`` that returned is durable once ``sync()`` has returned; the engine calls
  ``sync()`` before writing a manifest so no manifest can outlive its chunks in a crash.
  (Object stores are durable at ``put`` and make ``sync`` a no-op.)
* Keys are validated (``blobrep.core.keys``) before they touch anything.
* Errors are blobrep's: :class:`NotFoundError` for a missing key, :class:`StorageFullError`
  when out of space, :class:`DamagedObjectError` for a key that is there but is not a plain
  object (a FIFO, device, socket, directory or link where a file should be), and
  :class:`StorageError` for anything else. Reads never block on such a key and never follow
  a link out of the store.
* A store may leave temporary objects behind when a writer is killed mid-put; they never
  show in ``list`` or as keys, and :meth:`Store.sweep_temporaries` finds and removes them.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias, runtime_checkable

Buffer: TypeAlias = bytes | bytearray | memoryview
#: What a put stores: one buffer, or several stored back to back as one object. A caller
#: holding many buffers (a pack's frames) passes them as they are, rather than copying them
#: into one: a copy of several MiB per object would double what the writer holds, and large
#: short-lived blocks leave the allocator's heap fragmented and the process bigger.
Payload: TypeAlias = Buffer | tuple[Buffer, ...]


def payload_size(data: Payload) -> int:
    """The number of bytes ``data`` stores."""
    if isinstance(data, tuple):
        return sum(memoryview(part).nbytes for part in data)
    return memoryview(data).nbytes


def payload_parts(data: Payload) -> tuple[Buffer, ...]:
    """The buffers ``data`` stores, in order."""
    return data if isinstance(data, tuple) else (data,)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a store knows about one key without reading it."""

    key: str
    size: int
    modified: float
    """Seconds since the epoch of the last write (garbage collection uses it for grace)."""


@runtime_checkable
class Store(Protocol):
    """A flat, async key -> bytes store. See the module docstring for the contract."""

    @property
    def name(self) -> str:
        """A human name for messages: which replica or directory this is."""
        ...

    async def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """The bytes of ``key`` from ``offset``, at most ``length`` of them (all if None).

        Raises:
            NotFoundError: if ``key`` does not exist.
        """
        ...

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        """Store ``data`` under ``key`` atomically (a tuple of buffers as their bytes back to
        back).

        Raises:
            AlreadyExistsError: if ``if_absent`` and ``key`` exists.
            StorageFullError: if the store is out of space (nothing is left behind).
        """
        ...

    async def exists(self, key: str) -> bool:
        """True if ``key`` holds a value."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove ``key``; return False if it did not exist (deleting is idempotent)."""
        ...

    def list(self, prefix: str = "") -> AsyncIterator[str]:
        """Every key that starts with ``prefix``, each once, in no promised order."""
        ...

    async def stat(self, key: str) -> ObjectInfo:
        """Size and modification time of ``key``.

        Raises:
            NotFoundError: if ``key`` does not exist.
        """
        ...

    async def stat_many(self, keys: Sequence[str]) -> builtins.list[ObjectInfo | None]:
        """``stat`` of every key, None where a key does not exist, in one round trip where
        the store can (the publish pipeline asks this of every chunk of a window at once)."""
        ...

    async def sync(self) -> None:
        """Make every ``put`` and ``delete`` that has returned durable."""
        ...

    async def sweep_temporaries(
        self, prefix: str = "", *, older_than: float, dry_run: bool = False
    ) -> builtins.list[ObjectInfo]:
        """Remove the temporary objects under ``prefix`` that interrupted writes left behind.

        Only those last written at least ``older_than`` seconds before now (by the store's
        own clock) are removed: a younger one may belong to a put still in progress. Returns
        what was removed (or, with ``dry_run``, what would be), each ``key`` being the
        temporary's own name relative to the store root. Stores whose puts leave nothing
        behind return an empty list.
        """
        ...


@runtime_checkable
class ServerSideCopy(Protocol):
    """A store that can copy a key from another store of the same service without the bytes
    passing through this process (an S3 bucket, an Azure account): replication fills the
    second replica of a region, or a region on the service it reads from, this way.
    """

    @property
    def copy_service(self) -> Hashable:
        """Stores with equal ``copy_service`` can copy between each other inside the service."""
        ...

    async def copy_from(self, source: Store, key: str) -> bool:
        """Copy ``key`` from ``source`` inside the service (overwriting); False if that cannot be
        done and the caller must write the bytes itself.

        Raises:
            NotFoundError: ``key`` is not in ``source``.
        """
        ...


@runtime_checkable
class ConditionalWrite(Protocol):
    """A store whose writes can be made conditional on the version of what is there (an
    ETag): leases are created with :meth:`put_if_absent` and refreshed with
    :meth:`put_if_match`, so a holder never writes back a lease that someone else removed.
    """

    async def put_if_absent(self, key: str, data: bytes | bytearray | memoryview) -> str:
        """Create ``key`` only if it does not exist; return its version (ETag).

        Raises:
            AlreadyExistsError: ``key`` exists.
        """
        ...

    async def put_if_match(self, key: str, data: bytes | bytearray | memoryview, etag: str) -> str:
        """Replace ``key`` only while it is still the version ``etag``; return the new version.

        Raises:
            PreconditionError: ``key`` changed or is gone.
        """
        ...
