"""Replication and garbage collection: bringing every target region of a version to Completed.

The catalog says what should exist (target regions, effective replica counts); the replicas'
manifests say what does. :meth:`_Replication.replicate_version` hands both to the engine's
reconcile pass, which moves only missing chunks, manifest last, regions in parallel, and
reports per region. This module turns that into regional status: ``Replicating`` with
progress while it runs (written to the catalog at most a few times a second, not per
chunk), then ``Completed`` or ``Failed`` with the reason in words. A failed region never
stops the others, and running again after the cause is fixed completes it without copying
what is already there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Final

import anyio

from blobrep.core.access import Action
from blobrep.core.gallery import GalleryImageVersion, RegionStatus, ReplicationState
from blobrep.core.ids import ResourceId
from blobrep.core.names import BlobName
from blobrep.core.regions import normalize_region
from blobrep.core.version import ImageVersion
from blobrep.engine.gc import GcReport, gc_gallery
from blobrep.engine.replicate import RegionOutcome, RegionProgress, RegionTarget, replicate
from blobrep.errors import BlobrepError, UnavailableError
from blobrep.service._base import _Base
from blobrep.service.home import RegionConfig
from blobrep.storage.base import Store

#: Seconds between catalog writes of replication progress.
STATUS_INTERVAL: Final = 0.5

ReplicationProgress = Callable[[RegionProgress], None]
"""Called on the event loop as regions advance (batched), for progress bars."""


class _StatusWriter:
    """Collects the latest progress per region and writes it to the catalog now and then."""

    def __init__(
        self, service: _Replication, version: GalleryImageVersion, progress: ReplicationProgress | None
    ):
        self._service = service
        self._version = version
        self._forward = progress
        self._pending: dict[str, RegionProgress] = {}
        self._wake = anyio.Event()

    def __call__(self, update: RegionProgress) -> None:
        self._pending[update.region] = update
        self._wake.set()
        if self._forward is not None:
            self._forward(update)

    async def run(self) -> None:
        """Write pending progress until cancelled (the caller cancels once replication ends)."""
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            pending, self._pending = self._pending, {}
            for update in pending.values():
                percent = 100 * update.done_bytes // update.total_bytes if update.total_bytes else 100
                status = RegionStatus(
                    update.region,
                    ReplicationState.REPLICATING,
                    min(percent, 99),
                    update.completed_replicas,
                    update.target_replicas,
                    "copying chunks",
                )
                await self._service._set_status(self._version, status)
            await anyio.sleep(STATUS_INTERVAL)


class _Replication(_Base):
    async def _set_status(self, version: GalleryImageVersion, status: RegionStatus) -> None:
        await self._catalog.set_region_status(version.gallery, version.image, version.version, status)

    async def replicate_version(
        self,
        caller: str,
        gallery: str,
        image: str,
        version: str,
        *,
        regions: Sequence[str] | None = None,
        retry_failed: bool = False,
        progress: ReplicationProgress | None = None,
    ) -> GalleryImageVersion:
        """Bring the version's target regions (or the given ones) to their replica counts.

        Regions marked Failed are left alone unless ``retry_failed``; a region already whole
        costs one manifest read per replica.

        Raises:
            UnavailableError: the source region does not hold the version yet.
        """
        number = ImageVersion.parse(version)
        await self._check(caller, Action.WRITE, ResourceId.of_version(gallery, image, number))
        record = await self._catalog.get_version(gallery, image, number)
        wanted = None if regions is None else {normalize_region(region) for region in regions}
        await self._replicate(record, wanted, retry_failed, progress)
        return await self._catalog.get_version(gallery, image, number)

    async def replicate_all(
        self,
        caller: str,
        gallery: str,
        image: str | None = None,
        *,
        regions: Sequence[str] | None = None,
        retry_failed: bool = False,
        progress: ReplicationProgress | None = None,
    ) -> list[GalleryImageVersion]:
        """Reconcile every version of a gallery (or of one definition) the caller may write to."""
        authorizer = await self._authorizer(caller)
        images = (
            [image]
            if image is not None
            else [item.name for item in await self._catalog.list_definitions(gallery)]
        )
        done: list[GalleryImageVersion] = []
        wanted = None if regions is None else {normalize_region(region) for region in regions}
        for name in images:
            for record in await self._catalog.list_versions(gallery, name):
                authorizer.check(Action.WRITE, ResourceId.of_version(gallery, name, record.version))
                if record.blob is None:
                    continue  # never published: nothing to copy from
                await self._replicate(record, wanted, retry_failed, progress)
                done.append(await self._catalog.get_version(gallery, name, record.version))
        return done

    async def _replicate(
        self,
        record: GalleryImageVersion,
        wanted: set[str] | None,
        retry_failed: bool,
        progress: ReplicationProgress | None,
    ) -> list[RegionOutcome]:
        source_status = record.status(record.location)
        if record.blob is None or source_status is None or source_status.completed_replicas < 1:
            version_id = ResourceId.of_version(record.gallery, record.image, record.version)
            raise UnavailableError(
                f"{version_id} is not published in its source region {record.location} yet;"
                " nothing can be replicated from it"
            )
        configs = await self._regions()
        sources = [
            self._store(configs[record.location], number, create=False)
            for number in range(1, source_status.completed_replicas + 1)
        ]
        profile = record.publishing_profile
        targets: list[RegionTarget] = []
        for target in profile.target_regions:
            status = record.status(target.name)
            if wanted is not None and target.name not in wanted:
                continue
            if status is not None and status.state is ReplicationState.FAILED and not retry_failed:
                continue
            count = profile.effective_replica_count(target)
            try:
                stores = self._region_stores(configs.get(target.name), target.name, count)
            except BlobrepError as exc:
                await self._set_status(record, _failed(target.name, count, str(exc)))
                continue
            targets.append(RegionTarget(target.name, stores))
            begun = status or RegionStatus(target.name, target_replicas=count)
            if begun.state is not ReplicationState.COMPLETED or begun.completed_replicas != count:
                await self._set_status(
                    record,
                    dataclasses.replace(
                        begun, state=ReplicationState.REPLICATING, target_replicas=count, details=""
                    ),
                )
        if not targets:
            return []
        writer = _StatusWriter(self, record, progress)
        async with anyio.create_task_group() as group:
            group.start_soon(writer.run)
            try:
                outcomes = await replicate(
                    sources, targets, record.gallery, BlobName(record.image, record.version), progress=writer
                )
            finally:
                group.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            for outcome in outcomes:
                await self._set_status(record, _final(outcome))
        return outcomes

    def _region_stores(self, region: RegionConfig | None, name: str, count: int) -> list[Store]:
        if region is None:
            raise UnavailableError(f"region {name!r} is no longer configured in this home")
        return [self._store(region, number, create=True) for number in range(1, count + 1)]

    async def collect_garbage(
        self,
        caller: str,
        gallery: str,
        *,
        regions: Sequence[str] | None = None,
        grace: float = 3600.0,
        dry_run: bool = False,
    ) -> list[GcReport]:
        """Delete chunks no manifest references in every replica of the gallery's regions.

        Needs delete rights on the gallery. Chunks younger than ``grace`` seconds stay, and a
        replica that a publish or replication is writing to is skipped (reported busy).
        """
        await self._check(caller, Action.DELETE, ResourceId.of_gallery(gallery))
        await self._catalog.get_gallery(gallery)
        configs = await self._regions()
        names = sorted(configs) if regions is None else [normalize_region(region) for region in regions]
        stores: list[Store] = []
        for name in names:
            region = configs.get(name)
            if region is None:
                await self._region(name)  # raises, naming the known regions
                continue
            for number in await anyio.to_thread.run_sync(self._home.replica_numbers, region):
                stores.append(self._store(region, number, create=False))
        return await gc_gallery(stores, gallery, grace=grace, dry_run=dry_run)


def _failed(region: str, count: int, details: str) -> RegionStatus:
    return RegionStatus(region, ReplicationState.FAILED, 0, 0, count, details)


def _final(outcome: RegionOutcome) -> RegionStatus:
    if outcome.error is None and outcome.completed_replicas == outcome.target_replicas:
        return RegionStatus(
            outcome.region,
            ReplicationState.COMPLETED,
            100,
            outcome.completed_replicas,
            outcome.target_replicas,
            "",
        )
    details = outcome.error or f"{outcome.completed_replicas} of {outcome.target_replicas} replicas complete"
    return RegionStatus(
        outcome.region,
        ReplicationState.FAILED,
        100 * outcome.completed_replicas // max(outcome.target_replicas, 1),
        outcome.completed_replicas,
        outcome.target_replicas,
        details,
    )
