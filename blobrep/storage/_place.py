"""Putting one key's file in place in a local store: clear the way, then write and rename.

The file is written to a temporary name beside its entry (marked with
:data:`~blobrep.storage._walk.TEMP_MARK`), fsynced, then renamed over the entry, so a reader
(or a crash) sees the old file or the whole new one. A create-if-absent links the temporary
to the entry instead, which fails while anything is there. The rename becomes durable once
its directory is fsynced (:func:`sync_directories`), which the store batches at ``sync()``.

Damage on the way to the key is replaced. Replication rewrites whatever a replica lacks, and
a damaged entry reads as lacking, so a write must be able to put a real file where the
damage was. A link, FIFO, device or socket where a directory of the key should be is
unlinked (a link itself, never what it points to) and a real directory made in its place; a
directory at the key itself is removed if it holds no keys (only temporaries, links or empty
directories, so no data is lost). What holds data is never cleared: a regular file in the way
is another key, a directory holding keys is a prefix of them, and a link that leads outside
the root is refused as it is for reads.

Entries are checked and then changed, and a concurrent writer may change them in between:
damage removed for a create-if-absent is re-checked first, so a real file another writer has
just put there survives (:func:`_unlink_if_unchanged`), and a component that keeps changing
makes the write give up after a few rounds rather than loop forever.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat as stat_module
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from blobrep.errors import AlreadyExistsError, StorageError
from blobrep.storage import _walk
from blobrep.storage.base import Payload, payload_parts

_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# How often a write retries a component that changes under it before giving up.
_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Placement:
    """The write of ``key`` into the store named ``store`` with root ``root``; the messages
    of what it refuses name all three."""

    root: Path
    store: str
    key: str

    def open_directory(self, tree: _walk.Tree, directories: list[str], touched: list[str]) -> int:
        """Open the key's directory, making missing ones and replacing damaged ones.

        A link, FIFO, device or socket in the way is unlinked (never what a link points to)
        and a real directory made in its place. A regular file in the way is another key and
        is kept; a link that leads outside the root is refused, as it is for reads. The
        directories whose entries changed are added to ``touched``.

        Raises:
            StorageError: a directory of the key is another key, or keeps changing.
            InvalidKeyError: a link on the way leads outside the root (it is left alone).
        """
        for depth in range(1, len(directories) + 1):
            for _ in range(_ATTEMPTS):
                opened = tree.directory(directories[:depth])
                if not isinstance(opened, _walk.Obstacle):
                    break
                self._clear_for_directory(tree.current, directories[depth - 1], opened)
                touched.append(str(self.root.joinpath(*directories[: depth - 1])))
            else:
                where = "/".join(directories[:depth])
                raise StorageError(
                    f"{self.store}: writing {self.key} failed: {where} keeps changing under the write"
                )
        return tree.current

    def _clear_for_directory(self, parent: int, name: str, obstacle: _walk.Obstacle) -> None:
        mode = obstacle.mode
        if mode is not None and stat_module.S_ISREG(mode):
            raise StorageError(
                f"{self.store}: cannot write {self.key}: {obstacle.where} is a key, so it cannot also"
                " be a directory; delete that key first or choose another key"
            )
        if mode is not None and stat_module.S_ISLNK(mode) and _walk.escapes(self.root, obstacle.where):
            raise _walk.outside_root(self.key, self.root, self.store, obstacle.where)
        if mode is not None and not stat_module.S_ISDIR(mode):
            with suppress(FileNotFoundError):
                os.unlink(name, dir_fd=parent)
        with suppress(FileExistsError):
            os.mkdir(name, dir_fd=parent)

    def write(self, parent: int, name: str, data: Payload, if_absent: bool) -> None:
        """Write ``data`` durably to a temporary file in ``parent``, then rename it over the
        entry ``name`` (with ``if_absent``: link it there, if no regular file is there).

        Raises:
            AlreadyExistsError: ``if_absent`` and a regular file is there.
            StorageError: a directory holding other keys is there, or the entry keeps changing.
        """
        self._clear_entry(parent, name, if_absent)
        # Keys allow 255-character segments (NAME_MAX); keep the temp name within it too.
        temp = f"{name[:200]}{_walk.TEMP_MARK}{secrets.token_hex(6)}"
        fd = os.open(temp, _WRITE_FLAGS, 0o644, dir_fd=parent)
        replaced = False
        try:
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            if if_absent:
                self._link_new(parent, temp, name)
            else:
                # Replaces a regular file, FIFO, device, socket or link (not its target).
                os.replace(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
                replaced = True
        finally:
            # After os.replace the temp name is gone; after os.link (or a failure) it stays.
            if not replaced:
                with suppress(FileNotFoundError):
                    os.unlink(temp, dir_fd=parent)

    def _clear_entry(self, parent: int, name: str, if_absent: bool) -> None:
        """Make room at the key's entry: refuse a key or a prefix of keys, remove damage.

        Raises:
            AlreadyExistsError: ``if_absent`` and a regular file is there.
            StorageError: a directory holding other keys is there.
        """
        entry = _walk.lstat(name, parent)
        if entry is None:
            return
        if stat_module.S_ISREG(entry.st_mode):
            if if_absent:
                raise AlreadyExistsError(f"{self.key} already exists in {self.store}")
        elif stat_module.S_ISDIR(entry.st_mode):
            first = _walk.first_key(name, parent, self.key)
            if first is not None:
                raise StorageError(
                    f"{self.store}: cannot write {self.key}: it is a directory holding other keys"
                    f" (such as {first}); delete them first or choose another key"
                )
            try:
                shutil.rmtree(name, dir_fd=parent)  # never follows links
            except RecursionError:
                raise StorageError(
                    f"{self.store}: cannot write {self.key}: the directory there is nested too"
                    " deeply to remove; remove it by hand"
                ) from None
        elif if_absent:
            _unlink_if_unchanged(name, parent, entry)
        # Otherwise os.replace swaps the damaged entry for the new file in one step.

    def _link_new(self, parent: int, temp: str, name: str) -> None:
        """Link ``temp`` to ``name`` only if no regular file is there (create-if-absent).

        Raises:
            AlreadyExistsError: a regular file is there.
        """
        for _ in range(_ATTEMPTS):
            try:
                os.link(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
                return
            except FileExistsError:
                entry = _walk.lstat(name, parent)
                if entry is not None and stat_module.S_ISREG(entry.st_mode):
                    raise AlreadyExistsError(f"{self.key} already exists in {self.store}") from None
                if entry is not None:
                    self._clear_entry(parent, name, if_absent=True)
        raise StorageError(
            f"{self.store}: writing {self.key} failed: its entry keeps changing under the write"
        )


def _unlink_if_unchanged(name: str, parent: int, seen: os.stat_result) -> None:
    """Unlink the damaged entry ``name`` unless it changed since ``seen`` (say, a concurrent
    create-if-absent already put a real file there, which must not be removed)."""
    now = _walk.lstat(name, parent)
    if now is not None and (now.st_dev, now.st_ino) == (seen.st_dev, seen.st_ino):
        with suppress(FileNotFoundError):
            os.unlink(name, dir_fd=parent)


def _write_all(fd: int, data: Payload) -> None:
    for part in payload_parts(data):
        view = memoryview(part).cast("B")
        while view:
            written = os.write(fd, view)
            view = view[written:]


def sync_directories(directories: list[str]) -> None:
    """Fsync each of ``directories``, making the renames and new entries in them durable."""
    for directory in directories:
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # removed since (a delete of its last entry elsewhere); nothing to sync
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
