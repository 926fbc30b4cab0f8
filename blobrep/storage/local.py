"""The local-directory store: the embedded default, one file per key under a root.

A put writes a temporary file beside its target, fsyncs it, then renames it into place, so a
reader (or a crash) sees the old file or the whole new one. Temporary names contain ``~``,
which no key may contain, so they can never be mistaken for data; ``list`` skips them and
``sweep_temporaries`` removes the ones an interrupted put left behind.

Renames and new directories become durable when their directory is fsynced. Doing that on
every put would cost a second journal commit per chunk, so puts only remember which
directories they touched and ``sync()`` fsyncs them all at once: the engine calls it before
writing a manifest, which is the moment durability matters.

Nothing found below the root is trusted. A replica may be damaged or hostile: a FIFO where a
chunk should be would block a reader forever, a device could have side effects when opened,
and a symbolic link (even one pointing inside the root) would let one key read another's
bytes. So every operation walks down from the root one directory at a time, each opened
relative to its parent with ``O_NOFOLLOW`` (a link swapped in between a check and its use is
refused by the kernel, not by a racy path comparison), and the final entry is ``lstat``-ed
before it is opened. Reads refuse anything that is not a regular file reached through real
directories; ``stat``, ``stat_many`` and ``exists`` treat it as absent, so replication
rewrites it; writes replace it. The root itself may be a symbolic link.

Blocking calls run on worker threads (``anyio.to_thread``). Every ``OSError`` is translated
here into blobrep's errors, each naming the key and this store.
"""

from __future__ import annotations

import builtins
import errno
import functools
import math
import os
import secrets
import shutil
import stat as stat_module
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiofiles.os
import anyio.to_thread

from blobrep.core.keys import MAX_KEY_LENGTH, validate_key, validate_prefix
from blobrep.errors import (
    ConflictError,
    DamagedObjectError,
    InvalidKeyError,
    InvalidParameterError,
    NotFoundError,
    StorageError,
    StorageFullError,
)
from blobrep.storage.base import ObjectInfo

_T = TypeVar("_T")

_TEMP_MARK = "~tmp~"
_LIST_BATCH_KEYS = 2000
_LIST_BATCH_DIRS = 256

_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_DIR_FLAGS = _ROOT_FLAGS | os.O_NOFOLLOW
# O_NONBLOCK: if a FIFO is swapped in after the lstat, opening it must not wait for a writer.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# How often a write retries a component that changes under it before giving up.
_ATTEMPTS = 3

_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat_module.S_ISLNK, "a symbolic link"),
    (stat_module.S_ISDIR, "a directory"),
    (stat_module.S_ISFIFO, "a FIFO"),
    (stat_module.S_ISCHR, "a character device"),
    (stat_module.S_ISBLK, "a block device"),
    (stat_module.S_ISSOCK, "a socket"),
)


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

    @contextmanager
    def _translate(self, key: str, action: str) -> Iterator[None]:
        """Map ``OSError`` to blobrep errors that name the key and this store."""
        try:
            yield
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFullError(f"{self._name} is out of space while {action} {key}") from exc
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

    def _escapes(self, relative: str) -> bool:
        """True if the link at ``relative`` (below the root) resolves outside the root."""
        real_root = os.path.realpath(self._root)
        real = os.path.realpath(self._root / relative)
        return real != real_root and not real.startswith(real_root + os.sep)

    def _refusal(self, key: str, obstacle: _Obstacle) -> Exception:
        """The error for a read or delete of ``key`` that ``obstacle`` stopped on the way down."""
        if obstacle.mode is None or not stat_module.S_ISLNK(obstacle.mode):
            return NotFoundError(f"{key} not found in {self._name}")
        if self._escapes(obstacle.where):
            return InvalidKeyError(
                f"storage key {key!r} resolves outside the store root {self._root} of"
                f" {self._name} through the symbolic link at {obstacle.where}"
            )
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
        with _Tree(self._root) as tree:
            parent = tree.directory(directories)
            if isinstance(parent, _Obstacle):
                raise self._refusal(key, parent)
            entry = _entry(name, parent)
            if entry is None or (
                stat_module.S_ISDIR(entry.st_mode) and _first_key(name, parent, key) is not None
            ):
                # A directory holding keys is a prefix of them, not a damaged key.
                raise NotFoundError(f"{key} not found in {self._name}")
            if not stat_module.S_ISREG(entry.st_mode):
                raise DamagedObjectError(key, self._name, _kind(entry.st_mode))
            try:
                fd = os.open(name, _READ_FLAGS, dir_fd=parent)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                raise DamagedObjectError(key, self._name, "a symbolic link") from None
            try:
                info = os.fstat(fd)
                if not stat_module.S_ISREG(info.st_mode):  # swapped since the lstat
                    raise DamagedObjectError(key, self._name, _kind(info.st_mode))
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
        found = await self._run(keys[0], "inspecting", lambda: _stat_files(self._root, parts))
        if not self._create and not any(found) and not await aiofiles.os.path.isdir(self._root):
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
            if self._create:
                return
            raise self._missing_root(prefix, "listing")
        if await anyio.to_thread.run_sync(_crosses_symlink, self._root, base):
            return
        pending: list[tuple[Path, str]] = [(start, f"{base}/" if base else "")]
        first = True
        while pending:
            batch = functools.partial(_walk_batch, pending, partial if first else "")
            keys, pending = await self._run(prefix, "listing", batch)
            first = False
            for key in keys:
                yield key

    # --- writes -----------------------------------------------------------------------

    async def put(self, key: str, data: bytes | bytearray | memoryview, *, if_absent: bool = False) -> None:
        """Store ``data`` under ``key`` atomically, replacing a damaged entry on the way.

        A FIFO, device, socket or link at ``key`` is replaced (a link's target is never
        touched), and so is a directory that holds no keys. A link, FIFO, device or socket
        where a directory of ``key`` should be is removed and a real directory made in its
        place. With ``if_absent`` such damage counts as absent.

        Raises:
            ConflictError: if ``if_absent`` and ``key`` holds a regular file.
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
        self, key: str, parts: builtins.list[str], data: bytes | bytearray | memoryview, if_absent: bool
    ) -> builtins.list[str]:
        """Write ``data`` durably to a temp file, then rename it over the key's entry.

        Returns the directories whose entries changed (to fsync at ``sync()``).
        """
        touched: builtins.list[str] = []
        if not self._root.is_dir():
            if not self._create:
                raise self._missing_root(key, "writing")
            self._root.mkdir(parents=True, exist_ok=True)
            touched.append(str(self._root.parent))
        *directories, name = parts
        with _Tree(self._root) as tree:
            parent = self._make_directories(tree, directories, key, touched)
            touched.append(str(self._root.joinpath(*directories)))
            self._clear_entry(parent, name, key, if_absent)
            # Keys allow 255-character segments (NAME_MAX); keep the temp name within it too.
            temp = f"{name[:200]}{_TEMP_MARK}{secrets.token_hex(6)}"
            fd = os.open(temp, _WRITE_FLAGS, 0o644, dir_fd=parent)
            try:
                try:
                    _write_all(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                if if_absent:
                    self._link_new(parent, temp, name, key)
                else:
                    # Replaces a regular file, FIFO, device, socket or link (not its target).
                    os.replace(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
            finally:
                # After os.replace the temp name is gone; after os.link (or a failure) it stays.
                with suppress(FileNotFoundError):
                    os.unlink(temp, dir_fd=parent)
        return touched

    def _make_directories(
        self, tree: _Tree, directories: builtins.list[str], key: str, touched: builtins.list[str]
    ) -> int:
        """Open the key's directory, making missing ones and replacing damaged ones.

        A link, FIFO, device or socket in the way is unlinked (never what a link points to)
        and a real directory made in its place. A regular file in the way is another key and
        is kept; a link that leads outside the root is refused, as it is for reads.
        """
        for depth in range(1, len(directories) + 1):
            for _ in range(_ATTEMPTS):
                opened = tree.directory(directories[:depth])
                if not isinstance(opened, _Obstacle):
                    break
                self._clear_for_directory(tree.current, directories[depth - 1], opened, key)
                touched.append(str(self._root.joinpath(*directories[: depth - 1])))
            else:
                where = "/".join(directories[:depth])
                raise StorageError(
                    f"{self._name}: writing {key} failed: {where} keeps changing under the write"
                )
        return tree.current

    def _clear_for_directory(self, parent: int, name: str, obstacle: _Obstacle, key: str) -> None:
        mode = obstacle.mode
        if mode is not None and stat_module.S_ISREG(mode):
            raise StorageError(
                f"{self._name}: cannot write {key}: {obstacle.where} is a key, so it cannot also be"
                " a directory; delete that key first or choose another key"
            )
        if mode is not None and stat_module.S_ISLNK(mode) and self._escapes(obstacle.where):
            raise InvalidKeyError(
                f"storage key {key!r} resolves outside the store root {self._root} of"
                f" {self._name} through the symbolic link at {obstacle.where}"
            )
        if mode is not None and not stat_module.S_ISDIR(mode):
            with suppress(FileNotFoundError):
                os.unlink(name, dir_fd=parent)
        with suppress(FileExistsError):
            os.mkdir(name, dir_fd=parent)

    def _clear_entry(self, parent: int, name: str, key: str, if_absent: bool) -> None:
        """Make room at the key's entry: refuse a key or a prefix of keys, remove damage."""
        entry = _entry(name, parent)
        if entry is None:
            return
        if stat_module.S_ISREG(entry.st_mode):
            if if_absent:
                raise ConflictError(f"{key} already exists in {self._name}")
        elif stat_module.S_ISDIR(entry.st_mode):
            first = _first_key(name, parent, key)
            if first is not None:
                raise StorageError(
                    f"{self._name}: cannot write {key}: it is a directory holding other keys"
                    f" (such as {first}); delete them first or choose another key"
                )
            try:
                shutil.rmtree(name, dir_fd=parent)  # never follows links
            except RecursionError:
                raise StorageError(
                    f"{self._name}: cannot write {key}: the directory there is nested too deeply"
                    " to remove; remove it by hand"
                ) from None
        elif if_absent:
            _unlink_if_unchanged(name, parent, entry)
        # Otherwise os.replace swaps the damaged entry for the new file in one step.

    def _link_new(self, parent: int, temp: str, name: str, key: str) -> None:
        """Link ``temp`` to ``name`` only if no regular file is there (create-if-absent)."""
        for _ in range(_ATTEMPTS):
            try:
                os.link(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
                return
            except FileExistsError:
                entry = _entry(name, parent)
                if entry is not None and stat_module.S_ISREG(entry.st_mode):
                    raise ConflictError(f"{key} already exists in {self._name}") from None
                if entry is not None:
                    self._clear_entry(parent, name, key, if_absent=True)
        raise StorageError(f"{self._name}: writing {key} failed: its entry keeps changing under the write")

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
        with _Tree(self._root) as tree:
            parent = tree.directory(directories)
            if isinstance(parent, _Obstacle):
                raise self._refusal(key, parent)
            entry = _entry(name, parent)
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
        await self._run("(directories)", "syncing", lambda: _fsync_dirs(ordered))

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
            tree = _Tree(self._root)
        except FileNotFoundError:
            if self._create:
                return []
            raise
        swept: builtins.list[ObjectInfo] = []
        with tree:
            pending = [start]
            while pending:
                directories = pending.pop()
                fd = tree.directory(directories)
                if isinstance(fd, _Obstacle):
                    continue  # missing, or replaced by a link or a file since it was seen
                relative = "".join(f"{part}/" for part in directories)
                names = partial if directories == start else ""
                subdirectories, temporaries = _scan(fd, names)
                # A directory deeper than the longest key can hold no key's temporary.
                pending.extend(
                    [*directories, sub] for sub in subdirectories if len(relative) + len(sub) < MAX_KEY_LENGTH
                )
                for temporary, info in temporaries:
                    if info.st_mtime > cutoff:
                        continue
                    if not dry_run:
                        try:
                            os.unlink(temporary, dir_fd=fd)
                        except FileNotFoundError:
                            continue  # its put finished, or another sweep took it
                    swept.append(ObjectInfo(relative + temporary, info.st_size, info.st_mtime))
        return swept


@dataclass(frozen=True, slots=True)
class _Obstacle:
    """What stopped a walk down from the root: the component at ``where`` (relative to the
    root) is missing (``mode`` None) or is not a real directory (``mode`` from ``lstat``)."""

    where: str
    mode: int | None


class _Tree:
    """Open directories below one store root, each opened relative to its parent without
    following links, so nothing on the way to a key can be a link or be swapped for one.

    Only the chain of the last directory asked for stays open: walks of neighbouring keys
    (a batch of chunks, a sweep in depth-first order) share their common part, and the
    number of open descriptors is bounded by the depth.
    """

    def __init__(self, root: Path) -> None:
        self._fds = [os.open(root, _ROOT_FLAGS)]  # the root itself may be a link
        self._names: list[str] = []

    def __enter__(self) -> _Tree:
        return self

    def __exit__(self, *_: object) -> None:
        self._keep(0)
        os.close(self._fds.pop())

    @property
    def current(self) -> int:
        """The descriptor of the deepest directory open now."""
        return self._fds[-1]

    def directory(self, parts: Sequence[str]) -> int | _Obstacle:
        """A descriptor of the directory at ``parts`` below the root, or what stopped the
        walk: a component that is missing or is not a directory. Then the chain up to that
        component's parent stays open (``current``)."""
        common = 0
        limit = min(len(parts), len(self._names))
        while common < limit and self._names[common] == parts[common]:
            common += 1
        self._keep(common)
        for part in parts[common:]:
            try:
                fd = os.open(part, _DIR_FLAGS, dir_fd=self._fds[-1])
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    raise
                entry = _entry(part, self._fds[-1])
                return _Obstacle("/".join([*self._names, part]), None if entry is None else entry.st_mode)
            self._names.append(part)
            self._fds.append(fd)
        return self._fds[-1]

    def _keep(self, depth: int) -> None:
        while len(self._names) > depth:
            self._names.pop()
            os.close(self._fds.pop())


def _entry(name: str, directory: int) -> os.stat_result | None:
    """``lstat`` of ``name`` in the directory open as ``directory``; None if missing."""
    try:
        return os.stat(name, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _kind(mode: int) -> str:
    """What an entry that is not a regular file is, as a phrase for messages."""
    for test, phrase in _KINDS:
        if test(mode):
            return phrase
    return f"of unknown type {stat_module.S_IFMT(mode):#o}"


def _first_key(name: str, parent: int, key: str) -> str | None:
    """The first key found in the directory ``name`` (not following links), or None.

    Temporaries are not keys: a directory holding only those, links or empty directories
    can be replaced without losing data. Nor is anything deeper than the longest key.
    """
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        with os.scandir(fd) as entries:
            children = list(entries)
        for child in children:
            if _TEMP_MARK in child.name or len(key) + 1 + len(child.name) > MAX_KEY_LENGTH:
                continue
            if child.is_file(follow_symlinks=False):
                return f"{key}/{child.name}"
            if child.is_dir(follow_symlinks=False):
                found = _first_key(child.name, fd, f"{key}/{child.name}")
                if found is not None:
                    return found
        return None
    finally:
        os.close(fd)


def _scan(directory: int, names: str) -> tuple[list[str], list[tuple[str, os.stat_result]]]:
    """The subdirectories of the open ``directory`` and its temporary files with their
    ``lstat``, among entries whose names start with ``names``; links are neither."""
    subdirectories: list[str] = []
    temporaries: list[tuple[str, os.stat_result]] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.name.startswith(names):
                continue
            if entry.is_dir(follow_symlinks=False):
                subdirectories.append(entry.name)
            elif _TEMP_MARK in entry.name and entry.is_file(follow_symlinks=False):
                temporaries.append((entry.name, entry.stat(follow_symlinks=False)))
    return subdirectories, temporaries


def _unlink_if_unchanged(name: str, parent: int, seen: os.stat_result) -> None:
    """Unlink the damaged entry ``name`` unless it changed since ``seen`` (say, a concurrent
    create-if-absent already put a real file there, which must not be removed)."""
    now = _entry(name, parent)
    if now is not None and (now.st_dev, now.st_ino) == (seen.st_dev, seen.st_ino):
        with suppress(FileNotFoundError):
            os.unlink(name, dir_fd=parent)


def _stat_files(root: Path, keys: list[list[str]]) -> list[tuple[int, float] | None]:
    """(size, mtime) of each key that is a regular file reached through real directories,
    None for any other. Keys are visited in sorted order so neighbours share their walk."""
    found: list[tuple[int, float] | None] = [None] * len(keys)
    try:
        tree = _Tree(root)
    except (FileNotFoundError, NotADirectoryError):
        return found
    with tree:
        for index in sorted(range(len(keys)), key=keys.__getitem__):
            *directories, name = keys[index]
            parent = tree.directory(directories)
            if isinstance(parent, _Obstacle):
                continue
            entry = _entry(name, parent)
            if entry is not None and stat_module.S_ISREG(entry.st_mode):
                found[index] = (entry.st_size, entry.st_mtime)
    return found


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


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        view = view[written:]


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
