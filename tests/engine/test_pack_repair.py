"""Mending a pack: a verified whole copy from another replica, or the damaged copy patched."""

from __future__ import annotations

from pathlib import Path

import pytest

from blobrep.core.keys import pack_key
from blobrep.core.packs import PackBuilder, PackRef
from blobrep.engine.pack_repair import mend_pack, read_pack
from blobrep.service import LocalStore

GALLERY = "g"
FRAMES = {f"{index:032x}": bytes([index]) * (1000 + index) for index in range(1, 6)}


def stores(tmp_path: Path, count: int) -> list[LocalStore]:
    return [LocalStore(tmp_path / f"r{index}", create=True) for index in range(count)]


def build() -> tuple[bytes, PackRef, dict[str, int]]:
    builder = PackBuilder(target=1 << 20)
    for digest, frame in FRAMES.items():
        assert not builder.add(digest, 4 * len(frame), frame)
    closed = builder.close()
    assert closed is not None
    return closed.joined(), closed.ref, closed.offsets


def path_of(store: LocalStore, digest: str) -> Path:
    return store.root / pack_key(GALLERY, digest)


async def test_a_whole_copy_from_another_replica_replaces_a_damaged_one(tmp_path: Path) -> None:
    data, ref, _ = build()
    bad, good = stores(tmp_path, 2)
    await good.put(pack_key(GALLERY, ref.digest), data)
    await bad.put(pack_key(GALLERY, ref.digest), data[:-1] + b"\xff")
    assert await read_pack(bad, GALLERY, ref) is None
    source = await mend_pack(bad, GALLERY, ref, sources=[bad, good])
    assert source == good.name
    assert path_of(bad, ref.digest).read_bytes() == data


async def test_a_missing_pack_is_copied_from_the_first_source_holding_it_whole(tmp_path: Path) -> None:
    data, ref, _ = build()
    bad, truncated, good = stores(tmp_path, 3)
    await truncated.put(pack_key(GALLERY, ref.digest), data[:100])
    await good.put(pack_key(GALLERY, ref.digest), data)
    assert await mend_pack(bad, GALLERY, ref, sources=[truncated, good]) == good.name
    assert await read_pack(bad, GALLERY, ref) == data


async def test_the_damaged_copy_is_patched_with_verified_frames(tmp_path: Path) -> None:
    data, ref, offsets = build()
    (bad,) = stores(tmp_path, 1)
    digest = next(iter(FRAMES))
    rotten = bytearray(data)
    rotten[offsets[digest] + 10] ^= 0xFF
    await bad.put(pack_key(GALLERY, ref.digest), bytes(rotten))
    assert await mend_pack(bad, GALLERY, ref, sources=[]) is None
    frames = {offsets[digest]: FRAMES[digest]}
    assert await mend_pack(bad, GALLERY, ref, sources=[], frames=frames) == f"{bad.name} (patched)"
    assert path_of(bad, ref.digest).read_bytes() == data


@pytest.mark.parametrize("damage", ["other frame", "truncated", "wrong frame"])
async def test_a_patch_that_does_not_give_the_pack_back_is_not_written(tmp_path: Path, damage: str) -> None:
    data, ref, offsets = build()
    (bad,) = stores(tmp_path, 1)
    first, second = list(FRAMES)[:2]
    rotten = bytearray(data)
    rotten[offsets[first] + 1] ^= 0xFF
    rotten[offsets[second] + 1] ^= 0xFF if damage == "other frame" else 0
    stored = bytes(rotten[:-5]) if damage == "truncated" else bytes(rotten)
    await bad.put(pack_key(GALLERY, ref.digest), stored)
    frame = FRAMES[second] if damage == "wrong frame" else FRAMES[first]
    frames = {offsets[first]: frame[: len(FRAMES[first])]}
    assert await mend_pack(bad, GALLERY, ref, sources=[], frames=frames) is None
    assert path_of(bad, ref.digest).read_bytes() == stored
