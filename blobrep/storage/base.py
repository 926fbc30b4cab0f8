"""The storage protocol: a flat key -> bytes space that every store kind implements.

Semantics every store keeps (the contract suite in ``tests/storage`` checks them):

* ``put`` is atomic: a reader sees the old value or the new one, never part of either.
  With ``if_absent=True`` it fails with :class:`ConflictError` when the key exists, which
  is how manifests and records are created exactly once.
* A ``put`` that returned is durable once ``sync()`` has returned; the engine calls
  ``sync()`` before writing a manifest so no manifest can outlive its chunks in a crash.
  (Object stores are durable at ``put`` and make ``sync`` a no-op.)
* Keys are validated (``blobrep.core.keys``) before they touch anything.
* Errors are blobrep's: :class:`NotFoundError` for a missing key, :class:`StorageFullError`
  when out of space, :class:`StorageError` for anything else.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


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

    async def put(self, key: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        """Store ``data`` under ``key`` atomically.

        Raises:
            ConflictError: if ``if_absent`` and ``key`` exists.
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
