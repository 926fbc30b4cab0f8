"""Which replicas a region has comes from the catalog, never from listing the region's storage.

Most tests here run twice: with the replicas in the region's directories, and with every
replica kept somewhere else (:class:`Elsewhere`), as an object-store region keeps them: then
there is nothing to list under the region's path, and only the catalog can say which replicas
gc, scrub, fsck and removals must visit.
"""

from __future__ import annotations

import builtins
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from blobrep.catalog import Catalog
from blobrep.core.gallery import ReplicationState
from blobrep.service import DefinitionFields, GalleryService, LocalStore, Store, VersionOptions
from blobrep.storage.base import Payload
from blobrep.storage.faulty import FaultyStore
from tests.service.conftest import ADMIN, GALLERY, IMAGE

FIELDS = DefinitionFields(publisher="contoso", offer="ubuntu", sku="22_04", os_type="Linux")
SOURCE_REGION = "westcentralus"
MANIFEST = f"galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0/manifest.json"


class _Watched(FaultyStore):
    """A replica that records, at each write, the catalog's mark of its region."""

    def __init__(self, inner: Store, watcher: Elsewhere, region: str, number: int) -> None:
        super().__init__(inner)
        self._watcher = watcher
        self._region = region
        self._number = number

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        catalog = self._watcher.catalog
        assert catalog is not None
        mark = await catalog.region_replicas(self._region)
        self._watcher.writes.append((self._region, self._number, mark))
        await super().put(key, data, if_absent=if_absent)


class Elsewhere:
    """A ``wrap_store`` that keeps replica n of region R in ``{root}/{R}/replica-{n}`` (or,
    with no ``root``, where the region keeps it), and records ``(region, replica, catalog
    mark)`` at every write into a replica."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.catalog: Catalog | None = None
        self.writes: builtins.list[tuple[str, int, int]] = []

    def place(self, home: Path, region: str, number: int) -> Path:
        base = home / "regions" if self.root is None else self.root
        return base / region / f"replica-{number}"

    def __call__(self, region: str, number: int, store: Store) -> Store:
        if self.root is not None:
            assert isinstance(store, LocalStore)
            store = LocalStore(self.place(Path(), region, number), name=store.name, create=store._create)
        return _Watched(store, self, region, number)

    def unknown_writes(self) -> builtins.list[tuple[str, int, int]]:
        """The writes into a replica the catalog did not know of when they happened."""
        return [(region, number, mark) for region, number, mark in self.writes if number > mark]


@pytest.fixture(params=["in the region's directory", "elsewhere"])
def elsewhere(request: pytest.FixtureRequest, tmp_path: Path) -> Elsewhere:
    return Elsewhere(None if request.param == "in the region's directory" else tmp_path / "elsewhere")


@pytest.fixture
async def watched(tmp_path: Path, elsewhere: Elsewhere) -> AsyncIterator[GalleryService]:
    async with await GalleryService.open(tmp_path / "home", wrap_store=elsewhere) as opened:
        elsewhere.catalog = opened._catalog
        await opened.create_gallery(ADMIN, GALLERY, location=SOURCE_REGION)
        await opened.create_definition(ADMIN, GALLERY, IMAGE, FIELDS)
        yield opened


def replica(service: GalleryService, elsewhere: Elsewhere, region: str, number: int) -> Path:
    return elsewhere.place(service.home, region, number)


def files_in(root: Path) -> builtins.list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def chunk_data(root: Path) -> builtins.list[Path]:
    """The replica's files of chunk data: packs (what the service publishes) and lone chunks."""
    return [path for path in files_in(root) if "/chunks/" in str(path) or "/packs/" in str(path)]


async def test_a_publish_tells_the_catalog_of_its_replicas_before_it_writes_to_them(
    watched: GalleryService, elsewhere: Elsewhere, source: Path
) -> None:
    await watched.create_version(
        ADMIN, GALLERY, IMAGE, "1.0.0", source=source, options=VersionOptions(replica_count=3)
    )
    assert await watched._catalog.region_replicas(SOURCE_REGION) == 3
    assert {number for region, number, _ in elsewhere.writes if region == SOURCE_REGION} == {1, 2, 3}
    assert elsewhere.unknown_writes() == []
    for number in (1, 2, 3):
        assert (replica(watched, elsewhere, SOURCE_REGION, number) / MANIFEST).is_file()
    # A later version with fewer replicas leaves the region's mark where it was.
    await watched.create_version(ADMIN, GALLERY, IMAGE, "1.1.0", source=source)
    assert await watched._catalog.region_replicas(SOURCE_REGION) == 3


async def test_replication_tells_the_catalog_of_a_target_before_it_writes_to_it(
    watched: GalleryService, elsewhere: Elsewhere, source: Path
) -> None:
    options = VersionOptions(target_regions=[SOURCE_REGION, "eastus2=2", "westeurope"])
    await watched.create_version(ADMIN, GALLERY, IMAGE, "1.0.0", source=source, options=options)
    assert await watched._catalog.region_replicas("eastus2") == 0, "nothing was written there yet"
    version = await watched.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert version.is_completed_in("eastus2") and version.is_completed_in("westeurope")
    assert await watched._catalog.region_replicas("eastus2") == 2
    assert await watched._catalog.region_replicas("westeurope") == 1
    assert {(region, number) for region, number, _ in elsewhere.writes if region != SOURCE_REGION} == {
        ("eastus2", 1),
        ("eastus2", 2),
        ("westeurope", 1),
    }
    assert elsewhere.unknown_writes() == []


async def test_a_lowered_count_removes_the_replicas_above_it_and_they_are_still_visited(
    watched: GalleryService, elsewhere: Elsewhere, source: Path
) -> None:
    options = VersionOptions(target_regions=[SOURCE_REGION, "eastus2=3"])
    await watched.create_version(ADMIN, GALLERY, IMAGE, "1.0.0", source=source, options=options)
    await watched.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    for number in (1, 2, 3):
        assert (replica(watched, elsewhere, "eastus2", number) / MANIFEST).is_file()
        assert chunk_data(replica(watched, elsewhere, "eastus2", number))

    await watched.update_version(
        ADMIN, GALLERY, IMAGE, "1.0.0", VersionOptions(target_regions=[SOURCE_REGION, "eastus2=1"])
    )
    assert (replica(watched, elsewhere, "eastus2", 1) / MANIFEST).is_file()
    for number in (2, 3):
        # The removal found the replicas above the new count, wherever they are kept.
        dropped = replica(watched, elsewhere, "eastus2", number)
        assert not (dropped / MANIFEST).exists()
        assert chunk_data(dropped) == []
    assert await watched._catalog.region_replicas("eastus2") == 3, "the mark is not lowered"

    (report,) = await watched.scrub(ADMIN, "eastus2", gallery=GALLERY)
    assert [summary.replica for summary in report.replicas] == [f"eastus2/replica-{n}" for n in (1, 2, 3)]
    assert report.problems == ()
    collected = await watched.collect_garbage(ADMIN, GALLERY, regions=["eastus2"], grace=0)
    assert [gc.replica for gc in collected] == [f"eastus2/replica-{n}" for n in (1, 2, 3)]

    # A removal killed between its manifest and its chunks, or one that never ran: fsck
    # still looks in the replicas above the count and finds what must not be there.
    shutil.copy(
        replica(watched, elsewhere, "eastus2", 1) / MANIFEST,
        replica(watched, elsewhere, "eastus2", 3) / MANIFEST,
    )
    checked = await watched.fsck(ADMIN, gallery=GALLERY, location="eastus2")
    found = {(problem.kind, problem.replica) for problem in checked.problems}
    assert ("unknown-manifest", "eastus2/replica-3") in found
    assert {where for _, where in found} == {"eastus2/replica-3"}, "its chunks were collected too"
    repaired = await watched.fsck(ADMIN, gallery=GALLERY, location="eastus2", repair=True)
    assert repaired.ok
    assert not (replica(watched, elsewhere, "eastus2", 3) / MANIFEST).exists()
    assert elsewhere.unknown_writes() == []


async def test_deleting_a_version_removes_it_from_every_replica_the_catalog_knows(
    watched: GalleryService, elsewhere: Elsewhere, source: Path
) -> None:
    options = VersionOptions(target_regions=[SOURCE_REGION, "eastus2=2"], replica_count=2)
    await watched.create_version(ADMIN, GALLERY, IMAGE, "1.0.0", source=source, options=options)
    await watched.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    for region in (SOURCE_REGION, "eastus2"):
        for number in (1, 2):
            assert chunk_data(replica(watched, elsewhere, region, number)), (region, number)
    await watched.delete_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    for region in (SOURCE_REGION, "eastus2"):
        for number in (1, 2):
            assert not (replica(watched, elsewhere, region, number) / MANIFEST).exists(), (region, number)
    collected = await watched.collect_garbage(ADMIN, GALLERY, grace=0)
    assert {gc.replica for gc in collected} == {
        f"{region}/replica-{number}" for region in (SOURCE_REGION, "eastus2") for number in (1, 2)
    }
    for region in (SOURCE_REGION, "eastus2"):
        for number in (1, 2):
            assert chunk_data(replica(watched, elsewhere, region, number)) == []


async def test_a_replica_directory_made_by_hand_is_no_replica(
    service: GalleryService, definition: str, source: Path
) -> None:
    """The catalog says which replicas a region has: a ``replica-9`` directory that appeared
    beside them is neither scrubbed, collected nor checked, and nothing in it is touched."""
    options = VersionOptions(target_regions=[SOURCE_REGION, "eastus2"])
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=options)
    await service.replicate_version(ADMIN, GALLERY, definition, "1.0.0")
    region = service.home / "regions" / "eastus2"
    stray = region / "replica-9"
    shutil.copytree(region / "replica-1", stray)
    (stray / "galleries" / GALLERY / "chunks" / "00" / "00").mkdir(parents=True)
    orphan = stray / "galleries" / GALLERY / "chunks" / "00" / "00" / ("00" * 16)
    orphan.write_bytes(b"a chunk no manifest names")
    before = sorted(files_in(stray))

    (report,) = await service.scrub(ADMIN, "eastus2", gallery=GALLERY)
    assert [summary.replica for summary in report.replicas] == ["eastus2/replica-1"]
    collected = await service.collect_garbage(ADMIN, GALLERY, regions=["eastus2"], grace=0)
    assert [gc.replica for gc in collected] == ["eastus2/replica-1"]
    checked = await service.fsck(ADMIN, gallery=GALLERY, location="eastus2", repair=True)
    assert checked.problems == ()
    assert sorted(files_in(stray)) == before and orphan.exists()
    assert await service._catalog.region_replicas("eastus2") == 1
    version = await service.show_version(ADMIN, GALLERY, definition, "1.0.0")
    status = version.status("eastus2")
    assert status is not None and status.state is ReplicationState.COMPLETED


async def test_a_replica_the_catalog_knows_of_but_never_written_reads_as_empty(
    service: GalleryService, definition: str, source: Path
) -> None:
    """A process killed between telling the catalog of a replica and its first write leaves
    the replica known and absent: gc, scrub and fsck find nothing there, and no error."""
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    await service._catalog.note_region_replicas("eastus2", 2)
    (report,) = await service.scrub(ADMIN, "eastus2", gallery=GALLERY)
    assert [summary.replica for summary in report.replicas] == ["eastus2/replica-1", "eastus2/replica-2"]
    assert report.problems == ()
    collected = await service.collect_garbage(ADMIN, GALLERY, regions=["eastus2"], grace=0)
    assert [(gc.replica, gc.error) for gc in collected] == [
        ("eastus2/replica-1", None),
        ("eastus2/replica-2", None),
    ]
    checked = await service.fsck(ADMIN, gallery=GALLERY, location="eastus2")
    assert checked.problems == ()


async def test_a_replica_the_catalog_counts_on_that_vanished_is_an_error(
    service: GalleryService, definition: str, source: Path
) -> None:
    """Its storage gone (a disk not mounted) is never taken for an empty replica."""
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    shutil.rmtree(service.home / "regions" / SOURCE_REGION / "replica-1")
    checked = await service.fsck(ADMIN, gallery=GALLERY, location=SOURCE_REGION)
    assert [(problem.kind, problem.region) for problem in checked.problems] == [("region", SOURCE_REGION)]
    assert "does not exist" in checked.problems[0].detail
    collected = await service.collect_garbage(ADMIN, GALLERY, regions=[SOURCE_REGION], grace=0)
    assert [gc.replica for gc in collected] == [f"{SOURCE_REGION}/replica-1"]
    assert collected[0].error is not None and "does not exist" in collected[0].error
    assert not (service.home / "regions" / SOURCE_REGION / "replica-1").exists(), "nothing made it again"
