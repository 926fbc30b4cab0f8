"""A catalog that another process keeps locked in the middle of a replication: the caller gets one
error, retryable, as itself (never an exception group)."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import anyio
import pytest

import blobrep.catalog.db as db_module
import blobrep.engine.replicate as replicate_module
import blobrep.service.status_writer as status_writer_module
from blobrep.errors import LockedError
from blobrep.service import DefinitionFields, GalleryService, Store, VersionOptions
from blobrep.storage.base import Payload
from blobrep.storage.faulty import FaultyStore
from tests.service.conftest import ADMIN, GALLERY

TARGET = "eastus2"
MIB = 1024 * 1024
FIELDS = DefinitionFields(publisher="contoso", offer="ubuntu", sku="22_04", os_type="Linux")


class LockOnFirstChunk(FaultyStore):
    """A target replica whose first chunk or pack write lets another process hold the
    catalog's write lock for ``hold`` seconds (as a long transaction of a busy daemon would),
    while the other writes go on and report progress."""

    def __init__(self, inner: Store, catalog: Path, hold: float) -> None:
        super().__init__(inner)
        self.catalog = catalog
        self.hold = hold
        self.held = False

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        if ("/chunks/" in key or "/packs/" in key) and not self.held:
            self.held = True
            other = sqlite3.connect(self.catalog, isolation_level=None, check_same_thread=False)
            try:
                other.execute("BEGIN IMMEDIATE")
                await anyio.sleep(self.hold)
            finally:
                other.close()  # also when the replication is cancelled around it
        await super().put(key, data, if_absent=if_absent)


@pytest.fixture
def several_packs(tmp_path: Path) -> Path:
    """12 MiB that do not compress: three packs, so that writes go on while the first is held."""
    path = tmp_path / "several-packs.raw"
    path.write_bytes(random.Random(5).randbytes(12 * MIB))
    return path


async def test_a_catalog_locked_during_replication_is_one_retryable_error(
    tmp_path: Path, several_packs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = several_packs
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr(status_writer_module, "STATUS_INTERVAL", 0.01)
    monkeypatch.setattr(replicate_module, "PROGRESS_INTERVAL", 0.0)
    home = tmp_path / "home"
    wrapped: list[LockOnFirstChunk] = []

    def wrap(region: str, number: int, store: Store) -> Store:
        if region != TARGET:
            return store
        wrapped.append(LockOnFirstChunk(store, home / "catalog.db", hold=1.0))
        return wrapped[-1]

    async with await GalleryService.open(home, wrap_store=wrap) as service:
        await service.create_gallery(ADMIN, GALLERY, location="westcentralus")
        await service.create_definition(ADMIN, GALLERY, "img", FIELDS)
        targets = VersionOptions(target_regions=["westcentralus", TARGET])
        await service.create_version(ADMIN, GALLERY, "img", "1.0.0", source=source, options=targets)

        with pytest.raises(LockedError) as raised:
            await service.replicate_version(ADMIN, GALLERY, "img", "1.0.0")

    assert raised.value.retryable
    assert "stayed locked by another process" in str(raised.value)
    assert any(store.held for store in wrapped)
