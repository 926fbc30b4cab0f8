"""Data disks: a version with an OS disk and data disks at LUNs, each a blob of its own in the
gallery's one chunk store, published, replicated (to local and object regions), deployed,
scrubbed, checked, repaired, deleted and collected as a whole."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from blobrep.core.gallery import AggregatedState, ReplicationState
from blobrep.core.manifest import parse_manifest
from blobrep.core.selection import Policy
from blobrep.engine.replicate_state import RegionProgress
from blobrep.errors import InvalidNameError, InvalidParameterError, SourceError, UnavailableError
from blobrep.service import DefinitionFields, GalleryService, SyntheticImage, VersionOptions
from blobrep.service.views import version_view
from blobrep.storage.object_url import ObjectKind, ObjectUrl
from tests.service.conftest import ADMIN, GALLERY, IMAGE, MIB

VERSION_ID = f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0"


@pytest.fixture(scope="module")
def data0(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 MiB data disk sharing nothing with the OS disk."""
    path = tmp_path_factory.mktemp("data") / "data0.raw"
    with open(path, "wb") as out:  # each block is written before the next reuses its buffer
        for block in SyntheticImage(2 * MIB, seed=99).blocks():
            out.write(block)
    return path


def replica(service: GalleryService, region: str = "westcentralus", number: int = 1) -> Path:
    return service.home / "regions" / region / f"replica-{number}"


def stored(root: Path, gallery: str = GALLERY) -> list[Path]:
    """The pack and chunk objects of ``gallery`` in one local replica."""
    base = root / "galleries" / gallery
    return sorted(path for kind in ("packs", "chunks") for path in (base / kind).rglob("*") if path.is_file())


async def create(
    service: GalleryService, definition: str, source: Path, disks: dict[int, Path], targets: list[str]
) -> None:
    await service.create_version(
        ADMIN,
        GALLERY,
        definition,
        "1.0.0",
        source=source,
        options=VersionOptions(target_regions=targets),
        data_disks=disks,
    )


async def test_every_disk_is_published_deduplicated_replicated_deployed_and_checked(
    service: GalleryService,
    definition: str,
    source: Path,
    data0: Path,
    prefixes: dict[ObjectKind, ObjectUrl],
    tmp_path: Path,
) -> None:
    await service.add_region(ADMIN, "North Europe", url=str(prefixes["s3"]))
    # The same OS disk and data disk 0 alone, in a gallery of their own, to count against.
    await service.create_gallery(ADMIN, "alone", location="westcentralus")
    fields = DefinitionFields(publisher="contoso", offer="ubuntu", sku="22_04", os_type="Linux")
    await service.create_definition(ADMIN, "alone", IMAGE, fields)
    await service.create_version(ADMIN, "alone", IMAGE, "1.0.0", source=source, data_disks={0: data0})
    alone = stored(replica(service), "alone")

    copy = tmp_path / "os-copy.raw"
    shutil.copyfile(source, copy)
    await create(
        service, definition, source, {1: copy, 0: data0}, ["westcentralus", "eastus2", "northeurope=2"]
    )
    created = await service.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert [disk.lun for disk in created.data_disks] == [0, 1], "sorted by LUN"
    assert created.data_disks[1].blob is not None and created.blob is not None
    assert created.data_disks[1].blob.digest == created.blob.digest
    assert created.is_completed_in("westcentralus")
    published = stored(replica(service))
    assert len(published) == len(alone) > 0, "data disk 1 repeats the OS disk: not one object more"
    assert sum(p.stat().st_size for p in published) == sum(p.stat().st_size for p in alone)
    root = replica(service) / "galleries" / GALLERY / "images" / IMAGE / "versions" / "1.0.0"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("manifest.json")) == [
        "lun0/manifest.json",
        "lun1/manifest.json",
        "manifest.json",
    ]

    version = await service.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert version.aggregated_state is AggregatedState.COMPLETED
    assert {(s.region, s.completed_replicas) for s in version.regions} == {
        ("westcentralus", 1),
        ("eastus2", 1),
        ("northeurope", 2),
    }
    view = version_view(version)["storageProfile"]
    assert view["sizeInBytes"] == source.stat().st_size == view["osDiskImage"]["sizeInBytes"]
    assert [(d["lun"], d["sizeInBytes"]) for d in view["dataDiskImages"]] == [
        (0, data0.stat().st_size),
        (1, source.stat().st_size),
    ]

    for region in ("eastus2", "northeurope"):
        out = tmp_path / region
        out.mkdir()
        result = await service.deploy_vm(ADMIN, VERSION_ID, location=region, output_dir=out, name="web1")
        assert (out / "web1" / "osdisk.img").read_bytes() == source.read_bytes()
        assert (out / "web1" / "lun0.img").read_bytes() == data0.read_bytes()
        assert (out / "web1" / "lun1.img").read_bytes() == source.read_bytes()
        assert [(d.lun, d.output, d.ok) for d in result.data_disks] == [
            (0, str(out / "web1" / "lun0.img"), True),
            (1, str(out / "web1" / "lun1.img"), True),
        ]
        (report,) = await service.scrub(ADMIN, region, gallery=GALLERY)
        assert report.ok and sum(r.manifests for r in report.replicas) == 3 * len(report.replicas)
    checked = await service.fsck(ADMIN, gallery=GALLERY)
    assert checked.ok, checked.problems

    # A second version: only what is new moves, and a deleted version's disks all go.
    await service.delete_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert not root.exists() or list(root.rglob("manifest.json")) == []
    collected = await service.collect_garbage(ADMIN, GALLERY, grace=0)
    assert all(report.error is None for report in collected)
    for region, count in (("westcentralus", 1), ("eastus2", 1)):
        assert stored(replica(service, region, count)) == [], "every disk's chunks are reclaimed"
    assert stored(replica(service), "alone") == alone, "another gallery keeps its own"


async def test_a_scale_set_deploys_every_disk_per_instance_and_repairs_a_damaged_data_disk(
    service: GalleryService, definition: str, source: Path, data0: Path, tmp_path: Path
) -> None:
    await create(service, definition, source, {0: data0}, ["westcentralus=2"])
    first = replica(service, number=1) / "galleries" / GALLERY
    manifest = parse_manifest(
        (first / "images" / IMAGE / "versions" / "1.0.0" / "lun0" / "manifest.json").read_bytes()
    )
    # Every frame of data disk 0 is damaged in replica 1, and round robin sends the data disk's
    # reader there on one of its first two turns: a failover and a repair are certain.
    packs = {c.pack.digest for c in manifest.chunks if c.pack is not None}
    assert packs and len([c for c in manifest.chunks if c.pack is not None]) >= 2
    good = {digest: (first / "packs" / digest[:2] / digest).read_bytes() for digest in packs}
    for digest in packs:
        damaged = bytearray(good[digest])
        for chunk in manifest.chunks:
            if chunk.pack is not None and chunk.pack.digest == digest:
                damaged[chunk.offset + chunk.stored_length // 2] ^= 0xFF
        (first / "packs" / digest[:2] / digest).write_bytes(bytes(damaged))

    summary = await service.deploy_scale_set(
        ADMIN, VERSION_ID, 4, output_dir=tmp_path, name="web", policy=Policy.ROUND_ROBIN
    )
    assert (summary.succeeded, summary.errors) == (4, 0), summary.failures
    assert summary.statistics.failovers >= 1 and summary.statistics.repairs >= 1
    assert summary.statistics.replicas["westcentralus/replica-1"].failures >= 1, "the bad copy is named"
    for digest, pack in good.items():
        assert (first / "packs" / digest[:2] / digest).read_bytes() == pack, "written over with a good copy"
    for index in range(4):
        assert (tmp_path / f"web_{index}" / "osdisk.img").read_bytes() == source.read_bytes()
        assert (tmp_path / f"web_{index}" / "lun0.img").read_bytes() == data0.read_bytes()
    assert summary.data_disk_outputs == tuple((str(tmp_path / f"web_{i}" / "lun0.img"),) for i in range(4))
    assert (await service.fsck(ADMIN, gallery=GALLERY)).ok


async def test_a_region_is_completed_only_when_every_disk_is_there(
    service: GalleryService, definition: str, source: Path, data0: Path
) -> None:
    await create(service, definition, source, {3: data0}, ["westcentralus", "eastus2"])
    # Data disk 3's objects vanish from the one source replica: the OS disk still copies.
    lun3 = replica(service) / "galleries" / GALLERY / "images" / IMAGE / "versions" / "1.0.0" / "lun3"
    manifest = parse_manifest((lun3 / "manifest.json").read_bytes())
    own = {c.pack.digest for c in manifest.chunks if c.pack is not None}
    for digest in own:
        (replica(service) / "galleries" / GALLERY / "packs" / digest[:2] / digest).unlink()
    version = await service.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    status = version.status("eastus2")
    assert status is not None and status.state is ReplicationState.FAILED
    assert status.details.startswith("lun3: "), status.details
    eastus2 = replica(service, "eastus2") / "galleries" / GALLERY / "images" / IMAGE / "versions" / "1.0.0"
    assert (eastus2 / "manifest.json").is_file() and not (eastus2 / "lun3").exists()
    with pytest.raises(UnavailableError):
        await service.deploy_vm(ADMIN, VERSION_ID, location="eastus2")


@pytest.mark.parametrize(
    ("disks", "error", "message"),
    [
        ({64: "data"}, InvalidNameError, "invalid data disk LUN 64: use a whole number from 0 to 63"),
        ({-1: "data"}, InvalidNameError, "invalid data disk LUN -1"),
        ({0: "missing.raw"}, SourceError, "missing.raw"),
    ],
)
async def test_a_wrong_data_disk_records_nothing(
    service: GalleryService,
    definition: str,
    source: Path,
    data0: Path,
    tmp_path: Path,
    disks: dict[int, str],
    error: type[Exception],
    message: str,
) -> None:
    given = {lun: (data0 if name == "data" else tmp_path / name) for lun, name in disks.items()}
    with pytest.raises(error, match=message):
        await create(service, definition, source, given, ["westcentralus"])
    assert await service.list_versions(ADMIN, GALLERY, IMAGE) == []


async def test_one_output_file_is_refused_for_a_version_with_data_disks(
    service: GalleryService, definition: str, source: Path, data0: Path, tmp_path: Path
) -> None:
    await create(service, definition, source, {0: data0}, ["westcentralus"])
    out = tmp_path / "disk.img"
    with pytest.raises(InvalidParameterError, match=r"has data disks \(LUN 0\).* use --output-dir"):
        await service.deploy_vm(ADMIN, VERSION_ID, output=out)
    assert not out.exists()
    discarded = await service.deploy_vm(ADMIN, VERSION_ID)
    assert discarded.output is None and [d.size for d in discarded.data_disks] == [data0.stat().st_size]


async def test_a_version_created_from_another_carries_every_disk(
    service: GalleryService, definition: str, source: Path, data0: Path, tmp_path: Path
) -> None:
    await create(service, definition, source, {7: data0}, ["westcentralus"])
    before = stored(replica(service))
    copied = await service.create_version_from(
        ADMIN, GALLERY, IMAGE, "2.0.0", source_version=VERSION_ID, options=VersionOptions()
    )
    original = await service.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert [(d.lun, d.blob and d.blob.digest) for d in copied.data_disks] == [
        (7, original.data_disks[0].blob and original.data_disks[0].blob.digest)
    ]
    assert stored(replica(service)) == before, "a copy in its own gallery writes no chunk again"
    await service.deploy_vm(ADMIN, VERSION_ID.replace("1.0.0", "2.0.0"), output_dir=tmp_path, name="copy")
    assert (tmp_path / "copy" / "lun7.img").read_bytes() == data0.read_bytes()
    assert (tmp_path / "copy" / "osdisk.img").read_bytes() == source.read_bytes()


async def test_a_copy_of_every_disk_into_another_gallery_reports_one_rising_progress(
    service: GalleryService, definition: str, source: Path, data0: Path, tmp_path: Path
) -> None:
    await create(service, definition, source, {0: data0}, ["westcentralus"])
    await service.create_gallery(ADMIN, "other", location="westcentralus")
    fields = DefinitionFields(publisher="contoso", offer="ubuntu", sku="22_04", os_type="Linux")
    await service.create_definition(ADMIN, "other", IMAGE, fields)
    seen: list[RegionProgress] = []
    copied = await service.create_version_from(
        ADMIN, "other", IMAGE, "1.0.0", source_version=VERSION_ID, progress=seen.append
    )
    done = [update.done_bytes for update in seen]
    assert done and done == sorted(done), "the bar never goes back when the next disk starts"
    assert done[-1] == seen[-1].total_bytes > 0
    assert [update.completed_replicas for update in seen[:-1]] == [0] * (len(seen) - 1)
    assert seen[-1].completed_replicas == seen[-1].target_replicas == 1
    assert [disk.lun for disk in copied.data_disks] == [0]
    await service.deploy_vm(
        ADMIN, "/galleries/other/images/ubuntu/versions/1.0.0", output_dir=tmp_path, name="c"
    )
    assert (tmp_path / "c" / "lun0.img").read_bytes() == data0.read_bytes()
