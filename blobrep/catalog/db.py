"""One SQLite connection, used from worker threads, one transaction per call.

The catalog is a single file that several processes open at once (the CLI beside a running
daemon), so it runs in WAL mode: readers never block the writer, and a writer waits up to
``busy_timeout`` for another process's write to finish instead of failing at once. Commits use
``synchronous=FULL`` so that a catalog write the caller saw succeed survives a power cut.

``sqlite3`` blocks, so every use of the connection runs on a worker thread
(``anyio.to_thread.run_sync``) and a capacity limiter of one makes sure the connection is
never used by two threads at once: Python's ``sqlite3`` objects are not safe to share that way.

Every call is one transaction. Writes start with ``BEGIN IMMEDIATE``, which takes the write
lock up front; a deferred transaction that reads and then writes can fail with "database is
locked" halfway through, when another connection wrote in between, and the busy timeout does
not help there. Reads run in a deferred transaction so that a call reading several tables sees
one consistent snapshot.

``sqlite3`` exceptions never leave this module: they become :class:`StorageError` naming the
file and the cause in words (read-only, cannot be opened, an I/O error), :class:`StorageFullError`
when the disk is full, or :class:`LockedError` (retryable) when another process kept the write
lock past the busy timeout. SQLite says only "attempt to write a readonly database" or "unable
to open database file"; which of the catalog, its ``-wal`` and ``-shm`` files or its directory
refuses writes, and why, is looked up on the file system when such an error happens.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Final, TypeVar

import anyio
import anyio.to_thread

from blobrep.catalog.read_cache import ReadCache
from blobrep.catalog.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from blobrep.errors import InvalidParameterError, LockedError, StorageError, StorageFullError

T = TypeVar("T")

#: Milliseconds a connection waits for another one's write lock before giving up.
BUSY_TIMEOUT_MS: Final = 10_000

_SQLITE_HEADER: Final = b"SQLite format 3\x00"

# Primary result codes (the low byte of an extended code), from sqlite3.h.
_SQLITE_PERM: Final = 3
_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6
_SQLITE_READONLY: Final = 8
_SQLITE_IOERR: Final = 10
_SQLITE_CORRUPT: Final = 11
_SQLITE_FULL: Final = 13
_SQLITE_CANTOPEN: Final = 14
_SQLITE_NOTADB: Final = 26


class Database:
    """The catalog file: open it with :meth:`open`, then run transactions with :meth:`read`
    and :meth:`write`.

    Args:
        path: the file, as messages name it.
        connection: an open connection, already configured and migrated.
        limiter: admits one thread at a time to ``connection``.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection, limiter: anyio.CapacityLimiter) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = connection
        self._limiter = limiter
        self._writes = 0
        self.cache = ReadCache()
        """Answers of this connection's reads (:mod:`blobrep.catalog.read_cache`), valid for
        the read transaction running now: only a function passed to :meth:`read` may use it."""

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open the catalog at ``path``, creating it (and its directory) if it does not exist,
        and bring its schema up to date.

        Raises:
            StorageError: the file cannot be opened or created, is not a blobrep catalog, or
                was written by a newer blobrep whose schema this one does not know.
        """
        limiter = anyio.CapacityLimiter(1)
        # Shielded: a cancelled open would otherwise leave the connection the thread made
        # open, unowned. Opening is bounded by the busy timeout.
        with anyio.CancelScope(shield=True):
            connection = await anyio.to_thread.run_sync(_open_connection, path, limiter=limiter)
        return cls(path, connection, limiter)

    @property
    def path(self) -> Path:
        return self._path

    async def close(self) -> None:
        """Close the connection; later calls raise :class:`StorageError`. Closing twice is fine."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._close, limiter=self._limiter)

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on a worker thread inside a read transaction and return its result.

        Raises:
            StorageError: SQLite failed, or the catalog is closed.
            BlobrepError: whatever ``fn`` raises, unchanged.
        """
        return await anyio.to_thread.run_sync(self._transaction, fn, "BEGIN", limiter=self._limiter)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on a worker thread inside a write transaction; commit if it returns,
        roll back if it raises, so nothing is ever half-written.

        Raises:
            StorageError: SQLite failed (the write lock stayed taken by another process for
                longer than the busy timeout, the disk failed), or the catalog is closed.
            StorageFullError: the disk is full; nothing was written.
            InvalidParameterError: a number is beyond what SQLite stores (64-bit signed).
            BlobrepError: whatever ``fn`` raises, unchanged.
        """
        return await anyio.to_thread.run_sync(self._transaction, fn, "BEGIN IMMEDIATE", limiter=self._limiter)

    def _transaction(self, fn: Callable[[sqlite3.Connection], T], begin: str) -> T:
        connection = self._connection
        if connection is None:
            raise StorageError(f"catalog {self._path} is closed")
        try:
            connection.execute(begin)
            try:
                if begin == "BEGIN":
                    # Read first: it fixes the snapshot this transaction reads, and says
                    # whether another connection committed since the last one.
                    (data_version,) = connection.execute("PRAGMA data_version").fetchone()
                    self.cache.begin((data_version, self._writes))
                else:
                    self._writes += 1  # whatever it does, answers kept before may be stale
                result = fn(connection)
                connection.execute("COMMIT")
            except BaseException:
                _rollback(connection)
                raise
            return result
        except sqlite3.Error as exc:
            raise translate(exc, self._path) from exc
        except OverflowError as exc:
            raise InvalidParameterError(
                f"a value is too large for catalog {self._path} (integers are 64-bit signed): {exc}"
            ) from exc


def translate(exc: sqlite3.Error, path: Path) -> StorageError:
    """The blobrep error that tells a user what went wrong with the catalog at ``path``.

    Blocking when the cause has to be looked up (a read-only or unopenable catalog): call it
    on a worker thread, as every caller here does.
    """
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code == _SQLITE_NOTADB:
        return _not_a_catalog(path, "not a SQLite database")
    if code == _SQLITE_FULL:
        return StorageFullError(f"catalog {path}: no space left on the device ({exc}); nothing was written")
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return LockedError(
            f"catalog {path} stayed locked by another process for more than"
            f" {BUSY_TIMEOUT_MS / 1000:g} s ({exc}); try again"
        )
    if code == _SQLITE_CORRUPT:
        return StorageError(f"catalog {path} is damaged: {exc}")
    if code in (_SQLITE_READONLY, _SQLITE_PERM):
        return StorageError(f"the catalog {path} is read-only: {_cause(exc, path)}; nothing was written")
    if code == _SQLITE_CANTOPEN:
        return StorageError(f"the catalog {path} cannot be opened: {_cause(exc, path)}")
    if code == _SQLITE_IOERR:
        return StorageError(f"the catalog {path} failed with an I/O error: {_cause(exc, path)}")
    return StorageError(f"catalog {path}: {exc}")


def _cause(exc: sqlite3.Error, path: Path) -> str:
    """SQLite's message, after what on the file system explains it (if anything visible does)."""
    said = f"{exc} ({exc.sqlite_errorname})" if getattr(exc, "sqlite_errorname", None) else str(exc)
    obstacle = write_obstacle(path)
    return said if obstacle is None else f"{obstacle} ({said})"


def write_obstacle(path: Path) -> str | None:
    """What keeps the catalog at ``path`` from being written, in words, or None if nothing
    visible does (then SQLite's own message is all there is).

    SQLite writes the catalog, creates and writes its ``-wal`` and ``-shm`` files beside it,
    so each of them and the directory must be writable. Blocking (a few ``stat`` calls).
    """
    directory = path.parent
    if not directory.is_dir():
        return f"its directory {directory} does not exist"
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), directory):
        try:
            read_only = os.statvfs(candidate).f_flag & os.ST_RDONLY
        except OSError:
            continue  # not there (yet): SQLite creates it in the directory checked last
        if read_only:
            return f"{candidate} is on a read-only file system"
        if not os.access(candidate, os.W_OK):
            return f"{candidate} is not writable by this user (permission denied)"
    return None


def _not_a_catalog(path: Path, reason: str) -> StorageError:
    return StorageError(f"the catalog at {path} is not a blobrep catalog ({reason})")


def _rollback(connection: sqlite3.Connection) -> None:
    # A failed ROLLBACK (the connection broke) must not hide the error that caused it.
    if connection.in_transaction:
        with suppress(sqlite3.Error):
            connection.execute("ROLLBACK")


def _open_connection(path: Path) -> sqlite3.Connection:
    """Create, configure and migrate a connection to ``path`` (runs on a worker thread)."""
    _check_header(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StorageError(f"cannot create the directory of catalog {path}: {reason}") from exc
    try:
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    except sqlite3.Error as exc:
        raise translate(exc, path) from exc
    try:
        connection.row_factory = sqlite3.Row
        # The busy timeout first: switching to WAL may itself wait for another process.
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Refuse a file that is not ours (or is newer) before changing anything in it.
        _schema_version(connection, path)
        (mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
        if str(mode).lower() != "wal":
            raise StorageError(
                f"catalog {path} cannot use write-ahead logging (journal mode stays {mode!r});"
                " keep it on a local file system"
            )
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
        _migrate(connection, path)
    except BaseException as exc:
        connection.close()
        if isinstance(exc, sqlite3.Error):
            raise translate(exc, path) from exc
        raise
    return connection


def _check_header(path: Path) -> None:
    """Refuse a non-empty file that does not start like a SQLite database.

    SQLite would report most of these itself, but it treats a file shorter than its header as
    empty and would write a fresh catalog over it; a stray file named like the catalog must
    never be overwritten.
    """
    try:
        with open(path, "rb") as file:
            head = file.read(len(_SQLITE_HEADER))
    except (FileNotFoundError, NotADirectoryError):
        return
    except IsADirectoryError as exc:
        raise StorageError(f"catalog {path} is a directory, not a file") from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StorageError(f"cannot read catalog {path}: {reason}") from exc
    if head and head != _SQLITE_HEADER:
        raise _not_a_catalog(path, "not a SQLite database")


def _schema_version(connection: sqlite3.Connection, path: Path) -> int:
    """How many migrations the file has had, after checking that it is ours at all."""
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    (application_id,) = connection.execute("PRAGMA application_id").fetchone()
    if application_id != APPLICATION_ID:
        if application_id != 0 or version != 0:
            raise _not_a_catalog(path, f"application id {application_id}, user version {version}")
        (objects,) = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if objects:
            raise _not_a_catalog(path, f"a SQLite database holding {objects} other tables or indexes")
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"catalog schema version {version} is newer than this blobrep supports,"
            f" {SCHEMA_VERSION}; upgrade blobrep (catalog {path})"
        )
    return int(version)


def _migrate(connection: sqlite3.Connection, path: Path) -> None:
    """Apply the migrations the file lacks, one transaction each.

    The version is read again under the write lock: another process opening the same new
    catalog at the same moment may have applied the migration in between.
    """
    while _schema_version(connection, path) < SCHEMA_VERSION:
        connection.execute("BEGIN IMMEDIATE")
        try:
            version = _schema_version(connection, path)
            if version < SCHEMA_VERSION:
                for statement in _statements(MIGRATIONS[version]):
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {version + 1}")
            connection.execute("COMMIT")
        except BaseException:
            _rollback(connection)
            raise


def _statements(script: str) -> list[str]:
    """Split ``script`` into statements.

    ``executescript`` would do it, but it commits any open transaction first, and a
    migration must run inside the one that records its number.
    """
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                statements.append(pending.strip())
            pending = ""
    return statements
