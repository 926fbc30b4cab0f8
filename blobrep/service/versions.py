"""Image versions: create (publish the source into its source region), show, resolve ``latest``,
delete; updating the publishing profile is :mod:`blobrep.service.version_updates`.

Creating a version first checks that a source path can be read (a create whose source file
cannot be read records nothing; a source stream can only be judged as it is read), records it
(provisioning ``Creating``, the source region ``Replicating``) under an operation row naming
this process (:mod:`blobrep.service.operations`), then publishes the source into every
replica of the source region in one pass, then records the blob with its manifest pin and
marks the source region ``Completed``. The other target regions start ``Unknown`` ("waiting
for replication"); the replicator fills them. If the publish fails or is cancelled (a source
stream that breaks off or ends short included), the version stays recorded as ``Failed`` with
the reason in the source region's details, so that ``show`` says what happened; if the
process is killed, recovery marks it ``Failed`` ("interrupted") once the process is known
dead. Running the same create again on a ``Failed`` version that has no blob redoes it
(chunks already written are not written twice).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import anyio

from blobrep.core.access import Action
from blobrep.core.disks import pending_disks
from blobrep.core.gallery import (
    GalleryImageVersion,
    ProvisioningState,
    RegionStatus,
    ReplicationState,
    SafetyProfile,
)
from blobrep.core.ids import ResourceId
from blobrep.core.lifecycle import check_deletable, check_safety_profile
from blobrep.core.operations import OperationKind
from blobrep.core.regions import (
    check_known_regions,
    normalize_region,
    resolve_target_regions,
)
from blobrep.core.version import ImageVersion
from blobrep.errors import AlreadyExistsError
from blobrep.service import queries
from blobrep.service.disk_publish import (
    DataDiskSources,
    DiskSource,
    check_data_disk_sources,
    merge_data_disks,
    publish_disks,
)
from blobrep.service.operations import hold_operation
from blobrep.service.retention import _Retention
from blobrep.service.version_options import (
    WAITING,
    VersionOptions,
    awaiting_details,
    awaiting_disk,
    failed_create,
    first_statuses,
    new_profile,
    targets_from,
)

if TYPE_CHECKING:
    from blobrep.core.chunking import ChunkingSpec
    from blobrep.engine.publish import PublishProgressCallback, PublishResult
    from blobrep.engine.source import PublishSource
    from blobrep.service.home import RegionConfig

__all__ = ["WAITING", "VersionOptions"]

_NOT_GIVEN = VersionOptions()
"""No option given: every default applies (a frozen value, so one instance serves every call)."""


class _Versions(_Retention):
    async def create_version(
        self,
        caller: str,
        gallery: str,
        image: str,
        version: str,
        *,
        source: str | os.PathLike[str] | PublishSource,
        location: str | None = None,
        options: VersionOptions = _NOT_GIVEN,
        chunking: ChunkingSpec | None = None,
        progress: PublishProgressCallback | None = None,
        on_published: Callable[[PublishResult], None] | None = None,
        data_disks: DataDiskSources | None = None,
    ) -> GalleryImageVersion:
        """Record a version and publish ``source`` into its source region (Contributor on the definition).

        ``data_disks`` maps LUNs (0..63) to the data disks to publish beside the OS disk, each
        a blob of its own in the same chunk store; the source region is Completed only once
        every disk is published there. Progress counts the bytes of every disk.

        ``source`` is a file's path, checked before anything is recorded, or an open source
        (standard input, a request body: :mod:`blobrep.engine.source`), which can only be
        judged by reading it: one that breaks off, or ends short of or runs past the length it
        announced, fails the publish like any other failure, leaving the version ``Failed``
        with the reason and no blob (a create to redo).

        ``on_published`` receives what the publish did (new chunks, bytes written, summed
        over the disks), which is about the operation rather than the version, for callers
        that report it.

        Raises:
            AlreadyExistsError: the version exists (and is not a Failed create to redo).
            BusyError: another live process is creating or deleting this version.
            SourceError: the source path is missing, unreadable or not a file (nothing is
                recorded); or a source stream failed (the version is left Failed).
            InvalidNameError: a data disk's LUN is not 0..63 (nothing is recorded).
            InvalidParameterError: a data disk's LUN is given twice (nothing is recorded).
        """
        from blobrep.engine.source import check_source

        number = ImageVersion.parse(version)
        await self._check(caller, Action.WRITE, ResourceId.of_image(gallery, image))
        if isinstance(source, (str, os.PathLike)):
            await anyio.to_thread.run_sync(check_source, source)
        data = await anyio.to_thread.run_sync(check_data_disk_sources, data_disks)
        regions = await self._regions()
        record = await self._new_record(gallery, image, number, location, options, regions)
        record = dataclasses.replace(record, data_disks=pending_disks(lun for lun, _ in data))
        redo = await self._record_new_version(record)
        async with hold_operation(self._catalog, gallery, image, number, "", OperationKind.CREATE):
            if redo:
                await self._catalog.reset_version(record, expected=ProvisioningState.FAILED)
            disks: list[tuple[int | None, DiskSource]] = [(None, source), *data]
            published = await self._publish_version(record, regions, disks, chunking, progress, on_published)
        await self._after_completion(published)
        return await self._catalog.get_version(gallery, image, number)

    async def _new_record(
        self,
        gallery: str,
        image: str,
        number: ImageVersion,
        location: str | None,
        options: VersionOptions,
        regions: Mapping[str, RegionConfig],
    ) -> GalleryImageVersion:
        """The record of a new version ``Creating``: ``options`` checked against the regions
        of this home, its source region publishing, the other targets waiting."""
        home_region = (await self._catalog.get_gallery(gallery)).location
        await self._catalog.get_definition(gallery, image)
        source_region = normalize_region(location) if location is not None else home_region
        given = targets_from(options.target_regions, options.regional_exclude_from_latest)
        # Every region named must exist before the targets are judged as a whole: "unknown
        # region" is the mistake to report, not the source missing from a list with a typo.
        check_known_regions([source_region, *(target.name for target in given)], regions)
        targets = resolve_target_regions(source_region, given)
        profile = new_profile(options, targets, self._now())
        safety = SafetyProfile(
            bool(options.allow_replicated_location_deletion), bool(options.block_deletion_before_end_of_life)
        )
        check_safety_profile(safety, profile.end_of_life, str(ResourceId.of_version(gallery, image, number)))
        return GalleryImageVersion(
            gallery=gallery,
            image=image,
            version=number,
            location=source_region,
            publishing_profile=profile,
            safety_profile=safety,
            provisioning_state=ProvisioningState.CREATING,
            regions=first_statuses(profile, source_region),
        )

    async def _record_new_version(self, record: GalleryImageVersion) -> bool:
        """Record ``record``; True if instead a Failed create of it is there to redo.

        Raises:
            AlreadyExistsError: the version exists and is not a Failed create without a blob.
        """
        try:
            await self._catalog.create_version(record)
        except AlreadyExistsError:
            existing = await self._catalog.get_version(record.gallery, record.image, record.version)
            if existing.provisioning_state is not ProvisioningState.FAILED or existing.blob is not None:
                raise
            return True
        return False

    async def _publish_version(
        self,
        record: GalleryImageVersion,
        regions: Mapping[str, RegionConfig],
        disks: Sequence[tuple[int | None, DiskSource]],
        chunking: ChunkingSpec | None,
        progress: PublishProgressCallback | None,
        on_published: Callable[[PublishResult], None] | None,
    ) -> GalleryImageVersion:
        """Publish ``disks`` (LUN None: the OS disk) of ``record`` into its source region and
        record them; the region is Completed once every disk of the version is published
        (a daemon's uploads may bring the disks one at a time; until then the region's details
        name the disks still awaited). On failure the version is left Failed with none of its
        disks recorded (:func:`failed_create`), a create to redo."""
        gallery, image, number = record.gallery, record.image, record.version
        profile, source_region = record.publishing_profile, record.location
        source_target = profile.target(source_region)
        assert source_target is not None
        count = profile.effective_replica_count(source_target)
        region = regions[source_region]
        try:
            # The catalog knows of every replica before the first byte goes into one.
            await self._note_replicas(source_region, count)
            stores = [self._store(region, replica, create=True) for replica in range(1, count + 1)]
            done = await publish_disks(
                stores, gallery, image, number, disks, chunking=chunking, progress=progress
            )
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                reason = str(exc) or type(exc).__name__
                if not isinstance(exc, Exception):
                    reason = "publishing was interrupted"
                await self._catalog.set_region_status(
                    gallery, image, number, _failed(record, source_region, f"publish failed: {reason}")
                )
                await self._catalog.update_version(failed_create(record))
                await self._waiting_no_more(record)
            raise
        if on_published is not None:
            on_published(done.result)
        whole = dataclasses.replace(
            record,
            blob=done.blob or record.blob,
            data_disks=merge_data_disks(record.data_disks, done.data_disks),
        )
        if not whole.published:
            # Disks still to come (daemon uploads): recorded, the region waiting for the rest.
            await self._catalog.update_version(whole)
            waiting = whole.status(source_region)
            assert waiting is not None
            await self._catalog.set_region_status(
                gallery, image, number, awaiting_disk(waiting, awaiting_details(whole))
            )
            return await self._catalog.get_version(gallery, image, number)
        whole = dataclasses.replace(whole, provisioning_state=ProvisioningState.SUCCEEDED)
        await self._catalog.update_version(whole)
        await self._catalog.set_region_status(
            gallery,
            image,
            number,
            RegionStatus(source_region, ReplicationState.COMPLETED, 100, count, count, ""),
        )
        return await self._catalog.get_version(gallery, image, number)

    async def show_version(
        self, caller: str, gallery: str, image: str, version: str, *, location: str | None = None
    ) -> GalleryImageVersion:
        """One version; ``latest`` resolves in ``location`` (default: the gallery's home region).

        Raises:
            ResourceNotFoundError: no such version, no such region, or no version can be
                ``latest`` in that region (the message says why each candidate was skipped).
        """
        return await self.run_query(
            caller,
            lambda reads, home, acting: queries.show_version(
                reads, home, acting, gallery, image, version, location
            ),
        )

    async def resolve_latest(
        self, caller: str, gallery: str, image: str, *, location: str | None = None
    ) -> GalleryImageVersion:
        """The version ``latest`` names in ``location``, among those the caller may read; see
        :func:`blobrep.service.queries.latest_version`."""
        return await self.run_query(
            caller,
            lambda reads, home, acting: queries.latest_version(reads, home, acting, gallery, image, location),
        )

    async def resolve_image(
        self, caller: str, image_id: str, *, location: str | None = None
    ) -> GalleryImageVersion:
        """The version an image reference names in a region; see
        :func:`blobrep.service.queries.resolve_image`.

        Raises:
            InvalidNameError: the id is malformed or names a gallery or the home.
        """
        return await self.run_query(
            caller, lambda reads, home, acting: queries.resolve_image(reads, home, acting, image_id, location)
        )

    async def list_versions(self, caller: str, gallery: str, image: str) -> list[GalleryImageVersion]:
        """The definition's versions the caller can see, in version order."""
        return await self.run_query(
            caller, lambda reads, home, acting: queries.list_versions(reads, home, acting, gallery, image)
        )

    async def delete_version(self, caller: str, gallery: str, image: str, version: str) -> None:
        """Delete a version: its manifests in every replica first, then its record.

        Its chunks stay until garbage collection, since other versions may share them. The
        definition's retention policy then applies again (an older version may be grown back).

        Raises:
            PreconditionError: its safety profile blocks deletion before its end of life,
                which is still ahead (the message gives the date).
        """
        number = ImageVersion.parse(version)
        await self._check(caller, Action.DELETE, ResourceId.of_version(gallery, image, number))
        check_deletable(await self._catalog.get_version(gallery, image, number), self._now())
        async with hold_operation(self._catalog, gallery, image, number, "", OperationKind.DELETE):
            old = await self._catalog.get_version(gallery, image, number)
            check_deletable(old, self._now())
            await self._catalog.update_version(
                dataclasses.replace(old, provisioning_state=ProvisioningState.DELETING)
            )
            await self._finish_delete(old)
        # Deleting a version kept global may bring an older one back among the kept: grown back.
        await self._retention_after(gallery, image)

    async def _waiting_no_more(self, record: GalleryImageVersion) -> None:
        """Say so in each other target region still waiting for replication from the source
        region of ``record``, whose create failed: nothing is coming until it is redone."""
        fresh = await self._catalog.get_version(record.gallery, record.image, record.version)
        for status in fresh.regions:
            if status.region != fresh.location and status.details.startswith(WAITING):
                said = f"not replicated: the create failed in {fresh.location}; the same create redoes it"
                await self._catalog.set_region_status(
                    fresh.gallery, fresh.image, fresh.version, dataclasses.replace(status, details=said)
                )

    async def _finish_delete(self, old: GalleryImageVersion) -> None:
        """Drop the version's manifest from every replica of every region it had, then its record.

        Idempotent, so recovery can finish a deletion a killed process began.
        """
        regions = await self._regions()
        for status in old.regions:
            await self._drop_replicas(old, regions.get(status.region), keep=0, collect=False)
        await self._catalog.delete_version(old.gallery, old.image, old.version)


def _failed(record: GalleryImageVersion, region: str, details: str) -> RegionStatus:
    status = record.status(region)
    assert status is not None
    return dataclasses.replace(status, state=ReplicationState.FAILED, progress=0, details=details)
