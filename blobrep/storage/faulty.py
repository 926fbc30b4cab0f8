"""A store that wraps a store and misbehaves on purpose, for tests.

Faults are rules: which operation, which keys (by substring), what goes wrong, how often.
With no rules it is a transparent wrapper, and it passes the store contract suite like any
other store, so tests exercise the same code paths that production uses.
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from blobrep.errors import NotFoundError, StorageError, StorageFullError

if TYPE_CHECKING:
    from blobrep.storage.base import ObjectInfo, Payload, Store

Operation = Literal["get", "put", "exists", "delete", "list", "stat", "sync"]
FaultKind = Literal["error", "missing", "corrupt", "full"]


@dataclass(slots=True)
class Fault:
    """One rule: on ``op`` for keys containing ``key_contains``, fail as ``kind``.

    ``after`` matching calls pass untouched first; then the fault fires ``times`` times
    (forever if None). Kinds: ``error`` raises :class:`StorageError`; ``missing`` behaves as
    if the key did not exist; ``corrupt`` flips a byte of what ``get`` returns; ``full``
    raises :class:`StorageFullError` without writing.
    """

    op: Operation
    kind: FaultKind = "error"
    key_contains: str = ""
    after: int = 0
    times: int | None = None
    fired: int = 0
    seen: int = 0

    def applies(self, op: str, key: str) -> bool:
        if op != self.op or self.key_contains not in key:
            return False
        self.seen += 1
        if self.seen <= self.after or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


class FaultyStore:
    """Wraps ``inner``; consults ``faults`` on every call and counts calls per operation."""

    def __init__(self, inner: Store, faults: list[Fault] | None = None, *, name: str | None = None) -> None:
        self.inner = inner
        self.faults: list[Fault] = list(faults or [])
        self.calls: Counter[str] = Counter()
        self._name = name or inner.name

    @property
    def name(self) -> str:
        return self._name

    def _fault(self, op: Operation, key: str) -> FaultKind | None:
        self.calls[op] += 1
        for fault in self.faults:
            if fault.applies(op, key):
                return fault.kind
        return None

    def _raise(self, kind: FaultKind, op: str, key: str) -> None:
        if kind == "missing":
            raise NotFoundError(f"{key} not found in {self._name}")
        if kind == "full":
            raise StorageFullError(f"{self._name} is out of space while writing {key}")
        raise StorageError(f"{self._name}: {op} {key} failed: injected fault")

    async def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        kind = self._fault("get", key)
        if kind is not None and kind != "corrupt":
            self._raise(kind, "get", key)
        data = await self.inner.get(key, offset, length)
        if kind == "corrupt" and data:
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        return data

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        kind = self._fault("put", key)
        if kind is not None:
            self._raise(kind, "put", key)
        await self.inner.put(key, data, if_absent=if_absent)

    async def exists(self, key: str) -> bool:
        kind = self._fault("exists", key)
        if kind == "missing":
            return False
        if kind is not None:
            self._raise(kind, "exists", key)
        return await self.inner.exists(key)

    async def delete(self, key: str) -> bool:
        kind = self._fault("delete", key)
        if kind == "missing":
            return False
        if kind is not None:
            self._raise(kind, "delete", key)
        return await self.inner.delete(key)

    async def list(self, prefix: str = "") -> AsyncIterator[str]:
        kind = self._fault("list", prefix)
        if kind == "missing":
            return
        if kind is not None:
            self._raise(kind, "list", prefix)
        async for key in self.inner.list(prefix):
            yield key

    async def stat(self, key: str) -> ObjectInfo:
        kind = self._fault("stat", key)
        if kind is not None:
            self._raise(kind, "stat", key)
        return await self.inner.stat(key)

    async def stat_many(self, keys: Sequence[str]) -> builtins.list[ObjectInfo | None]:
        """Consults the ``stat`` faults key by key: ``missing`` gives None, others raise."""
        asked: builtins.list[str] = []
        for key in keys:
            kind = self._fault("stat", key)
            if kind is not None and kind != "missing":
                self._raise(kind, "stat", key)
            if kind is None:
                asked.append(key)
        found = dict(zip(asked, await self.inner.stat_many(asked), strict=True)) if asked else {}
        return [found.get(key) for key in keys]

    async def sync(self) -> None:
        kind = self._fault("sync", "")
        if kind is not None:
            self._raise(kind, "sync", "")
        await self.inner.sync()

    async def sweep_temporaries(
        self, prefix: str = "", *, older_than: float, dry_run: bool = False
    ) -> builtins.list[ObjectInfo]:
        return await self.inner.sweep_temporaries(prefix, older_than=older_than, dry_run=dry_run)
