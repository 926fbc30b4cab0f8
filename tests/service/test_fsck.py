"""fsck: the catalog against the stores; --repair brings them back, from another region if need be."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from blobrep.core.gallery import ReplicationState
from blobrep.errors import AccessDeniedError
from blobrep.service import GalleryService, VersionOptions
from tests.service.conftest import ADMIN, GALLERY, IMAGE
from tests.stored_frames import Frame, frames, stored_objects

TWO_REGIONS = VersionOptions(target_regions=["westcentralus", "eastus2"])


def _replica(service: GalleryService, region: str, number: int = 1) -> Path:
    return service.home / "regions" / region / f"replica-{number}"


def _frames(service: GalleryService, region: str, number: int = 1) -> list[Frame]:
    """Where the replica keeps each stored chunk of 1.0.0 (in packs: the service writes them)."""
    found = frames(_replica(service, region, number), GALLERY, _manifest(service, region, number=number))
    return list(found.values())


def _manifest(service: GalleryService, region: str, version: str = "1.0.0", number: int = 1) -> Path:
    root = _replica(service, region, number) / "galleries" / GALLERY / "images" / IMAGE
    return root / "versions" / version / "manifest.json"


@pytest.fixture
async def replicated(service: GalleryService, definition: str, source: Path) -> None:
    """1.0.0 Completed in westcentralus and eastus2, one replica each."""
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=TWO_REGIONS)
    done = await service.replicate_version(ADMIN, GALLERY, definition, "1.0.0")
    assert {status.state for status in done.regions} == {ReplicationState.COMPLETED}


@pytest.mark.usefixtures("replicated")
async def test_a_healthy_home_is_clean(service: GalleryService) -> None:
    report = await service.fsck(ADMIN)
    assert report.ok and report.problems == ()
    assert report.versions_checked == 1 and report.chunks_checked > 0


@pytest.mark.usefixtures("replicated")
async def test_a_chunk_bad_in_the_only_replica_of_a_region_is_repaired_from_another_region(
    service: GalleryService, source: Path, tmp_path: Path
) -> None:
    bad = _frames(service, "westcentralus")[-1]
    assert bad.packed
    good = (_replica(service, "eastus2") / bad.key).read_bytes()
    bad.flip()

    # A chunk in a pack is checked with its pack: the problem is the pack, named by its key.
    found = await service.fsck(ADMIN)
    assert [(p.kind, p.region, p.what, p.repaired) for p in found.problems] == [
        ("pack-corrupt", "westcentralus", bad.key, False)
    ]
    repaired = await service.fsck(ADMIN, repair=True)
    assert repaired.ok and repaired.marked_failed == ()
    assert "eastus2/replica-1" in repaired.problems[0].detail
    assert bad.path.read_bytes() == good
    assert (await service.fsck(ADMIN)).problems == ()
    output = tmp_path / "vm.img"
    await service.deploy_vm(ADMIN, f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0", output=output)
    assert output.read_bytes() == source.read_bytes()


@pytest.mark.usefixtures("replicated")
async def test_a_lost_manifest_is_brought_back_from_another_region(service: GalleryService) -> None:
    pinned = _manifest(service, "eastus2").read_bytes()
    _manifest(service, "westcentralus").unlink()

    found = await service.fsck(ADMIN, location="westcentralus")
    assert [(p.kind, p.region) for p in found.problems] == [("manifest", "westcentralus")]
    assert (await service.fsck(ADMIN, location="westcentralus", repair=True)).ok
    assert _manifest(service, "westcentralus").read_bytes() == pinned


@pytest.mark.usefixtures("replicated")
async def test_data_no_region_holds_is_marked_failed_there(service: GalleryService) -> None:
    lost = _frames(service, "westcentralus")[0].key  # the pack holding the first chunk
    for region in ("westcentralus", "eastus2"):
        (_replica(service, region) / lost).unlink()

    report = await service.fsck(ADMIN, repair=True)
    assert not report.ok
    assert sorted(report.marked_failed) == [
        f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0 in eastus2",
        f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0 in westcentralus",
    ]
    version = await service.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert {status.state for status in version.regions} == {ReplicationState.FAILED}
    assert all("no replica of any region holds a good copy" in status.details for status in version.regions)


@pytest.mark.usefixtures("replicated")
async def test_a_manifest_the_catalog_does_not_know_is_reported_and_deleted(service: GalleryService) -> None:
    stray = _manifest(service, "eastus2", version="9.9.9")
    stray.parent.mkdir(parents=True)
    stray.write_bytes(_manifest(service, "eastus2").read_bytes())

    found = await service.fsck(ADMIN)
    assert [(p.kind, p.replica) for p in found.problems] == [("unknown-manifest", "eastus2/replica-1")]
    assert (await service.fsck(ADMIN, repair=True)).ok
    assert not stray.exists()
    assert (await service.fsck(ADMIN)).problems == ()


@pytest.mark.usefixtures("replicated")
async def test_old_temporaries_are_reported_and_removed_young_ones_kept(service: GalleryService) -> None:
    stored = stored_objects(_replica(service, "westcentralus"), GALLERY)[0]
    assert stored.parent.parent.name == "packs"
    old = stored.with_name(stored.name + "~tmp~0123456789ab")
    young = stored.with_name(stored.name + "~tmp~ba9876543210")
    old.write_bytes(b"x" * 10)
    young.write_bytes(b"y" * 10)
    hours_ago = time.time() - 7200
    os.utime(old, (hours_ago, hours_ago))

    found = await service.fsck(ADMIN)
    assert [(p.kind, Path(p.what).name) for p in found.problems] == [("temporary", old.name)]
    assert (await service.fsck(ADMIN, repair=True)).ok
    assert not old.exists() and young.exists()


@pytest.mark.usefixtures("replicated")
async def test_repairing_needs_contributor_and_checking_reader(service: GalleryService) -> None:
    await service.create_principal(ADMIN, "reader", "user")
    await service.create_assignment(ADMIN, "reader", "Reader", f"/galleries/{GALLERY}")
    assert (await service.fsck("reader", gallery=GALLERY)).ok
    with pytest.raises(AccessDeniedError):
        await service.fsck("reader", gallery=GALLERY, repair=True)
