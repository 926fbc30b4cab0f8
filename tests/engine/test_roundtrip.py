"""Publish then restore gives back exactly the bytes that were published."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest
import xxhash

from blobrep.core.keys import chunks_prefix
from blobrep.service import BlobService, ChunkingSpec, LocalStore
from tests.engine.helpers import (
    GALLERY,
    MIB,
    NAME,
    SMALL_CHUNKS,
    chunk_files,
    object_files,
    pack_files,
    read_manifest_json,
    same_file,
    stored_chunks,
    write_bytes,
    write_zeros,
)


@pytest.mark.parametrize(
    ("size", "chunking"),
    [
        pytest.param(0, SMALL_CHUNKS, id="empty"),
        pytest.param(1, SMALL_CHUNKS, id="one-byte"),
        pytest.param(SMALL_CHUNKS.min_size - 1, SMALL_CHUNKS, id="below-min-chunk-small"),
        pytest.param(100_000, ChunkingSpec.fastcdc(), id="below-min-chunk-default"),
    ],
)
async def test_tiny_files_round_trip(
    service: BlobService,
    store: LocalStore,
    tmp_path: Path,
    out_dir: Path,
    size: int,
    chunking: ChunkingSpec,
) -> None:
    assert size < chunking.min_size
    content = random.Random(size).randbytes(size).replace(b"\x00", b"\x01")
    source = write_bytes(tmp_path / "tiny.raw", content)

    published = await service.publish(source, [store], GALLERY, NAME, chunking=chunking)
    restored = await service.restore(store, GALLERY, NAME, out_dir / "tiny.raw")

    assert published.size == restored.size == size
    assert published.digest == restored.digest == xxhash.xxh3_128_hexdigest(content)
    # Anything below the minimum chunk size is a single chunk (or none at all when empty).
    assert published.chunks == (1 if size else 0)
    assert published.committed
    assert (out_dir / "tiny.raw").read_bytes() == content


async def test_single_zero_byte_round_trips_without_storing_a_chunk(
    service: BlobService, store: LocalStore, tmp_path: Path, out_dir: Path
) -> None:
    source = write_bytes(tmp_path / "zero.raw", b"\x00")

    published = await service.publish(source, [store], GALLERY, NAME, chunking=SMALL_CHUNKS)
    await service.restore(store, GALLERY, NAME, out_dir / "zero.raw")

    assert (published.chunks, published.zero_chunks, published.stored_bytes) == (1, 1, 0)
    assert object_files(store) == {}
    assert (out_dir / "zero.raw").read_bytes() == b"\x00"


@pytest.mark.parametrize("chunking", [ChunkingSpec.fastcdc(), SMALL_CHUNKS], ids=["default", "small"])
async def test_synthetic_image_round_trip(
    service: BlobService, store: LocalStore, image_16m: Path, out_dir: Path, chunking: ChunkingSpec
) -> None:
    published = await service.publish(image_16m, [store], GALLERY, NAME, chunking=chunking)
    restored = await service.restore(store, GALLERY, NAME, out_dir / "restored.raw")

    assert same_file(image_16m, out_dir / "restored.raw")
    assert published.size == restored.size == image_16m.stat().st_size
    assert published.digest == restored.digest == xxhash.xxh3_128_hexdigest(image_16m.read_bytes())
    assert published.chunks == restored.chunks
    # Content-defined chunks stay within the spec's bounds (every chunk but the last).
    lengths = [chunk["length"] for chunk in read_manifest_json(store)["chunks"]]
    assert sum(lengths) == published.size
    assert all(chunking.min_size <= length <= chunking.max_size for length in lengths[:-1])


async def test_all_zero_image_stores_nothing_and_restores_sparse(
    service: BlobService, store: LocalStore, tmp_path: Path, out_dir: Path
) -> None:
    size = 32 * MIB
    source = write_zeros(tmp_path / "zeros.raw", size)

    published = await service.publish(source, [store], GALLERY, NAME, chunking=SMALL_CHUNKS)
    assert published.chunks > 0
    assert published.zero_chunks == published.chunks
    assert (published.distinct_chunks, published.stored_bytes, published.written_bytes) == (0, 0, 0)
    assert [key async for key in store.list(chunks_prefix(GALLERY))] == []

    output = out_dir / "zeros.raw"
    restored = await service.restore(store, GALLERY, NAME, output)
    assert restored.fetched_bytes == 0
    assert output.stat().st_size == size
    assert same_file(source, output)
    # A hole, not written zeros: almost no blocks allocated.
    assert output.stat().st_blocks * 512 <= size // 64


async def test_fixed_chunking_round_trip(
    service: BlobService, store: LocalStore, tmp_path: Path, out_dir: Path
) -> None:
    chunk = 256 * 1024
    size = 3 * chunk + 1000
    source = write_bytes(tmp_path / "fixed.raw", os.urandom(size))

    published = await service.publish(source, [store], GALLERY, NAME, chunking=ChunkingSpec.fixed(chunk))
    await service.restore(store, GALLERY, NAME, out_dir / "fixed.raw")

    assert same_file(source, out_dir / "fixed.raw")
    assert published.chunks == 4
    document = read_manifest_json(store)
    assert document["chunking"]["method"] == "fixed"
    assert [entry["length"] for entry in document["chunks"]] == [chunk, chunk, chunk, 1000]


async def test_two_replicas_written_in_one_pass_are_each_restorable_alone(
    service: BlobService, tmp_path: Path, image_8m: Path, out_dir: Path
) -> None:
    first = LocalStore(tmp_path / "replica-1", name="replica-1", create=True)
    second = LocalStore(tmp_path / "replica-2", name="replica-2", create=True)

    published = await service.publish(image_8m, [first, second], GALLERY, NAME, chunking=SMALL_CHUNKS)

    assert published.replicas == 2
    packs = pack_files(first)
    # Every new chunk went into a pack, each pack to both replicas: frames and pack tables.
    assert published.new_packs == len(packs) > 0 and chunk_files(first) == {}
    assert published.written_bytes == 2 * sum(path.stat().st_size for path in packs.values())
    assert published.written_bytes > 2 * published.stored_bytes
    assert set(object_files(first)) == set(object_files(second))
    entries = read_manifest_json(first)["chunks"]
    assert sorted(stored_chunks(first)) == sorted({entry["digest"] for entry in entries if "digest" in entry})
    assert len(stored_chunks(first)) == published.distinct_chunks

    # Each replica on its own: the other one moved out of the way.
    shutil.move(second.root, tmp_path / "away")
    await service.restore(first, GALLERY, NAME, out_dir / "from-first.raw")
    assert same_file(image_8m, out_dir / "from-first.raw")
    shutil.move(tmp_path / "away", second.root)
    shutil.rmtree(first.root)
    await service.restore(second, GALLERY, NAME, out_dir / "from-second.raw")
    assert same_file(image_8m, out_dir / "from-second.raw")


async def test_restore_replaces_an_existing_output(
    service: BlobService, store: LocalStore, image_8m: Path, out_dir: Path
) -> None:
    output = write_bytes(out_dir / "restored.raw", b"an older file that is in the way" * 1000)
    await service.publish(image_8m, [store], GALLERY, NAME, chunking=SMALL_CHUNKS)

    await service.restore(store, GALLERY, NAME, output)

    assert same_file(image_8m, output)
    assert os.listdir(out_dir) == ["restored.raw"]
