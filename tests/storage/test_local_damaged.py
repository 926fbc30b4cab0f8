"""A damaged or hostile replica directory: the local store trusts nothing it finds on disk.

FIFOs, devices, sockets, directories and symbolic links where a key's file should be are
never opened for reading, read as absent to ``stat``/``exists`` (so replication rewrites
them), and are replaced by the next ``put``; a link's target is never touched.
"""

from __future__ import annotations

import os
import socket
import stat
import threading
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import anyio
import pytest

from blobrep.errors import (
    AlreadyExistsError,
    DamagedObjectError,
    InvalidKeyError,
    NotFoundError,
    StorageError,
)
from blobrep.storage.local import LocalStore
from tests.storage.contract import listed, payload

CHUNK = "galleries/g/chunks/0f/1e/0f1e" + "0" * 28
MANIFEST = "galleries/g/images/i/versions/1.0.0/manifest.json"
NEXT_MANIFEST = "galleries/g/images/i/versions/1.0.1/manifest.json"
GIB = 1024**3


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "parent" / "root"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def store(root: Path) -> LocalStore:
    return LocalStore(root, name="west/replica-2")


def place(root: Path, key: str) -> Path:
    """The path of ``key`` below ``root``, with its directory made."""
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def fifo_writer_after(path: Path, seconds: float) -> Iterator[None]:
    """Open the FIFO at ``path`` for writing after ``seconds``.

    A reader that opened the FIFO (the fault these tests guard against) would otherwise
    wait for a writer forever and hang the test run; this wakes it, so the test fails on
    its time limit instead.
    """

    def open_once() -> None:
        with suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    timer = threading.Timer(seconds, open_once)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


async def assert_absent(store: LocalStore, key: str) -> None:
    """``stat``, ``stat_many`` and ``exists`` all say ``key`` holds nothing."""
    assert await store.stat_many([key]) == [None]
    assert await store.exists(key) is False
    with pytest.raises(NotFoundError, match=key):
        await store.stat(key)


# --- special files at a key -----------------------------------------------------------


async def test_a_fifo_at_a_chunk_key_is_refused_at_once_reads_as_absent_and_put_replaces_it(
    root: Path, store: LocalStore
) -> None:
    fifo = place(root, CHUNK)
    os.mkfifo(fifo)

    with fifo_writer_after(fifo, 3):
        with anyio.fail_after(2):
            with pytest.raises(DamagedObjectError, match=rf"{CHUNK} in west/replica-2 is a FIFO") as raised:
                await store.get(CHUNK)
            with pytest.raises(DamagedObjectError, match="a FIFO"):
                await store.get(CHUNK, 10, 100)

    assert (raised.value.key, raised.value.replica, raised.value.kind) == (CHUNK, "west/replica-2", "a FIFO")
    await assert_absent(store, CHUNK)

    await store.put(CHUNK, b"chunk bytes")

    assert stat.S_ISREG(os.lstat(fifo).st_mode)
    assert await store.get(CHUNK) == b"chunk bytes"
    assert await store.exists(CHUNK) is True


async def test_put_if_absent_counts_a_fifo_as_absent_and_replaces_it(root: Path, store: LocalStore) -> None:
    os.mkfifo(place(root, MANIFEST))

    await store.put(MANIFEST, b"{}", if_absent=True)

    assert await store.get(MANIFEST) == b"{}"
    with pytest.raises(AlreadyExistsError, match=MANIFEST):
        await store.put(MANIFEST, b"second", if_absent=True)
    assert await store.get(MANIFEST) == b"{}"


@pytest.mark.parametrize(
    ("kind", "mode", "device"),
    [
        ("a character device", stat.S_IFCHR, os.makedev(1, 3)),
        ("a block device", stat.S_IFBLK, os.makedev(7, 0)),
    ],
    ids=["char", "block"],
)
async def test_a_device_at_a_key_is_refused_without_being_opened(
    root: Path, store: LocalStore, monkeypatch: pytest.MonkeyPatch, kind: str, mode: int, device: int
) -> None:
    node = place(root, CHUNK)
    try:
        os.mknod(node, mode | 0o600, device)
    except PermissionError:
        pytest.skip("making device nodes needs CAP_MKNOD")
    opened: list[str] = []
    real_open = os.open

    def recording_open(path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        opened.append(os.fsdecode(path))
        return real_open(path, flags, mode, dir_fd=dir_fd)

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", recording_open)
        with pytest.raises(DamagedObjectError, match=f"{CHUNK} in west/replica-2 is {kind}"):
            await store.get(CHUNK)
        await assert_absent(store, CHUNK)

    assert [path for path in opened if path.endswith(node.name)] == []
    await store.put(CHUNK, b"chunk bytes")
    assert await store.get(CHUNK) == b"chunk bytes"


async def test_a_socket_at_a_key_is_refused_and_replaced_by_put(
    root: Path, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = place(root, CHUNK)
    with socket.socket(socket.AF_UNIX) as listener:
        monkeypatch.chdir(node.parent)  # socket paths are limited to ~100 characters
        listener.bind(node.name)

        with pytest.raises(DamagedObjectError, match=f"{CHUNK} in west/replica-2 is a socket"):
            await store.get(CHUNK)
        await assert_absent(store, CHUNK)

        await store.put(CHUNK, b"chunk bytes")

    assert await store.get(CHUNK) == b"chunk bytes"


# --- symbolic links at a key ----------------------------------------------------------


async def test_a_link_at_a_key_to_a_file_outside_is_refused_and_put_leaves_the_target_alone(
    tmp_path: Path, root: Path, store: LocalStore
) -> None:
    outside = tmp_path / "outside-secret"
    outside.write_bytes(b"do not touch")
    place(root, CHUNK).symlink_to(outside)

    with pytest.raises(DamagedObjectError, match=f"{CHUNK} in west/replica-2 is a symbolic link"):
        await store.get(CHUNK)
    await assert_absent(store, CHUNK)

    await store.put(CHUNK, b"chunk bytes")

    assert not (root / CHUNK).is_symlink()
    assert await store.get(CHUNK) == b"chunk bytes"
    assert outside.read_bytes() == b"do not touch"


async def test_a_link_at_a_key_to_another_key_never_reads_overwrites_or_deletes_that_key(
    root: Path, store: LocalStore
) -> None:
    other = "galleries/g/chunks/aa/bb/aabb" + "1" * 28
    await store.put(other, b"the other chunk")
    place(root, CHUNK).symlink_to(root / other)

    with pytest.raises(DamagedObjectError, match="a symbolic link"):
        await store.get(CHUNK, 0, 5)
    await assert_absent(store, CHUNK)
    await store.put(CHUNK, b"chunk bytes")

    assert await store.get(CHUNK) == b"chunk bytes"
    assert await store.get(other) == b"the other chunk"

    place(root, "gone/link").symlink_to(root / other)
    with pytest.raises(DamagedObjectError, match="gone/link in west/replica-2 is a symbolic link"):
        await store.get("gone/link")
    assert await store.delete("gone/link") is True
    assert not (root / "gone" / "link").is_symlink()
    assert await store.get(other) == b"the other chunk"
    assert await listed(store) == [CHUNK, other]


# --- directories at a key -------------------------------------------------------------


async def test_an_empty_directory_at_a_key_is_refused_and_replaced_by_put(
    root: Path, store: LocalStore
) -> None:
    place(root, CHUNK).mkdir()

    with pytest.raises(DamagedObjectError, match=f"{CHUNK} in west/replica-2 is a directory"):
        await store.get(CHUNK)
    await assert_absent(store, CHUNK)

    await store.put(CHUNK, b"chunk bytes")

    assert await store.get(CHUNK) == b"chunk bytes"


async def test_put_clears_a_directory_of_leftovers_at_the_key_without_following_its_links(
    tmp_path: Path, root: Path, store: LocalStore
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"do not touch")
    junk = place(root, MANIFEST)
    (junk / "sub").mkdir(parents=True)
    (junk / "sub" / "x~tmp~0123456789ab").write_bytes(b"partial")
    (junk / "escape").symlink_to(outside, target_is_directory=True)

    await store.put(MANIFEST, b"{}", if_absent=True)

    assert await store.get(MANIFEST) == b"{}"
    assert sorted(path.name for path in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_bytes() == b"do not touch"


# --- links on the way to a key --------------------------------------------------------


@pytest.fixture
async def linked_version(root: Path, store: LocalStore) -> Path:
    """Version 1.0.0's directory is a link to 1.0.1's, which holds a real manifest."""
    await store.put(NEXT_MANIFEST, b'{"version": "1.0.1"}')
    link = root / "galleries/g/images/i/versions/1.0.0"
    link.symlink_to("1.0.1", target_is_directory=True)
    return link


async def test_a_key_below_a_linked_directory_inside_the_root_is_refused(
    store: LocalStore, linked_version: Path
) -> None:
    where = "galleries/g/images/i/versions/1.0.0"
    with pytest.raises(
        DamagedObjectError, match=f"{MANIFEST} in west/replica-2 is behind a symbolic link at {where}"
    ):
        await store.get(MANIFEST)
    await assert_absent(store, MANIFEST)
    assert await store.stat_many([NEXT_MANIFEST, MANIFEST]) == [await store.stat(NEXT_MANIFEST), None]
    with pytest.raises(DamagedObjectError, match=where):
        await store.delete(MANIFEST)

    assert await store.get(NEXT_MANIFEST) == b'{"version": "1.0.1"}'


async def test_put_below_a_linked_directory_replaces_the_link_with_a_real_directory(
    root: Path, store: LocalStore, linked_version: Path
) -> None:
    await store.put(MANIFEST, b'{"version": "1.0.0"}', if_absent=True)

    assert not linked_version.is_symlink()
    assert linked_version.is_dir()
    assert await store.get(MANIFEST) == b'{"version": "1.0.0"}'
    assert await store.get(NEXT_MANIFEST) == b'{"version": "1.0.1"}'
    assert await listed(store) == [MANIFEST, NEXT_MANIFEST]


async def test_a_link_leading_out_of_the_root_hides_what_it_reaches_from_stat_and_exists(
    tmp_path: Path, root: Path, store: LocalStore
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"secret")
    (root / "link").symlink_to(outside, target_is_directory=True)

    await assert_absent(store, "link/victim")
    with pytest.raises(InvalidKeyError, match=r"outside the store root.*west/replica-2.*at link"):
        await store.get("link/victim")


async def test_put_below_a_fifo_in_a_directory_position_replaces_it_with_a_directory(
    root: Path, store: LocalStore
) -> None:
    os.mkfifo(place(root, "galleries/g/chunks/0f"))

    with anyio.fail_after(2):
        with pytest.raises(NotFoundError, match=CHUNK):
            await store.get(CHUNK)
        await store.put(CHUNK, b"chunk bytes")

    assert (root / "galleries/g/chunks/0f").is_dir()
    assert await store.get(CHUNK) == b"chunk bytes"


async def test_a_key_below_another_key_is_still_refused_and_the_key_kept(
    root: Path, store: LocalStore
) -> None:
    await store.put("galleries/g/chunks/0f", b"a key, not damage")

    with pytest.raises(StorageError, match=r"west/replica-2.*galleries/g/chunks/0f is a key"):
        await store.put(CHUNK, b"chunk bytes")

    assert await store.get("galleries/g/chunks/0f") == b"a key, not damage"


# --- bounded reads --------------------------------------------------------------------


async def test_ranged_reads_of_a_huge_sparse_file_stay_small(root: Path, store: LocalStore) -> None:
    big = place(root, "big")
    big.write_bytes(b"")
    os.truncate(big, 4 * GIB)
    tracemalloc.start()
    try:
        head = await store.get("big", 0, 1024)
        tail = await store.get("big", 4 * GIB - 100, 2**62)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert head == bytes(1024)
    assert tail == bytes(100)
    assert peak < 16 * 1024 * 1024


async def test_a_length_far_past_the_end_returns_the_rest_without_a_huge_allocation(
    store: LocalStore,
) -> None:
    await store.put("small", payload(1000))

    assert await store.get("small", 10, 2**62) == payload(1000)[10:]
    assert await store.get("small", 0, 2**62) == payload(1000)
