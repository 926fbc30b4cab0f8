"""Sweeping the temporary files that puts killed mid-write leave in a local store."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from blobrep.errors import InvalidParameterError, StorageError
from blobrep.storage.base import ObjectInfo
from blobrep.storage.local import LocalStore
from tests.storage.contract import listed

HOUR = 3600.0


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "parent" / "root"
    path.mkdir(parents=True)
    return path


def leave_temp(root: Path, relative: str, data: bytes, age: float) -> float:
    """Leave what a killed put leaves at ``relative``, last written ``age`` seconds ago;
    return that modification time."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    modified = time.time() - age
    os.utime(path, (modified, modified))
    return modified


def age(path: Path, seconds: float) -> None:
    modified = time.time() - seconds
    os.utime(path, (modified, modified))


@pytest.fixture
async def store(root: Path) -> LocalStore:
    """A store holding three real keys, each last written ten hours ago."""
    store = LocalStore(root, name="west/replica-2")
    for key in ["a/b/chunk", "a/old-key", "top"]:
        await store.put(key, b"real")
        age(root / key, 10 * HOUR)
    return store


def infos(found: list[ObjectInfo]) -> list[tuple[str, int]]:
    return sorted((info.key, info.size) for info in found)


async def test_sweep_removes_old_temporaries_and_keeps_young_ones_and_keys(
    root: Path, store: LocalStore
) -> None:
    modified = leave_temp(root, "a/b/chunk~tmp~0123456789ab", b"partial", 2 * HOUR)
    leave_temp(root, "top~tmp~0123456789ab", b"xy", 2 * HOUR)
    leave_temp(root, "a/b/chunk~tmp~ba9876543210", b"still writing", 10)

    swept = await store.sweep_temporaries(older_than=HOUR)

    assert infos(swept) == [("a/b/chunk~tmp~0123456789ab", 7), ("top~tmp~0123456789ab", 2)]
    assert [info.modified for info in swept if info.key.startswith("a/")] == [pytest.approx(modified)]
    assert not (root / "a/b/chunk~tmp~0123456789ab").exists()
    assert not (root / "top~tmp~0123456789ab").exists()
    assert (root / "a/b/chunk~tmp~ba9876543210").read_bytes() == b"still writing"
    assert await listed(store) == ["a/b/chunk", "a/old-key", "top"]
    assert await store.get("a/b/chunk") == b"real"


async def test_a_dry_run_reports_what_would_go_and_removes_nothing(root: Path, store: LocalStore) -> None:
    leave_temp(root, "a/b/chunk~tmp~0123456789ab", b"partial", 2 * HOUR)

    found = await store.sweep_temporaries(older_than=HOUR, dry_run=True)

    assert infos(found) == [("a/b/chunk~tmp~0123456789ab", 7)]
    assert (root / "a/b/chunk~tmp~0123456789ab").read_bytes() == b"partial"
    assert infos(await store.sweep_temporaries(older_than=HOUR)) == infos(found)


async def test_sweep_keeps_to_the_prefix(root: Path, store: LocalStore) -> None:
    leave_temp(root, "a/b/chunk~tmp~0123456789ab", b"1", 2 * HOUR)
    leave_temp(root, "a/old-key~tmp~0123456789ab", b"22", 2 * HOUR)
    leave_temp(root, "top~tmp~0123456789ab", b"333", 2 * HOUR)

    assert infos(await store.sweep_temporaries("a/b/", older_than=HOUR)) == [
        ("a/b/chunk~tmp~0123456789ab", 1)
    ]
    assert infos(await store.sweep_temporaries("a/o", older_than=HOUR)) == [("a/old-key~tmp~0123456789ab", 2)]
    assert await store.sweep_temporaries("nothing/here/", older_than=HOUR) == []
    assert (root / "top~tmp~0123456789ab").exists()


async def test_sweep_does_not_follow_a_linked_directory_out_of_the_root(
    tmp_path: Path, root: Path, store: LocalStore
) -> None:
    outside = tmp_path / "outside"
    leave_temp(outside, "x~tmp~0123456789ab", b"not ours", 2 * HOUR)
    (root / "a" / "link").symlink_to(outside, target_is_directory=True)

    assert await store.sweep_temporaries(older_than=HOUR) == []
    assert await store.sweep_temporaries("a/link/", older_than=HOUR) == []
    assert (outside / "x~tmp~0123456789ab").read_bytes() == b"not ours"


async def test_sweep_never_reports_or_removes_real_keys_however_old(root: Path, store: LocalStore) -> None:
    assert await store.sweep_temporaries(older_than=0) == []
    assert await listed(store) == ["a/b/chunk", "a/old-key", "top"]


async def test_sweep_of_a_missing_root_is_empty_with_create_and_an_error_without(tmp_path: Path) -> None:
    assert await LocalStore(tmp_path / "gone", create=True).sweep_temporaries(older_than=HOUR) == []
    with pytest.raises(StorageError, match=r"gone does not exist"):
        await LocalStore(tmp_path / "gone").sweep_temporaries(older_than=HOUR)
    assert not (tmp_path / "gone").exists()


@pytest.mark.parametrize("older_than", [-1.0, float("nan"), float("inf")])
async def test_sweep_refuses_an_age_that_is_not_a_finite_count_of_seconds(
    store: LocalStore, older_than: float
) -> None:
    with pytest.raises(InvalidParameterError, match=r"older_than.*west/replica-2"):
        await store.sweep_temporaries(older_than=older_than)
