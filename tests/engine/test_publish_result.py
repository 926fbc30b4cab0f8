"""The figures a publish reports match what it did to the replicas."""

from __future__ import annotations

import os
from pathlib import Path

from blobrep.core.packs import read_table
from blobrep.service import BlobService, ChunkingSpec, LocalStore
from tests.engine.helpers import (
    GALLERY,
    NAME,
    SMALL_CHUNKS,
    chunk_files,
    pack_files,
    read_manifest_json,
    same_file,
    write_bytes,
)


async def test_figures_match_the_chunk_files_on_disk(
    service: BlobService, store: LocalStore, image_16m: Path
) -> None:
    result = await service.publish(image_16m, [store], GALLERY, NAME, chunking=SMALL_CHUNKS, pack_size=None)

    files = chunk_files(store)
    assert result.size == image_16m.stat().st_size
    assert result.replicas == 1
    assert result.distinct_chunks == len(files) > 0
    assert result.new_chunks == len(files)
    assert result.new_packs == 0 and pack_files(store) == {}
    assert result.stored_bytes == sum(path.stat().st_size for path in files.values())
    assert result.written_bytes == result.stored_bytes
    assert result.zero_chunks > 0  # the image has zero runs
    assert result.chunks >= result.distinct_chunks + result.zero_chunks
    # The synthetic image is partly text, so zstd must have saved space.
    assert result.stored_bytes < result.size
    entries = read_manifest_json(store)["chunks"]
    assert len(entries) == result.chunks
    assert sum(1 for entry in entries if entry.get("zero")) == result.zero_chunks


async def test_figures_match_the_packs_on_disk(
    service: BlobService, store: LocalStore, image_16m: Path
) -> None:
    result = await service.publish(
        image_16m, [store], GALLERY, NAME, chunking=SMALL_CHUNKS, pack_size=1 << 20
    )

    packs = pack_files(store)
    tables = [read_table(path.read_bytes(), str(path)) for path in packs.values()]
    assert chunk_files(store) == {}
    assert result.new_packs == len(packs) > 1
    assert result.distinct_chunks == result.new_chunks == sum(map(len, tables)) > 0
    assert result.stored_bytes == sum(entry.stored_length for table in tables for entry in table)
    assert result.written_bytes == sum(path.stat().st_size for path in packs.values())
    # Each pack holds about 1 MiB of frames: it closes at the first frame that reaches it.
    frames = [sum(entry.stored_length for entry in table) for table in tables]
    assert sorted(frames)[1:] == sorted(size for size in frames if size >= 1 << 20)
    document = read_manifest_json(store)
    assert {pack["digest"] for pack in document["packs"]} == set(packs)


async def test_zero_and_repeated_chunks_are_counted(
    service: BlobService, store: LocalStore, tmp_path: Path, out_dir: Path
) -> None:
    block = 64 * 1024
    a, b, zero = os.urandom(block), os.urandom(block), bytes(block)
    layout = [a, a, zero, zero, zero, b, a]
    source = write_bytes(tmp_path / "layout.raw", b"".join(layout))

    result = await service.publish(source, [store], GALLERY, NAME, chunking=ChunkingSpec.fixed(block))

    assert result.chunks == 7
    assert result.zero_chunks == 3
    assert result.distinct_chunks == result.new_chunks == 2
    (pack,) = pack_files(store).values()
    table = read_table(pack.read_bytes(), str(pack))
    assert len(table) == 2 and result.new_packs == 1
    assert result.stored_bytes == sum(entry.stored_length for entry in table)
    entries = read_manifest_json(store)["chunks"]
    assert [bool(entry.get("zero")) for entry in entries] == [False, False, True, True, True, False, False]

    await service.restore(store, GALLERY, NAME, out_dir / "layout.raw")
    assert same_file(source, out_dir / "layout.raw")


async def test_progress_reaches_the_full_size_monotonically(
    service: BlobService, store: LocalStore, image_16m: Path, out_dir: Path
) -> None:
    size = image_16m.stat().st_size
    published: list[tuple[int, int | None]] = []
    restored: list[tuple[int, int]] = []
    verified: list[tuple[int, int]] = []

    await service.publish(
        image_16m,
        [store],
        GALLERY,
        NAME,
        chunking=SMALL_CHUNKS,
        progress=lambda done, total: published.append((done, total)),
    )
    await service.restore(
        store,
        GALLERY,
        NAME,
        out_dir / "restored.raw",
        progress=lambda done, total: restored.append((done, total)),
    )
    report = await service.verify(
        store, GALLERY, NAME, progress=lambda done, total: verified.append((done, total))
    )

    for calls, expected_total in ((published, size), (restored, size), (verified, report.checked_bytes)):
        assert len(calls) > 1
        assert calls[-1] == (expected_total, expected_total)
        assert all(total == expected_total for _, total in calls)
        done = [value for value, _ in calls]
        assert done == sorted(done)
        assert all(0 < value <= expected_total for value in done)
