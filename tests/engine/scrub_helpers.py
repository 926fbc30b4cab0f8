"""Helpers for the scrub tests: a region of replicas holding two versions, and damage to it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from blobrep.core.keys import chunk_key, manifest_key
from blobrep.core.manifest import ChunkRef
from blobrep.core.names import BlobName
from blobrep.core.synthetic import rewrite_runs
from blobrep.engine.leases import LeaseInfo, list_leases
from blobrep.engine.manifests import read_manifest
from blobrep.engine.publish import publish
from blobrep.storage import FaultyStore, LocalStore, Store
from blobrep.storage.base import Payload
from tests.engine.helpers import GALLERY, SMALL_CHUNKS, apply_edits, flip_byte
from tests.engine.replication_helpers import region_stores

V1: Final = BlobName.parse("img/versions/1.0.0")
V2: Final = BlobName.parse("img/versions/1.0.1")


@dataclass(frozen=True)
class Region:
    """Three replicas of one region, each holding ``V1`` and ``V2``, which share chunks."""

    stores: list[LocalStore]
    v1: dict[str, ChunkRef]
    v2: dict[str, ChunkRef]

    @property
    def chunks(self) -> dict[str, ChunkRef]:
        """Every distinct chunk of either version."""
        return {**self.v1, **self.v2}

    @property
    def shared(self) -> list[str]:
        return sorted(set(self.v1) & set(self.v2))

    @property
    def only_v1(self) -> list[str]:
        return sorted(set(self.v1) - set(self.v2))

    @property
    def only_v2(self) -> list[str]:
        return sorted(set(self.v2) - set(self.v1))


async def build_region(home: Path, image: Path) -> Region:
    """Publish ``image`` as ``V1`` and an edited copy as ``V2`` into a 3-replica region, each
    chunk stored on its own: these tests damage chunks one by one (packs have their own, in
    test_packed_scrub.py)."""
    stores = region_stores(home, "eastus", 3)
    edited = home / "image-v2.raw"
    shutil.copyfile(image, edited)
    apply_edits(edited, rewrite_runs(edited.stat().st_size, fraction=0.02, runs=6, seed=5))
    await publish(image, stores, GALLERY, V1, chunking=SMALL_CHUNKS, pack_size=None)
    await publish(edited, stores, GALLERY, V2, chunking=SMALL_CHUNKS, pack_size=None)
    v1 = (await read_manifest(stores[0], GALLERY, V1)).stored_digests()
    v2 = (await read_manifest(stores[0], GALLERY, V2)).stored_digests()
    return Region(stores, v1, v2)


def chunk_path(store: LocalStore, digest: str) -> Path:
    return store.root / chunk_key(GALLERY, digest)


def manifest_file(store: LocalStore, blob: BlobName) -> Path:
    return store.root / manifest_key(GALLERY, blob)


def corrupt(store: LocalStore, *digests: str) -> None:
    for digest in digests:
        flip_byte(chunk_path(store, digest))


def remove(store: LocalStore, *digests: str) -> None:
    for digest in digests:
        chunk_path(store, digest).unlink()


def truncate(path: Path) -> None:
    """Cut a file to half its length, as a torn copy would leave it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


class LeaseWatchingStore(FaultyStore):
    """Records, at every chunk or manifest write, the leases the replica holds right then."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.seen: list[tuple[str, list[LeaseInfo]]] = []

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        if "/leases/" not in key:
            self.seen.append((key, await list_leases(self.inner, GALLERY)))
        await super().put(key, data, if_absent=if_absent)
