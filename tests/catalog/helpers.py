"""Values for catalog tests: every entity with its optional fields set, and with none set."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from blobrep.catalog.schema import MIGRATIONS
from blobrep.core.gallery import (
    Architecture,
    BlobInfo,
    Gallery,
    GalleryImageVersion,
    HyperVGeneration,
    ImageDefinition,
    ImageIdentifier,
    OsState,
    OsType,
    ProvisioningState,
    PublishingProfile,
    RegionStatus,
    ReplicationState,
    ResourceRange,
    SafetyProfile,
    StorageType,
    TargetRegion,
)
from blobrep.core.version import ImageVersion

#: A zone other than UTC, so tests notice a time that is stored as the wrong instant.
PLUS_0530 = timezone(timedelta(hours=5, minutes=30))


def v(text: str) -> ImageVersion:
    return ImageVersion.parse(text)


def gallery(name: str = "g") -> Gallery:
    return Gallery(name, "westus")


def full_gallery(name: str = "g") -> Gallery:
    return Gallery(name, "eastus2", "golden images", ProvisioningState.UPDATING)


def definition(name: str = "img", gallery: str = "g", sku: str | None = None) -> ImageDefinition:
    return ImageDefinition(gallery, name, ImageIdentifier("contoso", "ubuntu", sku or name), OsType.LINUX)


def full_definition(name: str = "img", gallery: str = "g") -> ImageDefinition:
    return ImageDefinition(
        gallery=gallery,
        name=name,
        identifier=ImageIdentifier("contoso", "windows-server", "2022-datacenter"),
        os_type=OsType.WINDOWS,
        os_state=OsState.SPECIALIZED,
        hyper_v_generation=HyperVGeneration.V2,
        architecture=Architecture.ARM64,
        recommended_vcpus=ResourceRange(2, 64),
        recommended_memory_gib=ResourceRange(4, 512),
        end_of_life=datetime(2031, 6, 30, 12, 0, 0, 123456, tzinfo=PLUS_0530),
        description="Windows Server 2022, hardened",
        provisioning_state=ProvisioningState.FAILED,
    )


def version(
    text: str = "1.0.0",
    *,
    targets: tuple[str, ...] = ("westus",),
    regions: tuple[RegionStatus, ...] = (),
    gallery: str = "g",
    image: str = "img",
) -> GalleryImageVersion:
    return GalleryImageVersion(
        gallery=gallery,
        image=image,
        version=v(text),
        location=targets[0] if targets else "westus",
        publishing_profile=PublishingProfile(tuple(TargetRegion(name) for name in targets)),
        regions=regions,
    )


def full_version(text: str = "1.0.0", gallery: str = "g", image: str = "img") -> GalleryImageVersion:
    return GalleryImageVersion(
        gallery=gallery,
        image=image,
        version=v(text),
        location="eastus",
        publishing_profile=PublishingProfile(
            target_regions=(
                TargetRegion("eastus"),
                TargetRegion("westeurope", 3, StorageType.PREMIUM_LRS, True),
                TargetRegion("japaneast", exclude_from_latest=False),
            ),
            replica_count=2,
            storage_type=StorageType.STANDARD_ZRS,
            exclude_from_latest=True,
            end_of_life=datetime(2030, 1, 1, tzinfo=UTC),
            published=datetime(2025, 3, 4, 5, 6, 7, 890, tzinfo=PLUS_0530),
        ),
        safety_profile=SafetyProfile(allow_deletion_of_replicated_locations=True),
        provisioning_state=ProvisioningState.CREATING,
        blob=BlobInfo(
            size=30 * 2**30, digest="0123456789abcdef0123456789abcdef", stored_bytes=9 * 2**30, chunks=7001
        ),
        regions=(
            RegionStatus("eastus", ReplicationState.COMPLETED, 100, 2, 2),
            RegionStatus("westeurope", ReplicationState.REPLICATING, 42, 1, 3, "copying chunks"),
            RegionStatus("japaneast", ReplicationState.FAILED, 7, 0, 2, "replica-1: disk full"),
        ),
    )


def exactly(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern matching ``message`` whole and literally."""
    return f"^{re.escape(message)}$"


@contextmanager
def old_catalog(path: Path, schema: int) -> Iterator[sqlite3.Connection]:
    """A catalog as blobrep wrote it at ``schema``, holding gallery ``g`` and definition ``img``:
    the caller adds what that schema's test needs; it is committed and closed on leaving."""
    path.parent.mkdir(parents=True)
    connection = sqlite3.connect(path)
    try:
        for script in MIGRATIONS[:schema]:
            connection.executescript(script)
        connection.execute(f"PRAGMA user_version = {schema}")
        connection.execute(
            "INSERT INTO galleries"
            " VALUES ('g', 'westus', '', 'Succeeded', '2024-01-01T00:00:00.000000+00:00')"
        )
        connection.execute(
            "INSERT INTO image_definitions (gallery, name, publisher, offer, sku, os_type, os_state,"
            " hyper_v_generation, architecture, description, provisioning_state)"
            " VALUES ('g', 'img', 'contoso', 'ubuntu', 'img', 'Linux', 'Generalized', 'V1', 'x64', '',"
            " 'Succeeded')"
        )
        yield connection
        connection.commit()
    finally:
        connection.close()
