"""Replication through the service: every target region reaches its count, failures stay local."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from blobrep.core.gallery import AggregatedState, ReplicationState
from blobrep.engine.replicate import RegionProgress
from blobrep.errors import BlobrepError, UnavailableError
from blobrep.service import BlobService, DefinitionFields, GalleryService, LocalStore, Store, VersionOptions
from blobrep.storage.faulty import Fault, FaultKind, FaultyStore
from tests.service.conftest import ADMIN, GALLERY, IMAGE, chunk_writes_full

TARGETS = VersionOptions(target_regions=["westcentralus", "eastus2=2", "westeurope=2", "southeastasia"])
FIELDS = DefinitionFields(publisher="contoso", offer="ubuntu", sku="22_04", os_type="Linux")


def replica_root(service: GalleryService, region: str, number: int) -> Path:
    return service.home / "regions" / region / f"replica-{number}"


def stored_files(root: Path, kind: str) -> list[Path]:
    """The files under the gallery's ``chunks`` or ``packs`` directory of a replica."""
    return [path for path in (root / "galleries" / GALLERY / kind).rglob("*") if path.is_file()]


async def assert_verified(service: GalleryService, region: str, number: int, version: str = "1.0.0") -> None:
    report = await BlobService().verify(
        LocalStore(replica_root(service, region, number)), GALLERY, f"{IMAGE}/versions/{version}"
    )
    assert report.ok and report.checked_chunks > 0


class Switch:
    """Wraps one region's replicas in a FaultyStore while ``broken`` holds faults for it."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.faults: list[Fault] = []

    def __call__(self, region: str, number: int, store: Store) -> Store:
        if region == self.region and self.faults:
            return FaultyStore(store, list(self.faults))
        return store


@pytest.fixture
async def switch(tmp_path: Path) -> Switch:
    return Switch("westeurope")


@pytest.fixture
async def switched(tmp_path: Path, switch: Switch) -> AsyncIterator[GalleryService]:
    async with await GalleryService.open(tmp_path / "home", wrap_store=switch) as opened:
        await opened.create_gallery(ADMIN, GALLERY, location="westcentralus")
        await opened.create_definition(ADMIN, GALLERY, IMAGE, FIELDS)
        yield opened


async def test_every_target_region_reaches_its_count_verified(
    service: GalleryService, definition: str, source: Path
) -> None:
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=TARGETS)
    seen: list[RegionProgress] = []
    version = await service.replicate_version(ADMIN, GALLERY, definition, "1.0.0", progress=seen.append)
    assert version.aggregated_state is AggregatedState.COMPLETED
    assert [(s.region, s.state, s.completed_replicas, s.progress) for s in version.regions] == [
        ("westcentralus", ReplicationState.COMPLETED, 1, 100),
        ("eastus2", ReplicationState.COMPLETED, 2, 100),
        ("westeurope", ReplicationState.COMPLETED, 2, 100),
        ("southeastasia", ReplicationState.COMPLETED, 1, 100),
    ]
    for region, count in (("eastus2", 2), ("westeurope", 2), ("southeastasia", 1)):
        for number in range(1, count + 1):
            await assert_verified(service, region, number)
    assert {update.region for update in seen} >= {"eastus2", "westeurope", "southeastasia"}
    latest = await service.show_version(ADMIN, GALLERY, definition, "latest", location="eastus2")
    assert str(latest.version) == "1.0.0"


@pytest.mark.parametrize(("kind", "said"), [("full", "out of space"), ("error", "injected")])
async def test_a_failing_region_fails_alone_and_a_retry_completes_it(
    switched: GalleryService, switch: Switch, source: Path, kind: FaultKind, said: str
) -> None:
    service = switched
    await service.create_version(ADMIN, GALLERY, IMAGE, "1.0.0", source=source, options=TARGETS)
    # Every put of chunk data: a pack's (the service publishes into packs) as a lone chunk's.
    switch.faults = [Fault("put", kind, key_contains=where) for where in ("/chunks/", "/packs/")]
    version = await service.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    failed = version.status("westeurope")
    assert failed is not None and failed.state is ReplicationState.FAILED
    assert said in failed.details and "westeurope/replica-" in failed.details
    assert version.is_completed_in("eastus2") and version.is_completed_in("southeastasia")
    assert version.aggregated_state is AggregatedState.FAILED
    assert not (replica_root(service, "westeurope", 1) / "galleries" / GALLERY / "images").exists()

    switch.faults = []
    again = await service.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    failed_again = again.status("westeurope")
    assert failed_again is not None and failed_again.state is ReplicationState.FAILED  # not retried unasked
    fixed = await service.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0", retry_failed=True)
    assert fixed.aggregated_state is AggregatedState.COMPLETED
    await assert_verified(service, "westeurope", 2)


async def test_a_region_whose_replica_directory_cannot_be_made_fails_with_the_reason(
    service: GalleryService, definition: str, source: Path, tmp_path: Path
) -> None:
    await service.add_region(ADMIN, "japaneast", path=tmp_path / "japaneast")
    blocker = tmp_path / "japaneast" / "replica-1"
    blocker.parent.mkdir()
    blocker.write_text("a file where the replica's directory should be")
    options = VersionOptions(target_regions=["westcentralus", "japaneast", "eastus2"])
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=options)
    version = await service.replicate_version(ADMIN, GALLERY, definition, "1.0.0")
    status = version.status("japaneast")
    assert status is not None and status.state is ReplicationState.FAILED
    assert str(blocker) in status.details
    assert version.is_completed_in("eastus2")


async def test_adding_a_region_later_copies_only_into_it(
    service: GalleryService, definition: str, source: Path
) -> None:
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    await service.update_version(
        ADMIN, GALLERY, definition, "1.0.0", VersionOptions(target_regions=["westcentralus", "eastus2=2"])
    )
    version = await service.replicate_version(ADMIN, GALLERY, definition, "1.0.0")
    assert version.aggregated_state is AggregatedState.COMPLETED
    await assert_verified(service, "eastus2", 2)


async def test_removing_a_region_deletes_its_manifest_and_unreferenced_chunks(
    service: GalleryService, definition: str, source: Path
) -> None:
    options = VersionOptions(
        target_regions=["westcentralus", "eastus2"], allow_replicated_location_deletion=True
    )
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=options)
    await service.replicate_version(ADMIN, GALLERY, definition, "1.0.0")
    replica = replica_root(service, "eastus2", 1)
    # The service publishes into packs: the version's chunks are in packs, none alone.
    assert stored_files(replica, "packs") and not stored_files(replica, "chunks")
    await service.update_version(
        ADMIN, GALLERY, definition, "1.0.0", VersionOptions(target_regions=["westcentralus"])
    )
    assert stored_files(replica, "packs") == [] and stored_files(replica, "chunks") == []
    await assert_verified(service, "westcentralus", 1)


async def test_older_versions_can_live_in_fewer_regions(
    service: GalleryService, definition: str, source: Path
) -> None:
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    await service.create_version(ADMIN, GALLERY, definition, "1.1.0", source=source, options=TARGETS)
    await service.replicate_all(ADMIN, GALLERY)
    old = await service.show_version(ADMIN, GALLERY, definition, "1.0.0")
    new = await service.show_version(ADMIN, GALLERY, definition, "1.1.0")
    assert [status.region for status in old.regions] == ["westcentralus"]
    assert new.aggregated_state is AggregatedState.COMPLETED
    in_asia = await service.show_version(ADMIN, GALLERY, definition, "latest", location="southeastasia")
    assert str(in_asia.version) == "1.1.0"


async def test_an_unpublished_version_cannot_be_replicated(
    service: GalleryService, definition: str, source: Path
) -> None:
    async with await GalleryService.open(service.home, wrap_store=chunk_writes_full) as failing:
        with pytest.raises(Exception):  # noqa: B017 - the publish error itself is tested elsewhere
            await failing.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    with pytest.raises(UnavailableError, match="not published"):
        await service.replicate_version(ADMIN, GALLERY, definition, "1.0.0")


async def test_gc_deletes_what_no_manifest_references(
    service: GalleryService, definition: str, source: Path
) -> None:
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    replica = replica_root(service, "westcentralus", 1)
    packs = stored_files(replica, "packs")
    assert packs and not stored_files(replica, "chunks"), "the service publishes into packs"
    await service.delete_version(ADMIN, GALLERY, definition, "1.0.0")
    dry = await service.collect_garbage(ADMIN, GALLERY, grace=0, dry_run=True)
    reports = [report for report in dry if report.deleted_chunks]
    assert len(reports) == 1 and reports[0].replica.startswith("westcentralus")
    # Every object of the version is a pack.
    assert reports[0].deleted_chunks == reports[0].deleted_packs == len(packs)
    done = await service.collect_garbage(ADMIN, GALLERY, grace=0)
    assert sum(report.deleted_chunks for report in done) == reports[0].deleted_chunks
    assert stored_files(replica, "packs") == [] and stored_files(replica, "chunks") == []


async def test_a_version_whose_source_cannot_be_read_fails_its_waiting_regions(
    service: GalleryService, definition: str, source: Path
) -> None:
    import shutil

    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=TARGETS)
    shutil.rmtree(replica_root(service, "westcentralus", 1) / "galleries")
    with pytest.raises(BlobrepError, match="no manifest"):
        await service.replicate_version(ADMIN, GALLERY, definition, "1.0.0")
    version = await service.show_version(ADMIN, GALLERY, definition, "1.0.0")
    states = {status.region: (status.state, status.details) for status in version.regions}
    assert states["westcentralus"][0] is ReplicationState.COMPLETED, "what was whole stays so"
    for region in ("eastus2", "westeurope", "southeastasia"):
        state, details = states[region]
        assert state is ReplicationState.FAILED, region
        assert details, "a Failed region says why"
