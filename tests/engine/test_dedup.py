"""Content addressing: the same bytes are stored once, versions are immutable, new versions
of an image share most of their chunks with the old one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from blobrep.errors import AlreadyExistsError
from blobrep.service import BlobService, LocalStore, rewrite_runs
from tests.engine.helpers import (
    GALLERY,
    NAME,
    SMALL_CHUNKS,
    apply_edits,
    manifest_path,
    object_files,
    same_file,
    stored_chunks,
    tree,
    write_bytes,
)


async def test_publishing_the_same_file_again_writes_nothing(
    service: BlobService, store: LocalStore, image_8m: Path
) -> None:
    first = await service.publish(image_8m, [store], GALLERY, NAME, chunking=SMALL_CHUNKS)
    before = tree(store.root)

    again = await service.publish(image_8m, [store], GALLERY, NAME, chunking=SMALL_CHUNKS)

    assert first.committed
    assert first.new_chunks == first.distinct_chunks > 0
    assert (again.new_chunks, again.written_bytes, again.committed) == (0, 0, False)
    assert (again.digest, again.size, again.chunks) == (first.digest, first.size, first.chunks)
    assert again.stored_bytes == first.stored_bytes
    # Not a single file was added, rewritten or replaced.
    assert tree(store.root) == before


async def test_same_content_under_a_new_version_reuses_every_chunk(
    service: BlobService, store: LocalStore, image_8m: Path
) -> None:
    first = await service.publish(image_8m, [store], GALLERY, "img/versions/1.0.0", chunking=SMALL_CHUNKS)
    chunks_before = set(object_files(store))

    second = await service.publish(image_8m, [store], GALLERY, "img/versions/1.0.1", chunking=SMALL_CHUNKS)

    assert second.committed
    assert (second.new_chunks, second.written_bytes) == (0, 0)
    assert second.digest == first.digest
    assert set(object_files(store)) == chunks_before


async def test_different_file_under_an_existing_name_is_a_conflict(
    service: BlobService, store: LocalStore, image_8m: Path, tmp_path: Path, out_dir: Path
) -> None:
    await service.publish(image_8m, [store], GALLERY, NAME, chunking=SMALL_CHUNKS)
    manifest_before = manifest_path(store).read_bytes()
    other = write_bytes(tmp_path / "other.raw", os.urandom(1024 * 1024))

    with pytest.raises(AlreadyExistsError) as caught:
        await service.publish(other, [store], GALLERY, NAME, chunking=SMALL_CHUNKS)

    assert NAME in str(caught.value)
    assert manifest_path(store).read_bytes() == manifest_before
    await service.restore(store, GALLERY, NAME, out_dir / "restored.raw")
    assert same_file(image_8m, out_dir / "restored.raw")


async def test_a_small_in_place_edit_reuses_most_chunks(
    service: BlobService, store: LocalStore, image_16m: Path, tmp_path: Path, out_dir: Path
) -> None:
    size = image_16m.stat().st_size
    edited = tmp_path / "image-v2.raw"
    shutil.copyfile(image_16m, edited)
    apply_edits(edited, rewrite_runs(size, fraction=0.005, runs=4, seed=2))
    assert not same_file(image_16m, edited)

    v1 = await service.publish(image_16m, [store], GALLERY, "img/versions/1.0.0", chunking=SMALL_CHUNKS)
    v2 = await service.publish(edited, [store], GALLERY, "img/versions/1.0.1", chunking=SMALL_CHUNKS)

    assert v2.digest != v1.digest
    assert 0 < v2.new_chunks <= v2.distinct_chunks // 10
    assert v2.written_bytes <= v1.written_bytes // 10
    assert len(stored_chunks(store)) == v1.distinct_chunks + v2.new_chunks

    await service.restore(store, GALLERY, "img/versions/1.0.0", out_dir / "v1.raw")
    await service.restore(store, GALLERY, "img/versions/1.0.1", out_dir / "v2.raw")
    assert same_file(image_16m, out_dir / "v1.raw")
    assert same_file(edited, out_dir / "v2.raw")


async def test_chunks_are_not_shared_across_galleries(
    service: BlobService, store: LocalStore, image_8m: Path
) -> None:
    first = await service.publish(image_8m, [store], "alpha", NAME, chunking=SMALL_CHUNKS)
    second = await service.publish(image_8m, [store], "beta", NAME, chunking=SMALL_CHUNKS)

    assert second.new_chunks == first.new_chunks == first.distinct_chunks > 0
    # The same chunks make the same packs: packing depends on the source alone.
    assert set(object_files(store, "alpha")) == set(object_files(store, "beta"))
