"""Publishing into several replicas when some of them already hold part of the blob."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from blobrep.errors import AlreadyExistsError
from blobrep.service import BlobService, LocalStore
from tests.engine.helpers import (
    GALLERY,
    SMALL_CHUNKS,
    manifest_path,
    object_files,
    read_manifest_json,
    same_file,
    write_bytes,
)

V1, V2 = "img/versions/1.0.0", "img/versions/1.0.1"


def _replicas(tmp_path: Path) -> tuple[LocalStore, LocalStore]:
    return (
        LocalStore(tmp_path / "replica-1", name="replica-1", create=True),
        LocalStore(tmp_path / "replica-2", name="replica-2", create=True),
    )


async def _assert_readable(
    service: BlobService, store: LocalStore, name: str, expected: Path, out_dir: Path
) -> None:
    report = await service.verify(store, GALLERY, name)
    assert report.ok, report.problems
    output = out_dir / f"{store.name}-{name.replace('/', '_')}.raw"
    await service.restore(store, GALLERY, name, output)
    assert same_file(expected, output)


@pytest.mark.parametrize("pack_size", [None, 4 << 20], ids=["lone", "packs"])
async def test_adding_a_replica_at_another_level_keeps_older_versions_readable(
    service: BlobService, tmp_path: Path, image_8m: Path, out_dir: Path, pack_size: int | None
) -> None:
    first, second = _replicas(tmp_path)
    await service.publish(image_8m, [first], GALLERY, V1, chunking=SMALL_CHUNKS, level=1, pack_size=pack_size)
    old_objects = set(object_files(first))

    # The next version goes to the old replica and a new one, compressed harder.
    result = await service.publish(
        image_8m, [first, second], GALLERY, V2, chunking=SMALL_CHUNKS, level=9, pack_size=pack_size
    )

    assert result.committed
    await _assert_readable(service, first, V1, image_8m, out_dir)
    await _assert_readable(service, first, V2, image_8m, out_dir)
    await _assert_readable(service, second, V2, image_8m, out_dir)
    if pack_size is None:
        # A chunk object is found by its key, so each replica's copy is kept or shared.
        assert set(object_files(first)) == set(object_files(second))
    else:
        # The old packs are in one replica only: the new version's chunks go into new packs
        # in both (the same as an old one where the frames came out the same), and the old
        # ones stay for the version that names them.
        assert set(object_files(first)) == set(object_files(second)) | old_objects
        named = {pack["digest"] for pack in read_manifest_json(second, V2)["packs"]}
        assert set(object_files(second)) == named


async def test_a_damaged_copy_in_one_replica_is_not_spread_to_another(
    service: BlobService, tmp_path: Path, image_8m: Path, out_dir: Path
) -> None:
    first, second = _replicas(tmp_path)
    await service.publish(image_8m, [first], GALLERY, V1, chunking=SMALL_CHUNKS)
    damaged = sorted(object_files(first).values())[0]
    damaged.write_bytes(damaged.read_bytes()[:-7])  # a torn copy: shorter than it should be

    await service.publish(image_8m, [first, second], GALLERY, V2, chunking=SMALL_CHUNKS)

    await _assert_readable(service, second, V2, image_8m, out_dir)
    await _assert_readable(service, first, V2, image_8m, out_dir)
    await _assert_readable(service, first, V1, image_8m, out_dir)


@pytest.mark.parametrize("holder_first", [True, False], ids=["holder-listed-first", "holder-listed-last"])
async def test_a_conflict_in_one_replica_commits_nothing_in_the_others(
    service: BlobService, tmp_path: Path, image_8m: Path, out_dir: Path, holder_first: bool
) -> None:
    holder, empty = _replicas(tmp_path)
    await service.publish(image_8m, [holder], GALLERY, V1, chunking=SMALL_CHUNKS)
    other = write_bytes(tmp_path / "other.raw", os.urandom(1024 * 1024))
    stores = [holder, empty] if holder_first else [empty, holder]

    with pytest.raises(AlreadyExistsError) as caught:
        await service.publish(other, stores, GALLERY, V1, chunking=SMALL_CHUNKS)

    assert "replica-1" in str(caught.value)
    # The other replica must not now serve different bytes under the same version.
    assert not manifest_path(empty, V1).exists()
    await _assert_readable(service, holder, V1, image_8m, out_dir)
