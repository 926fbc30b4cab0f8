"""fsck of versions whose chunks are stored in packs: each pack copy is checked whole, a missing,
short or changed one is reported by its key and replica, and --repair puts the exact pack back
from another region, or marks the version Failed where no copy is left."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from blobrep.core.gallery import ReplicationState
from blobrep.core.keys import pack_key
from blobrep.core.manifest import Manifest
from blobrep.core.names import BlobName
from blobrep.engine.manifests import read_manifest
from blobrep.service import GalleryService, LocalStore, VersionOptions
from tests.service.conftest import ADMIN, GALLERY, IMAGE

REGIONS = ("westcentralus", "eastus2")
VERSION_ID = f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0"


def _replica(service: GalleryService, region: str) -> LocalStore:
    return LocalStore(service.home / "regions" / region / "replica-1", name=f"{region}/replica-1")


def _pack_file(service: GalleryService, region: str, digest: str) -> Path:
    return _replica(service, region).root / pack_key(GALLERY, digest)


@pytest.fixture
async def packed(service: GalleryService, definition: str, source: Path) -> Manifest:
    """1.0.0 Completed in both regions, its chunks stored in packs there (as a publish stores them)."""
    options = VersionOptions(target_regions=list(REGIONS))
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=options)
    done = await service.replicate_version(ADMIN, GALLERY, definition, "1.0.0")
    assert {status.state for status in done.regions} == {ReplicationState.COMPLETED}
    blob = BlobName.parse(f"{IMAGE}/versions/1.0.0")
    manifests = [await read_manifest(_replica(service, region), GALLERY, blob) for region in REGIONS]
    assert manifests[0] == manifests[1] and manifests[0].packs
    assert (await service.fsck(ADMIN)).ok
    return manifests[0]


async def test_a_packed_home_is_clean_and_each_pack_copy_is_counted(
    service: GalleryService, packed: Manifest
) -> None:
    report = await service.fsck(ADMIN)

    assert report.ok and report.problems == ()
    assert report.packs_checked == len(REGIONS) * len(packed.packs)
    # Every chunk is in a pack and counts as checked with it.
    stored = len(packed.stored_digests())
    assert report.chunks_checked == len(REGIONS) * stored


def _short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-1])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "kind", "words"),
    [
        (Path.unlink, "pack-missing", "is missing in replica westcentralus/replica-1"),
        (_short, "pack-size", "truncated"),
        (_flip, "pack-corrupt", "not to its name"),
    ],
    ids=["missing", "short", "changed"],
)
async def test_a_bad_pack_is_reported_by_key_and_replica_and_repaired_from_another_region(
    service: GalleryService,
    packed: Manifest,
    source: Path,
    tmp_path: Path,
    damage: Callable[[Path], None],
    kind: str,
    words: str,
) -> None:
    pack = packed.packs[-1]
    damage(_pack_file(service, "westcentralus", pack.digest))

    found = await service.fsck(ADMIN)

    key = pack_key(GALLERY, pack.digest)
    assert [(p.kind, p.region, p.replica, p.what, p.repaired) for p in found.problems] == [
        (kind, "westcentralus", "westcentralus/replica-1", key, False)
    ]
    assert words in found.problems[0].detail and key in found.problems[0].detail

    repaired = await service.fsck(ADMIN, repair=True)

    assert repaired.ok and repaired.marked_failed == ()
    assert repaired.problems[0].detail.endswith("; repaired from a verified copy in eastus2/replica-1")
    good = _pack_file(service, "eastus2", pack.digest).read_bytes()
    assert _pack_file(service, "westcentralus", pack.digest).read_bytes() == good
    assert (await service.fsck(ADMIN)).problems == ()
    output = tmp_path / "vm.img"
    await service.deploy_vm(ADMIN, VERSION_ID, location="westcentralus", output=output)
    assert output.read_bytes() == source.read_bytes()


async def test_a_pack_lost_in_every_region_marks_the_version_failed_there(
    service: GalleryService, packed: Manifest
) -> None:
    pack = packed.packs[0]
    for region in REGIONS:
        _pack_file(service, region, pack.digest).unlink()

    report = await service.fsck(ADMIN, repair=True)

    assert not report.ok
    assert sorted((p.kind, p.replica, p.repaired) for p in report.problems) == [
        ("pack-missing", "eastus2/replica-1", False),
        ("pack-missing", "westcentralus/replica-1", False),
    ]
    assert all(
        "not repaired: no replica of the region or of the other regions" in p.detail for p in report.problems
    )
    assert sorted(report.marked_failed) == [f"{VERSION_ID} in eastus2", f"{VERSION_ID} in westcentralus"]
    version = await service.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert {status.state for status in version.regions} == {ReplicationState.FAILED}
