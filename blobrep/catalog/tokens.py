"""Bearer tokens: the public part of each token and the SHA-256 of its secret, by id.

Neither the secret nor the token text ever reaches this table (see
:mod:`blobrep.core.tokens`). A token belongs to a user or service principal and goes with
it (``ON DELETE CASCADE``); revoking stamps the time and keeps the row.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from blobrep.catalog._columns import stored_time, time_to_text
from blobrep.core.access import PrincipalType
from blobrep.core.tokens import StoredToken, Token
from blobrep.errors import (
    AlreadyExistsError,
    InvalidParameterError,
    ResourceNotFoundError,
)

_COLUMNS = "t.id, t.principal, t.secret_sha256, t.created_at, t.expires_at, t.revoked_at"
# Joined with the principal, so that a token whose principal is gone never authenticates,
# even in a file whose foreign keys were not enforced (edited by hand, say).
_FROM = " FROM tokens AS t JOIN principals AS p ON p.name = t.principal"


def _time(text: str | None, column: str) -> datetime:
    return stored_time(text, f"token {column}")


def _token(row: sqlite3.Row) -> Token:
    revoked = row["revoked_at"]
    return Token(
        id=row["id"],
        principal=row["principal"],
        created=_time(row["created_at"], "creation time"),
        expires=_time(row["expires_at"], "expiry"),
        revoked=None if revoked is None else _time(revoked, "revocation time"),
    )


def _stored(row: sqlite3.Row) -> StoredToken:
    return StoredToken(_token(row), row["secret_sha256"])


def create_token(connection: sqlite3.Connection, stored: StoredToken) -> None:
    """Record a new token.

    Raises:
        ResourceNotFoundError: its principal does not exist.
        InvalidParameterError: its principal is a group (groups cannot hold tokens), or a time
            has no time zone.
        AlreadyExistsError: a token with that id exists.
    """
    token = stored.token
    row = connection.execute("SELECT type FROM principals WHERE name = ?", (token.principal,)).fetchone()
    if row is None:
        raise ResourceNotFoundError(f"principal {token.principal!r} not found")
    if row["type"] == PrincipalType.GROUP.value:
        raise InvalidParameterError(
            f"principal {token.principal!r} is a group; groups hold roles for their members but"
            " cannot act, so they hold no tokens: make one for a user or service principal"
        )
    if connection.execute("SELECT 1 FROM tokens WHERE id = ?", (token.id,)).fetchone() is not None:
        raise AlreadyExistsError(f"token {token.id} already exists")
    connection.execute(
        "INSERT INTO tokens (id, principal, secret_sha256, created_at, expires_at, revoked_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            token.id,
            token.principal,
            stored.secret_sha256,
            time_to_text(token.created, "token creation time"),
            time_to_text(token.expires, "token expiry"),
            time_to_text(token.revoked, "token revocation time"),
        ),
    )


def find_token(connection: sqlite3.Connection, token_id: str) -> StoredToken | None:
    """The token ``token_id`` with the hash of its secret, or None if there is none (or its
    principal is gone)."""
    row = connection.execute(f"SELECT {_COLUMNS}{_FROM} WHERE t.id = ?", (token_id,)).fetchone()
    return None if row is None else _stored(row)


def list_tokens(connection: sqlite3.Connection, principal: str | None = None) -> list[Token]:
    """Every token, or those of ``principal``, by principal, creation time and id."""
    where, parameters = (" WHERE t.principal = ?", (principal,)) if principal is not None else ("", ())
    rows = connection.execute(
        f"SELECT {_COLUMNS}{_FROM}{where} ORDER BY t.principal, t.created_at, t.id", parameters
    )
    return [_token(row) for row in rows]


def revoke_token(connection: sqlite3.Connection, token_id: str, when: datetime) -> Token:
    """Revoke ``token_id`` at ``when`` and return it; a token revoked before keeps its time.

    Raises:
        ResourceNotFoundError: there is no such token.
        InvalidParameterError: ``when`` has no time zone.
    """
    connection.execute(
        "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (time_to_text(when, "token revocation time"), token_id),
    )
    found = find_token(connection, token_id)
    if found is None:
        raise ResourceNotFoundError(f"token {token_id} not found")
    return found.token
