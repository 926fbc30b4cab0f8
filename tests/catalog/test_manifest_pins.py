"""The manifest pin stored with a version's blob, and catalogs written before there were pins."""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest

from blobrep.catalog import SCHEMA_VERSION, Catalog
from blobrep.core.gallery import (
    BlobInfo,
    GalleryImageVersion,
    ProvisioningState,
    PublishingProfile,
    RegionStatus,
    ReplicationState,
    TargetRegion,
)
from blobrep.core.holders import ProcessIdentity
from blobrep.core.operations import OperationKind
from blobrep.core.pins import ManifestPin
from blobrep.errors import InvalidParameterError
from tests.catalog.helpers import exactly, full_version, old_catalog, v, version

PIN = ManifestPin(1234, hashlib.sha256(b"the manifest").hexdigest())
BLOB = BlobInfo(size=2**30, digest="0123456789abcdef0123456789abcdef", stored_bytes=2**29, chunks=1024)


def published(text: str = "1.0.0", pin: ManifestPin | None = PIN) -> GalleryImageVersion:
    return dataclasses.replace(version(text), blob=dataclasses.replace(BLOB, manifest=pin))


async def test_a_pinned_blob_reads_back_with_its_pin(with_image: Catalog) -> None:
    await with_image.create_version(published())
    found = await with_image.get_version("g", "img", v("1.0.0"))
    assert found.blob is not None
    assert found.blob.manifest == PIN
    assert await with_image.list_versions("g", "img") == [published()]


async def test_a_blob_without_a_pin_reads_back_without_one(with_image: Catalog) -> None:
    await with_image.create_version(published(pin=None))
    found = await with_image.get_version("g", "img", v("1.0.0"))
    assert found.blob == BLOB
    assert found.blob.manifest is None


async def test_an_update_sets_replaces_and_clears_the_pin(with_image: Catalog) -> None:
    await with_image.create_version(published(pin=None))
    other = ManifestPin(99, hashlib.sha256(b"another manifest").hexdigest())
    for pin in (PIN, other, None):
        await with_image.update_version(published(pin=pin))
        found = await with_image.get_version("g", "img", v("1.0.0"))
        assert found.blob is not None
        assert found.blob.manifest == pin
    await with_image.update_version(version("1.0.0"))
    assert (await with_image.get_version("g", "img", v("1.0.0"))).blob is None


_INCOMPLETE = [
    (ManifestPin(-1, PIN.sha256), "its size is -1, not a byte count"),
    (ManifestPin(cast(Any, None), PIN.sha256), "its size is None, not a byte count"),
    (ManifestPin(10, cast(Any, None)), "its SHA-256 is None, not 64 lower-case hex characters"),
    (ManifestPin(10, ""), "its SHA-256 is '', not 64 lower-case hex characters"),
    (
        ManifestPin(10, PIN.sha256.upper()),
        f"its SHA-256 is {PIN.sha256.upper()!r}, not 64 lower-case hex characters",
    ),
    (
        ManifestPin(10, PIN.sha256[:32]),
        f"its SHA-256 is {PIN.sha256[:32]!r}, not 64 lower-case hex characters",
    ),
]


@pytest.mark.parametrize(
    ("pin", "problem"), _INCOMPLETE, ids=["negative", "no-size", "no-sha", "empty-sha", "upper", "short"]
)
async def test_an_incomplete_pin_is_refused_on_create_and_update(
    with_image: Catalog, pin: ManifestPin, problem: str
) -> None:
    message = (
        "the manifest pin of image version '1.0.0' in image definition 'img' of gallery 'g'"
        f" is incomplete: {problem}"
    )
    with pytest.raises(InvalidParameterError, match=exactly(message)):
        await with_image.create_version(published(pin=pin))
    assert await with_image.list_versions("g", "img") == []
    await with_image.create_version(published())
    with pytest.raises(InvalidParameterError, match=exactly(message)):
        await with_image.update_version(published(pin=pin))
    assert await with_image.get_version("g", "img", v("1.0.0")) == published()


async def test_the_file_refuses_a_pin_without_a_blob_or_half_a_pin(
    with_image: Catalog, db_path: Path
) -> None:
    # Rows edited by hand (or by a buggy writer) cannot make the catalog hold a broken pin.
    await with_image.create_version(version("1.0.0"))
    await with_image.create_version(published("2.0.0"))
    connection = sqlite3.connect(db_path)
    try:
        for statement in (
            "UPDATE image_versions SET manifest_size = 5, manifest_sha256 = 'ab' WHERE major = 1",
            "UPDATE image_versions SET manifest_size = NULL WHERE major = 2",
            "UPDATE image_versions SET manifest_sha256 = NULL WHERE major = 2",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
                connection.execute(statement)
    finally:
        connection.close()
    assert await with_image.list_versions("g", "img") == [version("1.0.0"), published("2.0.0")]


# --- a catalog written at schema version 1 ----------------------------------------------------


def write_schema_1_catalog(path: Path) -> None:
    """A catalog as blobrep wrote it before migration 2: one published version, with status."""
    with old_catalog(path, 1) as connection:
        connection.execute(
            "INSERT INTO image_versions (id, gallery, image, major, minor, patch, location, replica_count,"
            " storage_type, exclude_from_latest, allow_deletion_of_replicated_locations,"
            " provisioning_state, blob_size, blob_digest, blob_stored_bytes, blob_chunks)"
            " VALUES (1, 'g', 'img', 1, 0, 0, 'westus', 1, 'Standard_LRS', 0, 0, 'Succeeded',"
            " 1073741824, '0123456789abcdef0123456789abcdef', 536870912, 1024)"
        )
        connection.execute(
            "INSERT INTO target_regions (version_id, position, region) VALUES (1, 0, 'westus')"
        )
        connection.execute(
            "INSERT INTO region_status VALUES (1, 'westus', 'Completed', 100, 1, 1, '',"
            " '2024-01-01T00:00:00.000000+00:00')"
        )


OLD_VERSION = GalleryImageVersion(
    gallery="g",
    image="img",
    version=v("1.0.0"),
    location="westus",
    publishing_profile=PublishingProfile((TargetRegion("westus"),)),
    provisioning_state=ProvisioningState.SUCCEEDED,
    blob=BLOB,
    regions=(RegionStatus("westus", ReplicationState.COMPLETED, 100, 1, 1),),
)


def user_version(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])
    finally:
        connection.close()


async def test_a_schema_1_catalog_is_migrated_and_its_versions_have_no_pin(db_path: Path) -> None:
    write_schema_1_catalog(db_path)
    async with await Catalog.open(db_path) as catalog:
        assert await catalog.get_version("g", "img", v("1.0.0")) == OLD_VERSION
        old = await catalog.get_version("g", "img", v("1.0.0"))
        assert old.blob is not None
        assert old.blob.manifest is None
        await catalog.create_version(published("2.0.0"))
        await catalog.create_version(full_version("3.0.0"))
        assert await catalog.list_versions("g", "img") == [
            OLD_VERSION,
            published("2.0.0"),
            full_version("3.0.0"),
        ]
    assert user_version(db_path) == SCHEMA_VERSION
    async with await Catalog.open(db_path) as catalog:
        new = await catalog.get_version("g", "img", v("2.0.0"))
        assert new.blob is not None
        assert new.blob.manifest == PIN


async def test_a_migrated_version_can_be_given_a_pin(db_path: Path) -> None:
    write_schema_1_catalog(db_path)
    async with await Catalog.open(db_path) as catalog:
        pinned = dataclasses.replace(OLD_VERSION, blob=dataclasses.replace(BLOB, manifest=PIN))
        await catalog.update_version(pinned)
        assert await catalog.get_version("g", "img", v("1.0.0")) == pinned


async def test_a_migrated_version_can_have_operations(db_path: Path) -> None:
    write_schema_1_catalog(db_path)
    owner = ProcessIdentity("host-a", "boot-1", "pid:[1]", 12, 345)
    async with await Catalog.open(db_path) as catalog:
        assert (
            await catalog.begin_operation("g", "img", v("1.0.0"), "eastus", OperationKind.REPLICATE, owner)
            is None
        )
        [operation] = await catalog.list_operations()
        assert (operation.version, operation.region, operation.owner) == (v("1.0.0"), "eastus", owner)
