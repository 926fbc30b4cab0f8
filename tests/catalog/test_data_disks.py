"""A version's data disks in the catalog: rows by LUN beside the version, written and read with
it, gone with it, and catalogs written before data disks existed."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from blobrep.catalog import SCHEMA_VERSION, Catalog
from blobrep.core.gallery import BlobInfo, DataDisk
from blobrep.core.pins import ManifestPin
from blobrep.errors import InvalidNameError, InvalidParameterError
from tests.catalog.helpers import definition, gallery, old_catalog, v, version

PIN = ManifestPin(321, "ab" * 32)
DISK = BlobInfo(4096, "0123456789abcdef0123456789abcdef", 1000, 2, PIN)


async def _with_version(catalog: Catalog, disks: tuple[DataDisk, ...]) -> None:
    await catalog.create_gallery(gallery())
    await catalog.create_definition(definition())
    await catalog.create_version(dataclasses.replace(version(), data_disks=disks))


async def test_data_disks_are_read_back_by_lun_with_their_pins(catalog: Catalog) -> None:
    await _with_version(catalog, (DataDisk(5, DISK), DataDisk(0, None), DataDisk(63, DISK)))
    found = await catalog.get_version("g", "img", v("1.0.0"))
    assert found.data_disks == (DataDisk(0, None), DataDisk(5, DISK), DataDisk(63, DISK))
    assert not found.published, "a data disk still awaited keeps the version unpublished"


async def test_an_update_replaces_the_data_disks_and_a_delete_takes_them(
    catalog: Catalog, db_path: Path
) -> None:
    await _with_version(catalog, (DataDisk(0, None), DataDisk(1, None)))
    recorded = await catalog.get_version("g", "img", v("1.0.0"))
    published = dataclasses.replace(recorded, blob=DISK, data_disks=(DataDisk(0, DISK), DataDisk(1, DISK)))
    await catalog.update_version(published)
    found = await catalog.get_version("g", "img", v("1.0.0"))
    assert found.data_disks == (DataDisk(0, DISK), DataDisk(1, DISK)) and found.published
    await catalog.delete_version("g", "img", v("1.0.0"))
    connection = sqlite3.connect(db_path)
    try:
        assert connection.execute("SELECT count(*) FROM data_disks").fetchone() == (0,)
    finally:
        connection.close()


@pytest.mark.parametrize("lun", [-1, 64])
async def test_a_lun_out_of_range_is_refused_and_nothing_is_recorded(catalog: Catalog, lun: int) -> None:
    with pytest.raises(
        InvalidNameError, match=f"invalid data disk LUN {lun}: use a whole number from 0 to 63"
    ):
        await _with_version(catalog, (DataDisk(lun, None),))
    assert await catalog.list_versions("g", "img") == []


async def test_a_lun_twice_is_refused(catalog: Catalog) -> None:
    with pytest.raises(InvalidParameterError, match="LUN 1 is given twice"):
        await _with_version(catalog, (DataDisk(1, None), DataDisk(1, None)))


async def test_the_table_refuses_a_lun_out_of_range_written_by_hand(catalog: Catalog, db_path: Path) -> None:
    await _with_version(catalog, ())
    connection = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            connection.execute("INSERT INTO data_disks (version_id, lun) VALUES (1, 64)")
    finally:
        connection.close()


async def test_a_schema_6_catalog_migrates_and_its_versions_have_no_data_disks(db_path: Path) -> None:
    with old_catalog(db_path, 6) as connection:
        connection.execute(
            "INSERT INTO image_versions (id, gallery, image, major, minor, patch, location,"
            " replica_count, storage_type, exclude_from_latest,"
            " allow_deletion_of_replicated_locations, provisioning_state, blob_size, blob_digest,"
            " blob_stored_bytes, blob_chunks)"
            " VALUES (1, 'g', 'img', 1, 0, 0, 'westus', 1, 'Standard_LRS', 0, 0, 'Succeeded',"
            " 5, '0123456789abcdef0123456789abcdef', 3, 1)"
        )
    async with await Catalog.open(db_path) as catalog:
        found = await catalog.get_version("g", "img", v("1.0.0"))
        assert SCHEMA_VERSION == 8
        assert found.data_disks == () and found.published
        assert found.blob == BlobInfo(5, "0123456789abcdef0123456789abcdef", 3, 1)
        await catalog.update_version(dataclasses.replace(found, data_disks=(DataDisk(0, DISK),)))
    async with await Catalog.open(db_path) as reopened:
        assert (await reopened.get_version("g", "img", v("1.0.0"))).data_disks == (DataDisk(0, DISK),)
