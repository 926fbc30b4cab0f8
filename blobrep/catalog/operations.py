"""Operations: the record of who runs the operation behind a version's non-terminal state.

One row per (version, region); region ``''`` is the version's own provisioning operation
(create, update, delete), any other region a replication into it. The row is what lets a
later process tell a live operation (leave it alone) from one whose process died (take it
over), so every change to it is conditional:

* :func:`begin_operation` inserts only where there is no row; otherwise it returns the one
  there, for the caller to judge;
* :func:`take_over_operation` is a compare-and-swap: it replaces the row only if it still is
  exactly the operation the caller judged, so of two processes recovering the same abandoned
  operation at once, one wins and the other learns it lost;
* :func:`heartbeat_operation` and :func:`end_operation` act only for the owner, so an owner
  that was (wrongly) taken over finds out at its next heartbeat and stops, and cannot end the
  operation of the process that took over.

Every write stamps a time later than the one it replaces, even if the clock stepped back, so
a heartbeat always changes the row and a compare-and-swap against the old row fails.

An owner that cannot be read (a row edited by hand, or written in a form this blobrep does
not know) is returned as :data:`~blobrep.core.operations.UNKNOWN_OWNER` rather than failing
the whole listing: recovery must still see the operation, and judges it by its heartbeat.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

from blobrep.catalog._columns import now, to_choice
from blobrep.catalog.versions import find_version_id, version_id_of
from blobrep.core.holders import ProcessIdentity
from blobrep.core.operations import UNKNOWN_OWNER, Operation, OperationKind
from blobrep.core.version import ImageVersion
from blobrep.errors import InvalidParameterError, StorageError

_SELECT = (
    "SELECT o.version_id, v.gallery, v.image, v.major, v.minor, v.patch, o.region, o.kind, o.owner,"
    " o.started_at, o.heartbeat_at"
    " FROM operations AS o JOIN image_versions AS v ON v.id = o.version_id"
)
_ORDER = " ORDER BY v.gallery, v.image, v.major, v.minor, v.patch, o.region"


def _owner_text(owner: ProcessIdentity) -> str:
    """The stored form of ``owner``: canonical JSON, so equal owners are equal text."""
    return json.dumps(owner.to_json(), sort_keys=True, separators=(",", ":"))


def _owner(text: str) -> ProcessIdentity:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return UNKNOWN_OWNER
    return ProcessIdentity.from_json(value) or UNKNOWN_OWNER


def _time(text: str, column: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.utcoffset() is None:
        raise StorageError(f"the catalog holds operation {column} {text!r}, which is not a time in UTC")
    return value


def _later_than(previous: str) -> str:
    """Now, or a microsecond after ``previous`` if the clock has not moved past it."""
    stamp = now()
    if stamp > previous:
        return stamp
    return (
        (_time(previous, "time") + timedelta(microseconds=1))
        .astimezone(UTC)
        .isoformat(timespec="microseconds")
    )


def _operation(row: sqlite3.Row) -> Operation:
    return Operation(
        gallery=row["gallery"],
        image=row["image"],
        version=ImageVersion(row["major"], row["minor"], row["patch"]),
        region=row["region"],
        kind=to_choice(OperationKind, row["kind"], "operation kind"),
        owner=_owner(row["owner"]),
        started=_time(row["started_at"], "start time"),
        heartbeat=_time(row["heartbeat_at"], "heartbeat time"),
    )


def _row(connection: sqlite3.Connection, version_id: int, region: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = connection.execute(
        f"{_SELECT} WHERE o.version_id = ? AND o.region = ?", (version_id, region)
    ).fetchone()
    return row


def begin_operation(
    connection: sqlite3.Connection,
    gallery: str,
    image: str,
    version: ImageVersion,
    region: str,
    kind: OperationKind,
    owner: ProcessIdentity,
) -> Operation | None:
    """Record that ``owner`` runs a ``kind`` operation on the version (in ``region``).

    Returns None if it was recorded, or the operation already recorded there (nothing is
    written then, even if its owner is ``owner``): whether that one is alive is for the
    caller to find out.

    Raises:
        ResourceNotFoundError: the version (or its definition or gallery) does not exist.
        InvalidParameterError: a replication without a region.
    """
    if kind is OperationKind.REPLICATE and not region:
        raise InvalidParameterError("a replication operation needs the region it replicates into")
    version_id = version_id_of(connection, gallery, image, version)
    stamp = now()
    cursor = connection.execute(
        "INSERT INTO operations (version_id, region, kind, owner, started_at, heartbeat_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (version_id, region) DO NOTHING",
        (version_id, region, kind.value, _owner_text(owner), stamp, stamp),
    )
    if cursor.rowcount == 1:
        return None
    existing = _row(connection, version_id, region)
    assert existing is not None  # the insert conflicted with it, in this transaction
    return _operation(existing)


def take_over_operation(
    connection: sqlite3.Connection, previous: Operation, kind: OperationKind, owner: ProcessIdentity
) -> bool:
    """Make ``owner`` the owner of ``previous``, now a ``kind`` operation started now.

    Only if the row still is exactly ``previous`` (same kind, owner, start and heartbeat):
    False if it changed since it was read (its owner sent a heartbeat, or another process took
    it over first) or is gone.
    """
    version_id = find_version_id(connection, previous.gallery, previous.image, previous.version)
    if version_id is None:
        return False
    row = _row(connection, version_id, previous.region)
    if row is None or _operation(row) != previous:
        return False
    stamp = _later_than(row["heartbeat_at"])
    connection.execute(
        "UPDATE operations SET kind = ?, owner = ?, started_at = ?, heartbeat_at = ?"
        " WHERE version_id = ? AND region = ?",
        (kind.value, _owner_text(owner), stamp, stamp, version_id, previous.region),
    )
    return True


def heartbeat_operation(
    connection: sqlite3.Connection,
    gallery: str,
    image: str,
    version: ImageVersion,
    region: str,
    owner: ProcessIdentity,
) -> bool:
    """Say that ``owner`` is still working on its operation.

    False if there is no such operation any more, or it belongs to another process: it was
    taken over (or the version deleted), and ``owner`` must stop.
    """
    version_id = find_version_id(connection, gallery, image, version)
    if version_id is None:
        return False
    row = _row(connection, version_id, region)
    if row is None or row["owner"] != _owner_text(owner):
        return False
    connection.execute(
        "UPDATE operations SET heartbeat_at = ? WHERE version_id = ? AND region = ?",
        (_later_than(row["heartbeat_at"]), version_id, region),
    )
    return True


def end_operation(
    connection: sqlite3.Connection,
    gallery: str,
    image: str,
    version: ImageVersion,
    region: str,
    owner: ProcessIdentity,
) -> None:
    """Forget ``owner``'s operation; one that is gone, or belongs to another, is left alone."""
    version_id = find_version_id(connection, gallery, image, version)
    if version_id is None:
        return
    connection.execute(
        "DELETE FROM operations WHERE version_id = ? AND region = ? AND owner = ?",
        (version_id, region, _owner_text(owner)),
    )


def list_operations(connection: sqlite3.Connection) -> list[Operation]:
    """Every recorded operation, by gallery, image, version number and region."""
    return [_operation(row) for row in connection.execute(_SELECT + _ORDER)]
