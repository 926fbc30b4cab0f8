"""Helpers for the replication tests: a region layout on disk and stores that watch or stop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.lowlevel

from blobrep.core.names import BlobName
from blobrep.core.packs import read_table
from blobrep.engine.replicate import RegionTarget
from blobrep.engine.verify import verify
from blobrep.storage import FaultyStore, LocalStore, Store
from blobrep.storage.base import Payload
from tests.engine.helpers import GALLERY, NAME, chunk_files, manifest_path, pack_files

BLOB = BlobName.parse(NAME)
REGIONS = ("eastus", "westus", "northeurope")


def region_stores(home: Path, region: str, count: int = 2) -> list[LocalStore]:
    """The replica directories of ``region`` under ``home``, as the embedded layout has them."""
    return [
        LocalStore(home / "regions" / region / f"replica-{n}", name=f"{region}/replica-{n}", create=True)
        for n in range(1, count + 1)
    ]


def targets_of(layout: dict[str, list[LocalStore]]) -> list[RegionTarget]:
    return [RegionTarget(region, list(stores)) for region, stores in layout.items()]


def held_chunks(store: LocalStore) -> set[str]:
    """Digests of the chunks ``store`` holds: its chunk files, and the chunks its packs' tables
    list (temporary files left by a kill excluded; a pack, put whole, holds all its chunks)."""
    held = {name for name in chunk_files(store) if "~" not in name}
    for name, path in pack_files(store).items():
        if "~" not in name:
            held.update(entry.digest for entry in read_table(path.read_bytes(), str(path)))
    return held


def is_object_key(key: str) -> bool:
    """True for the key of a chunk stored alone or of a pack (not a manifest, not a lease)."""
    return "/chunks/" in key or "/packs/" in key


async def assert_committed_replicas_verify(stores: list[LocalStore], name: str = NAME) -> int:
    """Every replica holding a manifest has all its chunks, intact; returns how many hold one."""
    committed = 0
    for store in stores:
        if manifest_path(store, name).exists():
            report = await verify(store, GALLERY, BlobName.parse(name))
            assert report.ok, report.problems
            committed += 1
    return committed


@dataclass(slots=True)
class Gauge:
    """How many calls are in flight now, the most ever at once, and how many there were."""

    now: int = 0
    peak: int = 0
    total: int = 0


class CountingStore(FaultyStore):
    """Measures concurrent reads of chunk data, a chunk object or a pack (or a range of one),
    in a shared ``gauge``; each read takes ``delay`` seconds."""

    def __init__(self, inner: Store, gauge: Gauge, delay: float = 0.002) -> None:
        super().__init__(inner)
        self.gauge = gauge
        self.delay = delay

    async def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if not is_object_key(key):
            return await super().get(key, offset, length)
        self.gauge.now += 1
        self.gauge.total += 1
        self.gauge.peak = max(self.gauge.peak, self.gauge.now)
        try:
            await anyio.sleep(self.delay)
            return await super().get(key, offset, length)
        finally:
            self.gauge.now -= 1


class InterruptingStore(FaultyStore):
    """Cancels ``scope`` on the ``limit``-th write of a chunk or a pack it is asked for (that
    write is lost), as a killed replication would stop: some objects written, the rest not."""

    def __init__(self, inner: Store, scope: anyio.CancelScope, puts: list[int], limit: int) -> None:
        super().__init__(inner)
        self.scope = scope
        self.puts = puts
        self.limit = limit

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        if is_object_key(key):
            self.puts[0] += 1
            if self.puts[0] >= self.limit:
                self.scope.cancel()
                await anyio.lowlevel.checkpoint()
        await super().put(key, data, if_absent=if_absent)
