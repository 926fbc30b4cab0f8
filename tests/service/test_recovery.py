"""Crash recovery: an operation whose process died is moved on; a live one is left alone."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from blobrep.core.gallery import ProvisioningState, ReplicationState
from blobrep.core.holders import ProcessIdentity
from blobrep.core.operations import OperationKind
from blobrep.core.version import ImageVersion
from blobrep.service import GalleryService
from blobrep.storage.processes import this_process
from tests.service.conftest import ADMIN, GALLERY, IMAGE

V1 = ImageVersion(1, 0, 0)


def _identity_of(process: subprocess.Popen[bytes]) -> ProcessIdentity:
    fields = Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()
    return dataclasses.replace(this_process(), pid=process.pid, started=int(fields[19]))


@pytest.fixture
def dead_owner() -> ProcessIdentity:
    """The identity of a process that has been killed with SIGKILL."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    identity = _identity_of(process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return identity


@pytest.fixture
def live_owner() -> Iterator[ProcessIdentity]:
    """The identity of a process that runs for the length of the test."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield _identity_of(process)
    finally:
        process.kill()
        process.wait()


async def _stuck_create(service: GalleryService, definition: str, owner: ProcessIdentity) -> None:
    """A version left Creating, its source region Replicating, by a create run by ``owner``."""
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=_empty_source(service))
    version = await service._catalog.get_version(GALLERY, IMAGE, V1)
    stuck = dataclasses.replace(version, provisioning_state=ProvisioningState.CREATING, blob=None)
    await service._catalog.update_version(stuck)
    status = version.status("westcentralus")
    assert status is not None
    await service._catalog.set_region_status(
        GALLERY,
        IMAGE,
        V1,
        dataclasses.replace(status, state=ReplicationState.REPLICATING, details="publishing"),
    )
    assert await service._catalog.begin_operation(GALLERY, IMAGE, V1, "", OperationKind.CREATE, owner) is None


def _empty_source(service: GalleryService) -> Path:
    path = service.home.parent / "tiny.raw"
    path.write_bytes(os.urandom(4096))
    return path


async def test_a_create_whose_process_died_is_failed_interrupted_on_open_and_can_be_redone(
    service: GalleryService, definition: str, dead_owner: ProcessIdentity, source: Path
) -> None:
    await _stuck_create(service, definition, dead_owner)

    async with await GalleryService.open(service.home) as reopened:
        version = await reopened.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
        assert version.provisioning_state is ProvisioningState.FAILED
        status = version.status("westcentralus")
        assert status is not None and status.state is ReplicationState.FAILED
        assert "interrupted" in status.details and str(dead_owner.pid) in status.details
        assert await reopened._catalog.list_operations() == []

        redone = await reopened.create_version(ADMIN, GALLERY, IMAGE, "1.0.0", source=source)
        assert redone.provisioning_state is ProvisioningState.SUCCEEDED
        done = redone.status("westcentralus")
        assert done is not None and done.state is ReplicationState.COMPLETED


async def test_a_copy_whose_process_died_says_it_was_copying_and_the_same_create_redoes_it(
    service: GalleryService, definition: str, dead_owner: ProcessIdentity, source: Path
) -> None:
    await service.create_version(ADMIN, GALLERY, definition, "0.9.0", source=source)
    source_id = f"/galleries/{GALLERY}/images/{IMAGE}/versions/0.9.0"
    await _stuck_create(service, definition, dead_owner)
    stuck = await service._catalog.get_version(GALLERY, IMAGE, V1)
    await service._catalog.update_version(dataclasses.replace(stuck, source_id=source_id))

    async with await GalleryService.open(service.home) as reopened:
        status = (await reopened.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")).status("westcentralus")
        assert status is not None and status.state is ReplicationState.FAILED
        assert f"died while copying the disk of {source_id}" in status.details
        redone = await reopened.create_version_from(ADMIN, GALLERY, IMAGE, "1.0.0", source_version=source_id)
        assert redone.provisioning_state is ProvisioningState.SUCCEEDED
        original = await reopened.show_version(ADMIN, GALLERY, IMAGE, "0.9.0")
        assert redone.blob is not None and original.blob is not None
        assert redone.blob.digest == original.blob.digest


async def test_a_create_run_by_a_live_process_is_left_alone(
    service: GalleryService, definition: str, live_owner: ProcessIdentity
) -> None:
    await _stuck_create(service, definition, live_owner)

    async with await GalleryService.open(service.home) as reopened:
        version = await reopened.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
        assert version.provisioning_state is ProvisioningState.CREATING
        (operation,) = await reopened._catalog.list_operations()
        assert operation.owner == live_owner


async def test_a_deletion_whose_process_died_is_finished(
    service: GalleryService, definition: str, dead_owner: ProcessIdentity, source: Path
) -> None:
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    version = await service._catalog.get_version(GALLERY, IMAGE, V1)
    await service._catalog.update_version(
        dataclasses.replace(version, provisioning_state=ProvisioningState.DELETING)
    )
    await service._catalog.begin_operation(GALLERY, IMAGE, V1, "", OperationKind.DELETE, dead_owner)
    manifest = (
        (service.home / "regions" / "westcentralus" / "replica-1" / "galleries" / GALLERY / "images" / IMAGE)
        / "versions"
        / "1.0.0"
        / "manifest.json"
    )
    assert manifest.exists()

    async with await GalleryService.open(service.home) as reopened:
        assert await reopened.list_versions(ADMIN, GALLERY, IMAGE) == []
    assert not manifest.exists()


async def test_a_replication_whose_process_died_resumes_at_the_next_replicate(
    service: GalleryService, definition: str, dead_owner: ProcessIdentity, source: Path
) -> None:
    from blobrep.service import VersionOptions

    await service.create_version(
        ADMIN,
        GALLERY,
        definition,
        "1.0.0",
        source=source,
        options=VersionOptions(target_regions=["westcentralus", "eastus2"]),
    )
    version = await service._catalog.get_version(GALLERY, IMAGE, V1)
    waiting = version.status("eastus2")
    assert waiting is not None
    await service._catalog.set_region_status(
        GALLERY, IMAGE, V1, dataclasses.replace(waiting, state=ReplicationState.REPLICATING, progress=40)
    )
    await service._catalog.begin_operation(GALLERY, IMAGE, V1, "eastus2", OperationKind.REPLICATE, dead_owner)

    async with await GalleryService.open(service.home) as reopened:
        shown = (await reopened.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")).status("eastus2")
        assert shown is not None and shown.state is ReplicationState.REPLICATING
        assert "interrupted" in shown.details and "resumes" in shown.details
        replicated = await reopened.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")
        final = replicated.status("eastus2")
        assert final is not None and final.state is ReplicationState.COMPLETED
        assert await reopened._catalog.list_operations() == []


async def test_an_update_whose_process_died_is_finished_removing_what_it_removed(
    service: GalleryService, definition: str, dead_owner: ProcessIdentity, source: Path
) -> None:
    from blobrep.core.gallery import PublishingProfile
    from blobrep.service import VersionOptions

    await service.create_version(
        ADMIN,
        GALLERY,
        definition,
        "1.0.0",
        source=source,
        options=VersionOptions(
            target_regions=["westcentralus", "eastus2"], allow_replicated_location_deletion=True
        ),
    )
    version = await service.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert {status.state for status in version.regions} == {ReplicationState.COMPLETED}
    # Killed right after recording the new profile (eastus2 no longer a target), before
    # touching any replica.
    profile = version.publishing_profile
    kept = tuple(target for target in profile.target_regions if target.name == "westcentralus")
    updating = dataclasses.replace(
        version,
        publishing_profile=PublishingProfile(
            target_regions=kept,
            replica_count=profile.replica_count,
            storage_type=profile.storage_type,
            exclude_from_latest=profile.exclude_from_latest,
            end_of_life=profile.end_of_life,
            published=profile.published,
        ),
        provisioning_state=ProvisioningState.UPDATING,
    )
    await service._catalog.update_version(updating)
    await service._catalog.begin_operation(GALLERY, IMAGE, V1, "", OperationKind.UPDATE, dead_owner)
    east = service.home / "regions" / "eastus2" / "replica-1" / "galleries" / GALLERY / "images" / IMAGE
    assert (east / "versions" / "1.0.0" / "manifest.json").exists()

    async with await GalleryService.open(service.home) as reopened:
        finished = await reopened.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
        assert finished.provisioning_state is ProvisioningState.SUCCEEDED
        assert [status.region for status in finished.regions] == ["westcentralus"]
        assert (await reopened.fsck(ADMIN)).ok
    assert not (east / "versions" / "1.0.0" / "manifest.json").exists()
