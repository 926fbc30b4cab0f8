"""Manifests pinned by the catalog: a replica holding another version's manifest serves nothing wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from blobrep.core.gallery import ReplicationState
from blobrep.core.synthetic import SyntheticImage
from blobrep.service import GalleryService, VersionOptions
from tests.service.conftest import ADMIN, GALLERY, IMAGE

MIB = 1024 * 1024


def _manifest(service: GalleryService, region: str, number: int, version: str) -> Path:
    root = service.home / "regions" / region / f"replica-{number}" / "galleries" / GALLERY / "images" / IMAGE
    return root / "versions" / version / "manifest.json"


@pytest.fixture
def other_source(tmp_path: Path) -> Path:
    path = tmp_path / "other.raw"
    with open(path, "wb") as out:
        for block in SyntheticImage(2 * MIB, seed=99).blocks():
            out.write(block)
    return path


@pytest.fixture
async def swapped(service: GalleryService, definition: str, source: Path, other_source: Path) -> None:
    """1.0.0 and 1.0.1 in two replicas of westcentralus; replica-1's 1.0.0 manifest is 1.0.1's."""
    two = VersionOptions(replica_count=2)
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=two)
    await service.create_version(ADMIN, GALLERY, definition, "1.0.1", source=other_source, options=two)
    shutil.copyfile(
        _manifest(service, "westcentralus", 1, "1.0.1"), _manifest(service, "westcentralus", 1, "1.0.0")
    )


@pytest.mark.usefixtures("swapped")
async def test_a_swapped_manifest_is_passed_over_and_the_right_disk_deployed(
    service: GalleryService, source: Path, tmp_path: Path
) -> None:
    for attempt in range(4):  # whichever replica the reader tries first
        output = tmp_path / f"vm-{attempt}.img"
        result = await service.deploy_vm(
            ADMIN, f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0", output=output
        )
        assert result.ok
        assert output.read_bytes() == source.read_bytes()


@pytest.mark.usefixtures("swapped")
async def test_scrub_names_the_replica_with_the_swapped_manifest_and_repairs_it(
    service: GalleryService,
) -> None:
    (report,) = await service.scrub(ADMIN, "westcentralus", gallery=GALLERY)
    assert [(problem.replica, problem.kind) for problem in report.problems] == [
        ("westcentralus/replica-1", "manifest")
    ]
    assert "not this version's" in report.problems[0].detail

    (repaired,) = await service.scrub(ADMIN, "westcentralus", gallery=GALLERY, repair=True)
    assert repaired.ok
    assert _manifest(service, "westcentralus", 1, "1.0.0").read_bytes() == (
        _manifest(service, "westcentralus", 2, "1.0.0").read_bytes()
    )
    (again,) = await service.scrub(ADMIN, "westcentralus", gallery=GALLERY)
    assert again.problems == ()


async def test_scrub_notices_a_completed_replica_that_lost_its_manifest(
    service: GalleryService, definition: str, source: Path
) -> None:
    await service.create_version(
        ADMIN, GALLERY, definition, "1.0.0", source=source, options=VersionOptions(replica_count=2)
    )
    _manifest(service, "westcentralus", 2, "1.0.0").unlink()

    (report,) = await service.scrub(ADMIN, "westcentralus", gallery=GALLERY)
    assert [(problem.replica, problem.kind) for problem in report.problems] == [
        ("westcentralus/replica-2", "manifest")
    ]
    assert "missing" in report.problems[0].detail
    (repaired,) = await service.scrub(ADMIN, "westcentralus", gallery=GALLERY, repair=True)
    assert repaired.ok
    assert _manifest(service, "westcentralus", 2, "1.0.0").exists()


@pytest.mark.usefixtures("swapped")
async def test_replicating_from_a_source_with_a_swapped_manifest_copies_the_right_version(
    service: GalleryService, source: Path, tmp_path: Path
) -> None:
    updated = await service.update_version(
        ADMIN,
        GALLERY,
        IMAGE,
        "1.0.0",
        options=VersionOptions(target_regions=["westcentralus=2", "eastus2"]),
    )
    assert updated is not None
    replicated = await service.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    states = {status.region: status.state for status in replicated.regions}
    assert states == {"westcentralus": ReplicationState.COMPLETED, "eastus2": ReplicationState.COMPLETED}
    assert _manifest(service, "eastus2", 1, "1.0.0").read_bytes() == (
        _manifest(service, "westcentralus", 2, "1.0.0").read_bytes()
    )
    output = tmp_path / "east.img"
    await service.deploy_vm(
        ADMIN, f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0", location="eastus2", output=output
    )
    assert output.read_bytes() == source.read_bytes()
