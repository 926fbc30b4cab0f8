"""Reading a version through a region's replicas: verified chunks, spread load, failover, repair."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from blobrep.core.selection import Policy
from blobrep.engine.verify import verify
from blobrep.engine.version_read import VersionReader
from blobrep.errors import (
    BlobrepError,
    ChunkCorruptError,
    ChunkMissingError,
    InvalidParameterError,
    ManifestError,
    ManifestNotFoundError,
    StorageError,
)
from blobrep.storage import Fault, FaultyStore, LocalStore, Store
from blobrep.storage.base import Payload
from blobrep.storage.throttled import ThrottledStore
from tests.engine.helpers import GALLERY, MIB, chunk_files, flip_byte, manifest_path
from tests.engine.read_helpers import BLOB, publish_region, stored_digests
from tests.engine.replication_helpers import CountingStore, Gauge


@pytest.fixture
async def replicas(tmp_path: Path, image_8m: Path) -> list[LocalStore]:
    """Three replicas of one region, each holding the 8 MiB test image."""
    return await publish_region(image_8m, tmp_path / "region")


async def read_all(reader: VersionReader) -> bytes:
    return b"".join([await reader.read_chunk(chunk) for chunk in reader.manifest.chunks])


async def read_everything_concurrently(reader: VersionReader, consumers: int) -> None:
    """``consumers`` tasks, each reading every chunk of the version once, in order."""
    async with anyio.create_task_group() as group:
        for _ in range(consumers):
            group.start_soon(read_all, reader)


@pytest.mark.parametrize("policy", list(Policy))
async def test_every_policy_reads_the_exact_image(
    replicas: list[LocalStore], image_8m: Path, policy: Policy
) -> None:
    async with VersionReader(replicas, GALLERY, BLOB, policy=policy, seed=1) as reader:
        data = await read_all(reader)
        stats = reader.statistics()

    assert data == image_8m.read_bytes()
    stored = [chunk for chunk in reader.manifest.chunks if not chunk.is_zero]
    assert stats.chunks == len(stored)
    assert stats.bytes_served == sum(chunk.stored_length for chunk in stored)
    assert sum(replica.requests for replica in stats.replicas.values()) == len(stored)
    assert (stats.failovers, stats.repairs, stats.repair_failures) == (0, 0, 0)


async def test_zero_chunks_come_back_as_zeros_without_a_read(replicas: list[LocalStore]) -> None:
    counted = [CountingStore(store, Gauge(), delay=0) for store in replicas]
    async with VersionReader(counted, GALLERY, BLOB) as reader:
        zeros = [chunk for chunk in reader.manifest.chunks if chunk.is_zero]
        assert zeros, "the test image should hold zero runs"
        for chunk in zeros:
            assert await reader.read_chunk(chunk) == bytes(chunk.length)

    assert all(store.gauge.total == 0 for store in counted)
    assert reader.statistics().chunks == 0


async def test_least_loaded_spreads_concurrent_reads_evenly(replicas: list[LocalStore]) -> None:
    gauge = Gauge()
    slow = [CountingStore(store, gauge, delay=0.001) for store in replicas]
    async with VersionReader(slow, GALLERY, BLOB, seed=7) as reader:
        await read_everything_concurrently(reader, consumers=12)
        stats = reader.statistics()

    served = [replica.bytes_served for replica in stats.replicas.values()]
    mean = sum(served) / len(served)
    assert all(abs(share - mean) <= 0.1 * mean for share in served), served
    assert set(stats.replicas) == {"westus/replica-1", "westus/replica-2", "westus/replica-3"}


@pytest.mark.parametrize("policy", [Policy.LEAST_LOADED, Policy.POWER_OF_TWO])
async def test_load_aware_policies_send_less_to_a_slower_replica(
    replicas: list[LocalStore], policy: Policy
) -> None:
    rates = [64 * MIB, 64 * MIB, 8 * MIB]
    throttled = [ThrottledStore(store, rate, burst=0) for store, rate in zip(replicas, rates, strict=True)]
    async with VersionReader(throttled, GALLERY, BLOB, policy=policy, seed=11) as reader:
        await read_everything_concurrently(reader, consumers=6)

    fast_one, fast_two, slow = (replica.bytes_served for replica in reader.statistics().replicas.values())
    # Round robin would give the slow replica a third; keeping queues even gives it far less.
    assert slow < 0.5 * min(fast_one, fast_two)


async def test_round_robin_sends_each_replica_the_same_number_of_requests(replicas: list[LocalStore]) -> None:
    async with VersionReader(replicas, GALLERY, BLOB, policy=Policy.ROUND_ROBIN) as reader:
        await read_everything_concurrently(reader, consumers=4)

    requests = [replica.requests for replica in reader.statistics().replicas.values()]
    assert max(requests) - min(requests) <= 1


async def test_max_inflight_bounds_the_chunk_reads_in_progress(replicas: list[LocalStore]) -> None:
    gauge = Gauge()
    slow = [CountingStore(store, gauge, delay=0.002) for store in replicas]
    async with VersionReader(slow, GALLERY, BLOB, max_inflight=5) as reader:
        await read_everything_concurrently(reader, consumers=8)

    assert 2 <= gauge.peak <= 5


async def test_a_missing_chunk_fails_over_and_is_repaired(replicas: list[LocalStore], image_8m: Path) -> None:
    digest = stored_digests(replicas[0])[3]
    chunk_files(replicas[0])[digest].unlink()

    async with VersionReader(replicas, GALLERY, BLOB, policy=Policy.ROUND_ROBIN) as reader:
        ref = next(chunk for chunk in reader.manifest.chunks if chunk.digest == digest)
        # Round robin's first turn goes to the first replica, the damaged one.
        first = await reader.read_chunk(ref)
        data = await read_all(reader)

    assert data == image_8m.read_bytes()
    assert first in data
    stats = reader.statistics()
    assert (stats.failovers, stats.repairs, stats.repair_failures) == (1, 1, 0)
    assert stats.replicas["westus/replica-1"].failures == 1
    assert (await verify(replicas[0], GALLERY, BLOB)).ok


async def test_a_corrupt_chunk_fails_over_and_is_repaired_from_a_good_copy(
    replicas: list[LocalStore],
) -> None:
    digests = stored_digests(replicas[1])
    flip_byte(chunk_files(replicas[1])[digests[0]])
    flip_byte(chunk_files(replicas[2])[digests[0]])

    async with VersionReader(replicas, GALLERY, BLOB, seed=3) as reader:
        ref = next(chunk for chunk in reader.manifest.chunks if chunk.digest == digests[0])
        # Read it often enough that both damaged replicas are met.
        for _ in range(30):
            await reader.read_chunk(ref)

    stats = reader.statistics()
    assert stats.repairs == 2
    assert stats.failovers >= 2
    for store in replicas:
        assert (await verify(store, GALLERY, BLOB)).ok


async def test_failed_reads_free_their_bytes_without_the_cycle_collector(replicas: list[LocalStore]) -> None:
    # A storm over a damaged replica fails over thousands of times; if a failed read's bytes
    # lingered until the cyclic collector ran, they would pile up by hundreds of MiB.
    digest = stored_digests(replicas[0])[0]
    for store in replicas[:2]:
        flip_byte(chunk_files(store)[digest])
    async with VersionReader(replicas, GALLERY, BLOB, policy=Policy.ROUND_ROBIN, repair=False) as reader:
        ref = next(chunk for chunk in reader.manifest.chunks if chunk.digest == digest)
        await reader.read_chunk(ref)
        gc.disable()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(40):
                await reader.read_chunk(ref)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
            gc.enable()
        failovers = reader.statistics().failovers

    assert failovers >= 40
    assert grown < 4 * ref.length, f"{grown} bytes still held after 40 reads of a {ref.length}-byte chunk"


async def test_concurrent_reads_of_one_damaged_chunk_repair_it_once(replicas: list[LocalStore]) -> None:
    digest = stored_digests(replicas[0])[5]
    chunk_files(replicas[0])[digest].unlink()
    watched = FaultyStore(replicas[0])

    async with VersionReader([watched, *replicas[1:]], GALLERY, BLOB, seed=5) as reader:
        ref = next(chunk for chunk in reader.manifest.chunks if chunk.digest == digest)
        async with anyio.create_task_group() as group:
            for _ in range(60):
                group.start_soon(reader.read_chunk, ref)

    assert reader.statistics().repairs == 1
    assert watched.calls["put"] == 1


async def test_an_io_error_fails_over_without_a_repair(replicas: list[LocalStore], image_8m: Path) -> None:
    flaky = FaultyStore(replicas[0], [Fault("get", "error", "/chunks/")])

    async with VersionReader([flaky, *replicas[1:]], GALLERY, BLOB, seed=2) as reader:
        assert await read_all(reader) == image_8m.read_bytes()

    stats = reader.statistics()
    assert stats.failovers == stats.replicas["westus/replica-1"].failures > 0
    assert stats.repairs == 0
    assert flaky.calls["put"] == 0


async def test_without_repair_damage_is_read_around_and_left(
    replicas: list[LocalStore], image_8m: Path
) -> None:
    digest = stored_digests(replicas[0])[0]
    chunk_files(replicas[0])[digest].unlink()
    watched = FaultyStore(replicas[0])

    async with VersionReader([watched, *replicas[1:]], GALLERY, BLOB, repair=False) as reader:
        await read_everything_concurrently(reader, consumers=6)

    assert reader.statistics().repairs == 0
    assert watched.calls["put"] == 0
    assert (await verify(replicas[0], GALLERY, BLOB)).missing == [digest]


async def test_a_repair_that_fails_is_counted_and_the_read_still_succeeds(replicas: list[LocalStore]) -> None:
    digest = stored_digests(replicas[0])[0]
    chunk_files(replicas[0])[digest].unlink()
    unwritable = FaultyStore(replicas[0], [Fault("put", "full")])

    async with VersionReader([unwritable, *replicas[1:]], GALLERY, BLOB) as reader:
        await read_everything_concurrently(reader, consumers=6)

    stats = reader.statistics()
    assert (stats.repairs, stats.repair_failures) == (0, 1)


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
async def test_a_chunk_bad_in_every_replica_is_an_error_naming_it(
    replicas: list[LocalStore], damage: str
) -> None:
    digest = stored_digests(replicas[0])[2]
    for store in replicas:
        path = chunk_files(store)[digest]
        flip_byte(path) if damage == "corrupt" else path.unlink()
    expected = ChunkCorruptError if damage == "corrupt" else ChunkMissingError

    async with VersionReader(replicas, GALLERY, BLOB) as reader:
        ref = next(chunk for chunk in reader.manifest.chunks if chunk.digest == digest)
        with pytest.raises(expected, match=digest) as caught:
            await reader.read_chunk(ref)

    notes = "\n".join(caught.value.__notes__)
    assert all(store.name in notes for store in replicas)
    stats = reader.statistics()
    assert stats.failovers == 2
    assert stats.repairs == 0


async def test_io_errors_in_every_replica_are_a_storage_error_naming_the_chunk(
    replicas: list[LocalStore],
) -> None:
    broken = [FaultyStore(store, [Fault("get", "error", "/chunks/")]) for store in replicas]

    async with VersionReader(broken, GALLERY, BLOB) as reader:
        ref = next(chunk for chunk in reader.manifest.chunks if chunk.digest is not None)
        with pytest.raises(StorageError, match=f"chunk {ref.digest} could not be read from any of the 3"):
            await reader.read_chunk(ref)


async def test_the_manifest_is_read_from_the_first_replica_with_a_valid_one(
    replicas: list[LocalStore],
) -> None:
    manifest_path(replicas[0]).unlink()
    manifest_path(replicas[1]).write_bytes(b"{not json")

    async with VersionReader(replicas, GALLERY, BLOB) as reader:
        assert reader.manifest.size == 8 * 1024 * 1024


async def test_no_valid_manifest_anywhere_is_an_error(replicas: list[LocalStore]) -> None:
    for store in replicas:
        manifest_path(store).unlink()
    with pytest.raises(ManifestNotFoundError, match=r"in any of the 3 replicas.*westus/replica-3"):
        async with VersionReader(replicas, GALLERY, BLOB):
            pass

    manifest_path(replicas[2]).parent.mkdir(parents=True, exist_ok=True)
    manifest_path(replicas[2]).write_bytes(b"[]")
    with pytest.raises(ManifestError, match="westus/replica-3"):
        async with VersionReader(replicas, GALLERY, BLOB):
            pass


async def test_leaving_normally_waits_for_repairs_in_flight(replicas: list[LocalStore]) -> None:
    digest = stored_digests(replicas[0])[0]
    chunk_files(replicas[0])[digest].unlink()

    class SlowPut(FaultyStore):
        async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
            await anyio.sleep(0.2)
            await super().put(key, data, if_absent=if_absent)

    stores: list[Store] = [SlowPut(replicas[0]), *replicas[1:]]
    async with VersionReader(stores, GALLERY, BLOB, policy=Policy.ROUND_ROBIN) as reader:
        ref = next(chunk for chunk in reader.manifest.chunks if chunk.digest == digest)
        await reader.read_chunk(ref)  # the first turn goes to the damaged replica
        assert reader.statistics().repairs == 0

    assert reader.statistics().repairs == 1
    assert (await verify(replicas[0], GALLERY, BLOB)).ok


async def test_leaving_on_an_error_cancels_repairs_in_flight(replicas: list[LocalStore]) -> None:
    digest = stored_digests(replicas[0])[0]
    chunk_files(replicas[0])[digest].unlink()

    class StuckPut(FaultyStore):
        async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
            await anyio.sleep_forever()

    stores: list[Store] = [StuckPut(replicas[0]), *replicas[1:]]
    with anyio.fail_after(5), pytest.raises(InvalidParameterError, match="stop"):
        async with VersionReader(stores, GALLERY, BLOB, policy=Policy.ROUND_ROBIN) as reader:
            await read_all(reader)
            raise InvalidParameterError("stop")

    assert reader.statistics().repairs == 0
    with pytest.raises(RuntimeError, match="not open"):
        await reader.read_chunk(reader.manifest.chunks[0])


async def test_reading_before_entering_is_a_usage_error(replicas: list[LocalStore]) -> None:
    reader = VersionReader(replicas, GALLERY, BLOB)

    with pytest.raises(RuntimeError, match="not open"):
        _ = reader.manifest


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda stores: VersionReader([], GALLERY, BLOB), "at least one replica"),
        (lambda stores: VersionReader([stores[0], stores[0]], GALLERY, BLOB), "distinct"),
        (lambda stores: VersionReader(stores, GALLERY, BLOB, max_inflight=0), "max_inflight"),
    ],
)
async def test_invalid_parameters_are_refused(
    replicas: list[LocalStore], make: Callable[[list[LocalStore]], object], message: str
) -> None:
    with pytest.raises(BlobrepError, match=message):
        make(replicas)
