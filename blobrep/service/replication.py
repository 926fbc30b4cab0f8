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

import contextlib
import dataclasses
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import anyio

from blobrep.core.access import Action
from blobrep.core.disks import version_disks
from blobrep.core.gallery import GalleryImageVersion, ProvisioningState, RegionStatus, ReplicationState
from blobrep.core.ids import ResourceId
from blobrep.core.operations import OperationKind
from blobrep.core.version import ImageVersion
from blobrep.errors import BlobrepError, BusyError, UnavailableError
from blobrep.service._base import counted_on
from blobrep.service.operations import hold_operation
from blobrep.service.retention import _Retention
from blobrep.service.status_writer import ReplicationProgress, status_writing

if TYPE_CHECKING:
    from blobrep.engine.gc import GcReport
    from blobrep.engine.replicate import RegionOutcome, RegionTarget
    from blobrep.service.home import RegionConfig
    from blobrep.storage.base import Store


class _Replication(_Retention):
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
        costs one manifest read per replica. If the version cannot be copied at all (no
        source replica can be read), the regions still waiting are marked Failed with the
        reason, as :meth:`replicate_all` does, and the error is raised.

        Raises:
            UnavailableError: the source region does not hold the version yet.
            ResourceNotFoundError: a region given is not one of this home's (the message
                lists those it has), or the version does not exist.
            InvalidRegionError: a region given is not a target region of the version.
        """
        from blobrep.core.regions import check_target_regions

        number = ImageVersion.parse(version)
        await self._check(caller, Action.WRITE, ResourceId.of_version(gallery, image, number))
        wanted = None if regions is None else await self._known_regions(*regions)
        record = await self._catalog.get_version(gallery, image, number)
        if wanted is not None:
            check_target_regions(
                wanted, record.publishing_profile, str(ResourceId.of_version(gallery, image, number))
            )
        try:
            await self._replicate(record, wanted, retry_failed, progress)
        except BusyError:
            raise  # another live process is at it: its regions are its own
        except BlobrepError as exc:
            if record.published and record.provisioning_state is ProvisioningState.SUCCEEDED:
                # The version as a whole could not be copied (no source replica readable):
                # its waiting regions say why, as replicate_all leaves them.
                with anyio.CancelScope(shield=True), contextlib.suppress(BlobrepError):
                    await self._fail_waiting(record, wanted, str(exc))
            raise
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
        """Reconcile every version of a gallery (or of one definition) the caller may write to.

        One version's trouble never stops the others: a version whose source cannot be read
        has its waiting regions marked Failed with the reason, and the next version goes on.
        A caller with Contributor on some definitions or versions of the gallery only
        reconciles those.

        Raises:
            ResourceNotFoundError: a region given is not one of this home's (the message lists
                those it has), or the gallery or definition does not exist (said only to a
                caller that may see it).
            AccessDeniedError: the caller may write to no version in scope.
        """
        authorizer = await self._authorizer(caller)
        wanted = None if regions is None else await self._known_regions(*regions)
        where, versions = await self._reach(authorizer, Action.WRITE, gallery, image)
        if not where.scopes:
            authorizer.check(
                Action.WRITE,
                ResourceId.of_gallery(gallery) if image is None else ResourceId.of_image(gallery, image),
            )
        done: list[GalleryImageVersion] = []
        for record in versions:
            if not record.published or record.provisioning_state is not ProvisioningState.SUCCEEDED:
                continue  # not (or no longer) published: nothing to copy from
            try:
                await self._replicate(record, wanted, retry_failed, progress)
            except BusyError:
                pass  # another live process is replicating it: its regions stay as they are
            except BlobrepError as exc:
                await self._fail_waiting(record, wanted, str(exc))
            done.append(await self._catalog.get_version(gallery, record.image, record.version))
        return done

    async def _replicate(
        self,
        record: GalleryImageVersion,
        wanted: set[str] | None,
        retry_failed: bool,
        progress: ReplicationProgress | None,
    ) -> list[RegionOutcome]:
        from blobrep.engine.replicate import RegionTarget

        profile = record.publishing_profile
        source_target = profile.target(record.location)
        if not record.published or record.provisioning_state is not ProvisioningState.SUCCEEDED:
            version_id = ResourceId.of_version(record.gallery, record.image, record.version)
            raise UnavailableError(
                f"{version_id} is not published in its source region {record.location} yet;"
                " nothing can be replicated from it"
            )
        configs = await self._regions()
        # Every replica the source region should hold: which of them hold the pinned manifest
        # is for the read path to find out, not for a status that may lag behind.
        source_count = profile.effective_replica_count(source_target) if source_target is not None else 1
        # A read may repair a source replica from another: the catalog knows of them all first.
        await self._note_replicas(record.location, source_count)
        sources = [
            self._store(configs[record.location], number, create=False)
            for number in range(1, source_count + 1)
        ]
        targets: list[RegionTarget] = []
        for target in profile.target_regions:
            status = record.status(target.name)
            if wanted is not None and target.name not in wanted:
                continue
            if status is not None and status.state is ReplicationState.FAILED and not retry_failed:
                continue
            count = profile.effective_replica_count(target)
            config = configs.get(target.name)
            if config is not None:
                # Before the first write to its replicas (opening one may already make it).
                await self._note_replicas(target.name, count)
            try:
                stores = self._region_stores(config, target.name, count)
            except BlobrepError as exc:
                await self._set_status(record, _failed(target.name, count, str(exc)))
                continue
            targets.append(RegionTarget(target.name, stores))
        if not targets:
            return []
        async with AsyncExitStack() as operations:
            owned: list[RegionTarget] = []
            for region_target in targets:
                try:
                    await operations.enter_async_context(
                        hold_operation(
                            self._catalog,
                            record.gallery,
                            record.image,
                            record.version,
                            region_target.region,
                            OperationKind.REPLICATE,
                        )
                    )
                except BusyError:
                    continue  # another live process replicates this region: left to it
                owned.append(region_target)
                await self._begin_region(record, region_target)
            if not owned:
                return []
            outcomes = await self._replicate_owned(record, sources, owned, progress)
        await self._after_completion(record)
        return outcomes

    async def _replicate_owned(
        self,
        record: GalleryImageVersion,
        sources: list[Store],
        targets: list[RegionTarget],
        progress: ReplicationProgress | None,
    ) -> list[RegionOutcome]:
        from blobrep.engine.replicate_disks import replicate_disks

        before = {status.region: status for status in record.regions}

        async def write(status: RegionStatus) -> None:
            await self._set_status(record, status)

        async with status_writing(write, progress, "copying chunks") as writer:
            outcomes = await replicate_disks(
                sources,
                targets,
                record.gallery,
                [(disk.name, disk.info) for disk in version_disks(record)],
                progress=writer,
            )
        with anyio.CancelScope(shield=True):
            for outcome in outcomes:
                if outcome.deferred is None:
                    await self._set_status(record, _final(outcome))
                else:
                    await self._set_status(record, _deferred(before.get(outcome.region), outcome))
        return outcomes

    async def _begin_region(self, record: GalleryImageVersion, target: RegionTarget) -> None:
        """Mark a region Replicating as its operation starts, unless it is already whole."""
        count = len(target.stores)
        status = record.status(target.region)
        begun = status or RegionStatus(target.region, target_replicas=count)
        if begun.state is not ReplicationState.COMPLETED or begun.completed_replicas != count:
            await self._set_status(
                record,
                dataclasses.replace(
                    begun, state=ReplicationState.REPLICATING, target_replicas=count, details=""
                ),
            )

    async def _fail_waiting(self, record: GalleryImageVersion, wanted: set[str] | None, reason: str) -> None:
        """Mark the regions still waiting for ``record`` Failed with ``reason``; Completed ones stay."""
        for status in record.regions:
            if wanted is not None and status.region not in wanted:
                continue
            if status.state in (ReplicationState.UNKNOWN, ReplicationState.REPLICATING):
                await self._set_status(record, _failed(status.region, status.target_replicas, reason))

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

        Raises:
            ResourceNotFoundError: a region given is not one of this home's (the message lists
                those it has), or the gallery does not exist.
        """
        from blobrep.engine.gc import gc_gallery

        await self._check(caller, Action.DELETE, ResourceId.of_gallery(gallery))
        await self._catalog.get_gallery(gallery)
        configs = await self._regions()
        names = (
            sorted(configs)
            if regions is None
            else list(dict.fromkeys([(await self._region(region)).name for region in regions]))
        )
        versions = await self._versions_of(gallery)
        stores: list[Store] = []
        for name in names:
            stores += await self._known_stores(configs[name], holding=counted_on(versions, name))
        return await gc_gallery(stores, gallery, grace=grace, dry_run=dry_run)


def _deferred(before: RegionStatus | None, outcome: RegionOutcome) -> RegionStatus:
    """The status a region had before a run that had to leave it alone, saying why."""
    reason = f"deferred: {outcome.deferred}"
    if before is None:
        return RegionStatus(outcome.region, target_replicas=outcome.target_replicas, details=reason)
    if before.state is ReplicationState.COMPLETED:
        return before  # a busy replica is no evidence that anything is wrong
    return dataclasses.replace(before, details=reason)


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
