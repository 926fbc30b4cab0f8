"""Role assignments: a principal holds a role at a scope (a resource id).

Scopes are stored as the text of their :class:`~blobrep.core.ids.ResourceId`. Everything at
or below a scope is ``scope`` itself or starts with ``scope + "/"``; the catalog finds those
with a range on the text (every string that starts with ``S/`` sorts at or after ``S/`` and
before ``S0``, ``0`` being the character after ``/``), never with ``LIKE``, whose ``_``
wildcard is also a legal character in gallery names.
"""

from __future__ import annotations

import sqlite3

from blobrep.catalog._columns import to_choice
from blobrep.core.access import Role, RoleAssignment
from blobrep.core.ids import ResourceId
from blobrep.errors import AlreadyExistsError, InvalidInputError, ResourceNotFoundError, StorageError


def _describe(assignment: RoleAssignment) -> str:
    return f"role {assignment.role.value} at {assignment.scope}"


def _exists(connection: sqlite3.Connection, assignment: RoleAssignment) -> bool:
    row = connection.execute(
        "SELECT 1 FROM role_assignments WHERE principal = ? AND role = ? AND scope = ?",
        (assignment.principal, assignment.role.value, str(assignment.scope)),
    ).fetchone()
    return row is not None


def create_assignment(connection: sqlite3.Connection, assignment: RoleAssignment) -> None:
    """Record ``assignment``.

    Raises:
        ResourceNotFoundError: its principal does not exist.
        AlreadyExistsError: the principal already holds that role at that scope.
    """
    principal = assignment.principal
    if connection.execute("SELECT 1 FROM principals WHERE name = ?", (principal,)).fetchone() is None:
        raise ResourceNotFoundError(f"principal {principal!r} not found")
    if _exists(connection, assignment):
        raise AlreadyExistsError(f"principal {principal!r} already has {_describe(assignment)}")
    connection.execute(
        "INSERT INTO role_assignments (principal, role, scope) VALUES (?, ?, ?)",
        (principal, assignment.role.value, str(assignment.scope)),
    )


def delete_assignment(connection: sqlite3.Connection, assignment: RoleAssignment) -> None:
    """Remove ``assignment``.

    Raises:
        ResourceNotFoundError: there is no such assignment.
    """
    if not _exists(connection, assignment):
        raise ResourceNotFoundError(f"principal {assignment.principal!r} has no {_describe(assignment)}")
    connection.execute(
        "DELETE FROM role_assignments WHERE principal = ? AND role = ? AND scope = ?",
        (assignment.principal, assignment.role.value, str(assignment.scope)),
    )


def _assignment(row: sqlite3.Row) -> RoleAssignment:
    try:
        scope = ResourceId.parse(row["scope"])
    except InvalidInputError as exc:
        raise StorageError(f"the catalog holds a role assignment with an invalid scope: {exc}") from exc
    return RoleAssignment(row["principal"], to_choice(Role, row["role"], "role"), scope)


def list_assignments(
    connection: sqlite3.Connection, *, scope: ResourceId | None = None, principal: str | None = None
) -> list[RoleAssignment]:
    """Assignments at exactly ``scope`` and of ``principal``; either filter may be left out.

    Sorted by scope, then principal, then role, so listings are stable.
    """
    conditions: list[str] = []
    parameters: list[str] = []
    if scope is not None:
        conditions.append("scope = ?")
        parameters.append(str(scope))
    if principal is not None:
        conditions.append("principal = ?")
        parameters.append(principal)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = connection.execute(
        f"SELECT principal, role, scope FROM role_assignments{where} ORDER BY scope, principal, role",
        parameters,
    )
    return [_assignment(row) for row in rows]


def delete_assignments_within(connection: sqlite3.Connection, scope: ResourceId) -> None:
    """Delete every assignment at ``scope`` or below it.

    Called when the resource at ``scope`` is deleted: a resource created later under the same
    name must start without the old one's grants.
    """
    text = str(scope)
    connection.execute(
        "DELETE FROM role_assignments WHERE scope = ? OR (scope >= ? AND scope < ?)",
        (text, text + "/", text + "0"),
    )
