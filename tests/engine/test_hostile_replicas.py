"""A damaged or hostile replica never changes what a deployment gets, and scrub puts it right.

Each fault is planted in version 1.0.0 in replica-1 of a two-replica region (chunk faults
in one chunk file, manifest faults in the manifest): a deployment through both replicas
still gets the exact image, a scrub reports and repairs the damage, and the damaged replica
alone fails with one clear error naming it, leaving no output behind, in bounded time and
memory.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from blobrep.core.keys import manifest_key
from blobrep.core.selection import Policy
from blobrep.engine.deploy import deploy
from blobrep.engine.manifests import read_manifest
from blobrep.engine.restore import restore
from blobrep.engine.scrub import Expected, scrub_region
from blobrep.engine.verify import verify
from blobrep.engine.version_read import VersionReader
from blobrep.errors import BlobrepError
from tests.engine.helpers import GALLERY, MIB, same_file
from tests.engine.hostile_helpers import (
    CHUNK_FAULTS,
    MANIFEST_FAULTS,
    R1,
    R2,
    SPARSE_SIZE,
    V1,
    V2,
    Fault,
    FifoWatch,
    Published,
    Scene,
    build_published,
    copy_region,
    traced_peak,
)

FAULTS = (*CHUNK_FAULTS, *MANIFEST_FAULTS)
PLUMBING_FAULTS = tuple(fault for fault in FAULTS if fault.plumbing)
#: No read may take longer than this, whatever a replica holds.
DEADLINE = 30
#: What a failing read of the damaged replica may allocate at most, however large the damage.
MEMORY_BOUND = 200 * MIB


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    """Both versions published once for the module; tests damage private copies."""
    return anyio.run(build_published, tmp_path_factory.mktemp("hostile"))


@pytest.fixture
def scene(published: Published, tmp_path: Path) -> Scene:
    r1, r2 = copy_region(published, tmp_path / "region")
    return Scene(published, r1, r2, tmp_path / "outside")


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


async def deploy_alone(scene: Scene, output: Path) -> None:
    """Deploy 1.0.0 from the (repaired) replica-1 alone, checked against the catalog's pin."""
    async with VersionReader([scene.r1], GALLERY, V1, expect=scene.published.v1) as reader:
        await deploy(reader, output)


@pytest.mark.parametrize("fault", FAULTS, ids=str)
async def test_a_deployment_through_a_damaged_and_an_intact_replica_gets_the_exact_image(
    scene: Scene, fault: Fault, out_dir: Path
) -> None:
    planted = fault.plant(scene)
    output = out_dir / "vm.img"
    # Round robin from replica-1, and the first stored chunk is the damaged one: the read
    # meets the damage first, whatever the fault.
    with FifoWatch(planted.fifo) as watch, anyio.fail_after(DEADLINE):
        async with VersionReader(
            [scene.r1, scene.r2], GALLERY, V1, expect=scene.published.v1, policy=Policy.ROUND_ROBIN
        ) as reader:
            result = await deploy(reader, output)

    assert result.ok and same_file(output, scene.published.image)
    assert os.listdir(out_dir) == ["vm.img"]
    assert watch.readers == 0, "the FIFO in replica-1 was opened for reading"
    planted.assert_outside_untouched()
    if fault.kind == "manifest":
        assert set(reader.manifest_faults) == {R1}
        assert R1 in reader.manifest_faults[R1]
    else:
        stats = reader.statistics()
        assert stats.replicas[R1].failures == 1 and stats.replicas[R2].failures == 0
        assert stats.failovers == 1
        assert stats.repairs == 1
        # The read put a verified copy back: replica-1 now serves the version alone.
        report = await verify(scene.r1, GALLERY, V1)
        assert report.ok, report.problems


@pytest.mark.parametrize("fault", FAULTS, ids=str)
async def test_scrub_reports_and_repairs_the_damage_until_the_replica_serves_alone(
    scene: Scene, fault: Fault, out_dir: Path
) -> None:
    planted = fault.plant(scene)
    expected = {manifest_key(GALLERY, V1): Expected(scene.published.v1, 2)}
    stores = [scene.r1, scene.r2]

    with FifoWatch(planted.fifo) as watch, anyio.fail_after(DEADLINE):
        first = await scrub_region(stores, GALLERY, expected=expected, repair=True)
        second = await scrub_region(stores, GALLERY, expected=expected, repair=True)

    found = [(problem.replica, problem.kind, problem.key_or_digest) for problem in first.problems]
    assert found == [(R1, fault.kind, planted.where)], first.problems
    assert first.ok and first.repaired == 1 and first.unrepairable == 0, first.problems
    assert second.problems == (), second.problems
    assert watch.readers == 0, "the FIFO in replica-1 was opened for reading"
    planted.assert_outside_untouched()

    report = await verify(scene.r1, GALLERY, V1)
    assert report.ok, report.problems
    output = out_dir / "vm.img"
    with anyio.fail_after(DEADLINE):
        await deploy_alone(scene, output)
        restored = await restore(scene.r1, GALLERY, V1, out_dir / "restored.img")
    assert same_file(output, scene.published.image)
    assert same_file(Path(restored.output), scene.published.image)
    # The repair touched nothing of the other version in the same replica.
    await read_manifest(scene.r1, GALLERY, V2, expect=scene.published.v2)
    assert (await verify(scene.r1, GALLERY, V2)).ok


@pytest.mark.parametrize("fault", FAULTS, ids=str)
async def test_the_damaged_replica_alone_fails_with_one_clear_error_and_leaves_nothing(
    scene: Scene, fault: Fault, out_dir: Path
) -> None:
    planted = fault.plant(scene)
    output = out_dir / "vm.img"

    with (
        FifoWatch(planted.fifo) as watch,
        traced_peak() as memory,
        anyio.fail_after(DEADLINE),
        pytest.raises(BlobrepError) as caught,
    ):
        async with VersionReader([scene.r1], GALLERY, V1, expect=scene.published.v1) as reader:
            await deploy(reader, output)

    error = caught.value
    assert isinstance(error, fault.error), repr(error)
    message = str(error)
    assert R1 in message and "\n" not in message, message
    assert os.listdir(out_dir) == [], "a failed deployment left its output or a temporary behind"
    assert memory.bytes < MEMORY_BOUND, f"{memory.bytes / MIB:.0f} MiB allocated"
    assert watch.readers == 0, "the FIFO in replica-1 was opened for reading"
    planted.assert_outside_untouched()


@pytest.mark.parametrize("fault", PLUMBING_FAULTS, ids=str)
async def test_a_restore_without_a_catalog_refuses_the_damage_cleanly(
    scene: Scene, fault: Fault, out_dir: Path
) -> None:
    planted = fault.plant(scene)
    output = out_dir / "restored.img"

    with (
        FifoWatch(planted.fifo) as watch,
        traced_peak() as memory,
        anyio.fail_after(DEADLINE),
        pytest.raises(BlobrepError) as caught,
    ):
        await restore(scene.r1, GALLERY, V1, output)

    message = str(caught.value)
    assert message and "\n" not in message, message
    assert os.listdir(out_dir) == [], "a failed restore left its output or a temporary behind"
    # Without a pin a manifest may take up to the format's limit, but never the whole file.
    assert memory.bytes < SPARSE_SIZE // 8, f"{memory.bytes / MIB:.0f} MiB allocated"
    assert watch.readers == 0, "the FIFO in replica-1 was opened for reading"
    planted.assert_outside_untouched()
