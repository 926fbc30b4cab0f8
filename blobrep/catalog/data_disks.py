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

from blobrep.core.disks import check_luns
from blobrep.core.gallery import BlobInfo, DataDisk
from blobrep.core.pins import ManifestPin

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
        " blob_chunks, manifest_size, manifest_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(version_id, disk.lun, *_blob_columns(disk.blob)) for disk in disks],
    )


def _blob_columns(blob: BlobInfo | None) -> tuple[object, ...]:
    if blob is None:
        return (None,) * 6
    pin = blob.manifest
    return (
        blob.size,
        blob.digest,
        blob.stored_bytes,
        blob.chunks,
        None if pin is None else pin.size,
        None if pin is None else pin.sha256,
    )


def data_disks_of(
    connection: sqlite3.Connection, where: str, parameters: tuple[object, ...]
) -> defaultdict[int, list[DataDisk]]:
    """The data disks of the versions ``where`` selects, by version id, in LUN order.

    ``where`` is a condition on ``image_versions`` written by the caller, never user text.
    """
    found: defaultdict[int, list[DataDisk]] = defaultdict(list)
    for row in connection.execute(_SELECT.format(where=where), parameters):
        blob = None
        if row["blob_size"] is not None:
            pin = None
            if row["manifest_size"] is not None:
                pin = ManifestPin(row["manifest_size"], row["manifest_sha256"])
            blob = BlobInfo(
                row["blob_size"], row["blob_digest"], row["blob_stored_bytes"], row["blob_chunks"], pin
            )
        found[row["version_id"]].append(DataDisk(row["lun"], blob))
    return found
