"""Verify finds every missing and corrupt chunk; restore refuses them and leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from blobrep.errors import ChunkCorruptError, ChunkMissingError
from blobrep.service import BlobService, LocalStore, PublishResult
from tests.engine.helpers import (
    GALLERY,
    NAME,
    SMALL_CHUNKS,
    chunk_files,
    flip_byte,
    read_manifest_json,
    write_bytes,
)


@pytest.fixture
async def published(service: BlobService, store: LocalStore, image_8m: Path) -> PublishResult:
    """The blob with each chunk stored on its own: the tests damage chunks one by one (a
    damaged pack is verified in test_packed_reads.py)."""
    return await service.publish(image_8m, [store], GALLERY, NAME, chunking=SMALL_CHUNKS, pack_size=None)


def stored_digests(store: LocalStore) -> list[str]:
    """The blob's distinct stored chunks, in manifest order."""
    digests: list[str] = []
    for entry in read_manifest_json(store)["chunks"]:
        if not entry.get("zero") and entry["digest"] not in digests:
            digests.append(entry["digest"])
    return digests


async def test_a_clean_replica_verifies(
    service: BlobService, store: LocalStore, published: PublishResult
) -> None:
    report = await service.verify(store, GALLERY, NAME)

    assert report.ok
    assert report.problems == ()
    assert report.replica == "replica-1"
    assert report.checked_chunks == published.distinct_chunks


async def test_missing_and_corrupt_chunks_are_each_reported(
    service: BlobService, store: LocalStore, published: PublishResult
) -> None:
    digests = stored_digests(store)
    missing, corrupt = digests[1], digests[-2]
    files = chunk_files(store)
    files[missing].unlink()
    flip_byte(files[corrupt])

    report = await service.verify(store, GALLERY, NAME)

    assert not report.ok
    assert report.missing == [missing]
    assert report.corrupt == [corrupt]
    assert {problem.replica for problem in report.problems} == {"replica-1"}
    # Verify does not stop at the first problem: every chunk was looked at.
    assert report.checked_chunks == published.distinct_chunks


async def test_restore_refuses_a_missing_chunk_and_leaves_nothing(
    service: BlobService, store: LocalStore, published: PublishResult, out_dir: Path
) -> None:
    missing = stored_digests(store)[2]
    chunk_files(store)[missing].unlink()

    with pytest.raises(ChunkMissingError) as caught:
        await service.restore(store, GALLERY, NAME, out_dir / "restored.raw")

    assert (caught.value.digest, caught.value.replica) == (missing, "replica-1")
    assert missing in str(caught.value)
    assert "replica-1" in str(caught.value)
    assert os.listdir(out_dir) == []


async def test_restore_refuses_a_corrupt_chunk_and_leaves_nothing(
    service: BlobService, store: LocalStore, published: PublishResult, out_dir: Path
) -> None:
    corrupt = stored_digests(store)[-1]
    flip_byte(chunk_files(store)[corrupt])

    with pytest.raises(ChunkCorruptError) as caught:
        await service.restore(store, GALLERY, NAME, out_dir / "restored.raw")

    assert (caught.value.digest, caught.value.replica) == (corrupt, "replica-1")
    assert corrupt in str(caught.value)
    assert os.listdir(out_dir) == []


async def test_a_failed_restore_leaves_an_existing_output_unchanged(
    service: BlobService, store: LocalStore, published: PublishResult, out_dir: Path
) -> None:
    previous = b"the previous contents of the output file\n" * 100
    output = write_bytes(out_dir / "restored.raw", previous)
    flip_byte(chunk_files(store)[stored_digests(store)[0]])

    with pytest.raises(ChunkCorruptError):
        await service.restore(store, GALLERY, NAME, output)

    assert output.read_bytes() == previous
    assert os.listdir(out_dir) == ["restored.raw"]


async def test_a_chunk_replaced_by_another_chunk_is_corrupt(
    service: BlobService, store: LocalStore, published: PublishResult, out_dir: Path
) -> None:
    # A well-formed frame under the wrong name: only re-hashing the plain bytes can tell.
    first, second = stored_digests(store)[:2]
    files = chunk_files(store)
    files[first].write_bytes(files[second].read_bytes())

    report = await service.verify(store, GALLERY, NAME)
    assert report.corrupt == [first]
    with pytest.raises(ChunkCorruptError) as caught:
        await service.restore(store, GALLERY, NAME, out_dir / "restored.raw")
    assert caught.value.digest == first
    assert os.listdir(out_dir) == []
