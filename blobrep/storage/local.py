"""The local-directory store: the embedded default, one file per key under a root.

A put writes a temporary file beside its target, fsyncs it, then renames it into place, so a
reader (or a crash) sees the old file or the whole new one (:mod:`blobrep.storage._place`).
Temporary names contain ``~``, which no key may contain, so they can never be mistaken for
data; ``list`` skips them and ``sweep_temporaries`` removes the ones an interrupted put left
behind.

Renames and new directories become durable when their directory is fsynced. Doing that on
every put would cost a second journal commit per chunk, so puts only remember which
directories they touched and ``sync()`` fsyncs them all at once: the engine calls it before
writing a manifest, which is the moment durability matters.

Nothing found below the root is trusted: every operation walks down from the root without
following links (:mod:`blobrep.storage._walk` says how and why). Reads refuse anything that
is not a regular file reached through real directories; ``stat``, ``stat_many`` and
``exists`` treat it as absent, so replication rewrites it; writes replace it. The root itself
may be a symbolic link.

Blocking calls run on worker threads (``anyio.to_thread``). Every ``OSError`` is translated
here into blobrep's errors, each naming the key and this store.
"""

from __future__ import annotations

import builtins
import errno
import functools
import math
import os
import stat as stat_module
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import aiofiles.os
import anyio.to_thread

from blobrep.core.keys import validate_key, validate_prefix
from blobrep.errors import (
    DamagedObjectError,
    InvalidKeyError,
    InvalidParameterError,
    NotFoundError,
    StorageError,
    StorageFullError,
)
from blobrep.storage import _walk
from blobrep.storage._place import Placement, sync_directories
from blobrep.storage.base import ObjectInfo, Payload

_T = TypeVar("_T")

# A listing hops to a worker thread for at most this many keys, or directories scanned.
_LIST_BATCH_KEYS = 2000
_LIST_BATCH_DIRS = 256

# O_NONBLOCK: if a FIFO is swapped in after the lstat, opening it must not wait for a writer.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


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

    def _parts(self, key: str) -> builtins.list[str]:
        """The path segments of a valid ``key``; an invalid one is refused naming this store."""
        try:
            return validate_key(key).split("/")
        except InvalidKeyError as exc:
            raise InvalidKeyError(f"{exc} (store {self._name})") from None

    def _missing_root(self, key: str, action: str) -> StorageError:
        return StorageError(
            f"{self._name}: store root {self._root} does not exist or is not a directory"
            f" ({action} {key}); create it, or open the store with create=True"
        )

    def _root_not_directory(self, key: str, action: str) -> StorageError | None:
        """The error for a root that exists and is no directory (a file, a device, a dangling
        link), or None; a blocking check, for worker threads and error paths only."""
        # Existence first: a writer racing this one may create the root between two checks,
        # and a root seen missing and then present is a directory, not a wrong kind.
        if not os.path.lexists(self._root) or self._root.is_dir():
            return None
        return StorageError(
            f"{self._name}: store root {self._root} exists and is not a directory ({action} {key});"
            " a store keeps its keys in a directory: give the path of a directory, or of one to create"
        )

    @contextmanager
    def _translate(self, key: str, action: str) -> Iterator[None]:
        """Map ``OSError`` to blobrep errors that name the key and this store."""
        try:
            yield
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFullError(f"{self._name} is out of space while {action} {key}") from exc
            not_directory = self._root_not_directory(key, action)
            if not_directory is not None:
                raise not_directory from exc
            if not self._create and not self._root.is_dir():
                raise self._missing_root(key, action) from exc
            if action != "writing" and isinstance(
                exc, (FileNotFoundError, NotADirectoryError, IsADirectoryError)
            ):
                raise NotFoundError(f"{key} not found in {self._name}") from exc
            reason = exc.strerror or type(exc).__name__
            where = "" if self._name == str(self._root) else f" (in {self._root})"
            raise StorageError(f"{self._name}: {action} {key} failed: {reason}{where}") from exc

    async def _run(self, key: str, action: str, work: Callable[[], _T]) -> _T:
        """Run blocking ``work`` on a worker thread and translate its ``OSError`` there: the
        translation may itself look at the root, which must not block the event loop."""

        def translated() -> _T:
            with self._translate(key, action):
                return work()

        return await anyio.to_thread.run_sync(translated)

    def _refusal(self, key: str, obstacle: _walk.Obstacle) -> Exception:
        """The error for a read or delete of ``key`` that ``obstacle`` stopped on the way down."""
        if obstacle.mode is None or not stat_module.S_ISLNK(obstacle.mode):
            return NotFoundError(f"{key} not found in {self._name}")
        if _walk.escapes(self._root, obstacle.where):
            return _walk.outside_root(key, self._root, self._name, obstacle.where)
        return DamagedObjectError(key, self._name, f"behind a symbolic link at {obstacle.where}")

    # --- reads ------------------------------------------------------------------------

    async def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """The bytes of ``key`` from ``offset``, at most ``length`` of them (all if None).

        Raises:
            NotFoundError: if ``key`` does not exist.
            DamagedObjectError: if ``key`` is not a regular file (a FIFO, device, socket,
                directory or link), or is reached through a link inside the root; it is
                never opened, so a FIFO cannot block the read.
            InvalidKeyError: if a link on the way leads outside the root.
        """
        if offset < 0 or (length is not None and length < 0):
            raise InvalidParameterError(
                f"range offset={offset} length={length} of {key} in {self._name} is negative;"
                " offsets and lengths are 0 or more"
            )
        parts = self._parts(key)
        return await self._run(key, "reading", lambda: self._read(key, parts, offset, length))

    def _read(self, key: str, parts: builtins.list[str], offset: int, length: int | None) -> bytes:
        *directories, name = parts
        with _walk.Tree(self._root) as tree:
            parent = tree.directory(directories)
            if isinstance(parent, _walk.Obstacle):
                raise self._refusal(key, parent)
            entry = _walk.lstat(name, parent)
            if entry is None or (
                stat_module.S_ISDIR(entry.st_mode) and _walk.first_key(name, parent, key) is not None
            ):
                # A directory holding keys is a prefix of them, not a damaged key.
                raise NotFoundError(f"{key} not found in {self._name}")
            if not stat_module.S_ISREG(entry.st_mode):
                raise DamagedObjectError(key, self._name, _walk.kind(entry.st_mode))
            try:
                fd = os.open(name, _READ_FLAGS, dir_fd=parent)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                raise DamagedObjectError(key, self._name, "a symbolic link") from None
            try:
                info = os.fstat(fd)
                if not stat_module.S_ISREG(info.st_mode):  # swapped since the lstat
                    raise DamagedObjectError(key, self._name, _walk.kind(info.st_mode))
                return _read_range(fd, info.st_size, offset, length)
            finally:
                os.close(fd)

    async def exists(self, key: str) -> bool:
        """True if ``key`` is a regular file reached through real directories."""
        return (await self.stat_many([key]))[0] is not None

    async def stat(self, key: str) -> ObjectInfo:
        """Size and modification time of ``key``.

        Raises:
            NotFoundError: if ``key`` is missing or is not a regular file reached through
                real directories (a damaged key reads as absent, so it gets rewritten).
        """
        info = (await self.stat_many([key]))[0]
        if info is None:
            raise NotFoundError(f"{key} not found in {self._name}")
        return info

    async def stat_many(self, keys: Sequence[str]) -> builtins.list[ObjectInfo | None]:
        """``stat`` of every key, None where a key is missing or damaged."""
        parts = [self._parts(key) for key in keys]
        if not parts:
            return []
        found = await self._run(keys[0], "inspecting", lambda: _walk.stat_files(self._root, parts))
        if not any(found) and not await aiofiles.os.path.isdir(self._root):
            not_directory = await anyio.to_thread.run_sync(self._root_not_directory, keys[0], "inspecting")
            if not_directory is not None:
                raise not_directory
            if not self._create:
                raise self._missing_root(keys[0], "inspecting")
        return [
            None if info is None else ObjectInfo(key, info[0], info[1])
            for key, info in zip(keys, found, strict=True)
        ]

    async def list(self, prefix: str = "") -> AsyncIterator[str]:
        try:
            validate_prefix(prefix)
        except InvalidKeyError as exc:
            raise InvalidKeyError(f"{exc} (store {self._name})") from None
        base, _, partial = prefix.rpartition("/")
        start = self._root.joinpath(*base.split("/")) if base else self._root
        if not await aiofiles.os.path.isdir(self._root):
            not_directory = await anyio.to_thread.run_sync(self._root_not_directory, prefix, "listing")
            if not_directory is not None:
                raise not_directory
            if self._create:
                return
            raise self._missing_root(prefix, "listing")
        if await anyio.to_thread.run_sync(_walk.crosses_symlink, self._root, base):
            return
        pending: list[tuple[Path, str]] = [(start, f"{base}/" if base else "")]
        first = True
        while pending:
            names = partial if first else ""
            batch = functools.partial(_walk.list_batch, pending, names, _LIST_BATCH_KEYS, _LIST_BATCH_DIRS)
            keys, pending = await self._run(prefix, "listing", batch)
            first = False
            for key in keys:
                yield key

    # --- writes -----------------------------------------------------------------------

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        """Store ``data`` under ``key`` atomically, replacing a damaged entry on the way.

        A FIFO, device, socket or link at ``key`` is replaced (a link's target is never
        touched), and so is a directory that holds no keys. A link, FIFO, device or socket
        where a directory of ``key`` should be is removed and a real directory made in its
        place. With ``if_absent`` such damage counts as absent.

        Raises:
            AlreadyExistsError: if ``if_absent`` and ``key`` holds a regular file.
            StorageError: if ``key`` is a directory holding other keys, or a directory of
                ``key`` is another key.
            InvalidKeyError: if a link on the way leads outside the root (it is left alone).
            StorageFullError: if the store is out of space (nothing is left behind).
        """
        parts = self._parts(key)
        touched = await self._run(key, "writing", lambda: self._write(key, parts, data, if_absent))
        with self._dirty_lock:
            self._dirty.update(touched)

    def _write(
        self, key: str, parts: builtins.list[str], data: Payload, if_absent: bool
    ) -> builtins.list[str]:
        """Write ``data`` durably to a temp file, then rename it over the key's entry.

        Returns the directories whose entries changed (to fsync at ``sync()``).
        """
        touched: builtins.list[str] = []
        if not self._root.is_dir():
            not_directory = self._root_not_directory(key, "writing")
            if not_directory is not None:
                raise not_directory
            if not self._create:
                raise self._missing_root(key, "writing")
            self._root.mkdir(parents=True, exist_ok=True)
            touched.append(str(self._root.parent))
        *directories, name = parts
        placement = Placement(self._root, self._name, key)
        with _walk.Tree(self._root) as tree:
            parent = placement.open_directory(tree, directories, touched)
            touched.append(str(self._root.joinpath(*directories)))
            placement.write(parent, name, data, if_absent)
        return touched

    async def delete(self, key: str) -> bool:
        """Remove ``key``; False if nothing was there. A FIFO, device, socket or link at
        ``key`` is removed too (a link itself, never its target); a directory is not a key
        and is left alone.

        Raises:
            DamagedObjectError: if ``key`` is reached through a link inside the root.
            InvalidKeyError: if a link on the way leads outside the root.
        """
        *directories, _ = parts = self._parts(key)
        try:
            removed = await self._run(key, "deleting", lambda: self._remove(key, parts))
        except NotFoundError:
            return False
        if removed:
            with self._dirty_lock:
                self._dirty.add(str(self._root.joinpath(*directories)))
        return removed

    def _remove(self, key: str, parts: builtins.list[str]) -> bool:
        *directories, name = parts
        with _walk.Tree(self._root) as tree:
            parent = tree.directory(directories)
            if isinstance(parent, _walk.Obstacle):
                raise self._refusal(key, parent)
            entry = _walk.lstat(name, parent)
            if entry is None or stat_module.S_ISDIR(entry.st_mode):
                return False
            try:
                os.unlink(name, dir_fd=parent)
            except FileNotFoundError:
                return False
            return True

    async def sync(self) -> None:
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        if not dirty:
            return
        ordered = sorted(dirty, key=len, reverse=True)
        await self._run("(directories)", "syncing", lambda: sync_directories(ordered))

    # --- temporaries ------------------------------------------------------------------

    async def sweep_temporaries(
        self, prefix: str = "", *, older_than: float, dry_run: bool = False
    ) -> builtins.list[ObjectInfo]:
        """Remove the temporary files of interrupted puts under ``prefix``.

        Only those last modified at least ``older_than`` seconds before now (this host's
        clock: the files live here) are removed; a younger one may belong to a put still
        writing. Symbolic links are never followed, and real keys are never touched.

        Returns:
            What was removed (with ``dry_run``: what would be), each ``key`` the
            temporary's path relative to the root.

        Raises:
            InvalidKeyError: if ``prefix`` is not a valid listing prefix.
            InvalidParameterError: if ``older_than`` is negative or not a number.
        """
        try:
            validate_prefix(prefix)
        except InvalidKeyError as exc:
            raise InvalidKeyError(f"{exc} (store {self._name})") from None
        if not older_than >= 0 or math.isinf(older_than):
            raise InvalidParameterError(
                f"older_than={older_than} for sweeping {prefix or '(the whole store)'} in"
                f" {self._name} must be a finite number of seconds, 0 or more"
            )
        where = prefix or "(the whole store)"
        return await self._run(
            where, "sweeping temporaries under", lambda: self._sweep(prefix, older_than, dry_run)
        )

    def _sweep(self, prefix: str, older_than: float, dry_run: bool) -> builtins.list[ObjectInfo]:
        base, _, partial = prefix.rpartition("/")
        start = base.split("/") if base else []
        cutoff = time.time() - older_than
        try:
            tree = _walk.Tree(self._root)
        except FileNotFoundError:
            if self._create:
                return []
            raise
        with tree:
            return _walk.sweep_temporaries(tree, start, partial, cutoff, dry_run)


def _read_range(fd: int, size: int, offset: int, length: int | None) -> bytes:
    """Read ``length`` bytes (all if None) from ``offset``, never more than the file holds:
    a huge ``length`` must not become a huge allocation."""
    end = size if length is None else min(size, offset + length)
    chunks: list[bytes] = []
    remaining = end - offset
    position = offset
    while remaining > 0:
        piece = os.pread(fd, remaining, position)
        if not piece:
            break
        chunks.append(piece)
        remaining -= len(piece)
        position += len(piece)
    if not chunks:
        return b""
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
