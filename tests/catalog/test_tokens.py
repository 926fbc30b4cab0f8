"""Bearer tokens in the catalog: kept by id with the hash of their secret, revoked in place,
gone with their principal; and migration 3 on a catalog written at schema version 2."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from blobrep.catalog import SCHEMA_VERSION, Catalog
from blobrep.catalog.schema import MIGRATIONS
from blobrep.core.access import Principal, PrincipalType
from blobrep.core.tokens import StoredToken, issue, parse_token, verify
from blobrep.errors import (
    AlreadyExistsError,
    InvalidParameterError,
    ResourceNotFoundError,
    UnauthenticatedError,
)
from tests.catalog.helpers import PLUS_0530

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def stored(principal: str, number: int, *, now: datetime = NOW) -> StoredToken:
    """Token number ``number`` (its id and secret derived from it) of ``principal``."""
    return issue(principal, f"tok_{number:012x}", bytes([number]) * 32, now=now, lifetime=3600).stored


async def with_principals(catalog: Catalog) -> Catalog:
    for principal in (
        Principal("alice", PrincipalType.USER),
        Principal("robot", PrincipalType.SERVICE_PRINCIPAL),
        Principal("ops", PrincipalType.GROUP),
    ):
        await catalog.create_principal(principal)
    return catalog


async def test_a_token_is_kept_by_id_with_the_hash_of_its_secret(catalog: Catalog) -> None:
    await with_principals(catalog)
    token = stored("robot", 1)
    await catalog.create_token(token)
    assert await catalog.find_token("tok_000000000001") == token
    assert await catalog.find_token("tok_000000000002") is None


async def test_times_are_stored_as_instants_in_utc(catalog: Catalog) -> None:
    await with_principals(catalog)
    token = stored("robot", 1, now=NOW.astimezone(PLUS_0530))
    await catalog.create_token(token)
    found = await catalog.find_token(token.token.id)
    assert found is not None
    assert found.token.created == NOW and found.token.created.utcoffset() == timedelta(0)
    naive = StoredToken(replace(token.token, id="tok_000000000009", created=datetime(2030, 1, 1)), "0" * 64)
    with pytest.raises(InvalidParameterError, match="no time zone"):
        await catalog.create_token(naive)


async def test_tokens_are_listed_by_principal_then_age_and_filtered(catalog: Catalog) -> None:
    await with_principals(catalog)
    later = NOW + timedelta(minutes=1)
    for token in (stored("robot", 3, now=later), stored("robot", 2), stored("alice", 1, now=later)):
        await catalog.create_token(token)
    assert [t.id for t in await catalog.list_tokens()] == [
        "tok_000000000001",
        "tok_000000000002",
        "tok_000000000003",
    ]
    assert [t.id for t in await catalog.list_tokens("robot")] == ["tok_000000000002", "tok_000000000003"]
    assert await catalog.list_tokens("nobody") == []


async def test_a_token_needs_a_principal_that_can_act(catalog: Catalog) -> None:
    await with_principals(catalog)
    with pytest.raises(ResourceNotFoundError, match="principal 'nobody' not found"):
        await catalog.create_token(stored("nobody", 1))
    with pytest.raises(InvalidParameterError, match=r"principal 'ops' is a group; .* they hold no tokens"):
        await catalog.create_token(stored("ops", 1))
    assert await catalog.list_tokens() == []


async def test_an_id_is_never_reused(catalog: Catalog) -> None:
    await with_principals(catalog)
    await catalog.create_token(stored("robot", 1))
    other = StoredToken(stored("alice", 1).token, stored("alice", 2).secret_sha256)
    with pytest.raises(AlreadyExistsError, match="token tok_000000000001 already exists"):
        await catalog.create_token(other)
    assert await catalog.find_token("tok_000000000001") == stored("robot", 1)


async def test_revoking_stamps_the_first_time_and_keeps_the_token(catalog: Catalog) -> None:
    await with_principals(catalog)
    await catalog.create_token(stored("robot", 1))
    first = NOW + timedelta(minutes=5)
    revoked = await catalog.revoke_token("tok_000000000001", first)
    assert revoked.revoked == first
    again = await catalog.revoke_token("tok_000000000001", first + timedelta(hours=1))
    assert again.revoked == first, "revoking twice keeps the first revocation time"
    assert [t.revoked for t in await catalog.list_tokens()] == [first]
    with pytest.raises(ResourceNotFoundError, match="token tok_000000000002 not found"):
        await catalog.revoke_token("tok_000000000002", first)


async def test_a_principals_tokens_go_with_it_and_do_not_come_back_with_its_name(catalog: Catalog) -> None:
    await with_principals(catalog)
    token = issue("robot", "tok_000000000001", b"\x01" * 32, now=NOW, lifetime=3600)
    await catalog.create_token(token.stored)
    await catalog.create_token(stored("alice", 2))
    await catalog.delete_principal("robot")
    await catalog.create_principal(Principal("robot", PrincipalType.SERVICE_PRINCIPAL))
    assert await catalog.find_token("tok_000000000001") is None
    assert [t.principal for t in await catalog.list_tokens()] == ["alice"]
    with pytest.raises(UnauthenticatedError, match="invalid token"):
        verify(parse_token(token.text), await catalog.find_token("tok_000000000001"), NOW)


async def test_a_token_whose_principal_row_is_gone_is_never_found(catalog: Catalog, db_path: Path) -> None:
    """Even in a file edited without foreign keys: the lookup joins the principal."""
    await with_principals(catalog)
    await catalog.create_token(stored("robot", 1))
    connection = sqlite3.connect(db_path)
    try:
        connection.execute("PRAGMA foreign_keys = OFF")
        connection.execute("DELETE FROM principals WHERE name = 'robot'")
        connection.commit()
    finally:
        connection.close()
    assert await catalog.find_token("tok_000000000001") is None
    assert await catalog.list_tokens() == []


# --- migration 3 ------------------------------------------------------------------------------------


def write_schema_2_catalog(path: Path) -> None:
    """A catalog as blobrep wrote it before tokens: the first two migrations, a principal."""
    path.parent.mkdir(parents=True)
    connection = sqlite3.connect(path)
    try:
        for script in MIGRATIONS[:2]:
            connection.executescript(script)
        connection.execute("PRAGMA user_version = 2")
        connection.execute("INSERT INTO principals VALUES ('robot', 'servicePrincipal')")
        connection.commit()
    finally:
        connection.close()


def schema_of(path: Path) -> tuple[int, set[str]]:
    connection = sqlite3.connect(path)
    try:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        return int(version), names
    finally:
        connection.close()


async def test_a_schema_2_catalog_gains_tokens_and_keeps_its_principals(db_path: Path) -> None:
    write_schema_2_catalog(db_path)
    assert schema_of(db_path)[0] == 2 and "tokens" not in schema_of(db_path)[1]
    async with await Catalog.open(db_path) as catalog:
        assert await catalog.get_principal("robot") == Principal("robot", PrincipalType.SERVICE_PRINCIPAL)
        assert await catalog.list_tokens() == []
        await catalog.create_token(stored("robot", 1))
        await catalog.delete_principal("robot")
        assert await catalog.list_tokens() == [], "the cascade works in a migrated catalog too"
    version, names = schema_of(db_path)
    assert version == SCHEMA_VERSION == 8
    assert {"tokens", "tokens_by_principal"} <= names


async def test_a_new_catalog_has_the_tokens_table(catalog: Catalog, db_path: Path) -> None:
    version, names = schema_of(db_path)
    assert version == SCHEMA_VERSION and "tokens" in names
