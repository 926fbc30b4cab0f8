"""Which replicas of a region may hold data: a mark per region that only rises, and catalogs
written before there was one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from blobrep.catalog import SCHEMA_VERSION, Catalog
from blobrep.catalog.reads import read_snapshot
from blobrep.errors import InvalidParameterError
from tests.catalog.helpers import old_catalog

# --- the mark -----------------------------------------------------------------------------------


async def test_a_region_nothing_was_written_to_has_no_replicas(catalog: Catalog) -> None:
    assert await catalog.region_replicas("westus") == 0


async def test_the_mark_rises_and_never_falls(catalog: Catalog) -> None:
    await catalog.note_region_replicas("westus", 3)
    assert await catalog.region_replicas("westus") == 3
    await catalog.note_region_replicas("westus", 1)
    assert await catalog.region_replicas("westus") == 3, "a lower count leaves the mark as it was"
    await catalog.note_region_replicas("westus", 0)
    assert await catalog.region_replicas("westus") == 3
    await catalog.note_region_replicas("westus", 5)
    assert await catalog.region_replicas("westus") == 5
    assert await catalog.region_replicas("eastus") == 0, "each region has a mark of its own"


async def test_a_negative_count_is_refused_and_changes_nothing(catalog: Catalog) -> None:
    await catalog.note_region_replicas("westus", 2)
    with pytest.raises(InvalidParameterError, match="never negative"):
        await catalog.note_region_replicas("westus", -1)
    assert await catalog.region_replicas("westus") == 2


async def test_the_table_refuses_a_negative_mark_written_by_hand(catalog: Catalog, db_path: Path) -> None:
    connection = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            connection.execute("INSERT INTO region_replicas (region, highest) VALUES ('westus', -1)")
    finally:
        connection.close()


async def test_a_read_sees_a_write_of_the_same_connection_at_once(catalog: Catalog) -> None:
    """Reads of the mark are kept between reads (:mod:`blobrep.catalog.read_cache`); a write
    must make the next read decode anew."""
    assert await catalog.region_replicas("westus") == 0
    misses = catalog.read_counts()[1]
    assert await catalog.region_replicas("westus") == 0
    assert catalog.read_counts()[1] == misses, "an unchanged catalog answers from what it kept"
    await catalog.note_region_replicas("westus", 2)
    assert await catalog.region_replicas("westus") == 2
    assert await catalog.read_with(lambda reads: reads.region_replicas("westus")) == 2


async def test_a_read_sees_a_write_of_another_connection_at_once(catalog: Catalog, db_path: Path) -> None:
    """As a daemon must see the replicas a ``blobrep`` command beside it began to write."""
    assert await catalog.region_replicas("westus") == 0
    async with await Catalog.open(db_path) as other:
        await other.note_region_replicas("westus", 4)
    assert await catalog.region_replicas("westus") == 4


async def test_a_snapshot_reads_the_mark_without_a_loop(catalog: Catalog, db_path: Path) -> None:
    await catalog.note_region_replicas("westus", 2)
    assert read_snapshot(db_path, lambda reads: reads.region_replicas("westus")) == (2,)
    assert read_snapshot(db_path, lambda reads: reads.region_replicas("eastus")) == (0,)


# --- migration 5: a catalog written at schema version 4 ---------------------------------------------

_STATUS = "INSERT INTO region_status VALUES (?, ?, ?, ?, ?, ?, '', '2024-01-01T00:00:00.000000+00:00')"


def write_schema_4_catalog(path: Path) -> None:
    """A catalog as blobrep wrote it before the marks: two versions with status in four regions.

    ``eastus2`` shows why the seed takes the larger of the two counts: version 2.0.0 had 4
    complete replicas there when its count was lowered to 2 (the replicas above it not yet
    removed), version 1.0.0 is still on its way to 3.
    """
    with old_catalog(path, 4) as connection:
        for version_id, major in ((1, 1), (2, 2)):
            connection.execute(
                "INSERT INTO image_versions (id, gallery, image, major, minor, patch, location,"
                " replica_count, storage_type, exclude_from_latest,"
                " allow_deletion_of_replicated_locations, provisioning_state)"
                " VALUES (?, 'g', 'img', ?, 0, 0, 'westus', 1, 'Standard_LRS', 0, 0, 'Succeeded')",
                (version_id, major),
            )
        connection.executemany(
            _STATUS,
            [
                (1, "westus", "Completed", 100, 2, 2),
                (1, "eastus2", "Replicating", 33, 1, 3),
                (1, "japaneast", "Failed", 0, 0, 2),
                (2, "westus", "Completed", 100, 1, 1),
                (2, "eastus2", "Completed", 100, 4, 2),
                (2, "southeastasia", "Unknown", 0, 0, 0),
            ],
        )


def user_version(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])
    finally:
        connection.close()


async def test_a_schema_4_catalog_is_migrated_and_seeds_the_marks_from_regional_status(
    db_path: Path,
) -> None:
    write_schema_4_catalog(db_path)
    async with await Catalog.open(db_path) as catalog:
        assert user_version(db_path) == SCHEMA_VERSION == 8
        marks = {
            region: await catalog.region_replicas(region)
            for region in ("westus", "eastus2", "japaneast", "southeastasia", "westeurope")
        }
        assert marks == {"westus": 2, "eastus2": 4, "japaneast": 2, "southeastasia": 0, "westeurope": 0}
        await catalog.note_region_replicas("eastus2", 1)
        assert await catalog.region_replicas("eastus2") == 4, "a seeded mark never falls either"
        await catalog.note_region_replicas("westeurope", 1)
    async with await Catalog.open(db_path) as reopened:
        assert await reopened.region_replicas("westeurope") == 1
        assert await reopened.region_replicas("eastus2") == 4
