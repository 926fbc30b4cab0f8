"""Walking a local store's directory tree without trusting anything found below its root.

A replica may be damaged or hostile: a FIFO where a chunk should be would block a reader
forever, a device could have side effects when opened, and a symbolic link (even one pointing
inside the root) would let one key read another's bytes. So every walk goes down from the
root one directory at a time, each opened relative to its parent with ``O_NOFOLLOW`` (a link
swapped in between a check and its use is refused by the kernel, not by a racy path
comparison), and the final entry is ``lstat``-ed before anyone opens it. What stops a walk is
reported as an :class:`Obstacle` for the store to judge, never followed. The root itself may
be a symbolic link.

Temporary names contain :data:`TEMP_MARK` (``~``, which no key may contain), so the scans
here never mistake one for a key: listing skips them, and the sweep of interrupted puts finds
only them.

Everything here blocks; the store runs it on worker threads and translates its ``OSError``.
"""

from __future__ import annotations

import errno
import os
import stat as stat_module
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from blobrep.core.keys import MAX_KEY_LENGTH
from blobrep.errors import InvalidKeyError
from blobrep.storage.base import ObjectInfo

TEMP_MARK = "~tmp~"

ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
DIR_FLAGS = ROOT_FLAGS | os.O_NOFOLLOW

_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat_module.S_ISLNK, "a symbolic link"),
    (stat_module.S_ISDIR, "a directory"),
    (stat_module.S_ISFIFO, "a FIFO"),
    (stat_module.S_ISCHR, "a character device"),
    (stat_module.S_ISBLK, "a block device"),
    (stat_module.S_ISSOCK, "a socket"),
)


@dataclass(frozen=True, slots=True)
class Obstacle:
    """What stopped a walk down from the root: the component at ``where`` (relative to the
    root) is missing (``mode`` None) or is not a real directory (``mode`` from ``lstat``)."""

    where: str
    mode: int | None


class Tree:
    """Open directories below one store root, each opened relative to its parent without
    following links, so nothing on the way to a key can be a link or be swapped for one.

    Only the chain of the last directory asked for stays open: walks of neighbouring keys
    (a batch of chunks, a sweep in depth-first order) share their common part, and the
    number of open descriptors is bounded by the depth.
    """

    def __init__(self, root: Path) -> None:
        self._fds = [os.open(root, ROOT_FLAGS)]  # the root itself may be a link
        self._names: list[str] = []

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *_: object) -> None:
        self._keep(0)
        os.close(self._fds.pop())

    @property
    def current(self) -> int:
        """The descriptor of the deepest directory open now."""
        return self._fds[-1]

    def directory(self, parts: Sequence[str]) -> int | Obstacle:
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
                fd = os.open(part, DIR_FLAGS, dir_fd=self._fds[-1])
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    raise
                entry = lstat(part, self._fds[-1])
                return Obstacle("/".join([*self._names, part]), None if entry is None else entry.st_mode)
            self._names.append(part)
            self._fds.append(fd)
        return self._fds[-1]

    def _keep(self, depth: int) -> None:
        while len(self._names) > depth:
            self._names.pop()
            os.close(self._fds.pop())


def lstat(name: str, directory: int) -> os.stat_result | None:
    """``lstat`` of ``name`` in the directory open as ``directory``; None if missing."""
    try:
        return os.stat(name, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return None


def kind(mode: int) -> str:
    """What an entry that is not a regular file is, as a phrase for messages."""
    for test, phrase in _KINDS:
        if test(mode):
            return phrase
    return f"of unknown type {stat_module.S_IFMT(mode):#o}"


def escapes(root: Path, relative: str) -> bool:
    """True if the link at ``relative`` (below ``root``) resolves outside the root."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(root / relative)
    return real != real_root and not real.startswith(real_root + os.sep)


def outside_root(key: str, root: Path, store: str, where: str) -> InvalidKeyError:
    """The error for ``key`` of the store named ``store``, whose way down passes the link at
    ``where`` that leads outside ``root``."""
    return InvalidKeyError(
        f"storage key {key!r} resolves outside the store root {root} of"
        f" {store} through the symbolic link at {where}"
    )


def first_key(name: str, parent: int, key: str) -> str | None:
    """The first key found in the directory ``name`` (not following links), or None.

    Temporaries are not keys: a directory holding only those, links or empty directories
    can be replaced without losing data. Nor is anything deeper than the longest key.
    """
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=parent)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        with os.scandir(fd) as entries:
            children = list(entries)
        for child in children:
            if TEMP_MARK in child.name or len(key) + 1 + len(child.name) > MAX_KEY_LENGTH:
                continue
            if child.is_file(follow_symlinks=False):
                return f"{key}/{child.name}"
            if child.is_dir(follow_symlinks=False):
                found = first_key(child.name, fd, f"{key}/{child.name}")
                if found is not None:
                    return found
        return None
    finally:
        os.close(fd)


def stat_files(root: Path, keys: list[list[str]]) -> list[tuple[int, float] | None]:
    """(size, mtime) of each key that is a regular file reached through real directories,
    None for any other. Keys are visited in sorted order so neighbours share their walk."""
    found: list[tuple[int, float] | None] = [None] * len(keys)
    try:
        tree = Tree(root)
    except (FileNotFoundError, NotADirectoryError):
        return found
    with tree:
        for index in sorted(range(len(keys)), key=keys.__getitem__):
            *directories, name = keys[index]
            parent = tree.directory(directories)
            if isinstance(parent, Obstacle):
                continue
            entry = lstat(name, parent)
            if entry is not None and stat_module.S_ISREG(entry.st_mode):
                found[index] = (entry.st_size, entry.st_mtime)
    return found


# --- scanning for temporaries ------------------------------------------------------------


def sweep_temporaries(
    tree: Tree, start: list[str], partial: str, cutoff: float, dry_run: bool
) -> list[ObjectInfo]:
    """Remove (unless ``dry_run``) the temporaries last modified at or before ``cutoff``
    (this host's clock) below the directory ``start``, among entries of ``start`` whose names
    begin with ``partial``; what was removed, each ``key`` relative to the root.

    Directories are visited depth first, so the walks share their common part.
    """
    swept: list[ObjectInfo] = []
    pending = [start]
    while pending:
        directories = pending.pop()
        fd = tree.directory(directories)
        if isinstance(fd, Obstacle):
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
            elif TEMP_MARK in entry.name and entry.is_file(follow_symlinks=False):
                temporaries.append((entry.name, entry.stat(follow_symlinks=False)))
    return subdirectories, temporaries


# --- scanning for listing ----------------------------------------------------------------


def crosses_symlink(root: Path, relative: str) -> bool:
    """True if a directory on the way from ``root`` down to ``relative`` is a symbolic link."""
    current = root
    for part in relative.split("/") if relative else []:
        current = current / part
        if current.is_symlink():
            return True
    return False


def list_batch(
    pending: list[tuple[Path, str]], partial: str, max_keys: int, max_dirs: int
) -> tuple[list[str], list[tuple[Path, str]]]:
    """Scan directories from ``pending`` until ``max_keys`` keys are found or ``max_dirs``
    directories scanned; return the keys and what is left to scan.

    ``pending`` holds (directory, the key prefix of its entries); only the first directory's
    entries are filtered by ``partial``. Links and temporaries are skipped.
    """
    keys: list[str] = []
    visited = 0
    while pending and len(keys) < max_keys and visited < max_dirs:
        directory, key_prefix = pending.pop()
        visited += 1
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            name = entry.name
            if TEMP_MARK in name or (partial and not name.startswith(partial)):
                continue
            if entry.is_dir(follow_symlinks=False):
                pending.append((Path(entry.path), f"{key_prefix}{name}/"))
            elif entry.is_file(follow_symlinks=False):
                keys.append(f"{key_prefix}{name}")
        partial = ""
    return keys, pending
