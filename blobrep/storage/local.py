"""The local-directory store: the embedded default, one file per key under a root.

A put writes a temporary file beside its target, fsyncs it, then renames it into place, so a
reader (or a crash) sees the old file or the whole new one. Temporary names contain ``~``,
which no key may contain, so they can never be mistaken for data; ``list`` skips them.

Renames and new directories become durable when their directory is fsynced. Doing that on
every put would cost a second journal commit per chunk, so puts only remember which
directories they touched and ``sync()`` fsyncs them all at once: the engine calls it before
writing a manifest, which is the moment durability matters.

Blocking calls run on worker threads (``anyio.to_thread``); small metadata calls go through
``aiofiles.os``. Every ``OSError`` is translated here into blobrep's errors.
"""

from __future__ import annotations

import builtins
import errno
import os
import secrets
import stat as stat_module
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import aiofiles.os
import anyio.to_thread

from blobrep.core.keys import validate_key, validate_prefix
from blobrep.errors import (
    ConflictError,
    InvalidKeyError,
    InvalidParameterError,
    NotFoundError,
    StorageError,
    StorageFullError,
)
from blobrep.storage.base import ObjectInfo

_TEMP_MARK = "~tmp~"
_LIST_BATCH_KEYS = 2000
_LIST_BATCH_DIRS = 256


class LocalStore:
    """A store kept as files under ``root``.

    Args:
        root: the directory that holds the keys.
        name: how messages name this store (default: the root path).
        create: make ``root`` on the first write if it is missing. Without it a missing
            root is an error: a region whose directory vanished must fail, not silently
            start empty.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, name: str | None = None, create: bool = False
    ) -> None:
        self._root = Path(root).absolute()
        self._name = name or str(self._root)
        self._create = create
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def root(self) -> Path:
        return self._root

    def __repr__(self) -> str:
        return f"LocalStore({str(self._root)!r})"

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*validate_key(key).split("/"))

    @contextmanager
    def _translate(self, key: str, action: str) -> Iterator[None]:
        """Map ``OSError`` to blobrep errors that name the key and this store."""
        try:
            yield
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFullError(f"{self._name} is out of space while {action} {key}") from exc
            if not self._create and not self._root.is_dir():
                raise StorageError(f"store root {self._root} does not exist or is not a directory") from exc
            if action != "writing" and isinstance(
                exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError)
            ):
                raise NotFoundError(f"{key} not found in {self._name}") from exc
            reason = exc.strerror or type(exc).__name__
            where = "" if self._name == str(self._root) else f" (in {self._root})"
            raise StorageError(f"{self._name}: {action} {key} failed: {reason}{where}") from exc

    # --- reads ------------------------------------------------------------------------

    async def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if offset < 0 or (length is not None and length < 0):
            raise InvalidParameterError(f"range offset={offset} length={length} is negative")
        path = self._path(key)
        with self._translate(key, "reading"):
            return await anyio.to_thread.run_sync(_read_confined, self._root, path, offset, length, key)

    async def exists(self, key: str) -> bool:
        path = self._path(key)
        with self._translate(key, "checking"):
            found = await aiofiles.os.path.isfile(path)
        if not found and not self._create and not await aiofiles.os.path.isdir(self._root):
            raise StorageError(f"store root {self._root} does not exist or is not a directory")
        return found

    async def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        with self._translate(key, "inspecting"):
            result = await aiofiles.os.stat(path)
        if not stat_module.S_ISREG(result.st_mode):
            raise NotFoundError(f"{key} not found in {self._name}")
        return ObjectInfo(key, result.st_size, result.st_mtime)

    async def stat_many(self, keys: Sequence[str]) -> builtins.list[ObjectInfo | None]:
        paths = [self._path(key) for key in keys]
        if not paths:
            return []
        with self._translate(keys[0], "inspecting"):
            found = await anyio.to_thread.run_sync(_stat_files, paths)
        if not self._create and not any(found) and not await aiofiles.os.path.isdir(self._root):
            raise StorageError(f"store root {self._root} does not exist or is not a directory")
        return [
            None if info is None else ObjectInfo(key, info[0], info[1])
            for key, info in zip(keys, found, strict=True)
        ]

    async def list(self, prefix: str = "") -> AsyncIterator[str]:
        validate_prefix(prefix)
        base, _, partial = prefix.rpartition("/")
        start = self._root.joinpath(*base.split("/")) if base else self._root
        if not await aiofiles.os.path.isdir(self._root):
            if self._create:
                return
            raise StorageError(f"store root {self._root} does not exist or is not a directory")
        if await anyio.to_thread.run_sync(_crosses_symlink, self._root, base):
            return
        pending: list[tuple[Path, str]] = [(start, f"{base}/" if base else "")]
        first = True
        while pending:
            with self._translate(prefix, "listing"):
                keys, pending = await anyio.to_thread.run_sync(_walk_batch, pending, partial if first else "")
            first = False
            for key in keys:
                yield key

    # --- writes -----------------------------------------------------------------------

    async def put(self, key: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        path = self._path(key)
        with self._translate(key, "writing"):
            touched = await anyio.to_thread.run_sync(self._write, path, data, if_absent, key)
        with self._dirty_lock:
            self._dirty.update(touched)

    def _write(
        self, path: Path, data: bytes | bytearray | memoryview, if_absent: bool, key: str
    ) -> builtins.list[str]:
        """Write ``data`` durably to a temp file, then rename it over ``path``.

        Returns the directories whose entries changed (to fsync at ``sync()``).
        """
        touched: builtins.list[str] = []
        if not self._root.is_dir():
            if not self._create:
                raise StorageError(f"store root {self._root} does not exist or is not a directory")
            self._root.mkdir(parents=True, exist_ok=True)
            touched.append(str(self._root.parent))
        parent = path.parent
        touched.append(str(parent))
        if not parent.is_dir():
            touched.extend(_make_dirs(parent, self._root))
        _confine(self._root, parent, key)
        # Keys allow 255-character segments (NAME_MAX); keep the temp name within it too.
        temp = parent / f"{path.name[:200]}{_TEMP_MARK}{secrets.token_hex(6)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            if if_absent:
                try:
                    os.link(temp, path)
                except FileExistsError:
                    raise ConflictError(f"{key} already exists in {self._name}") from None
            else:
                os.replace(temp, path)
        finally:
            # After os.replace the temp name is gone; after os.link (or a failure) it stays.
            with suppress(FileNotFoundError):
                os.unlink(temp)
        return touched

    async def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            with self._translate(key, "deleting"):
                await anyio.to_thread.run_sync(_remove_confined, self._root, path, key)
        except NotFoundError:
            return False
        with self._dirty_lock:
            self._dirty.add(str(path.parent))
        return True

    async def sync(self) -> None:
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        if not dirty:
            return
        with self._translate("(directories)", "syncing"):
            await anyio.to_thread.run_sync(_fsync_dirs, sorted(dirty, key=len, reverse=True))


def _stat_files(paths: list[Path]) -> list[tuple[int, float] | None]:
    """(size, mtime) of each regular file, None where missing or not a regular file."""
    found: list[tuple[int, float] | None] = []
    for path in paths:
        try:
            info = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            found.append(None)
            continue
        found.append((info.st_size, info.st_mtime) if stat_module.S_ISREG(info.st_mode) else None)
    return found


def _confine(root: Path, directory: Path, key: str) -> None:
    """Refuse ``key`` if its directory resolves outside ``root`` (through a symbolic link).

    Key validation already stops ``..`` and absolute paths; this stops a link planted inside
    the root from carrying reads, writes or deletes elsewhere. The root itself may be a link.
    """
    real_root = os.path.realpath(root)
    real = os.path.realpath(directory)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise InvalidKeyError(f"storage key {key!r} resolves outside the store root {root} through a link")


def _read_confined(root: Path, path: Path, offset: int, length: int | None, key: str) -> bytes:
    _confine(root, path.parent, key)
    return _read_range(path, offset, length)


def _remove_confined(root: Path, path: Path, key: str) -> None:
    _confine(root, path.parent, key)
    os.remove(path)


def _read_range(path: Path, offset: int, length: int | None) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat_module.S_ISREG(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if length is None:
            length = max(info.st_size - offset, 0)
        chunks: list[bytes] = []
        remaining = length
        position = offset
        while remaining > 0:
            piece = os.pread(fd, remaining, position)
            if not piece:
                break
            chunks.append(piece)
            remaining -= len(piece)
            position += len(piece)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _make_dirs(directory: Path, root: Path) -> list[str]:
    """Create ``directory`` and missing parents; return each parent whose entries changed."""
    missing: list[Path] = []
    current = directory
    while not current.is_dir() and current != root:
        missing.append(current)
        current = current.parent
    touched = []
    for path in reversed(missing):
        with suppress(FileExistsError):
            path.mkdir()
        touched.append(str(path.parent))
    return touched


def _fsync_dirs(directories: list[str]) -> None:
    for directory in directories:
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # removed since (a delete of its last entry elsewhere); nothing to sync
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _crosses_symlink(root: Path, relative: str) -> bool:
    """True if a directory on the way from ``root`` down to ``relative`` is a symbolic link."""
    current = root
    for part in relative.split("/") if relative else []:
        current = current / part
        if current.is_symlink():
            return True
    return False


def _walk_batch(pending: list[tuple[Path, str]], partial: str) -> tuple[list[str], list[tuple[Path, str]]]:
    """Scan directories from ``pending`` until a batch of keys is ready; return the rest."""
    keys: list[str] = []
    visited = 0
    while pending and len(keys) < _LIST_BATCH_KEYS and visited < _LIST_BATCH_DIRS:
        directory, key_prefix = pending.pop()
        visited += 1
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            name = entry.name
            if _TEMP_MARK in name or (partial and not name.startswith(partial)):
                continue
            if entry.is_dir(follow_symlinks=False):
                pending.append((Path(entry.path), f"{key_prefix}{name}/"))
            elif entry.is_file(follow_symlinks=False):
                keys.append(f"{key_prefix}{name}")
        partial = ""
    return keys, pending
