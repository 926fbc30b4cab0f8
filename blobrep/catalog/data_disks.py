"""A version's data disks: one row per (version, LUN), beside the version row.

The version row keeps the OS disk, as it always has; a data disk's row holds what its
manifest records and its manifest pin, NULL until it is published (a version described to
the daemon waits for its data disks to be uploaded). The rows are written with the version
(:func:`write_data_disks` replaces them all, in the same transaction as the version row) and
go with it (``ON DELETE CASCADE``).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict

from blobrep.catalog.version_rows import blob_columns, blob_of_row
from blobrep.core.disks import check_luns
from blobrep.core.gallery import DataDisk

_SELECT = (
    "SELECT * FROM data_disks WHERE version_id IN (SELECT id FROM image_versions WHERE {where})"
    " ORDER BY version_id, lun"
)


def write_data_disks(connection: sqlite3.Connection, version_id: int, disks: tuple[DataDisk, ...]) -> None:
    """Replace the version's data disk rows with ``disks``.

    The table checks the LUN range and uniqueness too (``CHECK`` and the primary key), but a
    caller is told in words here, before any row is written.

    Raises:
        InvalidNameError: a LUN is not 0..63.
        InvalidParameterError: a LUN appears twice.
    """
    check_luns(disk.lun for disk in disks)
    connection.execute("DELETE FROM data_disks WHERE version_id = ?", (version_id,))
    connection.executemany(
        "INSERT INTO data_disks (version_id, lun, blob_size, blob_digest, blob_stored_bytes,"
        " blob_chunks, manifest_size, manifest_sha256) VALUES (:version_id, :lun, :blob_size,"
        " :blob_digest, :blob_stored_bytes, :blob_chunks, :manifest_size, :manifest_sha256)",
        [
            {
                "version_id": version_id,
                "lun": disk.lun,
                **blob_columns(disk.blob, f"data disk LUN {disk.lun}"),
            }
            for disk in disks
        ],
    )


def data_disks_of(
    connection: sqlite3.Connection, where: str, parameters: tuple[object, ...]
) -> defaultdict[int, list[DataDisk]]:
    """The data disks of the versions ``where`` selects, by version id, in LUN order.

    ``where`` is a condition on ``image_versions`` written by the caller, never user text.
    """
    found: defaultdict[int, list[DataDisk]] = defaultdict(list)
    for row in connection.execute(_SELECT.format(where=where), parameters):
        found[row["version_id"]].append(DataDisk(row["lun"], blob_of_row(row)))
    return found
