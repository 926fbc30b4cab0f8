"""A replica busy with garbage collection defers its region: no state goes back, nothing fails."""

from __future__ import annotations

from pathlib import Path

import anyio

from blobrep.core.gallery import ReplicationState
from blobrep.engine.leases import hold_lease
from blobrep.service import GalleryService, LocalStore, VersionOptions
from tests.service.conftest import ADMIN, GALLERY, IMAGE


async def test_a_busy_replica_defers_its_region_and_the_next_run_completes_it(
    service: GalleryService, definition: str, source: Path
) -> None:
    await service.create_version(
        ADMIN,
        GALLERY,
        definition,
        "1.0.0",
        source=source,
        options=VersionOptions(target_regions=["westcentralus", "eastus2"]),
    )
    source_replica = LocalStore(service.home / "regions" / "westcentralus" / "replica-1")
    target_replica = LocalStore(service.home / "regions" / "eastus2" / "replica-1", create=True)
    with anyio.fail_after(30):
        async with (
            hold_lease(source_replica, GALLERY, exclusive=True, holder="garbage collection of gallery1"),
            hold_lease(target_replica, GALLERY, exclusive=True, holder="garbage collection of gallery1"),
        ):
            busy = await service.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    states = {status.region: status for status in busy.regions}
    # The source region was Completed: a busy replica is no evidence against that.
    assert states["westcentralus"].state is ReplicationState.COMPLETED
    assert states["westcentralus"].details == ""
    waiting = states["eastus2"]
    assert waiting.state is not ReplicationState.FAILED
    assert waiting.details.startswith("deferred: ") and "busy" in waiting.details

    done = await service.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert {status.state for status in done.regions} == {ReplicationState.COMPLETED}


async def test_one_versions_unreadable_source_does_not_stop_the_others(
    service: GalleryService, definition: str, source: Path
) -> None:
    both = VersionOptions(target_regions=["westcentralus", "eastus2"])
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=both)
    await service.create_version(ADMIN, GALLERY, definition, "1.0.1", source=source, options=both)
    versions = service.home / "regions" / "westcentralus" / "replica-1" / "galleries" / GALLERY / "images"
    (versions / IMAGE / "versions" / "1.0.0" / "manifest.json").unlink()

    done = await service.replicate_all(ADMIN, GALLERY)

    first, second = ({status.region: status for status in version.regions} for version in done)
    assert first["eastus2"].state is ReplicationState.FAILED
    assert "no blob" in first["eastus2"].details
    assert second["eastus2"].state is ReplicationState.COMPLETED
