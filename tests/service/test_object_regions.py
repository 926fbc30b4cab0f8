"""Regions on S3 and Azure Blob, against the real test servers (``tools/dev.py services``).

A region is added with a URL and proven usable first; everything the service does with a
local region (publish, replicate, deploy, scrub, gc, fsck) works on object regions and between
kinds.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import obstore
import pytest

from blobrep.core.gallery import AggregatedState, ReplicationState
from blobrep.core.packs import read_table
from blobrep.errors import StorageAccessDeniedError, StorageMissingBucketError
from blobrep.service import DefinitionFields, GalleryService, VersionOptions
from blobrep.storage.object_url import ObjectKind, ObjectUrl
from tests.object_servers import listed, raw_backend
from tests.service.conftest import ADMIN, GALLERY, IMAGE


@pytest.mark.parametrize("kind", ["s3", "azure"])
async def test_an_object_region_is_added_shown_and_reachable(
    service: GalleryService, prefixes: dict[ObjectKind, ObjectUrl], kind: ObjectKind
) -> None:
    url = prefixes[kind]
    added = await service.add_region(ADMIN, "North Europe", url=str(url))
    assert (added.name, added.display_name, added.kind) == ("northeurope", "North Europe", kind)
    assert (added.url, added.path, added.reachable, added.replicas) == (str(url), None, True, 0)
    shown = await service.show_region(ADMIN, "northeurope")
    assert shown.url == str(url) and shown.reachable is True
    listed = {region.name: region for region in await service.list_regions(ADMIN)}
    assert listed["northeurope"].kind == kind
    assert all(region.reachable for region in listed.values())
    assert await service.unready_regions() == {}


async def test_a_bucket_that_does_not_exist_is_refused_at_add(service: GalleryService) -> None:
    before = (service.home / "blobrep.toml").read_text()
    with pytest.raises(StorageMissingBucketError, match=r"no-such-bucket-blobrep.*does not exist"):
        await service.add_region(ADMIN, "northeurope", url="s3://no-such-bucket-blobrep/images")
    assert (service.home / "blobrep.toml").read_text() == before, "nothing is added"
    assert "northeurope" not in {region.name for region in await service.list_regions(ADMIN)}


async def test_wrong_credentials_are_access_denied_naming_the_region(
    service: GalleryService, prefixes: dict[ObjectKind, ObjectUrl]
) -> None:
    secret = "not-the-secret-0123456789abcdef"
    config = service.home / "blobrep.toml"
    config.write_text(config.read_text() + f'\n[profiles.wrong]\nsecret_access_key = "{secret}"\n')
    with pytest.raises(StorageAccessDeniedError) as denied:
        await service.add_region(ADMIN, "northeurope", url=str(prefixes["s3"]), profile="wrong")
    assert "northeurope" in str(denied.value) and secret not in str(denied.value)


async def test_a_version_moves_between_kinds_and_deploys_scrubs_and_collects_everywhere(
    service: GalleryService,
    definition: str,
    source: Path,
    prefixes: dict[ObjectKind, ObjectUrl],
    tmp_path: Path,
) -> None:
    await service.add_region(ADMIN, "North Europe", url=str(prefixes["s3"]))
    await service.add_region(ADMIN, "West US", url=str(prefixes["azure"]))
    targets = VersionOptions(target_regions=["westcentralus", "northeurope=2", "westus=2"])
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=targets)
    version = await service.replicate_version(ADMIN, GALLERY, definition, "1.0.0")
    assert version.aggregated_state is AggregatedState.COMPLETED
    assert {(s.region, s.state, s.completed_replicas) for s in version.regions} == {
        ("westcentralus", ReplicationState.COMPLETED, 1),
        ("northeurope", ReplicationState.COMPLETED, 2),
        ("westus", ReplicationState.COMPLETED, 2),
    }
    assert (await service.show_region(ADMIN, "westus")).replicas == 2

    image_id = f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0"
    for region in ("westus", "northeurope"):
        out = tmp_path / f"deployed-{region}.raw"
        result = await service.deploy_vm(ADMIN, image_id, location=region, output=out)
        assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()
        assert result.ok and result.bytes_read > 0
        out.unlink()

    reports = await service.scrub(ADMIN, "northeurope", gallery=GALLERY)
    assert [(report.ok, len(report.replicas)) for report in reports] == [(True, 2)]

    # 1.1.0, a different disk, keeps the regions; 1.0.0 goes. 1.0.0 is one pack, and 1.1.0
    # names it too (for the chunks the two share) beside a pack of its own, so gc on S3 keeps
    # both whole in both replicas: nothing 1.1.0 needs goes.
    changed = tmp_path / "changed.raw"
    data = bytearray(source.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = bytes(range(256)) * 16
    changed.write_bytes(bytes(data))
    await service.create_version(ADMIN, GALLERY, definition, "1.1.0", source=changed, options=targets)
    await service.replicate_version(ADMIN, GALLERY, definition, "1.1.0")
    await service.delete_version(ADMIN, GALLERY, definition, "1.0.0")
    collected = await service.collect_garbage(ADMIN, GALLERY, regions=["northeurope"], grace=0)
    assert [report.replica for report in collected] == ["northeurope/replica-1", "northeurope/replica-2"]
    # (objects seen, referenced, deleted; packs seen, referenced, deleted)
    counts = [
        (
            r.chunks_seen,
            r.referenced_chunks,
            r.deleted_chunks,
            r.packs_seen,
            r.referenced_packs,
            r.deleted_packs,
        )
        for r in collected
    ]
    assert counts == [(2, 2, 0, 2, 2, 0)] * 2
    after = await service.scrub(ADMIN, "northeurope", gallery=GALLERY)
    assert [report.ok for report in after] == [True], "what 1.1.0 needs is all still there"
    out = tmp_path / "deployed-1.1.0.raw"
    await service.deploy_vm(ADMIN, image_id.replace("1.0.0", "1.1.0"), location="northeurope", output=out)
    assert out.read_bytes() == bytes(data)

    # Once 1.1.0 goes too, gc on S3 removes both packs from both replicas.
    await service.delete_version(ADMIN, GALLERY, definition, "1.1.0")
    collected = await service.collect_garbage(ADMIN, GALLERY, regions=["northeurope"], grace=0)
    deleted = [(r.replica, r.deleted_chunks, r.deleted_packs, r.error) for r in collected]
    assert deleted == [(f"northeurope/replica-{n}", 2, 2, None) for n in (1, 2)]
    for number in (1, 2):
        below = f"replica-{number}/galleries/{GALLERY}/"
        assert [meta["path"] for meta in await listed(prefixes["s3"], below + "packs/")] == []
        assert [meta["path"] for meta in await listed(prefixes["s3"], below + "chunks/")] == []


@pytest.mark.parametrize("kind", ["s3", "azure"])
async def test_a_corrupt_chunk_in_an_object_replica_fails_over_is_repaired_and_fsck_agrees(
    service: GalleryService,
    definition: str,
    source: Path,
    prefixes: dict[ObjectKind, ObjectUrl],
    kind: ObjectKind,
) -> None:
    await service.add_region(ADMIN, "North Europe", url=str(prefixes[kind]))
    targets = VersionOptions(target_regions=["westcentralus", "northeurope=3"])
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=targets)
    await service.replicate_version(ADMIN, GALLERY, definition, "1.0.0")
    # Damage one chunk in replica 2, behind blobrep's back: a byte in the middle of its frame
    # in the pack that holds it (the service publishes into packs; this image makes one).
    backend = raw_backend(prefixes[kind])
    packs = sorted(
        meta["path"] for meta in await listed(prefixes[kind], f"replica-2/galleries/{GALLERY}/packs/")
    )
    assert len(packs) == 1
    good = bytes(await (await obstore.get_async(backend, packs[0])).bytes_async())
    first = read_table(good, packs[0])[0]
    damaged = bytearray(good)
    damaged[first.offset + first.stored_length // 2] ^= 0xFF
    await obstore.put_async(backend, packs[0], bytes(damaged))

    image_id = f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0"
    summary = await service.deploy_scale_set(ADMIN, image_id, 12, location="northeurope")
    assert (summary.succeeded, summary.errors) == (12, 0), "every VM got a verified disk"
    served = summary.statistics
    assert served is not None and served.failovers >= 1 and served.repairs >= 1
    assert sum(1 for replica in served.replicas.values() if replica.bytes_served) == 3, "spread over all 3"
    repaired = bytes(await (await obstore.get_async(backend, packs[0])).bytes_async())
    assert repaired == good, "the bad copy was written over with a good one, whole"
    report = await service.fsck(ADMIN, gallery=GALLERY, location="northeurope")
    assert report.ok and report.chunks_checked > 0, report.problems


@pytest.mark.parametrize(("source_kind", "other_kind"), [("s3", "azure"), ("azure", "s3")])
async def test_a_gallery_in_an_object_region_publishes_there_and_replicates_to_every_kind(
    service: GalleryService,
    source: Path,
    prefixes: dict[ObjectKind, ObjectUrl],
    tmp_path: Path,
    source_kind: ObjectKind,
    other_kind: ObjectKind,
) -> None:
    await service.add_region(ADMIN, "North Europe", url=str(prefixes[source_kind]))
    await service.add_region(ADMIN, "West US", url=str(prefixes[other_kind]))
    await service.create_gallery(ADMIN, "objects", location="northeurope")
    fields = DefinitionFields(publisher="contoso", offer="ubuntu", sku="22_04", os_type="Linux")
    await service.create_definition(ADMIN, "objects", IMAGE, fields)
    targets = VersionOptions(target_regions=["northeurope=2", "westus", "eastus2"])
    await service.create_version(ADMIN, "objects", IMAGE, "1.0.0", source=source, options=targets)
    version = await service.replicate_version(ADMIN, "objects", IMAGE, "1.0.0")
    assert {(s.region, s.state, s.completed_replicas) for s in version.regions} == {
        ("northeurope", ReplicationState.COMPLETED, 2),
        ("westus", ReplicationState.COMPLETED, 1),
        ("eastus2", ReplicationState.COMPLETED, 1),
    }
    image_id = f"/galleries/objects/images/{IMAGE}/versions/latest"
    for region in ("eastus2", "westus", "northeurope"):
        out = tmp_path / f"{region}.raw"
        await service.deploy_vm(ADMIN, image_id, location=region, output=out)
        assert out.read_bytes() == source.read_bytes(), region
