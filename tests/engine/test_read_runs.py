"""File writes read frames that lie back to back in a pack as runs: one request and one decode
hop per run, with every chunk still faring as a read of it alone would (failover, repair, a
copy stored alone, the error that names the replica)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from blobrep.core.keys import chunk_key
from blobrep.core.manifest import ChunkRef, Manifest
from blobrep.core.runs import read_run
from blobrep.core.selection import Policy
from blobrep.engine.buffers import BufferPool
from blobrep.engine.restore import RUN_BYTES, RUN_CHUNKS, write_blob_file
from blobrep.engine.verify import verify
from blobrep.engine.version_read import VersionReader
from blobrep.errors import ChunkMissingError
from blobrep.storage import Fault, FaultyStore
from tests.engine.helpers import GALLERY, same_file
from tests.engine.packed_helpers import PackedRegion, flip_at, middle, packed_region, regular_bytes
from tests.engine.read_helpers import BLOB

R1 = "westus/replica-1"


@pytest.fixture
async def region(tmp_path: Path, image_8m: Path) -> PackedRegion:
    return await packed_region(image_8m, tmp_path / "region")


def planned_runs(manifest: Manifest) -> list[list[ChunkRef]]:
    """The runs a file write with buffers to spare reads: each stored chunk not yet taken
    starts one, as long as :func:`read_run` makes it."""
    chunks = manifest.chunks
    taken: set[int] = set()
    runs: list[list[ChunkRef]] = []
    for position, chunk in enumerate(chunks):
        if chunk.is_zero or position in taken:
            continue
        members = read_run(chunks, position, RUN_CHUNKS, RUN_BYTES)
        taken.update(members)
        runs.append([chunks[member] for member in members])
    return runs


def first_long_run(manifest: Manifest) -> list[ChunkRef]:
    run = planned_runs(manifest)[0]
    assert len(run) >= 3, "the first chunks of the test image lie back to back in one pack"
    return run


async def write(reader: VersionReader, output: Path, buffers: BufferPool | None = None) -> None:
    with anyio.fail_after(30):
        await write_blob_file(reader, output, what="the test blob", buffers=buffers)


async def test_a_file_write_asks_about_once_per_run_of_back_to_back_frames(
    region: PackedRegion, out_dir: Path
) -> None:
    runs = planned_runs(region.manifest)
    stored = [chunk for chunk in region.manifest.chunks if not chunk.is_zero]
    assert len(runs) < len(stored), "some frames are read with their neighbours"

    async with VersionReader(region.stores[:1], GALLERY, BLOB) as reader:
        await write(reader, out_dir / "out.raw")

    assert same_file(out_dir / "out.raw", region.image)
    stats = reader.statistics().replicas[R1]
    # A run ends early where no buffer is free at once: never fewer requests than runs.
    assert len(runs) <= stats.requests < len(stored)
    assert stats.bytes_served == sum(chunk.stored_length for chunk in stored)


async def test_a_bad_frame_inside_a_run_is_read_from_another_replica_and_its_pack_mended(
    region: PackedRegion, out_dir: Path
) -> None:
    run = first_long_run(region.manifest)
    bad = run[1]
    assert bad.pack is not None
    path = region.pack_path(0, bad.pack)
    flip_at(path, middle(bad))

    # Round robin's first turn, the first run, goes to the damaged replica.
    async with VersionReader(region.stores, GALLERY, BLOB, policy=Policy.ROUND_ROBIN) as reader:
        await write(reader, out_dir / "out.raw")

    assert same_file(out_dir / "out.raw", region.image)
    stats = reader.statistics()
    assert (stats.failovers, stats.replicas[R1].failures) == (1, 1)
    assert (stats.repairs, stats.repair_failures) == (1, 0)
    assert regular_bytes(path) == region.packs[bad.pack.digest]


async def test_a_run_whose_pack_is_missing_is_served_by_the_chunks_stored_alone(
    region: PackedRegion, out_dir: Path
) -> None:
    run = first_long_run(region.manifest)
    pack = run[0].pack
    assert pack is not None
    store = region.stores[0]
    members = region.members(pack)
    for chunk in members:
        assert chunk.digest is not None
        await store.put(chunk_key(GALLERY, chunk.digest), region.frame(chunk))
    region.pack_path(0, pack).unlink()

    async with VersionReader([store], GALLERY, BLOB, repair=False) as reader:
        await write(reader, out_dir / "out.raw")

    assert same_file(out_dir / "out.raw", region.image)
    assert reader.statistics().replicas[R1].failures == 0


async def test_a_run_whose_pack_is_missing_everywhere_fails_naming_a_chunk_of_it(
    region: PackedRegion, out_dir: Path
) -> None:
    run = first_long_run(region.manifest)
    assert run[0].pack is not None
    for replica in range(len(region.stores)):
        region.pack_path(replica, run[0].pack).unlink()

    async with VersionReader(region.stores, GALLERY, BLOB, repair=False) as reader:
        with pytest.raises(ChunkMissingError) as caught:
            await write(reader, out_dir / "out.raw")

    members = [chunk.digest or "" for chunk in region.members(run[0].pack)]
    named = [digest for digest in members if digest in str(caught.value)]
    assert len(named) == 1, "the error names a chunk of the missing pack"
    assert not (out_dir / "out.raw").exists()


async def test_a_failing_request_for_a_run_is_retried_on_another_replica(
    region: PackedRegion, out_dir: Path
) -> None:
    failing = FaultyStore(region.stores[0], [Fault("get", "error", key_contains="/packs/")])
    async with VersionReader(
        [failing, *region.stores[1:]], GALLERY, BLOB, policy=Policy.ROUND_ROBIN
    ) as reader:
        await write(reader, out_dir / "out.raw")

    assert same_file(out_dir / "out.raw", region.image)
    stats = reader.statistics()
    assert stats.replicas[R1].failures >= len(first_long_run(region.manifest))
    assert stats.repairs == 0, "a replica that failed is not known to be damaged"
    assert (await verify(region.stores[0], GALLERY, BLOB)).ok, "nothing was written to it"


@pytest.mark.parametrize("buffers", [1, 2, RUN_CHUNKS - 1])
async def test_writes_sharing_a_pool_smaller_than_a_run_all_finish(
    region: PackedRegion, out_dir: Path, buffers: int
) -> None:
    pool = BufferPool(region.manifest.chunking.max_size, buffers)
    async with VersionReader(region.stores, GALLERY, BLOB) as reader, anyio.create_task_group() as group:
        for number in range(3):
            group.start_soon(write, reader, out_dir / f"vm-{number}.raw", pool)

    assert all(same_file(out_dir / f"vm-{number}.raw", region.image) for number in range(3))
