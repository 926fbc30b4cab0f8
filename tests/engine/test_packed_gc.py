"""Garbage collection of blobs stored in packs: a pack stays whole while any live manifest
names it, and packs and chunks that no live manifest names go once a version is deleted;
a dry run only reports; keys that are not where a pack would be are left alone."""

from __future__ import annotations

import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from blobrep.core.keys import pack_key
from blobrep.core.manifest import Manifest
from blobrep.core.names import BlobName
from blobrep.engine.gc import collect_garbage, gc_gallery
from blobrep.engine.manifests import delete_manifest
from blobrep.engine.publish import publish
from blobrep.engine.replicate import RegionTarget, replicate
from blobrep.engine.restore import restore
from blobrep.engine.verify import verify
from blobrep.storage import Fault, FaultyStore, LocalStore, Store
from tests.engine.helpers import GALLERY, NAME, SMALL_CHUNKS, apply_edits, same_file, tree
from tests.engine.pack_helpers import lone_chunks, objects, write_packed
from tests.engine.replication_helpers import region_stores

V1: Final = BlobName.parse(NAME)
V2_NAME: Final = "img/versions/2.0.0"
V2: Final = BlobName.parse(V2_NAME)
HOUR: Final = 3600.0


@dataclass
class Versions:
    """Two versions in packs, sharing some packs (one of them only in part) and chunks."""

    v1: Manifest
    v2: Manifest
    v2_image: Path

    def keys(self, manifest: Manifest) -> set[str]:
        return set(manifest.objects(GALLERY))

    @property
    def only_v1(self) -> set[str]:
        return self.keys(self.v1) - self.keys(self.v2)

    def size(self, keys: set[str]) -> int:
        sizes = self.v1.objects(GALLERY) | self.v2.objects(GALLERY)
        return sum(sizes[key] for key in keys)


def is_pack_key(key: str) -> bool:
    return "/packs/" in key


async def store_versions(stores: list[LocalStore], image: Path, tmp_path: Path) -> Versions:
    """v1: the image, two chunks stored alone, the rest in packs. v2: its first 1.5 MiB and a
    stretch in the middle rewritten, so some packs and chunks of v1 are v1's alone; v2 keeps
    every place of v1 it can and adds packs and one chunk alone of its own."""
    plain = region_stores(tmp_path, "plain", 1)[0]
    await publish(image, [plain], GALLERY, V1, chunking=SMALL_CHUNKS)
    v1 = await write_packed(stores, NAME, plain, alone=2)
    edited = tmp_path / "v2.raw"
    shutil.copyfile(image, edited)
    noise = random.Random(7)
    apply_edits(edited, [(0, noise.randbytes(1536 * 1024)), (4_000_000, noise.randbytes(1000))])
    await publish(edited, [plain], GALLERY, V2, chunking=SMALL_CHUNKS)
    v2 = await write_packed(stores, V2_NAME, plain, like=v1, alone=1)
    return Versions(v1, v2, edited)


@pytest.fixture
async def versions(store: LocalStore, image_8m: Path, tmp_path: Path) -> Versions:
    found = await store_versions([store], image_8m, tmp_path)
    only_v1 = found.only_v1
    assert [key for key in only_v1 if is_pack_key(key)], "some packs must be v1's alone"
    assert set(lone_chunks(found.v1)) - set(found.v2.stored_digests()), "and some chunks"
    assert set(found.v1.packs) & set(found.v2.packs), "the versions must share packs"
    return found


def partly_used(versions: Versions) -> list[str]:
    """Keys of the packs of v1 that v2 names while using only some of their chunks."""
    used = {chunk.pack for chunk in versions.v2.stored_digests().values() if chunk.pack is not None}
    v1_chunks = versions.v1.stored_digests()
    partly = []
    for pack in set(versions.v1.packs) & used:
        inside = {digest for digest, chunk in v1_chunks.items() if chunk.pack == pack}
        if inside - set(versions.v2.stored_digests()):
            partly.append(pack_key(GALLERY, pack.digest))
    return partly


def held(store: LocalStore) -> set[str]:
    return set(objects(store))


# --- what is deleted ------------------------------------------------------------------


async def test_with_both_versions_live_gc_deletes_nothing(store: LocalStore, versions: Versions) -> None:
    before = objects(store)

    report = await collect_garbage(store, GALLERY, grace=0)

    assert objects(store) == before
    every = versions.keys(versions.v1) | versions.keys(versions.v2)
    assert (report.chunks_seen, report.referenced_chunks, report.deleted_chunks) == (
        len(every),
        len(every),
        0,
    )
    packs = {key for key in every if is_pack_key(key)}
    assert (report.packs_seen, report.referenced_packs, report.deleted_packs) == (len(packs), len(packs), 0)


async def test_gc_deletes_the_packs_and_chunks_only_a_deleted_version_named(
    store: LocalStore, versions: Versions, out_dir: Path
) -> None:
    partly = partly_used(versions)
    assert partly, "a pack of v1 that v2 uses only in part"
    kept_whole = {key: objects(store)[key] for key in partly}
    assert await delete_manifest(store, GALLERY, V1)

    report = await collect_garbage(store, GALLERY, grace=0)

    assert held(store) == versions.keys(versions.v2)
    assert {key: objects(store)[key] for key in partly} == kept_whole, "a pack is never cut down"
    only_v1 = versions.only_v1
    v1_packs = {key for key in only_v1 if is_pack_key(key)}
    assert report.manifests == 1
    assert report.deleted_chunks == len(only_v1) and report.deleted_packs == len(v1_packs)
    assert report.deleted_bytes == versions.size(only_v1)
    assert report.referenced_chunks == len(versions.keys(versions.v2))
    assert report.referenced_packs == len(versions.v2.packs)
    assert (await verify(store, GALLERY, V2)).ok
    await restore(store, GALLERY, V2, out_dir / "v2.raw")
    assert same_file(versions.v2_image, out_dir / "v2.raw")


async def test_gc_after_every_version_is_deleted_leaves_no_pack_or_chunk(
    store: LocalStore, versions: Versions
) -> None:
    await delete_manifest(store, GALLERY, V1)
    await delete_manifest(store, GALLERY, V2)

    report = await collect_garbage(store, GALLERY, grace=0)

    assert held(store) == set()
    every = versions.keys(versions.v1) | versions.keys(versions.v2)
    assert report.deleted_chunks == len(every)
    assert report.deleted_packs == len(set(versions.v1.packs) | set(versions.v2.packs))
    assert report.deleted_bytes == versions.size(every)


async def test_a_dry_run_reports_what_a_real_run_deletes_and_deletes_nothing(
    store: LocalStore, versions: Versions
) -> None:
    await delete_manifest(store, GALLERY, V1)
    before = {key: value for key, value in tree(store.root).items() if "/leases/" not in key}

    dry = await collect_garbage(store, GALLERY, grace=0, dry_run=True)

    assert {key: value for key, value in tree(store.root).items() if "/leases/" not in key} == before
    real = await collect_garbage(store, GALLERY, grace=0)
    assert dry.dry_run and not real.dry_run
    assert (dry.deleted_chunks, dry.deleted_packs, dry.deleted_bytes) == (
        real.deleted_chunks,
        real.deleted_packs,
        real.deleted_bytes,
    )
    assert dry.deleted_packs > 0 and held(store) == versions.keys(versions.v2)


async def test_keys_under_the_packs_prefix_that_are_not_packs_are_left_alone(
    store: LocalStore, versions: Versions, image_8m: Path, tmp_path: Path
) -> None:
    other = LocalStore(tmp_path / "other-gallery-source", create=True)
    await publish(image_8m, [other], "other", V1, chunking=SMALL_CHUNKS)
    digest = versions.v1.packs[0].digest
    strays = [
        f"galleries/{GALLERY}/packs/notes.txt",
        f"galleries/{GALLERY}/packs/zz/{digest}",  # a pack's name in the wrong directory
        f"galleries/{GALLERY}/packs/{digest[:2]}/{digest}.old",
        f"galleries/{GALLERY}/packs/{digest[:2]}/{digest.upper()}",
        f"galleries/other/packs/{digest[:2]}/{digest}",  # another gallery's
    ]
    for key in strays:
        await store.put(key, b"not ours to judge")
    await delete_manifest(store, GALLERY, V1)
    await delete_manifest(store, GALLERY, V2)

    report = await collect_garbage(store, GALLERY, grace=0)

    assert report.deleted_chunks == len(versions.keys(versions.v1) | versions.keys(versions.v2))
    assert all((store.root / key).read_bytes() == b"not ours to judge" for key in strays)


async def test_unreferenced_packs_younger_than_the_grace_are_kept(
    store: LocalStore, versions: Versions
) -> None:
    await delete_manifest(store, GALLERY, V1)
    only_v1 = versions.only_v1
    packs = sorted(key for key in only_v1 if is_pack_key(key))
    then = time.time() - 2 * HOUR
    for key in only_v1 - {packs[0]}:
        os.utime(store.root / key, (then, then))

    report = await collect_garbage(store, GALLERY, grace=HOUR)

    assert (report.kept_young, report.deleted_chunks) == (1, len(only_v1) - 1)
    assert held(store) == versions.keys(versions.v2) | {packs[0]}


async def test_temporaries_left_beside_packs_are_removed(store: LocalStore, versions: Versions) -> None:
    temporary = store.root / f"{pack_key(GALLERY, versions.v1.packs[0].digest)}~tmp~0123456789ab"
    temporary.write_bytes(b"t" * 5000)
    then = time.time() - 2 * HOUR
    os.utime(temporary, (then, then))

    report = await collect_garbage(store, GALLERY, grace=HOUR)

    assert (report.temporaries_removed, report.temporary_bytes) == (1, 5000)
    assert not temporary.exists()
    assert held(store) == versions.keys(versions.v1) | versions.keys(versions.v2)


# --- a full replica -------------------------------------------------------------------


class FullStore(FaultyStore):
    """No space left: every put fails until something is deleted; records what was."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner, [Fault("put", "full")])
        self.freed_while_full: list[str] = []

    async def delete(self, key: str) -> bool:
        deleted = await super().delete(key)
        if deleted and self.faults:
            self.freed_while_full.append(key)
            self.faults.clear()
        return deleted


async def test_a_full_replica_whose_garbage_is_packs_frees_one_before_taking_its_lease(
    store: LocalStore, versions: Versions
) -> None:
    await delete_manifest(store, GALLERY, V1)
    full = FullStore(store)

    report = await collect_garbage(full, GALLERY, grace=0)

    [first] = full.freed_while_full
    assert first in versions.only_v1
    assert held(store) == versions.keys(versions.v2)
    assert report.deleted_chunks == len(versions.only_v1)
    assert report.deleted_bytes == versions.size(versions.only_v1)
    assert (await verify(store, GALLERY, V2)).ok


# --- with replication -----------------------------------------------------------------


async def test_replicas_collected_after_a_version_is_deleted_get_back_only_its_own_objects(
    tmp_path: Path, image_8m: Path
) -> None:
    sources = region_stores(tmp_path, "source")
    versions = await store_versions(sources, image_8m, tmp_path)
    region = region_stores(tmp_path, "westus")
    for blob in (V1, V2):
        [outcome] = await replicate(sources, [RegionTarget("westus", region)], GALLERY, blob)
        assert outcome.error is None and outcome.completed_replicas == 2
    for store in region:
        await delete_manifest(store, GALLERY, V1)

    reports = await gc_gallery(region, GALLERY, grace=0)

    only_v1 = versions.only_v1
    assert [(r.ok, r.deleted_chunks, r.deleted_bytes) for r in reports] == [
        (True, len(only_v1), versions.size(only_v1))
    ] * 2
    assert all(held(store) == versions.keys(versions.v2) for store in region)
    [again] = await replicate(sources, [RegionTarget("westus", region)], GALLERY, V1)
    assert (again.error, again.copied_bytes) == (None, 2 * versions.size(only_v1))
    assert all(objects(store) == objects(sources[0]) for store in region)
