"""Reading blobs stored in packs: restores and deployments get the exact image; a damaged pack is
read around and mended whole, once per replica and pack, from a sibling's whole copy or by
patching in verified frames; a pack nothing can mend is reported and nothing is written."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from blobrep.core.manifest import FORMAT_3
from blobrep.core.selection import Policy
from blobrep.engine.chunk_read import PENDING_PACK_REPAIRS, ReplicaSet
from blobrep.engine.deploy import deploy, deploy_many
from blobrep.engine.restore import restore
from blobrep.engine.verify import verify
from blobrep.engine.version_read import VersionReader
from blobrep.errors import ChunkCorruptError, ChunkMissingError
from blobrep.storage import FaultyStore, Store
from tests.engine.helpers import GALLERY, chunk_files, same_file
from tests.engine.packed_helpers import (
    DAMAGES,
    Damage,
    PackedRegion,
    PutGauge,
    busiest,
    flip_at,
    middle,
    packed_region,
    read_all,
    regular_bytes,
    start_of,
    stored,
)
from tests.engine.read_helpers import BLOB

R1 = "westus/replica-1"


@pytest.fixture
async def region(tmp_path: Path, image_8m: Path) -> PackedRegion:
    """Three replicas holding the 8 MiB test image in about a dozen packs."""
    packed = await packed_region(image_8m, tmp_path / "region")
    assert packed.manifest.format == FORMAT_3
    assert len(packed.manifest.packs) >= 4
    return packed


# --- whole reads -----------------------------------------------------------------------


async def test_a_packed_blob_restores_from_each_replica_to_the_exact_image(
    region: PackedRegion, out_dir: Path
) -> None:
    chunks = region.manifest.stored_digests().values()
    assert all(chunk.pack is not None for chunk in chunks)
    assert all(chunk_files(store) == {} for store in region.stores), "no chunk is stored alone"

    for number, store in enumerate(region.stores, start=1):
        output = out_dir / f"restored-{number}.raw"
        result = await restore(store, GALLERY, BLOB, output)
        assert same_file(output, region.image)
        assert result.digest == region.manifest.digest
        assert result.fetched_bytes == stored(region.manifest.chunks)


async def test_deployments_of_a_packed_blob_get_exact_disks_and_count_frames_not_packs(
    region: PackedRegion, tmp_path: Path
) -> None:
    vms = tmp_path / "vms"
    vms.mkdir()
    async with VersionReader(region.stores, GALLERY, BLOB, seed=3) as reader:
        summary = await deploy_many(reader, 4, output_dir=vms)
        discarded = await deploy(reader)

    assert (summary.succeeded, summary.errors) == (4, 0)
    assert all(same_file(vms / f"vm-{index}.img", region.image) for index in range(4))
    assert discarded.digest == region.manifest.digest
    per_disk = stored(region.manifest.chunks)
    assert discarded.bytes_read == per_disk
    stats = summary.statistics
    assert stats.bytes_served == 4 * per_disk
    assert (stats.failovers, stats.repairs, stats.repair_failures, stats.repaired_bytes) == (0, 0, 0, 0)
    assert sum(1 for replica in stats.replicas.values() if replica.bytes_served) >= 2


# --- a damaged pack in one replica -----------------------------------------------------


@pytest.mark.parametrize("damage", DAMAGES, ids=str)
async def test_a_damaged_pack_is_read_around_and_mended_whole_from_a_sibling(
    region: PackedRegion, tmp_path: Path, damage: Damage
) -> None:
    pack = busiest(region)
    path = region.pack_path(0, pack)
    outside = damage.plant(path, region, pack, tmp_path / "outside")
    outside_bytes = None if outside is None else outside.read_bytes()
    watched = FaultyStore(region.stores[0])

    async with VersionReader(
        [watched, *region.stores[1:]], GALLERY, BLOB, policy=Policy.ROUND_ROBIN
    ) as reader:
        # Round robin's first turn goes to the damaged replica.
        await reader.read_chunk(region.members(pack)[0])
        data = await read_all(reader)

    assert data == region.image.read_bytes()
    stats = reader.statistics()
    assert stats.failovers >= 1 and stats.replicas[R1].failures >= 1
    assert (stats.repairs, stats.repair_failures, stats.repaired_bytes) == (1, 0, pack.size)
    assert watched.calls["put"] == 1, "the pack is written once, whole"
    assert regular_bytes(path) == region.packs[pack.digest]
    if outside is not None:
        assert regular_bytes(outside) == outside_bytes, "nothing was written through the link"
    assert (await verify(region.stores[0], GALLERY, BLOB)).ok


async def test_without_repair_a_damaged_pack_is_read_around_and_left(region: PackedRegion) -> None:
    pack = busiest(region)
    region.pack_path(0, pack).unlink()
    watched = FaultyStore(region.stores[0])

    async with VersionReader(
        [watched, *region.stores[1:]], GALLERY, BLOB, policy=Policy.ROUND_ROBIN, repair=False
    ) as reader:
        assert await read_all(reader) == region.image.read_bytes()

    assert reader.statistics().replicas[R1].failures >= 1
    assert (reader.statistics().repairs, watched.calls["put"]) == (0, 0)
    assert not region.pack_path(0, pack).exists()


async def test_many_bad_chunks_of_one_pack_are_mended_by_one_repair(region: PackedRegion) -> None:
    pack = busiest(region)
    region.pack_path(0, pack).unlink()
    watched = FaultyStore(region.stores[0])

    async with VersionReader([watched, *region.stores[1:]], GALLERY, BLOB, seed=5) as reader:

        async def read_pack_chunks() -> None:
            for chunk in region.members(pack):
                await reader.read_chunk(chunk)

        async with anyio.create_task_group() as group:
            for _ in range(40):
                group.start_soon(read_pack_chunks)

    stats = reader.statistics()
    assert stats.replicas[R1].failures > 1, "several of the pack's chunks failed in replica-1"
    assert (stats.repairs, stats.repair_failures) == (1, 0)
    assert watched.calls["put"] == 1
    assert regular_bytes(region.pack_path(0, pack)) == region.packs[pack.digest]


async def test_pack_mends_at_once_stay_within_their_bound(region: PackedRegion) -> None:
    for pack in region.manifest.packs:
        region.pack_path(0, pack).unlink()
    gauge = PutGauge(region.stores[0], delay=0.05)

    # With two replicas round robin asks replica-1 first for every chunk: every pack fails there.
    async with VersionReader([gauge, region.stores[1]], GALLERY, BLOB, policy=Policy.ROUND_ROBIN) as reader:
        assert await read_all(reader) == region.image.read_bytes()

    stats = reader.statistics()
    assert (stats.repairs, stats.repair_failures) == (len(region.manifest.packs), 0)
    assert stats.repaired_bytes == sum(pack.size for pack in region.manifest.packs)
    assert gauge.packs == len(region.manifest.packs)
    assert 1 <= gauge.peak <= PENDING_PACK_REPAIRS
    assert (await verify(region.stores[0], GALLERY, BLOB)).ok


async def test_a_pack_is_mended_from_the_replica_that_served_the_read_without_asking_the_others(
    region: PackedRegion,
) -> None:
    pack = busiest(region)
    flip_at(region.pack_path(0, pack), middle(region.members(pack)[0]))
    bystander = FaultyStore(region.stores[1])

    stores: list[Store] = [region.stores[0], bystander, region.stores[2]]
    async with ReplicaSet(stores, GALLERY, policy=Policy.ROUND_ROBIN, repair=True) as replicas:
        # Round robin's first turn among replicas 1 and 3 goes to the damaged one.
        served = await replicas.read(region.members(pack)[0], exclude={1})

    assert served.index == 2 and [fault.replica for fault in served.faults] == [R1]
    assert replicas.statistics().repairs == 1
    assert regular_bytes(region.pack_path(0, pack)) == region.packs[pack.digest]
    assert bystander.calls["get"] == 0, "the replica that served the read had the pack whole"


async def test_a_pack_behind_a_link_out_of_the_replica_is_read_around_and_never_written_through(
    region: PackedRegion, tmp_path: Path
) -> None:
    pack = busiest(region)
    directory = region.pack_path(0, pack).parent
    outside = tmp_path / "outside"
    directory.rename(outside)
    directory.symlink_to(outside)
    before = {path.name: path.read_bytes() for path in outside.iterdir()}

    async with VersionReader(region.stores, GALLERY, BLOB, policy=Policy.ROUND_ROBIN) as reader:
        await reader.read_chunk(region.members(pack)[0])
        assert await read_all(reader) == region.image.read_bytes()

    stats = reader.statistics()
    assert stats.replicas[R1].failures >= 1
    assert (stats.repairs, stats.repair_failures) == (0, 1)
    assert {path.name: path.read_bytes() for path in outside.iterdir()} == before
    assert directory.is_symlink()


# --- patching: no sibling holds the pack whole ------------------------------------------


async def test_bit_rot_in_the_only_copy_of_a_pack_is_patched_with_a_frame_a_sibling_holds_alone(
    tmp_path: Path, image_8m: Path
) -> None:
    region = await packed_region(image_8m, tmp_path / "region", count=2)
    pack = busiest(region)
    bad = region.members(pack)[1]
    flip_at(region.pack_path(0, pack), middle(bad))
    # The sibling lacks the pack but holds the chunk as an object of its own.
    region.pack_path(1, pack).unlink()
    alone = region.chunk_path(1, bad.digest or "")
    alone.parent.mkdir(parents=True, exist_ok=True)
    alone.write_bytes(region.frame(bad))

    async with VersionReader(region.stores, GALLERY, BLOB, policy=Policy.ROUND_ROBIN) as reader:
        await reader.read_chunk(bad)  # corrupt in replica-1, then replica-2's own object
        assert await read_all(reader) == region.image.read_bytes()

    stats = reader.statistics()
    # Replica-1 patched with the verified frame; replica-2 then copies the mended pack whole.
    assert (stats.repairs, stats.repair_failures) == (2, 0)
    for replica in range(2):
        assert regular_bytes(region.pack_path(replica, pack)) == region.packs[pack.digest]
        assert (await verify(region.stores[replica], GALLERY, BLOB)).ok


async def test_packs_damaged_in_different_frames_in_each_replica_are_both_mended(
    tmp_path: Path, image_8m: Path
) -> None:
    region = await packed_region(image_8m, tmp_path / "region", count=2)
    pack = busiest(region)
    first, second = region.members(pack)[0], region.members(pack)[2]
    flip_at(region.pack_path(0, pack), middle(first))
    flip_at(region.pack_path(1, pack), middle(second))

    async with VersionReader(region.stores, GALLERY, BLOB, policy=Policy.ROUND_ROBIN) as reader:
        await reader.read_chunk(first)  # turn 0: replica-1, corrupt; replica-2 serves it
        await reader.read_chunk(second)  # turn 2: replica-1 serves it
        await reader.read_chunk(second)  # turn 3: replica-2, corrupt; replica-1 serves it

    stats = reader.statistics()
    assert (stats.failovers, stats.repairs, stats.repair_failures) == (2, 2, 0)
    for replica in range(2):
        assert regular_bytes(region.pack_path(replica, pack)) == region.packs[pack.digest]


@pytest.mark.parametrize("first_damage", ["missing", "truncated"])
async def test_a_pack_with_no_good_copy_anywhere_is_reported_and_nothing_is_written(
    tmp_path: Path, image_8m: Path, first_damage: str
) -> None:
    region = await packed_region(image_8m, tmp_path / "region", count=2)
    pack = busiest(region)
    rotten, intact = region.members(pack)[-2], region.members(pack)[-1]
    first, second = region.pack_path(0, pack), region.pack_path(1, pack)
    if first_damage == "missing":
        first.unlink()
    else:  # cut where the rotten chunk's frame starts: it and every frame after are lost
        first.write_bytes(first.read_bytes()[: rotten.offset])
    flip_at(second, middle(rotten))
    left = {path: path.read_bytes() for path in (first, second) if path.exists()}

    async with VersionReader(region.stores, GALLERY, BLOB, policy=Policy.ROUND_ROBIN) as reader:
        served = await reader.read_chunk(intact)  # bad in replica-1, served by replica-2
        with pytest.raises(ChunkCorruptError) as caught:
            await reader.read_chunk(rotten)

    assert served == region.image.read_bytes()[start_of(region, intact) :][: intact.length]
    error = caught.value
    assert (error.digest, error.replica) == (rotten.digest, "westus/replica-2")
    assert pack.digest in str(error)
    assert R1 in "\n".join(error.__notes__)
    stats = reader.statistics()
    assert (stats.repairs, stats.repair_failures) == (0, 1)
    assert {path: path.read_bytes() for path in (first, second) if path.exists()} == left
    assert first.exists() == (first_damage == "truncated")


# --- one replica alone, write_back, mixed manifests ---------------------------------------


@pytest.mark.parametrize("damage", ["bit-flip", "missing"])
async def test_a_restore_from_a_replica_with_a_damaged_pack_fails_naming_it_and_leaves_nothing(
    region: PackedRegion, out_dir: Path, damage: str
) -> None:
    pack = busiest(region)
    chunk = region.members(pack)[0]
    path = region.pack_path(0, pack)
    flip_at(path, middle(chunk)) if damage == "bit-flip" else path.unlink()

    with pytest.raises((ChunkCorruptError, ChunkMissingError)) as caught:
        await restore(region.stores[0], GALLERY, BLOB, out_dir / "restored.raw")

    error = caught.value
    assert isinstance(error, ChunkCorruptError if damage == "bit-flip" else ChunkMissingError)
    assert error.replica == R1
    assert R1 in str(error)
    if isinstance(error, ChunkCorruptError):
        assert error.digest == chunk.digest
        assert f"pack {pack.digest}" in str(error)
    assert os.listdir(out_dir) == []


async def test_write_back_of_a_packed_chunk_mends_its_pack_or_refuses_and_writes_nothing(
    region: PackedRegion,
) -> None:
    pack = busiest(region)
    one, other = region.members(pack)[0], region.members(pack)[1]
    path = region.pack_path(0, pack)
    flip_at(path, middle(one))

    async with ReplicaSet(region.stores, GALLERY) as replicas:
        served = await replicas.read(one, exclude={0})
        assert await replicas.write_back(0, one, served.frame) == "westus/replica-2"
        assert regular_bytes(path) == region.packs[pack.digest]

        for sibling in (1, 2):
            region.pack_path(sibling, pack).unlink()
        flip_at(path, middle(one))
        assert await replicas.write_back(0, one, served.frame) == f"{R1} (patched)"
        assert regular_bytes(path) == region.packs[pack.digest]

        flip_at(path, middle(one))
        flip_at(path, middle(other))
        rotten = path.read_bytes()
        with pytest.raises(ChunkCorruptError, match=f"its pack {pack.digest} cannot be mended"):
            await replicas.write_back(0, one, served.frame)
        assert regular_bytes(path) == rotten


async def test_a_mixed_manifest_repairs_a_lone_chunk_by_its_frame_and_a_pack_whole(
    tmp_path: Path, image_8m: Path
) -> None:
    region = await packed_region(image_8m, tmp_path / "region", count=2, alone_every=5)
    lone = next(iter(region.manifest.stored_digests().values()))
    assert lone.pack is None and region.manifest.packs
    pack = busiest(region)
    lone_path = region.chunk_path(0, lone.digest or "")
    lone_path.write_bytes(lone_path.read_bytes()[:-1])
    region.pack_path(0, pack).unlink()

    async with VersionReader(region.stores, GALLERY, BLOB, policy=Policy.ROUND_ROBIN) as reader:
        assert await read_all(reader) == region.image.read_bytes()

    stats = reader.statistics()
    assert (stats.repairs, stats.repair_failures) == (2, 0)
    assert stats.repaired_bytes == lone.stored_length + pack.size
    assert regular_bytes(region.pack_path(0, pack)) == region.packs[pack.digest]
    assert regular_bytes(lone_path) == regular_bytes(region.chunk_path(1, lone.digest or ""))
    assert (await verify(region.stores[0], GALLERY, BLOB)).ok


# --- verify ----------------------------------------------------------------------------


async def test_verify_checks_each_pack_whole_and_every_chunk_in_it(region: PackedRegion) -> None:
    report = await verify(region.stores[0], GALLERY, BLOB)

    assert report.ok
    assert report.checked_packs == len(region.manifest.packs)
    assert report.checked_chunks == len(region.manifest.stored_digests())
    assert (report.problems, report.pack_problems) == ((), ())


@pytest.mark.parametrize("damage", ["bit-flip", "trailing-bytes", "missing", "fifo"])
async def test_verify_reports_a_damaged_pack_and_the_chunks_it_reaches(
    region: PackedRegion, damage: str
) -> None:
    pack = busiest(region)
    members = region.members(pack)
    path = region.pack_path(0, pack)
    if damage == "bit-flip":
        flip_at(path, middle(members[1]))
    elif damage == "trailing-bytes":
        path.write_bytes(path.read_bytes() + b"bytes after the last frame")
    elif damage == "missing":
        path.unlink()
    else:
        path.unlink()
        os.mkfifo(path)

    report = await verify(region.stores[0], GALLERY, BLOB)

    assert not report.ok
    assert [(bad.digest, bad.replica) for bad in report.pack_problems] == [(pack.digest, R1)]
    problem = report.pack_problems[0]
    assert problem.problem == ("missing" if damage == "missing" else "corrupt")
    assert pack.digest in problem.detail
    expected = {
        "bit-flip": [members[1].digest],
        "trailing-bytes": [],
        "missing": [chunk.digest for chunk in members],
        "fifo": [chunk.digest for chunk in members],
    }[damage]
    assert [bad.digest for bad in report.problems] == expected
    assert all(bad.pack == pack.digest for bad in report.problems)
    assert report.checked_chunks == len(region.manifest.stored_digests())


async def test_verify_of_a_mixed_manifest_names_a_lone_chunk_without_a_pack(
    tmp_path: Path, image_8m: Path
) -> None:
    region = await packed_region(image_8m, tmp_path / "region", count=1, alone_every=1000)
    lone = next(iter(region.manifest.stored_digests()))
    assert region.manifest.stored_digests()[lone].pack is None
    region.chunk_path(0, lone).unlink()

    report = await verify(region.stores[0], GALLERY, BLOB)

    assert report.missing == [lone]
    assert report.problems[0].pack is None
    assert report.pack_problems == ()
    assert report.checked_packs == len(region.manifest.packs)
