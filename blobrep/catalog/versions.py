"""Image versions: the version row and its target regions (in order).

The desired state (publishing profile, target regions) and the observed state (one status
row per region, :mod:`blobrep.catalog.status`) are written by different callers: the service
replaces a version's profile with :func:`update_version`, while replication reports progress
with :func:`set_region_status`. Each touches only its own rows, so an update of the profile
never loses progress that replication recorded in between. The one exception is
:func:`reset_version`, which redoes an interrupted create and so replaces both at once.

The blob's manifest pin (what every replica's manifest must be, byte for byte) is stored with
the blob, in the version row; how a version becomes a row and back is
:mod:`blobrep.catalog.version_rows`.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from blobrep.catalog._columns import bool_to_int
from blobrep.catalog.assignments import delete_assignments_within
from blobrep.catalog.data_disks import data_disks_of, write_data_disks
from blobrep.catalog.galleries import require_definition
from blobrep.catalog.status import delete_status, statuses_of, write_status
from blobrep.catalog.version_rows import target_of_row, version_columns, version_of_row
from blobrep.core.gallery import (
    GalleryImageVersion,
    ProvisioningState,
    RegionStatus,
    ReplicationState,
    TargetRegion,
)
from blobrep.core.ids import ResourceId
from blobrep.errors import AlreadyExistsError, InvalidParameterError, PreconditionError, ResourceNotFoundError

if TYPE_CHECKING:
    from blobrep.core.version import ImageVersion

_KEY = "gallery = ? AND image = ? AND major = ? AND minor = ? AND patch = ?"


def _key(gallery: str, image: str, version: ImageVersion) -> tuple[str, str, int, int, int]:
    return (gallery, image, version.major, version.minor, version.patch)


def find_version_id(
    connection: sqlite3.Connection, gallery: str, image: str, version: ImageVersion
) -> int | None:
    """The row id of the version, or None if it does not exist."""
    row = connection.execute(
        f"SELECT id FROM image_versions WHERE {_KEY}", _key(gallery, image, version)
    ).fetchone()
    return None if row is None else int(row["id"])


def version_id_of(connection: sqlite3.Connection, gallery: str, image: str, version: ImageVersion) -> int:
    """The row id of the version.

    Raises:
        ResourceNotFoundError: naming the first level that is missing: gallery, definition or version.
    """
    version_id = find_version_id(connection, gallery, image, version)
    if version_id is None:
        require_definition(connection, gallery, image)
        raise ResourceNotFoundError(
            f"image version '{version}' not found in image definition {image!r} of gallery {gallery!r}"
        )
    return version_id


def _unique(names: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidParameterError(f"{what} {name!r} is listed twice")
        seen.add(name)


def _write_targets(
    connection: sqlite3.Connection, version_id: int, targets: tuple[TargetRegion, ...]
) -> None:
    connection.executemany(
        "INSERT INTO target_regions"
        " (version_id, position, region, replica_count, storage_type, exclude_from_latest)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                version_id,
                position,
                target.name,
                target.replica_count,
                None if target.storage_type is None else target.storage_type.value,
                bool_to_int(target.exclude_from_latest),
            )
            for position, target in enumerate(targets)
        ],
    )


def create_version(connection: sqlite3.Connection, v: GalleryImageVersion) -> None:
    """Record ``v`` with its target regions and its regional status rows.

    Raises:
        ResourceNotFoundError: its gallery or image definition does not exist.
        AlreadyExistsError: the version exists.
        InvalidParameterError: a region appears twice among the targets or among the statuses,
            or the pin is incomplete.
    """
    require_definition(connection, v.gallery, v.image)
    if connection.execute(
        f"SELECT 1 FROM image_versions WHERE {_KEY}", _key(v.gallery, v.image, v.version)
    ).fetchone():
        raise AlreadyExistsError(
            f"image version '{v.version}' already exists"
            f" in image definition {v.image!r} of gallery {v.gallery!r}"
        )
    _unique((target.name for target in v.publishing_profile.target_regions), "target region")
    _unique((status.region for status in v.regions), "status of region")
    columns = {"gallery": v.gallery, "image": v.image, **_version_parts(v.version), **version_columns(v)}
    names = ", ".join(columns)
    values = ", ".join(f":{name}" for name in columns)
    cursor = connection.execute(f"INSERT INTO image_versions ({names}) VALUES ({values})", columns)
    version_id = cursor.lastrowid
    assert version_id is not None  # an INSERT into a rowid table always sets it
    _write_targets(connection, version_id, v.publishing_profile.target_regions)
    write_data_disks(connection, version_id, v.data_disks)
    for status in v.regions:
        write_status(connection, version_id, status)


def _version_parts(version: ImageVersion) -> dict[str, object]:
    return {"major": version.major, "minor": version.minor, "patch": version.patch}


def update_version(connection: sqlite3.Connection, v: GalleryImageVersion) -> None:
    """Replace everything ``v`` describes except its regional status, which replication owns.

    Raises:
        ResourceNotFoundError: the version (or its definition or gallery) does not exist.
        InvalidParameterError: a region appears twice among the targets, or the pin is incomplete.
    """
    version_id = version_id_of(connection, v.gallery, v.image, v.version)
    _replace_profile(connection, version_id, v)


def _replace_profile(connection: sqlite3.Connection, version_id: int, v: GalleryImageVersion) -> None:
    """Replace the version row's columns and its targets with ``v``'s (not its status)."""
    _unique((target.name for target in v.publishing_profile.target_regions), "target region")
    columns = version_columns(v)
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    connection.execute(
        f"UPDATE image_versions SET {assignments} WHERE id = :id", {**columns, "id": version_id}
    )
    connection.execute("DELETE FROM target_regions WHERE version_id = ?", (version_id,))
    _write_targets(connection, version_id, v.publishing_profile.target_regions)
    write_data_disks(connection, version_id, v.data_disks)


def reset_version(
    connection: sqlite3.Connection, v: GalleryImageVersion, expected: ProvisioningState
) -> None:
    """Replace the whole version, regional status included, if it is still in state ``expected``.

    This is how a create that was interrupted (left Failed) is done again under the same
    name: the caller saw the state, decided to redo it, and the check against ``expected``
    makes sure nobody moved the version on in between. Operations recorded for the version
    are left as they are; they belong to whoever runs them.

    Raises:
        ResourceNotFoundError: the version (or its definition or gallery) does not exist.
        PreconditionError: the version is in another provisioning state (the message says which).
        InvalidParameterError: a region appears twice among the targets or among the statuses,
            or the pin is incomplete.
    """
    version_id = version_id_of(connection, v.gallery, v.image, v.version)
    (state,) = connection.execute(
        "SELECT provisioning_state FROM image_versions WHERE id = ?", (version_id,)
    ).fetchone()
    if state != expected.value:
        raise PreconditionError(
            f"image version '{v.version}' in image definition {v.image!r} of gallery {v.gallery!r}"
            f" is {state}, not {expected.value}; it was not replaced"
        )
    _unique((status.region for status in v.regions), "status of region")
    _replace_profile(connection, version_id, v)
    connection.execute("DELETE FROM region_status WHERE version_id = ?", (version_id,))
    for status in v.regions:
        write_status(connection, version_id, status)


def delete_version(connection: sqlite3.Connection, gallery: str, image: str, version: ImageVersion) -> None:
    """Delete the version, its targets, its status and every role assignment at it.

    Raises:
        ResourceNotFoundError: the version (or its definition or gallery) does not exist.
    """
    version_id = version_id_of(connection, gallery, image, version)
    delete_assignments_within(connection, ResourceId(gallery, image, version))
    connection.execute("DELETE FROM image_versions WHERE id = ?", (version_id,))


def set_region_status(
    connection: sqlite3.Connection, gallery: str, image: str, version: ImageVersion, status: RegionStatus
) -> None:
    """Insert or replace the version's status in ``status.region``.

    Raises:
        ResourceNotFoundError: the version (or its definition or gallery) does not exist.
    """
    write_status(connection, version_id_of(connection, gallery, image, version), status)


def delete_region_status(
    connection: sqlite3.Connection, gallery: str, image: str, version: ImageVersion, region: str
) -> None:
    """Forget the version's status in ``region`` (once its replicas there are gone).

    A region without a status row is already forgotten, which is not an error: a target
    removed before replication ever reported on it has nothing to delete.

    Raises:
        ResourceNotFoundError: the version (or its definition or gallery) does not exist.
    """
    version_id = version_id_of(connection, gallery, image, version)
    delete_status(connection, version_id, region)


# --- reading ----------------------------------------------------------------------------------

_TARGETS = (
    "SELECT version_id, region, replica_count, storage_type, exclude_from_latest FROM target_regions"
    " WHERE version_id IN (SELECT id FROM image_versions WHERE {where}) ORDER BY version_id, position"
)


def _select(
    connection: sqlite3.Connection, where: str, parameters: tuple[object, ...]
) -> list[GalleryImageVersion]:
    """Versions matching ``where`` by gallery, image and number, each with its targets and status.

    Three queries whatever the number of versions, rather than two more per version.
    """
    targets: defaultdict[int, list[TargetRegion]] = defaultdict(list)
    for row in connection.execute(_TARGETS.format(where=where), parameters):
        targets[row["version_id"]].append(target_of_row(row))
    statuses = statuses_of(connection, where, parameters)
    disks = data_disks_of(connection, where, parameters)
    rows = connection.execute(
        f"SELECT * FROM image_versions WHERE {where} ORDER BY gallery, image, major, minor, patch",
        parameters,
    )
    return [
        version_of_row(row, tuple(targets[row["id"]]), tuple(statuses[row["id"]]), tuple(disks[row["id"]]))
        for row in rows
    ]


def get_version(
    connection: sqlite3.Connection, gallery: str, image: str, version: ImageVersion
) -> GalleryImageVersion:
    """The version with its profile, targets and regional status.

    Raises:
        ResourceNotFoundError: the version (or its definition or gallery) does not exist.
    """
    version_id = version_id_of(connection, gallery, image, version)
    (found,) = _select(connection, "id = ?", (version_id,))
    return found


def list_versions(connection: sqlite3.Connection, gallery: str, image: str) -> list[GalleryImageVersion]:
    """Every version of the definition, oldest (numerically lowest) first.

    Raises:
        ResourceNotFoundError: the definition (or its gallery) does not exist.
    """
    require_definition(connection, gallery, image)
    return _select(connection, "gallery = ? AND image = ?", (gallery, image))


#: Versions in the middle of an operation: a provisioning operation, or replication somewhere.
_UNFINISHED = (
    "(provisioning_state IN (?, ?, ?) OR id IN (SELECT version_id FROM region_status WHERE state = ?))"
)


def unfinished_versions(connection: sqlite3.Connection) -> list[GalleryImageVersion]:
    """Every version, in any gallery, that is Creating, Updating or Deleting, or Replicating
    in some region: what recovery looks at after a crash. Ordered by gallery, image, number.
    """
    parameters = (
        ProvisioningState.CREATING.value,
        ProvisioningState.UPDATING.value,
        ProvisioningState.DELETING.value,
        ReplicationState.REPLICATING.value,
    )
    return _select(connection, _UNFINISHED, parameters)
