"""The local-directory store: the contract, plus what only a filesystem can get wrong."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import blobrep.storage.local as local_module
from blobrep.errors import (
    AlreadyExistsError,
    InvalidKeyError,
    InvalidParameterError,
    NotFoundError,
    StorageError,
    StorageFullError,
)
from blobrep.storage.base import Store
from blobrep.storage.local import LocalStore
from tests.storage.contract import INVALID_KEYS, INVALID_PREFIXES, StoreContract, listed, payload


class TestLocalStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        root = tmp_path / "root"
        root.mkdir()
        return LocalStore(root)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An existing, empty store root with a parent that holds nothing else."""
    path = tmp_path / "parent" / "root"
    path.mkdir(parents=True)
    return path


def tree(directory: Path) -> list[str]:
    """Every path under ``directory``, relative and sorted, directories included."""
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


def temp_files(directory: Path) -> list[str]:
    return [name for name in tree(directory) if "~" in name]


Operation = Callable[[LocalStore], Awaitable[object]]

OPERATIONS: dict[str, Operation] = {
    "get": lambda store: store.get("k"),
    "ranged get": lambda store: store.get("k", 1, 2),
    "put": lambda store: store.put("k", b"value"),
    "put if absent": lambda store: store.put("k", b"value", if_absent=True),
    "list": lambda store: listed(store),
    "list prefix": lambda store: listed(store, "a/b"),
    "stat": lambda store: store.stat("k"),
    "delete": lambda store: store.delete("k"),
    "exists": lambda store: store.exists("k"),
}


# --- keys and files -------------------------------------------------------------------


async def test_a_key_is_a_file_under_the_root(root: Path) -> None:
    store = LocalStore(root)
    key = "galleries/g/chunks/0f/1e/0f1e" + "0" * 28
    await store.put(key, b"chunk bytes")

    assert (root / "galleries/g/chunks/0f/1e" / key.rsplit("/", 1)[1]).read_bytes() == b"chunk bytes"
    assert tree(root.parent) == ["root", *(f"root/{name}" for name in tree(root))]

    await store.delete(key)
    assert not (root / key).exists()


async def test_hostile_keys_create_nothing_outside_the_root(tmp_path: Path, root: Path) -> None:
    store = LocalStore(root)
    outside = str(tmp_path / "escaped")
    hostile = [*INVALID_KEYS, "../escaped", "../../escaped", "a/../../../escaped", outside]

    for key in hostile:
        with pytest.raises(InvalidKeyError):
            await store.put(key, b"x")
        with pytest.raises(InvalidKeyError):
            await store.put(key, b"x", if_absent=True)
        with pytest.raises(InvalidKeyError):
            await store.get(key)
        with pytest.raises(InvalidKeyError):
            await store.exists(key)
        with pytest.raises(InvalidKeyError):
            await store.delete(key)
        with pytest.raises(InvalidKeyError):
            await store.stat(key)
    for prefix in [*INVALID_PREFIXES, "../", "../../"]:
        with pytest.raises(InvalidKeyError):
            await listed(store, prefix)

    assert tree(tmp_path) == ["parent", "parent/root"]


async def test_hostile_keys_do_not_create_a_missing_root(tmp_path: Path) -> None:
    root = tmp_path / "parent" / "root"
    store = LocalStore(root, create=True)

    for key in ["../x", "/abs", "a/../b", "a\\b"]:
        with pytest.raises(InvalidKeyError):
            await store.put(key, b"x")

    assert tree(tmp_path) == []


# --- temporary files ------------------------------------------------------------------


async def test_no_temp_file_remains_after_puts(root: Path) -> None:
    store = LocalStore(root)
    await store.put("a/b", b"1")
    await store.put("a/b", b"2")
    await store.put("a/c", b"3", if_absent=True)
    with pytest.raises(AlreadyExistsError):
        await store.put("a/c", b"4", if_absent=True)

    assert tree(root) == ["a", "a/b", "a/c"]


async def test_leftover_temp_files_are_never_listed(root: Path) -> None:
    store = LocalStore(root)
    await store.put("a", b"real")
    await store.put("d/k", b"real")
    # What a crash between writing and renaming leaves behind.
    (root / "a~tmp~0123456789ab").write_bytes(b"partial")
    (root / "d" / "k~tmp~0123456789ab").write_bytes(b"partial")

    assert await listed(store) == ["a", "d/k"]
    assert await listed(store, "a") == ["a"]
    assert await listed(store, "d/k") == ["d/k"]


async def test_put_onto_a_directory_fails_as_a_storage_error_and_leaves_no_temp_file(root: Path) -> None:
    store = LocalStore(root)
    await store.put("a/b", b"child")

    with pytest.raises(StorageError, match="a"):
        await store.put("a", b"value")

    assert temp_files(root) == []
    assert await store.get("a/b") == b"child"
    assert await listed(store) == ["a/b"]


async def test_put_below_a_file_fails_as_a_storage_error_and_keeps_the_file(root: Path) -> None:
    store = LocalStore(root)
    await store.put("f", b"file")

    with pytest.raises(StorageError, match="f/child"):
        await store.put("f/child", b"value")

    assert temp_files(root) == []
    assert await store.get("f") == b"file"
    assert await listed(store) == ["f"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT], ids=errno.errorcode.get)
async def test_out_of_space_raises_storage_full_and_leaves_nothing_behind(
    root: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    store = LocalStore(root, name="replica-1")
    await store.put("old", b"old value")
    real_write = os.write

    def write_then_fill_up(fd: int, data: bytes | bytearray | memoryview) -> int:
        real_write(fd, bytes(memoryview(data)[:100]))
        raise OSError(code, os.strerror(code))

    with monkeypatch.context() as patch:
        patch.setattr("blobrep.storage.local.os.write", write_then_fill_up)
        with pytest.raises(StorageFullError, match=r"replica-1.*new/key"):
            await store.put("new/key", payload(10_000))
        with pytest.raises(StorageFullError, match="old"):
            await store.put("old", payload(10_000))

    assert temp_files(root) == []
    assert await store.exists("new/key") is False
    assert await store.get("old") == b"old value"
    assert await listed(store) == ["old"]


# --- the root -------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
async def test_a_missing_root_without_create_is_an_error(tmp_path: Path, operation: Operation) -> None:
    root = tmp_path / "gone"
    store = LocalStore(root)

    with pytest.raises(StorageError, match=f"{root} does not exist"):
        await operation(store)

    assert not root.exists()


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
async def test_a_root_that_vanished_is_an_error_not_an_empty_store(root: Path, operation: Operation) -> None:
    store = LocalStore(root)
    await store.put("k", b"value")
    shutil.rmtree(root)

    with pytest.raises(StorageError, match="does not exist"):
        await operation(store)


async def test_with_create_a_missing_root_reads_as_empty_until_a_put_creates_it(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "er" / "root"
    store = LocalStore(root, create=True)

    assert await listed(store) == []
    assert await store.exists("k") is False
    with pytest.raises(NotFoundError, match="k"):
        await store.get("k")
    assert not root.exists()

    await store.put("k", b"value")
    await store.sync()

    assert root.is_dir()
    assert await store.get("k") == b"value"


# --- listing --------------------------------------------------------------------------


async def test_list_does_not_follow_symlinks_inside_the_root(tmp_path: Path, root: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret").write_bytes(b"secret")
    (outside / "sub" / "deep").write_bytes(b"deep")
    store = LocalStore(root)
    await store.put("real/key", b"value")
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "real" / "filelink").symlink_to(outside / "secret")
    (root / "real" / "dirlink").symlink_to(outside / "sub", target_is_directory=True)

    assert await listed(store) == ["real/key"]
    assert await listed(store, "l") == []
    assert await listed(store, "link") == []
    assert await listed(store, "link/") == []
    assert await listed(store, "link/sub/") == []
    assert await listed(store, "real/") == ["real/key"]
    assert await listed(store, "real/dirlink/") == []


async def test_a_link_inside_the_root_cannot_carry_reads_writes_or_deletes_outside(
    tmp_path: Path, root: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"do not touch")
    store = LocalStore(root)
    await store.put("real/key", b"value")
    (root / "link").symlink_to(outside, target_is_directory=True)

    with pytest.raises(InvalidKeyError, match="outside the store root"):
        await store.put("link/planted", b"evil")
    with pytest.raises(InvalidKeyError, match="outside the store root"):
        await store.get("link/victim")
    with pytest.raises(InvalidKeyError, match="outside the store root"):
        await store.delete("link/victim")

    assert sorted(path.name for path in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_bytes() == b"do not touch"
    assert await store.get("real/key") == b"value"


async def test_a_root_that_is_itself_a_link_works(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "alias").symlink_to(target, target_is_directory=True)
    store = LocalStore(tmp_path / "alias")

    await store.put("a/b", b"value")

    assert await store.get("a/b") == b"value"
    assert (target / "a" / "b").read_bytes() == b"value"


async def test_list_in_small_batches_returns_every_key_once(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_module, "_LIST_BATCH_KEYS", 3)
    monkeypatch.setattr(local_module, "_LIST_BATCH_DIRS", 2)
    store = LocalStore(root)
    keys = [f"{top}/{mid}/k{n}" for top in ["a", "ab", "b"] for mid in ["x", "xy", "z"] for n in range(4)]
    keys += ["a/k", "ak", "top"]
    for key in keys:
        await store.put(key, b"v")

    for prefix in ["", "a", "a/", "a/x", "a/x/", "ab/xy/k", "b/z/k3", "nothing"]:
        assert await listed(store, prefix) == sorted(k for k in keys if k.startswith(prefix)), prefix


# --- durability, ranges, names --------------------------------------------------------


async def test_after_sync_a_fresh_store_on_the_same_root_reads_the_data(root: Path) -> None:
    store = LocalStore(root)
    await store.put("g/chunks/aa/k", payload(5000))
    await store.put("g/manifest.json", b"{}", if_absent=True)
    await store.put("gone", b"x")
    await store.delete("gone")
    await store.sync()

    fresh = LocalStore(root)
    assert await fresh.get("g/chunks/aa/k") == payload(5000)
    assert await fresh.get("g/manifest.json") == b"{}"
    assert await listed(fresh) == ["g/chunks/aa/k", "g/manifest.json"]


@pytest.mark.parametrize(("offset", "length"), [(-1, None), (0, -1), (-5, 3)])
async def test_a_negative_range_is_an_invalid_parameter(root: Path, offset: int, length: int | None) -> None:
    store = LocalStore(root)
    await store.put("k", b"value")

    with pytest.raises(InvalidParameterError, match="negative"):
        await store.get("k", offset, length)


async def test_messages_name_the_store(root: Path) -> None:
    store = LocalStore(root, name="west/replica-2")

    assert store.name == "west/replica-2"
    assert LocalStore(root).name == str(root)
    with pytest.raises(NotFoundError, match=r"missing.*west/replica-2"):
        await store.get("missing")
