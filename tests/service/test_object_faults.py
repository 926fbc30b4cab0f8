"""Object-store regions when their servers fail: only that region fails, with a clear reason,
and a retry finishes it without copying anything twice (real servers, through a relay that
can go down)."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from blobrep.core.gallery import ReplicationState
from blobrep.service import GalleryService, SyntheticImage, VersionOptions
from blobrep.storage.object_url import ObjectKind, ObjectUrl
from tests.object_servers import Outage, listed, service_environment
from tests.service.conftest import ADMIN, GALLERY, MIB

TARGETS = VersionOptions(target_regions=["westcentralus", "northeurope=2", "westus"])


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12 MiB VM-like image: a dozen chunks in three packs, so replication has a middle to
    fail in."""
    path = tmp_path_factory.mktemp("faults") / "disk.raw"
    with open(path, "wb") as out:
        for block in SyntheticImage(12 * MIB, seed=11).blocks():
            out.write(block)
    return path


async def stored_objects(url: ObjectUrl) -> set[str]:
    """Objects of chunk data under ``url`` (packs, chunks stored alone), read from the server
    directly."""
    return {
        meta["path"] for meta in await listed(url) if "/chunks/" in meta["path"] or "/packs/" in meta["path"]
    }


async def relayed_region(service: GalleryService, url: ObjectUrl, relay: Outage) -> None:
    """Region northeurope at ``url``, reached through ``relay`` (a profile naming its endpoint)."""
    config = service.home / "blobrep.toml"
    config.write_text(
        config.read_text() + f'\n[profiles.relayed]\nendpoint = "{relay.endpoint}"\nallow_http = true\n'
    )
    await service.add_region(ADMIN, "North Europe", url=str(url), profile="relayed")


async def test_a_server_down_mid_replication_fails_its_region_alone_and_a_retry_copies_nothing_twice(
    service: GalleryService, definition: str, image: Path, prefixes: dict[ObjectKind, ObjectUrl]
) -> None:
    environment = service_environment("s3")
    async with anyio.create_task_group() as group:
        outage = Outage(environment["AWS_ENDPOINT_URL"], group)
        await outage.up()
        await relayed_region(service, prefixes["s3"], outage)
        await service.add_region(ADMIN, "West US", url=str(prefixes["azure"]))
        await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=image, options=TARGETS)

        # Of six pack writes (three packs, two replicas): the server stops mid-replication.
        outage.cut_after = 2
        version = await service.replicate_version(ADMIN, GALLERY, definition, "1.0.0")
        states = {status.region: status for status in version.regions}
        assert states["westcentralus"].state is ReplicationState.COMPLETED
        assert states["westus"].state is ReplicationState.COMPLETED, "the other regions complete"
        failed = states["northeurope"]
        assert failed.state is ReplicationState.FAILED
        assert "cannot reach" in failed.details and "connection refused" in failed.details
        assert "northeurope" in failed.details, failed.details

        present = await stored_objects(prefixes["s3"])
        assert present, "the outage came after some packs were copied"
        await outage.up()
        written_before = len(outage.puts)
        version = await service.replicate_version(ADMIN, GALLERY, definition, "1.0.0", retry_failed=True)
        retried = {status.region: status for status in version.regions}["northeurope"]
        assert (retried.state, retried.completed_replicas) == (ReplicationState.COMPLETED, 2)
        after = outage.puts[written_before:]
        rewritten = {path.split("/", 2)[2] for path in after} & present
        assert not rewritten, f"copied twice: {sorted(rewritten)}"
        complete = await stored_objects(prefixes["s3"])
        assert len(complete) == 6 and all("/packs/" in path for path in complete)
        assert present < complete, "the outage came mid-way: the retry had packs left to copy"
        group.cancel_scope.cancel()


async def test_wrong_credentials_fail_the_region_with_access_denied_naming_it(
    service: GalleryService, definition: str, image: Path, prefixes: dict[ObjectKind, ObjectUrl]
) -> None:
    await service.add_region(ADMIN, "North Europe", url=str(prefixes["s3"]))
    config = service.home / "blobrep.toml"
    text = config.read_text().replace('url = "s3://', 'profile = "wrong"\nurl = "s3://', 1)
    config.write_text(text + '\n[profiles.wrong]\nsecret_access_key = "not-the-secret-at-all"\n')
    await service.create_version(
        ADMIN,
        GALLERY,
        definition,
        "1.0.0",
        source=image,
        options=VersionOptions(target_regions=["westcentralus", "northeurope"]),
    )
    version = await service.replicate_version(ADMIN, GALLERY, definition, "1.0.0")
    status = version.status("northeurope")
    assert status is not None and status.state is ReplicationState.FAILED
    assert "access denied" in status.details and "northeurope" in status.details
    assert "not-the-secret-at-all" not in status.details
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in status.details


@pytest.mark.parametrize("kind", ["s3", "azure"])
async def test_replicas_in_one_object_store_are_filled_by_copies_inside_it(
    service: GalleryService,
    definition: str,
    image: Path,
    prefixes: dict[ObjectKind, ObjectUrl],
    kind: ObjectKind,
) -> None:
    variable = "AWS_ENDPOINT_URL" if kind == "s3" else "AZURE_STORAGE_ENDPOINT"
    async with anyio.create_task_group() as group:
        relay = Outage(service_environment(kind)[variable], group)
        await relay.up()
        await relayed_region(service, prefixes[kind], relay)
        options = VersionOptions(target_regions=["westcentralus", "northeurope=3"])
        await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=image, options=options)
        version = await service.replicate_version(ADMIN, GALLERY, definition, "1.0.0")
        status = version.status("northeurope")
        assert status is not None and (status.state, status.completed_replicas) == (
            ReplicationState.COMPLETED,
            3,
        )
        one_replica = sum(meta["size"] for meta in await listed(prefixes[kind], "replica-1/"))
        assert relay.sent < 1.5 * one_replica, (
            f"{relay.sent} bytes sent for 3 replicas of {one_replica}: the siblings were uploaded, not copied"
        )
        reports = await service.scrub(ADMIN, "northeurope", gallery=GALLERY)
        assert [(report.ok, len(report.replicas)) for report in reports] == [(True, 3)]
        group.cancel_scope.cancel()
