"""Sparse images: holes are known without being read, and cost nothing to publish.

A disk image is mostly free space, which a sparse file keeps as holes. Publishing reads only
its data (the filesystem says where the holes are), yet the blob, its digest and its chunks
are exactly those of the same bytes written out in full.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from blobrep.core.chunking import MIB, ChunkingSpec
from blobrep.engine.source import FileSource, open_source
from blobrep.service import BlobService, LocalStore
from tests.engine.helpers import GALLERY, read_manifest_json, same_file

BLOCK = 4096


def sparse_image(path: Path, size: int, extents: list[tuple[int, bytes]]) -> Path:
    """A file of ``size`` bytes holding ``extents`` (offset, data) and holes everywhere else."""
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset, data in extents:
            handle.seek(offset)
            handle.write(data)
    return path


def dense_copy(source: Path, target: Path) -> Path:
    """The same bytes with every zero written out (no holes)."""
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while block := reader.read(MIB):
            writer.write(block)
    return target


def holes_supported(path: Path) -> bool:
    with open(path, "rb") as handle:
        return os.lseek(handle.fileno(), 0, os.SEEK_HOLE) < os.fstat(handle.fileno()).st_size


def image_extents() -> list[tuple[int, bytes]]:
    """Files between free space, as a filesystem lays them out: block-aligned, some tiny."""
    rng = random.Random(42)
    return [
        (0, rng.randbytes(300_000)),
        (3 * MIB, rng.randbytes(5 * BLOCK)),
        (3 * MIB + 9 * BLOCK, rng.randbytes(2 * MIB + 123)),
        (24 * MIB, rng.randbytes(BLOCK)),
        (40 * MIB, rng.randbytes(3 * MIB)),
        (63 * MIB, rng.randbytes(MIB - 7)),
    ]


class CountingFile(FileSource):
    """A file source that counts the bytes it actually reads."""

    read_bytes = 0

    def readinto(self, view: memoryview) -> int:
        got = super().readinto(view)
        self.read_bytes += got
        return got


def counting(path: Path) -> CountingFile:
    return CountingFile(os.open(path, os.O_RDONLY), path.stat().st_size, path)


async def test_a_sparse_image_publishes_as_its_dense_copy_would(service: BlobService, tmp_path: Path) -> None:
    sparse = sparse_image(tmp_path / "sparse.img", 64 * MIB, image_extents())
    assert holes_supported(sparse), "the test directory's filesystem must support holes"
    dense = dense_copy(sparse, tmp_path / "dense.img")
    first, second = LocalStore(tmp_path / "a", create=True), LocalStore(tmp_path / "b", create=True)

    from_sparse = await service.publish(sparse, [first], GALLERY, "img/versions/1.0.0")
    from_dense = await service.publish(dense, [second], GALLERY, "img/versions/1.0.0")

    assert (from_sparse.digest, from_sparse.size) == (from_dense.digest, from_dense.size)
    assert read_manifest_json(first, "img/versions/1.0.0") == read_manifest_json(second, "img/versions/1.0.0")
    restored = tmp_path / "restored.img"
    await service.restore(first, GALLERY, "img/versions/1.0.0", restored)
    assert same_file(restored, dense)


async def test_holes_are_not_read(service: BlobService, tmp_path: Path) -> None:
    extents = image_extents()
    sparse = sparse_image(tmp_path / "sparse.img", 64 * MIB, extents)
    source = counting(sparse)
    try:
        result = await service.publish(
            source, [LocalStore(tmp_path / "r", create=True)], GALLERY, "i/versions/1.0.0"
        )
    finally:
        source.close()

    data = sum(len(chunk) for _, chunk in extents)
    assert result.size == 64 * MIB
    # The data and the small holes between close extents; not the 50-odd MiB of free space.
    assert source.read_bytes < data + 4 * MIB
    manifest = read_manifest_json(LocalStore(tmp_path / "r"), "i/versions/1.0.0")
    assert (manifest["format"], manifest["chunking"]["zero_run"]) == ("blobrep.manifest/3", 4096)
    assert sum(chunk["length"] for chunk in manifest["chunks"] if chunk.get("zero")) >= 48 * MIB


async def test_a_changed_block_in_one_file_adds_about_one_chunk(service: BlobService, tmp_path: Path) -> None:
    extents = image_extents()
    store = LocalStore(tmp_path / "r", create=True)
    first = await service.publish(
        sparse_image(tmp_path / "v1.img", 64 * MIB, extents), [store], GALLERY, "i/versions/1.0.0"
    )
    offset, data = extents[4]
    changed = data[: 100 * BLOCK] + random.Random(1).randbytes(BLOCK) + data[101 * BLOCK :]
    extents[4] = (offset, changed)

    second = await service.publish(
        sparse_image(tmp_path / "v2.img", 64 * MIB, extents), [store], GALLERY, "i/versions/1.0.1"
    )

    # Only chunks of the changed file are new: no chunk reaches across free space into another.
    assert 1 <= second.new_chunks <= 2
    assert second.written_bytes <= len(changed) + 1024
    assert first.stored_bytes > 2 * len(changed)


async def test_without_zero_runs_holes_are_read_and_format_1_is_written(
    service: BlobService, tmp_path: Path
) -> None:
    sparse = sparse_image(tmp_path / "sparse.img", 16 * MIB, image_extents()[:3])
    source = counting(sparse)
    store = LocalStore(tmp_path / "r", create=True)
    try:
        # Each chunk on its own, so that nothing but format 1 can be written.
        await service.publish(
            source, [store], GALLERY, "i/versions/1.0.0", chunking=ChunkingSpec.fastcdc(), pack_size=None
        )
    finally:
        source.close()

    assert source.read_bytes == 16 * MIB
    assert read_manifest_json(store, "i/versions/1.0.0")["format"] == "blobrep.manifest/1"


def test_next_hole_reports_holes_on_the_block_grid(tmp_path: Path) -> None:
    path = sparse_image(tmp_path / "f.img", 32 * MIB, [(0, b"x" * 5000), (20 * MIB, b"y" * 100)])
    source = open_source(path)
    try:
        # The hole after the first 5000 bytes starts at the next block and ends at 20 MiB.
        assert source.next_hole(64 * MIB) == (2 * BLOCK, 20 * MIB - 2 * BLOCK)
        assert source.next_hole(BLOCK) is None  # it starts further on than that
        source.skip(20 * MIB)
        # After the last data, a hole to the end of the file.
        assert source.next_hole(64 * MIB) == (BLOCK, 12 * MIB - BLOCK)
        # Holes shorter than asked for do not count.
        assert source.next_hole(64 * MIB, least=16 * MIB) is None
    finally:
        source.close()


def test_a_file_without_holes_has_none(tmp_path: Path) -> None:
    path = tmp_path / "dense.img"
    path.write_bytes(bytes(4 * MIB))
    source = open_source(path)
    try:
        assert source.next_hole(8 * MIB) is None
    finally:
        source.close()


async def test_written_zeros_next_to_holes_cut_as_the_dense_copy(
    service: BlobService, tmp_path: Path
) -> None:
    # Zero blocks written out just before and after holes join the holes' runs; a chunk of data
    # ending mid-block, holes shorter than are skipped, and a hole running to the end.
    rng = random.Random(8)
    extents = [
        (0, rng.randbytes(700_001) + bytes(5 * BLOCK)),
        (2 * MIB, bytes(3 * BLOCK) + rng.randbytes(BLOCK + 17)),
        (2 * MIB + 40 * BLOCK, rng.randbytes(2 * BLOCK) + bytes(BLOCK)),
        (9 * MIB - 2 * BLOCK, bytes(2 * BLOCK) + rng.randbytes(3 * MIB)),
    ]
    sparse = sparse_image(tmp_path / "sparse.img", 20 * MIB, extents)
    assert holes_supported(sparse), "the test directory's filesystem must support holes"
    dense = dense_copy(sparse, tmp_path / "dense.img")
    spec = ChunkingSpec.fastcdc(256 * 1024, zero_run=BLOCK)
    first, second = LocalStore(tmp_path / "a", create=True), LocalStore(tmp_path / "b", create=True)

    await service.publish(sparse, [first], GALLERY, "img/versions/1.0.0", chunking=spec)
    await service.publish(dense, [second], GALLERY, "img/versions/1.0.0", chunking=spec)

    assert read_manifest_json(first, "img/versions/1.0.0") == read_manifest_json(second, "img/versions/1.0.0")
