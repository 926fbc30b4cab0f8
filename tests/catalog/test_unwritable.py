"""A catalog that cannot be written says which file refuses and why, and whether to retry."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import pytest

import blobrep.catalog.db as db_module
from blobrep.catalog import Catalog
from blobrep.errors import LockedError, StorageError, StorageFullError
from tests.catalog.helpers import gallery
from tests.storage.mounts import read_only_view


@pytest.fixture
async def made(db_path: Path) -> Path:
    """A catalog file holding gallery ``g``, closed again."""
    async with await Catalog.open(db_path) as catalog:
        await catalog.create_gallery(gallery("g"))
    return db_path


@pytest.fixture
def live_connection(made: Path) -> Iterator[sqlite3.Connection]:
    """Another program's open connection: while it lives, the ``-wal`` and ``-shm`` files stay."""
    with closing(sqlite3.connect(made)) as connection:
        connection.execute("SELECT count(*) FROM galleries").fetchone()
        assert Path(f"{made}-wal").exists() and Path(f"{made}-shm").exists()
        yield connection


async def test_a_read_only_wal_file_is_named_and_nothing_is_written(
    made: Path, live_connection: sqlite3.Connection
) -> None:
    locked = Path(f"{made}-wal")
    with read_only_view(locked, locked):
        async with await Catalog.open(made) as catalog:
            assert [g.name for g in await catalog.list_galleries()] == ["g"]  # reading still works
            with pytest.raises(StorageError) as raised:
                await catalog.create_gallery(gallery("h"))
    message = str(raised.value)
    assert message.startswith(f"the catalog {made} is read-only: {locked} is on a read-only file system")
    assert message.endswith("; nothing was written")
    assert "attempt to write a readonly database" in message
    assert not raised.value.retryable
    async with await Catalog.open(made) as catalog:
        assert [g.name for g in await catalog.list_galleries()] == ["g"]


async def test_a_catalog_in_a_read_only_directory_cannot_be_opened_and_says_why(
    made: Path, tmp_path: Path
) -> None:
    view = tmp_path / "view"
    with read_only_view(made.parent, view), pytest.raises(StorageError) as raised:
        await Catalog.open(view / made.name)
    assert str(raised.value).startswith(
        f"the catalog {view / made.name} cannot be opened: {view / made.name} is on a read-only file system"
    )


async def test_a_catalog_held_locked_too_long_is_a_retryable_error(
    made: Path, live_connection: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_MS", 100)
    with ExitStack() as stack:
        catalog = await Catalog.open(made)
        stack.callback(live_connection.rollback)
        live_connection.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(LockedError) as raised:
                await catalog.create_gallery(gallery("h"))
        finally:
            await catalog.close()
    assert raised.value.retryable
    assert isinstance(raised.value, StorageError) and not isinstance(raised.value, StorageFullError)
    assert str(raised.value).startswith(f"catalog {made} stayed locked by another process")


def test_an_io_error_without_a_visible_cause_keeps_sqlite_s_words(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorcode = 10 | (3 << 8)  # SQLITE_IOERR_WRITE
    error.sqlite_errorname = "SQLITE_IOERR_WRITE"

    translated = db_module.translate(error, db_path)

    assert type(translated) is StorageError
    assert (
        str(translated)
        == f"the catalog {db_path} failed with an I/O error: disk I/O error (SQLITE_IOERR_WRITE)"
    )
