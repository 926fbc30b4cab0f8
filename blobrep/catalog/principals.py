"""Principals (users, service principals, groups) and the direct members of each group.

Only direct memberships are stored; the access policy in :mod:`blobrep.core.access` walks
nested groups itself. Deleting a principal deletes its memberships (as a group and as a
member) and its role assignments through ``ON DELETE CASCADE``.
"""

from __future__ import annotations

import sqlite3

from blobrep.catalog._columns import to_choice
from blobrep.core.access import Principal, PrincipalType
from blobrep.errors import AlreadyExistsError, InvalidParameterError, ResourceNotFoundError


def _principal(row: sqlite3.Row) -> Principal:
    return Principal(row["name"], to_choice(PrincipalType, row["type"], "principal type"))


def get_principal(connection: sqlite3.Connection, name: str) -> Principal:
    """The principal called ``name``.

    Raises:
        ResourceNotFoundError: there is none.
    """
    row = connection.execute("SELECT name, type FROM principals WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise ResourceNotFoundError(f"principal {name!r} not found")
    return _principal(row)


def create_principal(connection: sqlite3.Connection, principal: Principal) -> None:
    """Record ``principal``.

    Raises:
        AlreadyExistsError: a principal of that name exists (of any type).
    """
    if connection.execute("SELECT 1 FROM principals WHERE name = ?", (principal.name,)).fetchone():
        raise AlreadyExistsError(f"principal {principal.name!r} already exists")
    connection.execute(
        "INSERT INTO principals (name, type) VALUES (?, ?)", (principal.name, principal.type.value)
    )


def list_principals(connection: sqlite3.Connection) -> list[Principal]:
    return [_principal(row) for row in connection.execute("SELECT name, type FROM principals ORDER BY name")]


def delete_principal(connection: sqlite3.Connection, name: str) -> None:
    """Delete ``name`` with its memberships and role assignments.

    Raises:
        ResourceNotFoundError: there is no such principal.
    """
    if connection.execute("DELETE FROM principals WHERE name = ?", (name,)).rowcount == 0:
        raise ResourceNotFoundError(f"principal {name!r} not found")


def _require_group(connection: sqlite3.Connection, group: str) -> None:
    principal = get_principal(connection, group)
    if principal.type is not PrincipalType.GROUP:
        raise InvalidParameterError(
            f"principal {group!r} is a {principal.type.value}, not a group; only groups have members"
        )


def _is_member(connection: sqlite3.Connection, group: str, member: str) -> bool:
    row = connection.execute(
        "SELECT 1 FROM group_members WHERE group_name = ? AND member = ?", (group, member)
    ).fetchone()
    return row is not None


def add_member(connection: sqlite3.Connection, group: str, member: str) -> None:
    """Make ``member`` a direct member of ``group``.

    Raises:
        ResourceNotFoundError: either principal does not exist.
        InvalidParameterError: ``group`` is not a group, or ``member`` is ``group`` itself.
        AlreadyExistsError: ``member`` is already a direct member.
    """
    get_principal(connection, member)
    _require_group(connection, group)
    if member == group:
        raise InvalidParameterError(f"group {group!r} cannot be a member of itself")
    if _is_member(connection, group, member):
        raise AlreadyExistsError(f"{member!r} is already a member of group {group!r}")
    connection.execute("INSERT INTO group_members (group_name, member) VALUES (?, ?)", (group, member))


def remove_member(connection: sqlite3.Connection, group: str, member: str) -> None:
    """Remove ``member`` from ``group``.

    Raises:
        ResourceNotFoundError: ``group`` does not exist, or ``member`` is not a direct member.
    """
    get_principal(connection, group)
    if not _is_member(connection, group, member):
        raise ResourceNotFoundError(f"{member!r} is not a member of group {group!r}")
    connection.execute("DELETE FROM group_members WHERE group_name = ? AND member = ?", (group, member))


def list_members(connection: sqlite3.Connection, group: str) -> list[str]:
    """The direct members of ``group``, sorted by name.

    Raises:
        ResourceNotFoundError: ``group`` does not exist.
        InvalidParameterError: ``group`` is a user or service principal.
    """
    _require_group(connection, group)
    rows = connection.execute(
        "SELECT member FROM group_members WHERE group_name = ? ORDER BY member", (group,)
    )
    return [row["member"] for row in rows]


def memberships(connection: sqlite3.Connection) -> dict[str, frozenset[str]]:
    """Every group, empty ones included, mapped to its direct members."""
    found: dict[str, set[str]] = {
        row["name"]: set()
        for row in connection.execute(
            "SELECT name FROM principals WHERE type = ?", (PrincipalType.GROUP.value,)
        )
    }
    for row in connection.execute("SELECT group_name, member FROM group_members"):
        found.setdefault(row["group_name"], set()).add(row["member"])
    return {group: frozenset(members) for group, members in found.items()}
