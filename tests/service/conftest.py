from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from blobrep.service import DefinitionFields, GalleryService, Store, SyntheticImage
from blobrep.storage.faulty import Fault, FaultyStore

MIB = 1024 * 1024
GALLERY = "gallery1"
IMAGE = "ubuntu"
ADMIN = "admin"


@pytest.fixture(scope="session")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 MiB VM-like image with zero runs and data (shared: do not change it)."""
    path = tmp_path_factory.mktemp("sources") / "disk.raw"
    with open(path, "wb") as out:
        for block in SyntheticImage(3 * MIB, seed=7).blocks():
            out.write(block)
    return path


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[GalleryService]:
    async with await GalleryService.open(tmp_path / "home") as opened:
        yield opened


@pytest.fixture
async def definition(service: GalleryService) -> str:
    """``gallery1`` (home region westcentralus) holding the definition ``ubuntu``."""
    await service.create_gallery(ADMIN, GALLERY, location="westcentralus")
    await service.create_definition(
        ADMIN,
        GALLERY,
        IMAGE,
        DefinitionFields(publisher="contoso", offer="ubuntu", sku="22_04", os_type="Linux"),
    )
    return IMAGE


def chunk_writes_full(region: str, number: int, store: Store) -> Store:
    """A ``wrap_store`` for :meth:`GalleryService.open`: every put of chunk data fails as on a
    full disk, a pack's as a lone chunk's (the service publishes into packs)."""
    faults = [Fault("put", "full", key_contains=kind) for kind in ("/chunks/", "/packs/")]
    return FaultyStore(store, faults)
