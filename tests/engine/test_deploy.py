"""Deployments: whole versions read through a region's replicas, one VM disk each, N at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from blobrep.engine.deploy import DeploymentResult, deploy, deploy_many
from blobrep.engine.verify import verify
from blobrep.engine.version_read import VersionReader
from blobrep.errors import ChunkCorruptError, InvalidInputError, InvalidParameterError
from blobrep.storage import LocalStore, Store
from blobrep.storage.throttled import ThrottledStore
from tests.engine.helpers import GALLERY, MIB, chunk_files, flip_byte, same_file, write_bytes, write_synthetic
from tests.engine.read_helpers import BLOB, damage, file_digest, publish_region, stored_digests
from tests.engine.replication_helpers import CountingStore, Gauge

#: How much of the damaged replica's chunks are corrupted, and as many again deleted.
DAMAGE = 0.01


@pytest.fixture
async def replicas(tmp_path: Path, image_8m: Path) -> list[LocalStore]:
    """Three replicas of one region, each holding the 8 MiB test image."""
    return await publish_region(image_8m, tmp_path / "region")


@pytest.fixture(scope="session")
def small_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small (1 MiB) image: a few chunks of data around a run of zero chunks; for storms."""
    directory = tmp_path_factory.mktemp("images")
    data = write_synthetic(directory / "source.raw", 256 * 1024, seed=0).read_bytes()
    return write_bytes(directory / "small.raw", data[: 192 * 1024] + bytes(768 * 1024) + data[192 * 1024 :])


async def test_a_deployment_writes_a_sparse_byte_exact_disk(
    replicas: list[LocalStore], image_8m: Path, out_dir: Path
) -> None:
    progress: list[tuple[int, int]] = []
    async with VersionReader(replicas, GALLERY, BLOB) as reader:
        result = await deploy(
            reader, out_dir / "vm.img", progress=lambda done, total: progress.append((done, total))
        )
        manifest = reader.manifest

    disk = out_dir / "vm.img"
    assert same_file(image_8m, disk)
    assert result.output == str(disk)
    assert (result.size, result.digest, result.ok) == (manifest.size, manifest.digest, True)
    assert result.digest == file_digest(image_8m)
    assert result.bytes_read == sum(chunk.stored_length for chunk in manifest.chunks if not chunk.is_zero)
    assert result.seconds > 0
    # The zero chunks were never written: they are holes, not allocated blocks.
    assert disk.stat().st_blocks * 512 <= manifest.size - manifest.zero_bytes
    assert progress[-1] == (manifest.size, manifest.size)
    assert os.listdir(out_dir) == ["vm.img"]


async def test_a_discarding_deployment_checks_the_whole_blob_digest(
    replicas: list[LocalStore], image_8m: Path, out_dir: Path
) -> None:
    progress: list[int] = []
    async with VersionReader(replicas, GALLERY, BLOB) as reader:
        result = await deploy(reader, progress=lambda done, total: progress.append(done))

    assert result.output is None
    assert result.digest == file_digest(image_8m)
    assert result.ok
    assert progress == sorted(progress)
    assert progress[-1] == image_8m.stat().st_size
    assert os.listdir(out_dir) == []


@pytest.mark.parametrize("chunks_at_once", [1, 2, 16])
async def test_a_deployment_reads_ahead_only_as_far_as_asked(
    replicas: list[LocalStore], image_8m: Path, chunks_at_once: int
) -> None:
    gauge = Gauge()
    counted: list[Store] = [CountingStore(store, gauge, delay=0.001) for store in replicas]
    async with VersionReader(counted, GALLERY, BLOB) as reader:
        result = await deploy(reader, chunks_at_once=chunks_at_once)

    assert result.digest == file_digest(image_8m)
    assert gauge.peak <= chunks_at_once


async def test_deploy_many_writes_each_disk_and_summarises(
    replicas: list[LocalStore], image_8m: Path, out_dir: Path
) -> None:
    async with VersionReader(replicas, GALLERY, BLOB) as reader:
        summary = await deploy_many(reader, 4, output_dir=out_dir)

    assert sorted(os.listdir(out_dir)) == [f"vm-{index}.img" for index in range(4)]
    for index in range(4):
        assert same_file(image_8m, out_dir / f"vm-{index}.img")
    assert (summary.count, summary.succeeded, summary.errors, summary.failures) == (4, 4, 0, ())
    assert len(summary.seconds) == 4
    assert summary.p50 is not None and summary.p99 is not None
    assert min(summary.seconds) <= summary.p50 <= summary.p99 == max(summary.seconds) <= summary.makespan
    assert summary.size == image_8m.stat().st_size
    served = summary.statistics.bytes_served
    assert served == 4 * sum(chunk.stored_length for chunk in reader.manifest.chunks if chunk.digest)
    assert all(replica.bytes_served > 0 for replica in summary.statistics.replicas.values())


async def test_a_damaged_replica_is_read_around_repaired_and_verifies_clean(
    tmp_path: Path, image_8m: Path
) -> None:
    replicas = await publish_region(image_8m, tmp_path / "region")
    corrupted, deleted = damage(replicas[1], DAMAGE, seed=4)
    assert not (await verify(replicas[1], GALLERY, BLOB)).ok
    expected = file_digest(image_8m)
    results: list[DeploymentResult] = []

    async with VersionReader(replicas, GALLERY, BLOB, seed=8) as reader:

        async def one() -> None:
            results.append(await deploy(reader, chunks_at_once=1))

        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(one)

    assert len(results) == 50
    assert all(result.digest == expected for result in results)
    stats = reader.statistics()
    assert (stats.repairs, stats.repair_failures) == (len(corrupted) + len(deleted), 0)
    assert stats.failovers >= stats.repairs
    assert stats.replicas["westus/replica-2"].failures == stats.failovers
    for store in replicas:
        report = await verify(store, GALLERY, BLOB)
        assert report.ok, report.problems


async def test_deploy_many_over_a_damaged_replica_gives_exact_disks(
    tmp_path: Path, image_8m: Path, out_dir: Path
) -> None:
    replicas = await publish_region(image_8m, tmp_path / "region")
    # A tenth of the chunks each way: so many that six deployments cannot all miss them.
    corrupted, deleted = damage(replicas[0], 0.1, seed=5)

    async with VersionReader(replicas, GALLERY, BLOB, seed=1) as reader:
        summary = await deploy_many(reader, 6, output_dir=out_dir)
    total = reader.statistics()

    assert (summary.succeeded, summary.errors) == (6, 0)
    for index in range(6):
        assert same_file(image_8m, out_dir / f"vm-{index}.img")
    assert summary.statistics.failovers == summary.statistics.replicas["westus/replica-1"].failures >= 1
    assert 1 <= total.repairs <= len(corrupted) + len(deleted)
    assert total.repair_failures == 0


async def test_a_chunk_bad_everywhere_fails_the_deployment_naming_it_and_leaves_no_file(
    replicas: list[LocalStore], out_dir: Path
) -> None:
    digest = stored_digests(replicas[0])[4]
    for store in replicas:
        flip_byte(chunk_files(store)[digest])

    async with VersionReader(replicas, GALLERY, BLOB) as reader:
        with pytest.raises(ChunkCorruptError, match=digest):
            await deploy(reader, out_dir / "vm.img")
        with pytest.raises(ChunkCorruptError, match=digest):
            await deploy(reader)
        summary = await deploy_many(reader, 3, output_dir=out_dir)

    assert os.listdir(out_dir) == []
    assert (summary.succeeded, summary.errors, summary.seconds) == (0, 3, ())
    assert summary.p50 is None and summary.p99 is None
    assert len(summary.failures) == 3
    assert all(digest in failure for failure in summary.failures)


@pytest.mark.parametrize("count", [200, pytest.param(1000, marks=pytest.mark.slow)])
async def test_a_storm_of_concurrent_deployments_completes_within_the_inflight_bound(
    tmp_path: Path, small_image: Path, count: int
) -> None:
    replicas = await publish_region(small_image, tmp_path / "region")
    gauge = Gauge()
    counted: list[Store] = [CountingStore(store, gauge, delay=0) for store in replicas]

    async with VersionReader(counted, GALLERY, BLOB, max_inflight=64) as reader:
        summary = await deploy_many(reader, count)

    assert (summary.succeeded, summary.errors) == (count, 0)
    assert gauge.peak <= 64
    stored = [chunk for chunk in reader.manifest.chunks if chunk.digest]
    assert 1 < len(stored) < len(reader.manifest.chunks)
    assert summary.statistics.chunks == count * len(stored)
    assert summary.statistics.failovers == 0


@pytest.mark.slow
def test_a_thousand_concurrent_deployments_stay_under_500_mib_of_memory(
    tmp_path: Path, small_image: Path
) -> None:
    script = f"""
import json, anyio
from pathlib import Path
from blobrep.engine.deploy import deploy_many
from blobrep.engine.version_read import VersionReader
from tests.engine.helpers import GALLERY
from tests.engine.read_helpers import BLOB, publish_region

async def main():
    replicas = await publish_region(Path({str(small_image)!r}), Path({str(tmp_path / "region")!r}))
    async with VersionReader(replicas, GALLERY, BLOB) as reader:
        summary = await deploy_many(reader, 1000)
    # VmHWM, not ru_maxrss: after fork and exec, ru_maxrss starts at the parent's RSS at the
    # fork, so a test process grown by earlier tests would be counted as this one's peak.
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) * 1024
    print(json.dumps({{"errors": summary.errors, "peak": peak}}))

anyio.run(main)
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True, timeout=300
    )
    report = json.loads(done.stdout)

    assert report["errors"] == 0
    assert report["peak"] < 500 * MIB, f"peak RSS {report['peak'] / MIB:.0f} MiB"


@pytest.mark.slow
async def test_bandwidth_limited_replicas_serve_a_storm_at_their_combined_rate(
    tmp_path: Path, small_image: Path
) -> None:
    replicas = await publish_region(small_image, tmp_path / "region", count=5)
    async with VersionReader(replicas, GALLERY, BLOB) as probe:
        per_deployment = sum(chunk.stored_length for chunk in probe.manifest.chunks if chunk.digest)
    # Rate chosen so the storm should take 2.5 s: 50 deployments over 5 replicas.
    rate = 50 * per_deployment / (5 * 2.5)
    throttled: list[Store] = [ThrottledStore(store, rate) for store in replicas]

    async with VersionReader(throttled, GALLERY, BLOB) as reader:
        summary = await deploy_many(reader, 50)

    ideal = 50 * per_deployment / (5 * rate)
    assert summary.errors == 0
    assert ideal * 0.85 <= summary.makespan <= ideal * 1.15, (summary.makespan, ideal)
    served = [replica.bytes_served for replica in summary.statistics.replicas.values()]
    assert max(served) <= 1.1 * min(served)


async def test_deploy_many_refuses_bad_counts_and_a_missing_directory(
    replicas: list[LocalStore], tmp_path: Path
) -> None:
    async with VersionReader(replicas, GALLERY, BLOB) as reader:
        for count in (0, -1):
            with pytest.raises(InvalidParameterError, match="count"):
                await deploy_many(reader, count)
        with pytest.raises(InvalidParameterError, match="concurrency"):
            await deploy_many(reader, 2, concurrency=0)
        with pytest.raises(InvalidInputError, match="does not exist"):
            await deploy_many(reader, 2, output_dir=tmp_path / "nowhere")
        with pytest.raises(InvalidParameterError, match="chunks_at_once"):
            await deploy(reader, chunks_at_once=0)


async def test_deploy_many_runs_at_most_concurrency_deployments_at_once(
    replicas: list[LocalStore], image_8m: Path
) -> None:
    gauge = Gauge()
    counted: list[Store] = [CountingStore(store, gauge, delay=0.001) for store in replicas]
    async with VersionReader(counted, GALLERY, BLOB, max_inflight=64) as reader:
        summary = await deploy_many(reader, 6, concurrency=2)

    assert summary.succeeded == 6
    # Two at once, each reading ahead its share of the limit (64 // 2, capped per deployment).
    assert gauge.peak <= 64
    assert summary.makespan >= max(summary.seconds)


async def test_deploy_many_reports_the_bytes_deployed_over_all_deployments(
    replicas: list[LocalStore], image_8m: Path
) -> None:
    progress: list[tuple[int, int]] = []
    async with VersionReader(replicas, GALLERY, BLOB) as reader:
        summary = await deploy_many(reader, 3, progress=lambda done, total: progress.append((done, total)))

    size = image_8m.stat().st_size
    assert summary.succeeded == 3
    assert {total for _, total in progress} == {3 * size}
    done = [value for value, _ in progress]
    assert done == sorted(done)
    assert done[-1] == 3 * size
