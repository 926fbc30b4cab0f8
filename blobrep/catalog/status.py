"""Regional status: where one version stands in one region, one row per (version, region).

Replication owns these rows; the version's profile (in :mod:`blobrep.catalog.versions`) is
owned by the service. Keeping them in separate rows is what lets a profile update leave the
progress replication recorded untouched.

Rows are read in the order a user expects: regions in target order, then regions that are no
longer targets (their replicas are being removed) by name.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict

from blobrep.catalog._columns import now, to_choice
from blobrep.core.gallery import RegionStatus, ReplicationState

_SELECT = (
    "SELECT s.version_id, s.region, s.state, s.progress, s.completed_replicas, s.target_replicas, s.details"
    " FROM region_status AS s LEFT JOIN target_regions AS t"
    " ON t.version_id = s.version_id AND t.region = s.region"
    " WHERE s.version_id IN (SELECT id FROM image_versions WHERE {where})"
    " ORDER BY s.version_id, t.position IS NULL, t.position, s.region"
)


def write_status(connection: sqlite3.Connection, version_id: int, status: RegionStatus) -> None:
    """Insert or replace the status of version ``version_id`` in ``status.region``."""
    connection.execute(
        "INSERT INTO region_status (version_id, region, state, progress, completed_replicas,"
        " target_replicas, details, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (version_id, region) DO UPDATE SET state = excluded.state,"
        " progress = excluded.progress, completed_replicas = excluded.completed_replicas,"
        " target_replicas = excluded.target_replicas, details = excluded.details,"
        " updated_at = excluded.updated_at",
        (
            version_id,
            status.region,
            status.state.value,
            status.progress,
            status.completed_replicas,
            status.target_replicas,
            status.details,
            now(),
        ),
    )


def delete_status(connection: sqlite3.Connection, version_id: int, region: str) -> None:
    """Forget the status of version ``version_id`` in ``region``, if there is one."""
    connection.execute("DELETE FROM region_status WHERE version_id = ? AND region = ?", (version_id, region))


def _status(row: sqlite3.Row) -> RegionStatus:
    return RegionStatus(
        region=row["region"],
        state=to_choice(ReplicationState, row["state"], "replication state"),
        progress=row["progress"],
        completed_replicas=row["completed_replicas"],
        target_replicas=row["target_replicas"],
        details=row["details"],
    )


def statuses_of(
    connection: sqlite3.Connection, where: str, parameters: tuple[object, ...]
) -> defaultdict[int, list[RegionStatus]]:
    """The status rows of the versions that ``where`` selects, by version id, in display order.

    ``where`` is a condition on ``image_versions`` written by the caller, never user text.
    """
    found: defaultdict[int, list[RegionStatus]] = defaultdict(list)
    for row in connection.execute(_SELECT.format(where=where), parameters):
        found[row["version_id"]].append(_status(row))
    return found
