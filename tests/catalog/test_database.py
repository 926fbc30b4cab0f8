"""Opening, migrating and sharing the catalog file; transactions that happen whole or not at all."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
import sys
import time
from pathlib import Path

import anyio
import pytest

import blobrep.catalog.db as db_module
from blobrep.catalog import SCHEMA_VERSION, Catalog, galleries
from blobrep.catalog.db import Database
from blobrep.catalog.schema import MIGRATIONS
from blobrep.core.access import Principal, PrincipalType
from blobrep.core.gallery import PublishingProfile, TargetRegion
from blobrep.errors import AlreadyExistsError, InvalidParameterError, ResourceNotFoundError, StorageError
from tests.catalog.helpers import exactly, gallery, v, version

REPO = Path(__file__).resolve().parents[2]


def user_version(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])
    finally:
        connection.close()


def set_user_version(path: Path, number: int) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute(f"PRAGMA user_version = {number}")
        connection.commit()
    finally:
        connection.close()


def table_names(path: Path) -> set[str]:
    connection = sqlite3.connect(path)
    try:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        connection.close()


# --- opening and migrations -------------------------------------------------------------------


async def test_open_creates_the_file_and_its_directory(db_path: Path) -> None:
    assert not db_path.parent.exists()
    async with await Catalog.open(db_path) as catalog:
        assert catalog.path == db_path
        assert await catalog.list_galleries() == []
    assert db_path.is_file()


async def test_a_new_catalog_is_at_the_latest_schema_version(db_path: Path) -> None:
    async with await Catalog.open(db_path):
        pass
    assert user_version(db_path) == SCHEMA_VERSION == len(MIGRATIONS)


async def test_reopening_keeps_the_data_and_migrates_nothing_again(db_path: Path) -> None:
    async with await Catalog.open(db_path) as catalog:
        await catalog.create_gallery(gallery("g"))
        await catalog.set_setting("default-region", "westus")
    for _ in range(2):
        async with await Catalog.open(db_path) as catalog:
            assert await catalog.list_galleries() == [gallery("g")]
            assert await catalog.get_setting("default-region") == "westus"
    assert user_version(db_path) == SCHEMA_VERSION


async def test_a_catalog_written_by_a_newer_blobrep_is_refused(db_path: Path) -> None:
    async with await Catalog.open(db_path) as catalog:
        await catalog.create_gallery(gallery("g"))
    set_user_version(db_path, SCHEMA_VERSION + 1)
    expected = (
        f"catalog schema version {SCHEMA_VERSION + 1} is newer than this blobrep supports,"
        f" {SCHEMA_VERSION}; upgrade blobrep (catalog {db_path})"
    )
    with pytest.raises(StorageError, match=exactly(expected)):
        await Catalog.open(db_path)
    assert user_version(db_path) == SCHEMA_VERSION + 1, "the newer catalog must be left as it was"


@pytest.mark.parametrize(
    "content",
    [
        b"[regions]\nwestus = 2\n" * 100,
        b"hello",
        b"SQLite format 2\x00" + bytes(200),
        b"SQLite format 3\x00" + b"\xff" * 4096,
    ],
    ids=["text", "shorter-than-a-header", "wrong-magic", "damaged-header"],
)
async def test_a_file_that_is_not_a_sqlite_database_is_refused_and_left_alone(
    db_path: Path, content: bytes
) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(content)
    with pytest.raises(StorageError, match=re.escape(f"the catalog at {db_path} is not a blobrep catalog")):
        await Catalog.open(db_path)
    assert db_path.read_bytes() == content


async def test_an_empty_file_becomes_a_new_catalog(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.touch()
    async with await Catalog.open(db_path) as catalog:
        await catalog.create_gallery(gallery("g"))
    assert user_version(db_path) == SCHEMA_VERSION


async def test_another_programs_sqlite_database_is_refused_and_left_alone(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    connection = sqlite3.connect(db_path)
    connection.execute("CREATE TABLE notes (text TEXT)")
    connection.execute("INSERT INTO notes VALUES ('keep me')")
    connection.commit()
    connection.close()
    with pytest.raises(StorageError, match=re.escape(f"the catalog at {db_path} is not a blobrep catalog")):
        await Catalog.open(db_path)
    assert table_names(db_path) == {"notes"}
    connection = sqlite3.connect(db_path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "its journal mode was changed"
    connection.close()


async def test_a_directory_where_the_file_should_be_is_an_error(db_path: Path) -> None:
    db_path.mkdir(parents=True)
    with pytest.raises(StorageError, match=re.escape(f"catalog {db_path} is a directory")):
        await Catalog.open(db_path)


async def test_opening_applies_only_the_missing_migrations(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await Catalog.open(db_path) as catalog:
        await catalog.create_gallery(gallery("g"))
    second = "CREATE TABLE extra (x INTEGER); INSERT INTO extra VALUES (1);"
    monkeypatch.setattr(db_module, "MIGRATIONS", (*MIGRATIONS, second))
    monkeypatch.setattr(db_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    for _ in range(2):
        async with await Catalog.open(db_path) as catalog:
            assert await catalog.list_galleries() == [gallery("g")]
    assert user_version(db_path) == SCHEMA_VERSION + 1
    connection = sqlite3.connect(db_path)
    assert connection.execute("SELECT count(*) FROM extra").fetchone()[0] == 1, "applied more than once"
    connection.close()


async def test_a_failing_migration_leaves_the_catalog_as_it_was(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await Catalog.open(db_path) as catalog:
        await catalog.create_gallery(gallery("g"))
    broken = "CREATE TABLE extra (x INTEGER); INSERT INTO no_such_table VALUES (1);"
    with monkeypatch.context() as patch:
        patch.setattr(db_module, "MIGRATIONS", (*MIGRATIONS, broken))
        patch.setattr(db_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
        with pytest.raises(StorageError, match=re.escape(f"catalog {db_path}: no such table: no_such_table")):
            await Catalog.open(db_path)
    assert user_version(db_path) == SCHEMA_VERSION
    assert "extra" not in table_names(db_path), "half of the failed migration was kept"
    async with await Catalog.open(db_path) as catalog:
        assert await catalog.list_galleries() == [gallery("g")]


# --- transactions -----------------------------------------------------------------------------


async def test_a_write_that_raises_inside_is_rolled_back_whole(db_path: Path) -> None:
    async with await Database.open(db_path) as db:

        def two_galleries_then_a_bug(connection: sqlite3.Connection) -> None:
            galleries.create_gallery(connection, gallery("first"))
            galleries.create_gallery(connection, gallery("second"))
            raise RuntimeError("bug after two inserts")

        with pytest.raises(RuntimeError, match="bug after two inserts"):
            await db.write(two_galleries_then_a_bug)
        assert await db.read(galleries.list_galleries) == []


async def test_sqlite_errors_reach_the_caller_as_storage_errors_naming_the_catalog(db_path: Path) -> None:
    async with await Database.open(db_path) as db:
        with pytest.raises(StorageError, match=exactly(f"catalog {db_path}: no such table: nope")) as caught:
            await db.read(lambda connection: connection.execute("SELECT * FROM nope").fetchall())
    assert isinstance(caught.value.__cause__, sqlite3.Error)


async def test_a_version_that_fails_halfway_through_is_not_stored(with_image: Catalog) -> None:
    # The version row is written before its targets; the too-large count fails the targets.
    profile = PublishingProfile((TargetRegion("westus"), TargetRegion("eastus", replica_count=2**64)))
    bad = dataclasses.replace(version("1.0.0"), publishing_profile=profile)
    with pytest.raises(InvalidParameterError, match="too large"):
        await with_image.create_version(bad)
    with pytest.raises(ResourceNotFoundError):
        await with_image.get_version("g", "img", v("1.0.0"))
    assert await with_image.list_versions("g", "img") == []


async def test_an_update_that_fails_halfway_through_keeps_the_old_version(with_image: Catalog) -> None:
    original = version("1.0.0", targets=("westus", "eastus"))
    await with_image.create_version(original)
    profile = PublishingProfile((TargetRegion("northeurope"), TargetRegion("eastus", replica_count=2**64)))
    changed = dataclasses.replace(original, location="northeurope", publishing_profile=profile)
    with pytest.raises(InvalidParameterError):
        await with_image.update_version(changed)
    assert await with_image.get_version("g", "img", v("1.0.0")) == original


async def test_a_closed_catalog_refuses_calls(db_path: Path) -> None:
    catalog = await Catalog.open(db_path)
    await catalog.close()
    await catalog.close()
    with pytest.raises(StorageError, match=exactly(f"catalog {db_path} is closed")):
        await catalog.list_galleries()


# --- sharing the file -------------------------------------------------------------------------


async def test_two_open_catalogs_see_each_others_writes(db_path: Path) -> None:
    async with await Catalog.open(db_path) as cli, await Catalog.open(db_path) as daemon:
        await cli.create_gallery(gallery("from-cli"))
        assert await daemon.get_gallery("from-cli") == gallery("from-cli")
        await daemon.create_principal(Principal("alice", PrincipalType.USER))
        assert await cli.list_principals() == [Principal("alice", PrincipalType.USER)]
        with pytest.raises(AlreadyExistsError):
            await daemon.create_gallery(gallery("from-cli"))


async def test_two_catalogs_writing_at_once_lose_nothing(db_path: Path) -> None:
    async with await Catalog.open(db_path) as one, await Catalog.open(db_path) as two:
        async with anyio.create_task_group() as group:
            for number in range(20):
                group.start_soon(one.create_gallery, gallery(f"one{number}"))
                group.start_soon(two.create_gallery, gallery(f"two{number}"))
        assert len(await one.list_galleries()) == len(await two.list_galleries()) == 40


async def test_a_writer_waits_while_another_catalog_holds_the_write_lock(db_path: Path) -> None:
    async with await Database.open(db_path) as holder, await Catalog.open(db_path) as waiter:

        def slow_write(connection: sqlite3.Connection) -> None:
            galleries.create_gallery(connection, gallery("held"))
            time.sleep(0.5)

        async with anyio.create_task_group() as group:
            group.start_soon(holder.write, slow_write)
            await anyio.sleep(0.1)
            await waiter.create_gallery(gallery("waited"))
        assert [g.name for g in await waiter.list_galleries()] == ["held", "waited"]


_CHILD = """
import sys
from pathlib import Path
import anyio
from blobrep.catalog import Catalog
from blobrep.core.gallery import Gallery

async def main() -> None:
    async with await Catalog.open(Path(sys.argv[1])) as catalog:
        await catalog.create_gallery(Gallery("from-child", "westus"))
        print(",".join(g.name for g in await catalog.list_galleries()))

anyio.run(main)
"""


async def test_another_process_shares_the_open_catalog(db_path: Path) -> None:
    async with await Catalog.open(db_path) as catalog:
        await catalog.create_gallery(gallery("from-parent"))
        result = await anyio.run_process([sys.executable, "-c", _CHILD, str(db_path)], cwd=REPO)
        assert result.stdout.decode().strip() == "from-child,from-parent"
        assert await catalog.get_gallery("from-child") == gallery("from-child")
