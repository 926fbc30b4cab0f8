"""Image versions: publishing into the source region, regional status, updates, deletion."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio.lowlevel
import pytest

from blobrep.core.gallery import AggregatedState, ProvisioningState, ReplicationState, StorageType
from blobrep.engine.source import AsyncStreamSource
from blobrep.errors import (
    AlreadyExistsError,
    ImmutableFieldError,
    InvalidParameterError,
    InvalidRegionError,
    InvalidVersionError,
    SourceError,
    StorageFullError,
)
from blobrep.service import BlobService, GalleryService, LocalStore, VersionOptions
from tests.service.conftest import ADMIN, GALLERY, IMAGE, MIB, chunk_writes_full


def manifest(service: GalleryService, region: str, replica: int, version: str = "1.0.0") -> Path:
    return (
        service.home
        / "regions"
        / region
        / f"replica-{replica}"
        / "galleries"
        / GALLERY
        / "images"
        / IMAGE
        / "versions"
        / version
        / "manifest.json"
    )


async def test_create_publishes_into_every_replica_of_the_source_region(
    service: GalleryService, definition: str, source: Path, tmp_path: Path
) -> None:
    options = VersionOptions(target_regions=["westcentralus=2", "East US 2", "westeurope=3=standard_zrs"])
    version = await service.create_version(
        ADMIN, GALLERY, definition, "1.0.0", source=source, options=options
    )
    assert version.provisioning_state is ProvisioningState.SUCCEEDED
    assert version.blob is not None and version.blob.size == source.stat().st_size
    by_region = {status.region: status for status in version.regions}
    assert list(by_region) == ["westcentralus", "eastus2", "westeurope"]
    source_status = by_region["westcentralus"]
    assert (source_status.state, source_status.progress, source_status.completed_replicas) == (
        ReplicationState.COMPLETED,
        100,
        2,
    )
    assert by_region["eastus2"].state is ReplicationState.UNKNOWN
    assert "waiting for replication" in by_region["eastus2"].details
    assert by_region["westeurope"].target_replicas == 3
    assert version.aggregated_state is AggregatedState.IN_PROGRESS
    profile = version.publishing_profile
    westeurope = profile.target("westeurope")
    assert westeurope is not None and profile.effective_storage_type(westeurope) is StorageType.STANDARD_ZRS
    assert manifest(service, "westcentralus", 1).is_file() and manifest(service, "westcentralus", 2).is_file()
    assert not manifest(service, "eastus2", 1).exists()
    # What the gallery wrote is exactly what the blob plumbing reads.
    replica = LocalStore(manifest(service, "westcentralus", 2).parents[6])
    restored = tmp_path / "restored.raw"
    await BlobService().restore(replica, GALLERY, f"{IMAGE}/versions/1.0.0", restored)
    assert restored.read_bytes() == source.read_bytes()


async def test_without_targets_the_source_region_is_the_only_target(
    service: GalleryService, definition: str, source: Path
) -> None:
    version = await service.create_version(
        ADMIN, GALLERY, definition, "1.0.0", source=source, location="eastus2"
    )
    assert [status.region for status in version.regions] == ["eastus2"]
    assert version.aggregated_state is AggregatedState.COMPLETED
    assert manifest(service, "eastus2", 1).is_file()


async def test_the_global_replica_count_applies_where_no_regional_one_is_given(
    service: GalleryService, definition: str, source: Path
) -> None:
    options = VersionOptions(target_regions=["westcentralus", "eastus2=1"], replica_count=3)
    version = await service.create_version(
        ADMIN, GALLERY, definition, "1.0.0", source=source, options=options
    )
    assert [(status.region, status.target_replicas) for status in version.regions] == [
        ("westcentralus", 3),
        ("eastus2", 1),
    ]
    assert all(manifest(service, "westcentralus", number).is_file() for number in (1, 2, 3))


@pytest.mark.parametrize(
    ("options", "error", "fragment"),
    [
        (VersionOptions(target_regions=["eastus2"]), InvalidRegionError, "westcentralus"),
        (
            VersionOptions(target_regions=["westcentralus", "West Central US"]),
            InvalidRegionError,
            "westcentralus",
        ),
        (VersionOptions(target_regions=["westcentralus", "atlantis"]), InvalidRegionError, "atlantis"),
        (VersionOptions(target_regions=["westcentralus=0"]), InvalidRegionError, "1"),
        (VersionOptions(replica_count=101), InvalidRegionError, "100"),
        (VersionOptions(target_regions=["westcentralus=two"]), InvalidRegionError, "two"),
        (VersionOptions(storage_type="floppy"), InvalidParameterError, "Standard_LRS"),
        (VersionOptions(end_of_life="someday"), InvalidParameterError, "someday"),
    ],
)
async def test_bad_publishing_options_are_refused_before_anything_is_written(
    service: GalleryService,
    definition: str,
    source: Path,
    options: VersionOptions,
    error: type[Exception],
    fragment: str,
) -> None:
    with pytest.raises(error, match=fragment):
        await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=options)
    assert await service.list_versions(ADMIN, GALLERY, definition) == []
    assert not (service.home / "regions" / "westcentralus").exists()


async def test_bad_version_number_is_refused(service: GalleryService, definition: str, source: Path) -> None:
    with pytest.raises(InvalidVersionError, match=r"1.0"):
        await service.create_version(ADMIN, GALLERY, definition, "1.0", source=source)


async def test_an_existing_version_is_a_conflict(
    service: GalleryService, definition: str, source: Path
) -> None:
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    with pytest.raises(AlreadyExistsError, match=r"1.0.0"):
        await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "dangling link", "device"])
async def test_a_source_that_cannot_be_read_records_nothing(
    service: GalleryService, definition: str, tmp_path: Path, source: Path, kind: str
) -> None:
    bad = tmp_path / "nope.raw"
    if kind == "directory":
        bad.mkdir()
    elif kind == "fifo":
        os.mkfifo(bad)
    elif kind == "dangling link":
        bad.symlink_to(tmp_path / "gone.raw")
    elif kind == "device":
        bad = Path("/dev/null")
    with pytest.raises(SourceError, match=str(bad.name)):
        await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=bad)
    # Nothing holds the name: the same create with a good source just works.
    assert await service.list_versions(ADMIN, GALLERY, definition) == []
    created = await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    assert created.provisioning_state is ProvisioningState.SUCCEEDED


async def test_a_failed_publish_leaves_a_failed_version_that_says_why_and_can_be_redone(
    service: GalleryService, definition: str, source: Path
) -> None:
    async with await GalleryService.open(service.home, wrap_store=chunk_writes_full) as failing:
        with pytest.raises(StorageFullError):
            await failing.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    version = await service.show_version(ADMIN, GALLERY, definition, "1.0.0")
    assert version.provisioning_state is ProvisioningState.FAILED
    status = version.status("westcentralus")
    assert status is not None and status.state is ReplicationState.FAILED
    assert "out of space" in status.details
    assert version.aggregated_state is AggregatedState.FAILED
    redone = await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    assert redone.provisioning_state is ProvisioningState.SUCCEEDED
    assert redone.blob is not None and redone.blob.manifest is not None
    again = redone.status("westcentralus")
    assert again is not None and again.state is ReplicationState.COMPLETED
    with pytest.raises(AlreadyExistsError, match="already exists"):
        await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)


async def _upload(data: bytes, piece: int = 256 * 1024) -> AsyncIterator[bytes]:
    """``data`` as a request body arrives: in pieces, on the event loop."""
    for start in range(0, len(data), piece):
        await anyio.lowlevel.checkpoint()
        yield data[start : start + piece]


async def test_a_version_uploaded_as_a_stream_is_the_file_published(
    service: GalleryService, definition: str, source: Path
) -> None:
    data = source.read_bytes()
    version = await service.create_version(
        ADMIN, GALLERY, definition, "1.0.0", source=AsyncStreamSource(_upload(data), size=len(data))
    )
    from_file = await service.create_version(ADMIN, GALLERY, definition, "1.0.1", source=source)
    assert version.provisioning_state is ProvisioningState.SUCCEEDED
    assert version.blob is not None and from_file.blob is not None
    assert (version.blob.size, version.blob.digest) == (len(data), from_file.blob.digest)
    assert version.blob.manifest == from_file.blob.manifest


async def test_an_upload_that_ends_short_leaves_a_failed_version_without_a_blob(
    service: GalleryService, definition: str, source: Path
) -> None:
    data = source.read_bytes()
    short = AsyncStreamSource(_upload(data[: -MIB // 2]), size=len(data))
    with pytest.raises(
        SourceError, match=f"ended after {len(data) - MIB // 2} bytes, short of the {len(data)}"
    ):
        await service.create_version(
            ADMIN, GALLERY, definition, "1.0.0", source=short, options=VersionOptions(replica_count=2)
        )
    # As for any publish that fails: the version says why, holds no blob, and no replica
    # holds a manifest; the create can be redone with the whole body.
    version = await service.show_version(ADMIN, GALLERY, definition, "1.0.0")
    assert version.provisioning_state is ProvisioningState.FAILED and version.blob is None
    status = version.status("westcentralus")
    assert status is not None and status.state is ReplicationState.FAILED
    assert f"short of the {len(data)} bytes announced" in status.details
    assert not manifest(service, "westcentralus", 1).exists()
    assert not manifest(service, "westcentralus", 2).exists()
    whole = AsyncStreamSource(_upload(data), size=len(data))
    redone = await service.create_version(
        ADMIN, GALLERY, definition, "1.0.0", source=whole, options=VersionOptions(replica_count=2)
    )
    assert redone.provisioning_state is ProvisioningState.SUCCEEDED
    assert redone.blob is not None and redone.blob.size == len(data)


async def test_versions_list_in_numeric_order(service: GalleryService, definition: str, source: Path) -> None:
    for number in ("1.0.10", "1.0.9", "1.0.0"):
        await service.create_version(ADMIN, GALLERY, definition, number, source=source)
    listed = [str(version.version) for version in await service.list_versions(ADMIN, GALLERY, definition)]
    assert listed == ["1.0.0", "1.0.9", "1.0.10"]


async def test_adding_a_region_waits_for_replication(
    service: GalleryService, definition: str, source: Path
) -> None:
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    updated = await service.update_version(
        ADMIN,
        GALLERY,
        definition,
        "1.0.0",
        VersionOptions(target_regions=["westcentralus", "southeastasia=2"]),
    )
    status = updated.status("southeastasia")
    assert status is not None and status.state is ReplicationState.UNKNOWN and status.target_replicas == 2
    assert updated.is_completed_in("westcentralus")


async def test_removing_a_region_needs_the_safety_profile_to_allow_it(
    service: GalleryService, definition: str, source: Path
) -> None:
    options = VersionOptions(target_regions=["westcentralus", "eastus2"])
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=options)
    with pytest.raises(InvalidParameterError, match=r"allow-replicated-location-deletion"):
        await service.update_version(
            ADMIN, GALLERY, definition, "1.0.0", VersionOptions(target_regions=["westcentralus"])
        )
    allowed = VersionOptions(target_regions=["westcentralus"], allow_replicated_location_deletion=True)
    updated = await service.update_version(ADMIN, GALLERY, definition, "1.0.0", allowed)
    assert [status.region for status in updated.regions] == ["westcentralus"]
    assert updated.safety_profile.allow_deletion_of_replicated_locations


async def test_the_source_region_cannot_be_removed(
    service: GalleryService, definition: str, source: Path
) -> None:
    options = VersionOptions(
        target_regions=["westcentralus", "eastus2"], allow_replicated_location_deletion=True
    )
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=options)
    with pytest.raises(InvalidRegionError, match=r"westcentralus"):
        await service.update_version(
            ADMIN, GALLERY, definition, "1.0.0", VersionOptions(target_regions=["eastus2"])
        )


async def test_lowering_a_count_removes_the_extra_replicas_manifests(
    service: GalleryService, definition: str, source: Path
) -> None:
    options = VersionOptions(target_regions=["westcentralus=3"])
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=options)
    updated = await service.update_version(
        ADMIN, GALLERY, definition, "1.0.0", VersionOptions(target_regions=["westcentralus=1"])
    )
    status = updated.status("westcentralus")
    assert status is not None and (status.completed_replicas, status.target_replicas) == (1, 1)
    assert status.state is ReplicationState.COMPLETED
    assert manifest(service, "westcentralus", 1).is_file()
    assert (
        not manifest(service, "westcentralus", 2).exists()
        and not manifest(service, "westcentralus", 3).exists()
    )


async def test_raising_a_count_waits_for_the_new_replicas(
    service: GalleryService, definition: str, source: Path
) -> None:
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    updated = await service.update_version(
        ADMIN, GALLERY, definition, "1.0.0", VersionOptions(replica_count=2)
    )
    status = updated.status("westcentralus")
    assert status is not None and (status.completed_replicas, status.target_replicas) == (1, 2)
    assert status.state is ReplicationState.REPLICATING and status.progress == 50


async def test_storage_type_is_fixed_at_creation(
    service: GalleryService, definition: str, source: Path
) -> None:
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    with pytest.raises(ImmutableFieldError, match=r"Standard_LRS"):
        await service.update_version(
            ADMIN,
            GALLERY,
            definition,
            "1.0.0",
            VersionOptions(target_regions=["westcentralus=1=Premium_LRS"]),
        )
    with pytest.raises(ImmutableFieldError, match=r"storageAccountType"):
        await service.update_version(
            ADMIN, GALLERY, definition, "1.0.0", VersionOptions(storage_type="Standard_ZRS")
        )


async def test_deleting_a_version_removes_its_manifests(
    service: GalleryService, definition: str, source: Path
) -> None:
    options = VersionOptions(target_regions=["westcentralus=2"])
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=options)
    await service.delete_version(ADMIN, GALLERY, definition, "1.0.0")
    assert (
        not manifest(service, "westcentralus", 1).exists()
        and not manifest(service, "westcentralus", 2).exists()
    )
    assert await service.list_versions(ADMIN, GALLERY, definition) == []
    again = await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    assert again.provisioning_state is ProvisioningState.SUCCEEDED
