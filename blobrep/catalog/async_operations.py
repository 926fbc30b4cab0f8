"""Asynchronous operations: the record of each (see :mod:`blobrep.core.async_operations`).

A row is written when the write that starts it answers, and once more when it ends; the end is
written only over a row still ``InProgress``, so the first ending observed is the one kept
(two pollers judging the same moment agree anyway). Ended rows older than
:data:`KEEP_ENDED` are dropped when new ones are written, so the table stays as small as the
work in flight.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from blobrep.catalog._columns import stored_time, time_to_text, to_choice
from blobrep.core.async_operations import AsyncOperation, AsyncStatus, OperationError
from blobrep.core.ids import ResourceId
from blobrep.core.operations import OperationKind
from blobrep.errors import AlreadyExistsError

if TYPE_CHECKING:
    from blobrep.catalog.db import Database

#: How long an ended operation stays to be polled.
KEEP_ENDED: Final = timedelta(days=7)

_COLUMNS = "id, kind, resource, principal, status, started_at, ended_at, percent, error_code, error_message"


def _time(text: str | None, column: str) -> datetime:
    return stored_time(text, f"operation {column}")


def _operation(row: sqlite3.Row) -> AsyncOperation:
    error = None
    if row["error_code"] is not None:
        error = OperationError(row["error_code"], row["error_message"] or "")
    return AsyncOperation(
        id=row["id"],
        kind=to_choice(OperationKind, row["kind"], "operation kind"),
        resource=ResourceId.parse(row["resource"]),
        principal=row["principal"],
        status=to_choice(AsyncStatus, row["status"], "operation status"),
        started=_time(row["started_at"], "start time"),
        ended=None if row["ended_at"] is None else _time(row["ended_at"], "end time"),
        error=error,
        percent=row["percent"],
    )


def create(connection: sqlite3.Connection, operation: AsyncOperation) -> None:
    """Record a new operation, dropping those that ended more than :data:`KEEP_ENDED` ago.

    Raises:
        AlreadyExistsError: an operation with that id exists.
    """
    started = time_to_text(operation.started, "operation start")
    assert started is not None
    cutoff = time_to_text(operation.started - KEEP_ENDED, "cutoff")
    connection.execute("DELETE FROM async_operations WHERE ended_at IS NOT NULL AND ended_at < ?", (cutoff,))
    try:
        connection.execute(
            f"INSERT INTO async_operations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL)",
            (
                operation.id,
                operation.kind.value,
                str(operation.resource),
                operation.principal,
                AsyncStatus.IN_PROGRESS.value,
                started,
            ),
        )
    except sqlite3.IntegrityError:
        raise AlreadyExistsError(f"operation {operation.id} already exists") from None


def find(connection: sqlite3.Connection, operation_id: str) -> AsyncOperation | None:
    query = f"SELECT {_COLUMNS} FROM async_operations WHERE id = ?"
    row = connection.execute(query, (operation_id,)).fetchone()
    return None if row is None else _operation(row)


def end(
    connection: sqlite3.Connection,
    operation_id: str,
    status: AsyncStatus,
    when: datetime,
    percent: int,
    error: OperationError | None,
) -> AsyncOperation | None:
    """End the operation (if it still runs) and return it as it now stands; None if unknown."""
    assert status is not AsyncStatus.IN_PROGRESS
    connection.execute(
        "UPDATE async_operations SET status = ?, ended_at = ?, percent = ?, error_code = ?, error_message = ?"
        " WHERE id = ? AND status = ?",
        (
            status.value,
            time_to_text(when, "operation end"),
            percent,
            None if error is None else error.code,
            None if error is None else error.message,
            operation_id,
            AsyncStatus.IN_PROGRESS.value,
        ),
    )
    return find(connection, operation_id)


def running_on(connection: sqlite3.Connection, resource: ResourceId) -> list[AsyncOperation]:
    """The operations still in progress on ``resource``, oldest first."""
    rows = connection.execute(
        f"SELECT {_COLUMNS} FROM async_operations WHERE resource = ? AND status = ? ORDER BY started_at",
        (str(resource), AsyncStatus.IN_PROGRESS.value),
    )
    return [_operation(row) for row in rows]


class AsyncOperationTable:
    """The catalog's methods for asynchronous operations (mixed into :class:`Catalog`)."""

    _db: Database

    async def create_async_operation(self, operation: AsyncOperation) -> None:
        """Record a new operation, in progress.

        Raises:
            AlreadyExistsError: an operation with that id exists.
        """
        await self._db.write(lambda c: create(c, operation))

    async def find_async_operation(self, operation_id: str) -> AsyncOperation | None:
        """The operation ``operation_id``; None if there is none (or it ended long ago)."""
        return await self._db.read(lambda c: find(c, operation_id))

    async def end_async_operation(
        self,
        operation_id: str,
        status: AsyncStatus,
        when: datetime,
        percent: int,
        error: OperationError | None = None,
    ) -> AsyncOperation | None:
        """End the operation unless it has ended already; the operation as it now stands."""
        return await self._db.write(lambda c: end(c, operation_id, status, when, percent, error))

    async def running_async_operations(self, resource: ResourceId) -> list[AsyncOperation]:
        """The operations in progress on ``resource``, oldest first."""
        return await self._db.read(lambda c: running_on(c, resource))
