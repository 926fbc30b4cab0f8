"""A version created from another version's disk, through the library: same gallery, another
gallery, damaged sources, access, regions, replication and redoing a failed copy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from blobrep.core.gallery import ProvisioningState, RegionStatus, ReplicationState
from blobrep.core.keys import manifest_key
from blobrep.core.names import BlobName
from blobrep.core.version import ImageVersion
from blobrep.errors import (
    AccessDeniedError,
    CopyError,
    InvalidInputError,
    InvalidParameterError,
    ResourceNotFoundError,
    UnavailableError,
)
from blobrep.service import BlobService, DefinitionFields, GalleryService, LocalStore, Store, VersionOptions
from blobrep.service.views import version_view
from blobrep.storage.base import Payload
from blobrep.storage.faulty import FaultyStore
from tests.service.conftest import ADMIN, GALLERY, IMAGE

OTHER = "gallery2"
SOURCE = f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0"
FIELDS = DefinitionFields(publisher="contoso", offer="ubuntu", sku="22_04", os_type="Linux")


def gallery_root(home: Path, gallery: str, region: str = "westcentralus", number: int = 1) -> Path:
    return home / "regions" / region / f"replica-{number}" / "galleries" / gallery


def objects(home: Path, gallery: str, region: str = "westcentralus", number: int = 1) -> dict[str, bytes]:
    """The chunk and pack objects of ``gallery`` in one replica (path below the gallery -> bytes)."""
    root = gallery_root(home, gallery, region, number)
    return {
        str(path.relative_to(root)): path.read_bytes()
        for kind in ("chunks", "packs")
        for path in (root / kind).rglob("*")
        if path.is_file()
    }


def everything(home: Path, gallery: str) -> dict[str, tuple[bytes, int]]:
    """Every file of ``gallery`` in every replica of every region, with its modification time."""
    found: dict[str, tuple[bytes, int]] = {}
    for path in (home / "regions").glob(f"*/replica-*/galleries/{gallery}/**/*"):
        if path.is_file():
            found[str(path.relative_to(home))] = (path.read_bytes(), path.stat().st_mtime_ns)
    return found


def manifest(home: Path, gallery: str, version: str, region: str = "westcentralus", number: int = 1) -> bytes:
    key = manifest_key(gallery, BlobName.parse(f"{IMAGE}/versions/{version}"))
    return (home / "regions" / region / f"replica-{number}" / key).read_bytes()


def a_pack(home: Path, gallery: str, number: int = 1) -> Path:
    (pack,) = [
        path for path in (gallery_root(home, gallery, number=number) / "packs").rglob("*") if path.is_file()
    ]
    return pack


async def deployed(service: GalleryService, image_id: str, location: str, where: Path) -> bytes:
    output = where / f"vm-{location}.img"
    result = await service.deploy_vm(ADMIN, image_id, location=location, output=output)
    assert result.ok
    return output.read_bytes()


async def prepare(service: GalleryService, source: Path, targets: list[str] | None = None) -> None:
    """Gallery ``gallery1`` with version 1.0.0 of ``source`` (in ``targets``), and an empty
    ``gallery2`` with a definition of the same kind; both at home in westcentralus."""
    for gallery in (GALLERY, OTHER):
        await service.create_gallery(ADMIN, gallery, location="westcentralus")
        await service.create_definition(ADMIN, gallery, IMAGE, FIELDS)
    await service.create_version(
        ADMIN, GALLERY, IMAGE, "1.0.0", source=source, options=VersionOptions(target_regions=targets)
    )


class PutLog:
    """A ``wrap_store`` that records every put as (region, replica, key), and can hold the
    puts of keys containing ``hold`` until they are cancelled."""

    def __init__(self) -> None:
        self.puts: list[tuple[str, int, str]] = []
        self.hold: str | None = None
        self.held = anyio.Event()

    def __call__(self, region: str, number: int, store: Store) -> Store:
        return _Logged(store, self, region, number)


class _Logged(FaultyStore):
    def __init__(self, inner: Store, log: PutLog, region: str, number: int) -> None:
        super().__init__(inner)
        self.log, self.region, self.number = log, region, number

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        self.log.puts.append((self.region, self.number, key))
        if self.log.hold is not None and self.log.hold in key:
            self.log.held.set()
            await anyio.sleep_forever()
        await super().put(key, data, if_absent=if_absent)


@pytest.fixture
async def logged(tmp_path: Path) -> AsyncIterator[tuple[GalleryService, PutLog]]:
    log = PutLog()
    async with await GalleryService.open(tmp_path / "home", wrap_store=log) as opened:
        yield opened, log


async def test_a_copy_in_the_same_gallery_writes_nothing_but_a_manifest(
    service: GalleryService, source: Path, tmp_path: Path
) -> None:
    await prepare(service, source)
    before = objects(service.home, GALLERY)
    copied = await service.create_version_from(ADMIN, GALLERY, IMAGE, "2.0.0", source_version=SOURCE)
    assert objects(service.home, GALLERY) == before, "no chunk or pack may be written again"
    original = await service.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert copied.provisioning_state is ProvisioningState.SUCCEEDED
    assert copied.source_id == SOURCE and copied.blob == original.blob
    assert [(s.region, s.state, s.completed_replicas) for s in copied.regions] == [
        ("westcentralus", ReplicationState.COMPLETED, 1)
    ]
    assert manifest(service.home, GALLERY, "2.0.0") == manifest(service.home, GALLERY, "1.0.0")
    shown = version_view(await service.show_version(ADMIN, GALLERY, IMAGE, "2.0.0"))
    assert shown["storageProfile"]["source"] == {"id": SOURCE}
    image_id = f"/galleries/{GALLERY}/images/{IMAGE}/versions/2.0.0"
    assert await deployed(service, image_id, "westcentralus", tmp_path) == source.read_bytes()


async def test_a_copy_from_another_gallery_moves_each_object_once_and_leaves_the_source_alone(
    logged: tuple[GalleryService, PutLog], source: Path, tmp_path: Path
) -> None:
    service, log = logged
    await prepare(service, source, ["westcentralus=2"])
    source_files = everything(service.home, GALLERY)
    log.puts.clear()
    options = VersionOptions(target_regions=["westcentralus=2"])
    copied = await service.create_version_from(
        ADMIN, OTHER, IMAGE, "1.0.0", source_version=SOURCE, options=options
    )
    assert copied.source_id == SOURCE and copied.regions[0].completed_replicas == 2
    object_puts = [put for put in log.puts if "/packs/" in put[2] or "/chunks/" in put[2]]
    assert object_puts and len(object_puts) == len(set(object_puts)), (
        "each object is written once per replica"
    )
    assert all(f"galleries/{OTHER}/" in key for _, _, key in log.puts), "nothing is written to the source"
    assert everything(service.home, GALLERY) == source_files
    for number in (1, 2):
        assert objects(service.home, OTHER, number=number) == objects(service.home, GALLERY)
        store = LocalStore(service.home / "regions" / "westcentralus" / f"replica-{number}")
        report = await BlobService().verify(store, OTHER, f"{IMAGE}/versions/1.0.0")
        assert report.ok and report.checked_chunks > 0
    image_id = f"/galleries/{OTHER}/images/{IMAGE}/versions/1.0.0"
    assert await deployed(service, image_id, "westcentralus", tmp_path) == source.read_bytes()

    log.puts.clear()
    await service.create_version_from(ADMIN, OTHER, IMAGE, "1.0.1", source_version=SOURCE, options=options)
    assert [put for put in log.puts if "/packs/" in put[2] or "/chunks/" in put[2]] == [], (
        "a second copy of the same disk finds every object there"
    )


@pytest.mark.parametrize(
    ("missing", "said"),
    [
        (f"/galleries/{GALLERY}/images/{IMAGE}/versions/7.7.7", "image version '7.7.7' not found"),
        (f"/galleries/nowhere/images/{IMAGE}/versions/1.0.0", "gallery 'nowhere' not found"),
    ],
)
async def test_a_source_that_does_not_exist_is_named_as_the_source(
    service: GalleryService, source: Path, missing: str, said: str
) -> None:
    await prepare(service, source)
    with pytest.raises(ResourceNotFoundError) as caught:
        await service.create_version_from(ADMIN, OTHER, IMAGE, "1.0.0", source_version=missing)
    assert str(caught.value).startswith(f"the source version {missing} does not exist ({said}")
    assert str(caught.value).endswith("name one that does")
    with pytest.raises(ResourceNotFoundError):
        await service.show_version(ADMIN, OTHER, IMAGE, "1.0.0")


async def test_a_source_replica_with_a_corrupt_pack_is_passed_over(
    service: GalleryService, source: Path, tmp_path: Path
) -> None:
    await prepare(service, source, ["westcentralus=2"])
    damaged = a_pack(service.home, GALLERY, number=1)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    await service.create_version_from(ADMIN, OTHER, IMAGE, "1.0.0", source_version=SOURCE)
    assert objects(service.home, OTHER) == objects(service.home, GALLERY, number=2), "the good copy"
    image_id = f"/galleries/{OTHER}/images/{IMAGE}/versions/1.0.0"
    assert await deployed(service, image_id, "westcentralus", tmp_path) == source.read_bytes()


async def test_a_source_corrupt_everywhere_fails_the_copy_clearly_and_the_same_create_redoes_it(
    service: GalleryService, source: Path, tmp_path: Path
) -> None:
    await prepare(service, source)
    damaged = a_pack(service.home, GALLERY)
    good = damaged.read_bytes()
    damaged.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))
    with pytest.raises(CopyError, match=f"pack {damaged.name} has no good copy"):
        await service.create_version_from(ADMIN, OTHER, IMAGE, "1.0.0", source_version=SOURCE)
    failed = await service.show_version(ADMIN, OTHER, IMAGE, "1.0.0")
    assert failed.provisioning_state is ProvisioningState.FAILED and failed.blob is None
    (status,) = failed.regions
    assert status.state is ReplicationState.FAILED
    assert status.details.startswith(f"copy from {SOURCE} failed") and damaged.name in status.details
    assert objects(service.home, OTHER) == {}, "nothing unverified is written"
    assert not (gallery_root(service.home, OTHER) / "images").exists()

    damaged.write_bytes(good)
    redone = await service.create_version_from(ADMIN, OTHER, IMAGE, "1.0.0", source_version=SOURCE)
    assert redone.provisioning_state is ProvisioningState.SUCCEEDED
    image_id = f"/galleries/{OTHER}/images/{IMAGE}/versions/1.0.0"
    assert await deployed(service, image_id, "westcentralus", tmp_path) == source.read_bytes()


async def test_an_interrupted_copy_leaves_the_version_failed_and_the_same_create_redoes_it(
    logged: tuple[GalleryService, PutLog], source: Path, tmp_path: Path
) -> None:
    service, log = logged
    await prepare(service, source)
    log.hold = f"galleries/{OTHER}/packs/"
    async with anyio.create_task_group() as group:
        group.start_soon(
            lambda: service.create_version_from(ADMIN, OTHER, IMAGE, "1.0.0", source_version=SOURCE)
        )
        await log.held.wait()
        group.cancel_scope.cancel()
    failed = await service.show_version(ADMIN, OTHER, IMAGE, "1.0.0")
    assert failed.provisioning_state is ProvisioningState.FAILED
    assert "the copy was interrupted" in failed.regions[0].details
    report = await service.fsck(ADMIN, gallery=OTHER)
    assert report.ok, report.problems  # no operation left running, no manifest half-written

    log.hold = None
    redone = await service.create_version_from(ADMIN, OTHER, IMAGE, "1.0.0", source_version=SOURCE)
    assert redone.provisioning_state is ProvisioningState.SUCCEEDED and redone.source_id == SOURCE
    image_id = f"/galleries/{OTHER}/images/{IMAGE}/versions/1.0.0"
    assert await deployed(service, image_id, "westcentralus", tmp_path) == source.read_bytes()


async def test_a_caller_who_may_not_read_the_source_is_refused_without_learning_that_it_exists(
    service: GalleryService, source: Path
) -> None:
    await prepare(service, source)
    await service.create_principal(ADMIN, "builder", "user")
    await service.create_assignment(ADMIN, "builder", "Contributor", f"/galleries/{OTHER}")
    with pytest.raises(AccessDeniedError) as existing:
        await service.create_version_from("builder", OTHER, IMAGE, "1.0.0", source_version=SOURCE)
    missing_id = SOURCE.replace("1.0.0", "9.9.9")
    with pytest.raises(AccessDeniedError) as missing:
        await service.create_version_from("builder", OTHER, IMAGE, "1.0.0", source_version=missing_id)
    assert str(existing.value).replace("1.0.0", "9.9.9") == str(missing.value)
    assert "builder" in str(existing.value) and SOURCE in str(existing.value)
    assert await service.list_versions(ADMIN, OTHER, IMAGE) == [], "nothing is recorded"

    await service.create_assignment(ADMIN, "builder", "Reader", SOURCE)
    copied = await service.create_version_from("builder", OTHER, IMAGE, "1.0.0", source_version=SOURCE)
    assert copied.provisioning_state is ProvisioningState.SUCCEEDED
    with pytest.raises(AccessDeniedError, match="builder"):
        await service.create_version_from("builder", GALLERY, IMAGE, "3.0.0", source_version=SOURCE)


async def test_a_source_not_completed_in_the_region_is_refused_saying_where_it_is(
    service: GalleryService, source: Path
) -> None:
    await prepare(service, source, ["westcentralus", "eastus2"])
    with pytest.raises(UnavailableError) as waiting:
        await service.create_version_from(
            ADMIN, OTHER, IMAGE, "1.0.0", source_version=SOURCE, location="eastus2"
        )
    message = str(waiting.value)
    assert "it is Unknown in eastus2" in message and "Completed in westcentralus" in message
    assert "--location westcentralus" in message
    with pytest.raises(UnavailableError, match="westeurope is not one of its target regions"):
        await service.create_version_from(
            ADMIN, OTHER, IMAGE, "1.0.0", source_version=SOURCE, location="West Europe"
        )
    assert await service.list_versions(ADMIN, OTHER, IMAGE) == [], "nothing is recorded"


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (f"/galleries/{GALLERY}", "names a gallery, not an image version"),
        (f"/galleries/{GALLERY}/images/{IMAGE}", "names an image definition, not an image version"),
        (f"/galleries/{GALLERY}/images/{IMAGE}/versions/latest", "'latest', which moves"),
        ("/", "names the home"),
        (f"/galleries/{GALLERY}/pictures/{IMAGE}", "invalid resource id"),
        (f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0", "1.0"),
    ],
)
async def test_a_source_id_that_names_no_version_by_number_is_refused(
    service: GalleryService, source: Path, given: str, said: str
) -> None:
    await prepare(service, source)
    with pytest.raises(InvalidInputError, match=said):
        await service.create_version_from(ADMIN, OTHER, IMAGE, "1.0.0", source_version=given)
    assert await service.list_versions(ADMIN, OTHER, IMAGE) == []


async def test_a_source_of_another_os_type_is_refused(service: GalleryService, source: Path) -> None:
    await prepare(service, source)
    windows = DefinitionFields(publisher="contoso", offer="windows", sku="2022", os_type="Windows")
    await service.create_definition(ADMIN, OTHER, "windows", windows)
    with pytest.raises(InvalidParameterError, match="OS type Linux"):
        await service.create_version_from(ADMIN, OTHER, "windows", "1.0.0", source_version=SOURCE)


async def test_a_copied_version_replicates_to_another_region_like_any_version(
    service: GalleryService, source: Path, tmp_path: Path
) -> None:
    await prepare(service, source)
    options = VersionOptions(target_regions=["westcentralus", "eastus2=2"])
    copied = await service.create_version_from(
        ADMIN, OTHER, IMAGE, "1.0.0", source_version=SOURCE, options=options
    )
    waiting = copied.status("eastus2")
    assert waiting is not None and waiting.state is ReplicationState.UNKNOWN
    assert "waiting for replication" in waiting.details
    replicated = await service.replicate_version(ADMIN, OTHER, IMAGE, "1.0.0")
    done = replicated.status("eastus2")
    assert done is not None and (done.state, done.completed_replicas) == (ReplicationState.COMPLETED, 2)
    for number in (1, 2):
        assert manifest(service.home, OTHER, "1.0.0", "eastus2", number) == manifest(
            service.home, GALLERY, "1.0.0"
        )
    image_id = f"/galleries/{OTHER}/images/{IMAGE}/versions/1.0.0"
    assert await deployed(service, image_id, "eastus2", tmp_path) == source.read_bytes()
    assert replicated.source_id == SOURCE


async def test_a_copy_in_progress_shows_in_its_source_region_status(
    service: GalleryService, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a client polling the version (the daemon answers before the copy ends) sees: the
    region Replicating with a percentage and what it is copying, then Completed."""
    await prepare(service, source)
    written: list[RegionStatus] = []
    record = service._catalog.set_region_status

    async def spy(gallery: str, image: str, version: ImageVersion, status: RegionStatus) -> None:
        if gallery == OTHER:
            written.append(status)
        await record(gallery, image, version, status)

    monkeypatch.setattr(service._catalog, "set_region_status", spy)
    await service.create_version_from(ADMIN, OTHER, IMAGE, "1.0.0", source_version=SOURCE)
    copying = [s for s in written if s.state is ReplicationState.REPLICATING]
    assert copying, "the copy wrote its progress while it ran"
    assert all(s.details == f"copying the disk of {SOURCE}" and 0 <= s.progress <= 99 for s in copying)
    assert written[-1].state is ReplicationState.COMPLETED and written[-1].progress == 100
