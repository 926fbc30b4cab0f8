"""Deployments read a version only where it is Completed, only for those allowed, always exact."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from blobrep.core.codec import digest_of
from blobrep.errors import AccessDeniedError, UnavailableError
from blobrep.service import BlobService, GalleryService, LocalStore, Policy, VersionOptions
from tests.service.conftest import ADMIN, GALLERY, IMAGE

VERSION_ID = f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def disk_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 MiB: random data around a 4 MiB zero run, so several chunks and a hole."""
    path = tmp_path_factory.mktemp("disks") / "disk.raw"
    path.write_bytes(os.urandom(4 * MIB) + bytes(4 * MIB) + os.urandom(4 * MIB))
    return path


def stored_objects(root: Path) -> list[Path]:
    """The replica's packs and chunk objects: a publish stores this image in packs."""
    gallery = root / "galleries" / GALLERY
    return sorted(
        path for kind in ("chunks", "packs") for path in (gallery / kind).rglob("*") if path.is_file()
    )


async def replicated(service: GalleryService, disk_image: Path, targets: list[str]) -> None:
    options = VersionOptions(target_regions=targets)
    await service.create_version(ADMIN, GALLERY, IMAGE, "1.0.0", source=disk_image, options=options)
    await service.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")


async def test_a_vm_disk_is_the_exact_image_and_sparse(
    service: GalleryService, definition: str, disk_image: Path, tmp_path: Path
) -> None:
    await replicated(service, disk_image, ["westcentralus", "eastus2=2"])
    disk = tmp_path / "vm.img"
    result = await service.deploy_vm(ADMIN, VERSION_ID, location="eastus2", output=disk)
    assert result.ok and disk.read_bytes() == disk_image.read_bytes()
    assert os.stat(disk).st_blocks * 512 < disk_image.stat().st_size  # zero runs stay holes
    discarded = await service.deploy_vm(ADMIN, f"/galleries/{GALLERY}/images/{IMAGE}", location="eastus2")
    assert discarded.ok and discarded.digest == result.digest == digest_of(disk_image.read_bytes())


async def test_a_region_that_is_not_completed_cannot_be_read(
    service: GalleryService, definition: str, disk_image: Path
) -> None:
    options = VersionOptions(target_regions=["westcentralus", "eastus2"])
    await service.create_version(ADMIN, GALLERY, IMAGE, "1.0.0", source=disk_image, options=options)
    with pytest.raises(UnavailableError, match=r"eastus2.*Unknown.*Completed"):
        await service.deploy_vm(ADMIN, VERSION_ID, location="eastus2")
    with pytest.raises(UnavailableError, match="not one of its target regions"):
        await service.deploy_vm(ADMIN, VERSION_ID, location="westeurope")


async def test_deploying_needs_reader_access(
    service: GalleryService, definition: str, disk_image: Path
) -> None:
    await replicated(service, disk_image, ["westcentralus"])
    await service.create_principal(ADMIN, "vm-builder", "servicePrincipal")
    with pytest.raises(AccessDeniedError, match="'vm-builder' may not"):
        await service.deploy_vm("vm-builder", VERSION_ID)
    await service.create_assignment(ADMIN, "vm-builder", "Reader", f"/galleries/{GALLERY}/images/{IMAGE}")
    assert (await service.deploy_vm("vm-builder", VERSION_ID)).ok


@pytest.mark.parametrize("policy", list(Policy))
async def test_a_scale_set_spreads_over_replicas_and_survives_a_damaged_one(
    service: GalleryService, definition: str, disk_image: Path, policy: Policy
) -> None:
    await replicated(service, disk_image, ["westcentralus=3"])
    damaged = service.home / "regions" / "westcentralus" / "replica-2"
    files = stored_objects(damaged)
    assert [path.parent.parent.name for path in files] == ["packs", "packs"]
    corrupt, missing = files[0], files[-1]
    frame = bytearray(corrupt.read_bytes())
    frame[len(frame) // 2] ^= 0xFF  # flip, so the copy differs whatever the byte was
    corrupt.write_bytes(bytes(frame))
    missing.unlink()

    summary = await service.deploy_scale_set(ADMIN, VERSION_ID, 30, location="westcentralus", policy=policy)
    assert (summary.count, summary.succeeded, summary.errors) == (30, 30, 0)
    assert summary.p50 is not None and summary.p99 is not None and summary.p50 <= summary.p99
    served = summary.statistics.replicas
    assert len([name for name, stats in served.items() if stats.requests > 0]) == 3
    assert summary.statistics.repairs == 2
    report = await BlobService().verify(LocalStore(damaged), GALLERY, f"{IMAGE}/versions/1.0.0")
    assert report.ok


async def test_scrub_finds_and_repairs_a_damaged_replica(
    service: GalleryService, definition: str, disk_image: Path
) -> None:
    await replicated(service, disk_image, ["westcentralus=2"])
    damaged = service.home / "regions" / "westcentralus" / "replica-1"
    stored_objects(damaged)[0].unlink()
    (found,) = await service.scrub(ADMIN, "West Central US")
    assert not found.ok and [problem.kind for problem in found.problems] == ["pack-missing"]
    (fixed,) = await service.scrub(ADMIN, "westcentralus", repair=True)
    assert fixed.repaired == 1 and fixed.ok
    (clean,) = await service.scrub(ADMIN, "westcentralus", gallery=GALLERY)
    assert clean.ok and not clean.problems


async def test_repairing_needs_contributor(
    service: GalleryService, definition: str, disk_image: Path
) -> None:
    await replicated(service, disk_image, ["westcentralus"])
    await service.create_principal(ADMIN, "auditor", "user")
    await service.create_assignment(ADMIN, "auditor", "Reader", f"/galleries/{GALLERY}")
    assert all(report.ok for report in await service.scrub("auditor", "westcentralus"))
    with pytest.raises(AccessDeniedError, match="write to /galleries/gallery1"):
        await service.scrub("auditor", "westcentralus", repair=True)
