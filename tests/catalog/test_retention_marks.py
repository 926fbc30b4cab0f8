"""What the retention policy did to a version, in the catalog: its mark with the target regions
a shrink removed, read back as written, refused when damaged by hand, and catalogs written
before those targets were kept."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from blobrep.catalog import Catalog
from blobrep.core.gallery import RetentionMark, StorageType, TargetRegion
from blobrep.errors import StorageError
from tests.catalog.helpers import definition, gallery, old_catalog, v, version

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BEFORE = (
    TargetRegion("westus", 2, StorageType.STANDARD_ZRS, None),
    TargetRegion("eastus2", None, None, True),
)


async def _marked(catalog: Catalog, mark: RetentionMark | None) -> None:
    await catalog.create_gallery(gallery())
    await catalog.create_definition(definition())
    await catalog.create_version(dataclasses.replace(version(), retention=mark))


@pytest.mark.parametrize(
    "mark",
    [
        RetentionMark(AT, True, "shrunk to westus (keep-global 1, home region westus)", BEFORE),
        RetentionMark(AT, False, "not shrunk: its safety profile ..."),
        None,
    ],
)
async def test_a_mark_reads_back_with_the_targets_a_shrink_removed(
    catalog: Catalog, mark: RetentionMark | None
) -> None:
    await _marked(catalog, mark)
    assert (await catalog.get_version("g", "img", v("1.0.0"))).retention == mark
    cleared = dataclasses.replace(await catalog.get_version("g", "img", v("1.0.0")), retention=None)
    await catalog.update_version(cleared)
    assert (await catalog.get_version("g", "img", v("1.0.0"))).retention is None


@pytest.mark.parametrize(
    "text",
    ["not json", "{}", '[{"replicaCount": 1}]', '[{"name": "x", "replicaCount": true, "storageType": null,'
     ' "excludeFromLatest": null}]', '[{"name": "x", "replicaCount": 1, "storageType": "Premium_Tape",'
     ' "excludeFromLatest": null}]'],
)  # fmt: skip
async def test_targets_damaged_by_hand_are_a_clear_error(catalog: Catalog, db_path: Path, text: str) -> None:
    await _marked(catalog, RetentionMark(AT, True, "shrunk", BEFORE))
    connection = sqlite3.connect(db_path)
    try:
        connection.execute("UPDATE image_versions SET retention_previous = ?", (text,))
        connection.commit()
    finally:
        connection.close()
    with pytest.raises(StorageError, match=r"the catalog holds (retention_previous|storage type)"):
        await catalog.get_version("g", "img", v("1.0.0"))


async def test_a_schema_7_catalog_keeps_its_marks_without_targets(db_path: Path) -> None:
    with old_catalog(db_path, 7) as connection:
        connection.execute(
            "INSERT INTO image_versions (id, gallery, image, major, minor, patch, location,"
            " replica_count, storage_type, exclude_from_latest, allow_deletion_of_replicated_locations,"
            " provisioning_state, retention_at, retention_shrunk, retention_details)"
            " VALUES (1, 'g', 'img', 1, 0, 0, 'westus', 1, 'Standard_LRS', 0, 1, 'Succeeded',"
            " '2026-11-30T12:00:00.000000+00:00', 1, 'shrunk to westus')"
        )
    async with await Catalog.open(db_path) as catalog:
        found = await catalog.get_version("g", "img", v("1.0.0"))
        assert found.retention == RetentionMark(AT, True, "shrunk to westus")
