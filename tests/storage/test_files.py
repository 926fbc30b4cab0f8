"""Files outside stores: written whole or not at all, failures named with the file and the cause."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.errors import InvalidInputError, StorageError, StorageFullError
from blobrep.storage.files import NAME_MAX, AtomicFile, cause, file_error, write_file
from blobrep.storage.outputs import OutputFile
from tests.storage.mounts import MIB, entries, fill, read_only_tmpfs, tmpfs


def test_write_file_replaces_the_target_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "blobrep.toml"
    target.write_bytes(b"old")

    assert write_file(target, b"new") is True

    assert target.read_bytes() == b"new"
    assert entries(tmp_path) == ["blobrep.toml"]


def test_an_existing_target_wins_when_it_must_not_be_replaced(tmp_path: Path) -> None:
    target = tmp_path / "blobrep.toml"
    target.write_bytes(b"made by another process first")

    assert write_file(target, b"mine", replace=False) is False

    assert target.read_bytes() == b"made by another process first"
    assert entries(tmp_path) == ["blobrep.toml"]
    assert write_file(tmp_path / "fresh.toml", b"mine", replace=False) is True
    assert (tmp_path / "fresh.toml").read_bytes() == b"mine"


def test_an_output_named_as_long_as_the_file_system_allows_can_be_written(tmp_path: Path) -> None:
    # The temporary beside it needs a longer name than the output's own; it must still fit.
    output = tmp_path / ("d" * NAME_MAX)
    out = OutputFile.create(output, 8)
    assert all(len(os.fsencode(name)) <= NAME_MAX for name in entries(tmp_path))
    out.write_at(memoryview(b"disk"), 2)
    out.finish()
    assert output.read_bytes() == b"\0\0disk\0\0"
    assert entries(tmp_path) == [output.name]


def test_a_file_too_big_for_the_disk_fails_naming_it_and_leaves_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", 2 * MIB) as small:
        target = small / "vm.img"
        with pytest.raises(StorageFullError) as raised:
            write_file(target, os.urandom(3 * MIB))
        assert str(raised.value) == f"cannot write {target}: no space left on the device"
        assert isinstance(raised.value.__cause__, OSError)
        assert entries(small) == []


def test_a_sparse_output_that_outgrows_the_disk_fails_and_leaves_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", 2 * MIB) as small:
        target = small / "vm.img"
        out = OutputFile.create(target, 4 * MIB)  # a hole costs nothing yet
        with pytest.raises(StorageFullError, match=f"cannot write {target}: no space left on the device"):
            out.write_at(memoryview(os.urandom(3 * MIB)), 0)
        out.abandon()
        assert entries(small) == []


def test_a_read_only_file_system_is_named_as_the_cause(tmp_path: Path) -> None:
    with read_only_tmpfs(tmp_path / "ro") as read_only:
        target = read_only / "blobrep.toml"
        with pytest.raises(StorageError) as raised:
            write_file(target, b"x")
        assert str(raised.value) == f"cannot write {target}: the file system is read-only"
        assert not isinstance(raised.value, StorageFullError)
        with pytest.raises(StorageError, match="the file system is read-only"):
            OutputFile.create(read_only / "vm.img", MIB)


def test_a_full_disk_before_the_first_byte_still_leaves_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", MIB) as small:
        filler = fill(small)
        target = small / "blobrep.toml"
        with pytest.raises(StorageFullError, match=f"cannot write {target}: no space left"):
            write_file(target, b"[regions]\n" * 1000)
        assert entries(small) == [filler.name]


def test_a_vanished_directory_is_named(tmp_path: Path) -> None:
    target = tmp_path / "gone" / "blobrep.toml"
    with pytest.raises(StorageError, match=f"cannot write {target}: its directory does not exist"):
        write_file(target, b"x")


def test_checking_an_output_still_comes_first(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is a directory"):
        OutputFile.create(tmp_path, 8)


@pytest.mark.parametrize(
    ("code", "words", "full"),
    [
        (errno.ENOSPC, "no space left on the device", True),
        (errno.EDQUOT, "no space left: the disk quota is used up", True),
        (errno.EACCES, "permission denied", False),
        (errno.EROFS, "the file system is read-only", False),
        (errno.EIO, "an I/O error (the device failed)", False),
        (errno.ENAMETOOLONG, "the file name is too long", False),
        (errno.ENOTDIR, "a part of the path is not a directory", False),
    ],
)
def test_each_cause_is_said_in_words(code: int, words: str, full: bool) -> None:
    error = file_error(OSError(code, os.strerror(code)), Path("/data/vm.img"))
    assert str(error) == f"cannot write /data/vm.img: {words}"
    assert isinstance(error, StorageFullError) is full


@given(st.integers(min_value=1, max_value=200))
def test_every_errno_reads_as_one_lower_case_phrase(code: int) -> None:
    words = cause(OSError(code, os.strerror(code)))
    assert words and "\n" not in words and "[Errno" not in words
    assert words[0] == words[0].lower()


def test_abandoning_twice_or_after_finishing_is_harmless(tmp_path: Path) -> None:
    out = AtomicFile.create(tmp_path / "a")
    out.abandon()
    out.abandon()
    done = AtomicFile.create(tmp_path / "b")
    done.write_at(b"b", 0)
    assert done.finish() is True
    done.abandon()
    assert entries(tmp_path) == ["b"]
