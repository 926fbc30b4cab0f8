"""Replication of blobs stored in packs: packs move whole and verified, only the packs a target
lacks move, a bad source copy fails over to another source replica (and is mended), a target's
damaged pack is rewritten, and with no good source copy no manifest is committed."""

from __future__ import annotations

import shutil
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path

import pytest

from blobrep.core.keys import pack_key
from blobrep.core.manifest import Manifest
from blobrep.core.names import BlobName
from blobrep.engine.publish import publish
from blobrep.engine.replicate import RegionOutcome, RegionProgress, RegionTarget, replicate
from blobrep.engine.restore import restore
from blobrep.engine.verify import verify
from blobrep.storage import Fault, FaultyStore, LocalStore, Store
from blobrep.storage.base import Payload
from tests.engine.helpers import GALLERY, NAME, SMALL_CHUNKS, apply_edits, flip_byte, manifest_path, same_file
from tests.engine.pack_helpers import (
    lone_chunks,
    object_bytes,
    objects,
    pack_path,
    pack_sizes,
    write_packed,
)
from tests.engine.replication_helpers import BLOB, region_stores

V2_NAME = "img/versions/1.0.1"
V2 = BlobName.parse(V2_NAME)
REGIONS = ("eastus", "westus")


@dataclass
class Setup:
    sources: list[LocalStore]
    targets: dict[str, list[LocalStore]]
    v1: Manifest

    def target_list(self) -> list[RegionTarget]:
        return [RegionTarget(region, list(stores)) for region, stores in self.targets.items()]

    def every_target(self) -> list[LocalStore]:
        return [store for stores in self.targets.values() for store in stores]


@pytest.fixture
async def setup(tmp_path: Path, image_8m: Path) -> Setup:
    """Two source replicas holding the 8 MiB image in packs; two empty regions of two replicas."""
    plain = region_stores(tmp_path, "plain", 1)[0]
    await publish(image_8m, [plain], GALLERY, BLOB, chunking=SMALL_CHUNKS)
    sources = region_stores(tmp_path, "source")
    v1 = await write_packed(sources, NAME, plain)
    assert len(v1.packs) >= 4 and not lone_chunks(v1)
    targets = {region: region_stores(tmp_path, region) for region in REGIONS}
    return Setup(sources, targets, v1)


def ok(outcome: RegionOutcome) -> bool:
    return outcome.error is None and outcome.completed_replicas == outcome.target_replicas == 2


async def restores(store: LocalStore, name: str, image: Path, out: Path) -> bool:
    await restore(store, GALLERY, BlobName.parse(name), out)
    return same_file(image, out)


# --- a fresh target, a new version ------------------------------------------------------------


async def test_a_packed_blob_replicates_as_its_packs_and_restores_byte_exact(
    setup: Setup, image_8m: Path, out_dir: Path
) -> None:
    reports: list[RegionProgress] = []

    outcomes = await replicate(setup.sources, setup.target_list(), GALLERY, BLOB, progress=reports.append)

    moved = pack_sizes(setup.v1.packs)
    for outcome in outcomes:
        assert ok(outcome), outcome
        assert outcome.copied_bytes == 2 * moved
        assert outcome.copied_chunks == 2 * len(setup.v1.stored_digests())
        last = [report for report in reports if report.region == outcome.region][-1]
        assert (last.done_bytes, last.total_bytes, last.completed_replicas) == (2 * moved, 2 * moved, 2)
    for store in setup.every_target():
        assert objects(store) == objects(setup.sources[0])
        assert manifest_path(store).read_bytes() == manifest_path(setup.sources[0]).read_bytes()
        assert (await verify(store, GALLERY, BLOB)).ok
    assert await restores(setup.targets["westus"][1], NAME, image_8m, out_dir / "v1.raw")

    again = await replicate(setup.sources, setup.target_list(), GALLERY, BLOB)

    assert [(o.copied_chunks, o.copied_bytes, o.completed_replicas) for o in again] == [(0, 0, 2)] * 2


async def test_a_second_version_moves_only_its_new_packs_and_lone_chunks(
    setup: Setup, image_8m: Path, tmp_path: Path, out_dir: Path
) -> None:
    await replicate(setup.sources, setup.target_list(), GALLERY, BLOB)
    edited = tmp_path / "v2.raw"
    shutil.copyfile(image_8m, edited)
    apply_edits(edited, [(1_000_000, b"new bytes" * 50), (5_000_000, b"\x01" * 4096)])
    plain = region_stores(tmp_path, "plain-v2", 1)[0]
    await publish(edited, [plain], GALLERY, V2, chunking=SMALL_CHUNKS)
    v2 = await write_packed(setup.sources, V2_NAME, plain, like=setup.v1, alone=1)
    new_packs = [pack for pack in v2.packs if pack not in setup.v1.packs]
    shared = [pack for pack in v2.packs if pack in setup.v1.packs]
    assert new_packs and len(shared) >= 3 and len(lone_chunks(v2)) == 1, (new_packs, shared)
    new_bytes = pack_sizes(new_packs) + sum(chunk.stored_length for chunk in lone_chunks(v2).values())
    before = {store.name: object_bytes(store) for store in setup.every_target()}

    outcomes = await replicate(setup.sources, setup.target_list(), GALLERY, V2)

    for outcome in outcomes:
        assert ok(outcome), outcome
        assert outcome.copied_bytes == 2 * new_bytes
    for store in setup.every_target():
        assert object_bytes(store) - before[store.name] == new_bytes, "bytes moved = store growth"
        assert objects(store) == objects(setup.sources[0])
        assert (await verify(store, GALLERY, BLOB)).ok and (await verify(store, GALLERY, V2)).ok
    assert await restores(setup.targets["eastus"][0], V2_NAME, edited, out_dir / "v2.raw")


# --- bad source copies ------------------------------------------------------------------------


def damage(path: Path, how: str) -> None:
    if how == "bit flip":
        flip_byte(path)
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    elif how == "missing":
        path.unlink()
    else:  # a directory where the pack should be
        path.unlink()
        path.mkdir()


@pytest.mark.parametrize("how", ["bit flip", "truncated", "missing", "directory"])
async def test_packs_bad_in_one_source_replica_are_read_from_the_other_and_mended(
    setup: Setup, image_8m: Path, out_dir: Path, how: str
) -> None:
    bad, good = setup.sources
    for pack in setup.v1.packs:
        damage(pack_path(bad, pack), how)
    damaged = objects(bad)

    outcomes = await replicate(setup.sources, setup.target_list(), GALLERY, BLOB)

    assert all(ok(outcome) for outcome in outcomes), outcomes
    assert all(outcome.copied_bytes == 2 * pack_sizes(setup.v1.packs) for outcome in outcomes)
    for store in setup.every_target():
        assert objects(store) == objects(good)
        assert (await verify(store, GALLERY, BLOB)).ok
    assert await restores(setup.targets["eastus"][1], NAME, image_8m, out_dir / "v1.raw")
    # Reads start at each source replica in turn: the bad copies read are mended from the
    # verified ones, the others are left as they were (finding them is scrub's work).
    now, intact = objects(bad), objects(good)
    mended = {key for key in intact if now.get(key) == intact[key]}
    assert mended and all(now.get(key) == damaged.get(key) for key in set(intact) - mended)


async def test_a_source_replica_whose_store_fails_is_read_around_and_not_rewritten(setup: Setup) -> None:
    bad, good = setup.sources
    failing = FaultyStore(bad, [Fault("get", "error", "/packs/")])

    outcomes = await replicate([failing, good], setup.target_list(), GALLERY, BLOB)

    assert all(ok(outcome) for outcome in outcomes), outcomes
    assert failing.faults[0].fired > 0
    assert failing.calls["put"] == 0, "nothing says a copy in a failing store is bad"


async def test_a_pack_with_no_good_source_copy_fails_every_region_naming_each_replica(setup: Setup) -> None:
    first, second = setup.sources
    pack = setup.v1.packs[1]
    flip_byte(pack_path(first, pack))
    pack_path(second, pack).write_bytes(pack_path(second, pack).read_bytes() + b"extra")

    outcomes = await replicate(setup.sources, setup.target_list(), GALLERY, BLOB)

    for outcome in outcomes:
        assert outcome.error is not None and f"pack {pack.digest} has no good copy" in outcome.error
        assert "damaged in replica source/replica-1: its bytes do not hash" in outcome.error
        assert "damaged in replica source/replica-2: it is longer than" in outcome.error
        assert outcome.completed_replicas == 0
    for store in setup.every_target():
        assert not manifest_path(store).exists()
        assert not pack_path(store, pack).exists()


async def test_a_pack_missing_from_every_source_replica_is_named_missing_in_each(setup: Setup) -> None:
    pack = setup.v1.packs[0]
    for store in setup.sources:
        pack_path(store, pack).unlink()

    outcomes = await replicate(setup.sources, setup.target_list(), GALLERY, BLOB)

    for outcome in outcomes:
        assert outcome.error is not None
        for replica in ("source/replica-1", "source/replica-2"):
            assert f"pack {pack.digest} is missing in replica {replica}" in outcome.error
    assert not any(manifest_path(store).exists() for store in setup.every_target())


# --- damaged targets --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["truncated", "longer", "directory"])
async def test_a_target_pack_of_the_wrong_size_or_not_a_file_is_rewritten(
    setup: Setup, image_8m: Path, out_dir: Path, how: str
) -> None:
    await replicate(setup.sources, setup.target_list(), GALLERY, BLOB)
    target = setup.targets["westus"][0]
    pack = setup.v1.packs[2]
    manifest_path(target).unlink()  # as a replica whose replication was interrupted
    path = pack_path(target, pack)
    if how == "longer":
        path.write_bytes(path.read_bytes() + b"\0")
    else:
        damage(path, how)

    outcomes = await replicate(setup.sources, setup.target_list(), GALLERY, BLOB)

    assert [(o.region, o.copied_bytes) for o in outcomes] == [("eastus", 0), ("westus", pack.size)]
    assert all(ok(outcome) for outcome in outcomes)
    assert objects(target) == objects(setup.sources[0])
    assert await restores(target, NAME, image_8m, out_dir / "v1.raw")


# --- copies inside an object store ------------------------------------------------------------


class ServiceStore(FaultyStore):
    """A replica in a pretend object store: it can copy a key from another replica of the same
    service, and records what it copied that way."""

    def __init__(self, inner: LocalStore) -> None:
        super().__init__(inner)
        self.copied: list[str] = []
        self.sent: list[str] = []

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        self.sent.append(key)
        await super().put(key, data, if_absent=if_absent)

    @property
    def copy_service(self) -> Hashable:
        return "one-account"

    async def copy_from(self, source: Store, key: str) -> bool:
        assert isinstance(source, ServiceStore)
        await self.inner.put(key, await source.inner.get(key))
        self.copied.append(key)
        return True


async def test_packs_are_copied_inside_the_service_from_the_source_copy_that_verified(
    setup: Setup, image_8m: Path, out_dir: Path
) -> None:
    bad, _ = setup.sources
    for pack in setup.v1.packs:
        flip_byte(pack_path(bad, pack))
    sources = [ServiceStore(store) for store in setup.sources]
    targets = {region: [ServiceStore(store) for store in stores] for region, stores in setup.targets.items()}

    outcomes = await replicate(sources, [RegionTarget(r, list(s)) for r, s in targets.items()], GALLERY, BLOB)

    assert all(ok(outcome) for outcome in outcomes), outcomes
    keys = sorted(pack_key(GALLERY, pack.digest) for pack in setup.v1.packs)
    for replicas in targets.values():
        for replica in replicas:
            assert sorted(replica.copied) == keys
            assert not [key for key in replica.sent if "/packs/" in key], "no pack passed through"
    for store in setup.every_target():
        assert objects(store) == objects(setup.sources[1])
    assert await restores(setup.targets["westus"][0], NAME, image_8m, out_dir / "v1.raw")
