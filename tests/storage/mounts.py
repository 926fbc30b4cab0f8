"""Real full and read-only file systems for tests: a small tmpfs, a read-only bind mount.

Mounting needs root (the test suite runs as root). A test that needs a mount and cannot get
one fails and says why: it must never pass quietly without checking anything.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

MIB = 1024 * 1024


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")


def _unmount(path: Path) -> None:
    # Lazily: a process that still has a file open there must not leave the mount behind.
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def tmpfs(path: Path, size: int = 2 * MIB) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes mounted at ``path`` (made if missing) for the block."""
    path.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    try:
        yield path
    finally:
        _unmount(path)


@contextlib.contextmanager
def read_only_view(source: Path, view: Path) -> Iterator[Path]:
    """``source`` (a directory or a file) seen read-only at ``view`` (made if missing).

    A read-only bind mount: ``source`` itself stays writable, so files open there (a live
    SQLite connection's ``-wal``) stay as they are, while everything done through ``view``
    meets EROFS, as on a file system mounted read-only.
    """
    if source.is_dir():
        view.mkdir(parents=True, exist_ok=True)
    elif not view.exists():
        view.touch()
    _run("mount", "--bind", str(source), str(view))
    try:
        _run("mount", "-o", "remount,bind,ro", str(view))
        yield view
    finally:
        _unmount(view)


@contextlib.contextmanager
def read_only_tmpfs(path: Path) -> Iterator[Path]:
    """An empty tmpfs mounted read-only at ``path`` for the block."""
    with tmpfs(path):
        _run("mount", "-o", "remount,ro", str(path))
        yield path


def fill(directory: Path, leave: int = 0) -> Path:
    """Write a filler file in ``directory`` until its file system has at most ``leave`` bytes
    free (nothing, by default); returns the filler."""
    filler = directory / "filler"
    block = b"\xa5" * 65536
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while True:
            info = os.statvfs(directory)
            free = info.f_bavail * info.f_frsize
            if free <= leave:
                break
            try:
                os.write(fd, block[: min(len(block), free - leave)])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    finally:
        os.close(fd)
    return filler


def entries(directory: Path) -> list[str]:
    """The names in ``directory``, hidden ones (temporaries) included, sorted."""
    return sorted(os.listdir(directory))
