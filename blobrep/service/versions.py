"""Image versions: create (publish the source into its source region), show, resolve ``latest``,
update the publishing profile, delete.

Creating a version first checks that the source can be read (a create whose source cannot
be read records nothing), records it (provisioning ``Creating``, the source region
``Replicating``) under an operation row naming this process (:mod:`blobrep.service.operations`),
then publishes the source file into every replica of the source region in one pass, then
records the blob with its manifest pin and marks the source region ``Completed``. The other
target regions start ``Unknown`` ("waiting for replication"); the replicator fills them. If
the publish fails or is cancelled, the version stays recorded as ``Failed`` with the reason in
the source region's details, so that ``show`` says what happened; if the process is killed,
recovery marks it ``Failed`` ("interrupted") once the process is known dead. Running the same
create again on a ``Failed`` version that has no blob redoes it (chunks already written are
not written twice).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import anyio

from blobrep.core.access import Action
from blobrep.core.chunking import ChunkingSpec
from blobrep.core.definitions import parse_datetime
from blobrep.core.gallery import (
    BlobInfo,
    GalleryImageVersion,
    ProvisioningState,
    PublishingProfile,
    RegionStatus,
    ReplicationState,
    SafetyProfile,
    StorageType,
    TargetRegion,
    parse_choice,
)
from blobrep.core.ids import LATEST, ResourceId, ResourceKind
from blobrep.core.latest import latest_error_detail, resolve_latest
from blobrep.core.names import BlobName
from blobrep.core.operations import OperationKind
from blobrep.core.regions import (
    check_known_regions,
    normalize_region,
    parse_target_region,
    plan_target_update,
    resolve_target_regions,
    validate_replica_count,
)
from blobrep.core.version import ImageVersion
from blobrep.engine.gc import gc_gallery
from blobrep.engine.manifests import delete_manifest
from blobrep.engine.publish import ProgressCallback, PublishResult, publish
from blobrep.engine.source import check_source
from blobrep.errors import ConflictError, ImmutableFieldError, InvalidNameError, ResourceNotFoundError
from blobrep.service._base import _Base
from blobrep.service.home import RegionConfig
from blobrep.service.operations import hold_operation

WAITING = "waiting for replication"


@dataclass(frozen=True, slots=True)
class VersionOptions:
    """The publishing and safety options of a version, as given on create or update.

    ``None`` means "not given": on create the default applies, on update the value stays.
    """

    target_regions: Sequence[str] | None = None
    """Tokens ``region[=count][=storage type]``."""
    replica_count: int | None = None
    storage_type: str | None = None
    exclude_from_latest: bool | None = None
    regional_exclude_from_latest: Mapping[str, bool] | None = None
    end_of_life: str | None = None
    allow_replicated_location_deletion: bool | None = None


def _targets(tokens: Sequence[str] | None, regional_exclude: Mapping[str, bool] | None) -> list[TargetRegion]:
    targets = [parse_target_region(token) for token in tokens or ()]
    excludes = {normalize_region(region): flag for region, flag in (regional_exclude or {}).items()}
    result = [
        dataclasses.replace(target, exclude_from_latest=excludes.pop(target.name))
        if target.name in excludes
        else target
        for target in targets
    ]
    return result + [TargetRegion(region, exclude_from_latest=flag) for region, flag in excludes.items()]


def _status_for(
    profile: PublishingProfile, target: TargetRegion, state: ReplicationState, details: str
) -> RegionStatus:
    return RegionStatus(target.name, state, 0, 0, profile.effective_replica_count(target), details)


class _Versions(_Base):
    async def create_version(
        self,
        caller: str,
        gallery: str,
        image: str,
        version: str,
        *,
        source: str | os.PathLike[str],
        location: str | None = None,
        options: VersionOptions = VersionOptions(),
        chunking: ChunkingSpec | None = None,
        progress: ProgressCallback | None = None,
        on_published: Callable[[PublishResult], None] | None = None,
    ) -> GalleryImageVersion:
        """Record a version and publish ``source`` into its source region (Contributor on the definition).

        ``on_published`` receives what the publish did (new chunks, bytes written), which is
        about the operation rather than the version, for callers that report it.

        Raises:
            ConflictError: the version exists (and is not a Failed create to redo).
            BusyError: another live process is creating or deleting this version.
            SourceError: the source is missing, unreadable or not a file (nothing is recorded).
        """
        number = ImageVersion.parse(version)
        await self._check(caller, Action.WRITE, ResourceId.of_image(gallery, image))
        await anyio.to_thread.run_sync(check_source, source)
        home_region = (await self._catalog.get_gallery(gallery)).location
        await self._catalog.get_definition(gallery, image)
        source_region = normalize_region(location) if location is not None else home_region
        regions = await self._regions()
        targets = resolve_target_regions(
            source_region, _targets(options.target_regions, options.regional_exclude_from_latest)
        )
        check_known_regions((target.name for target in targets), regions)
        profile = PublishingProfile(
            target_regions=targets,
            replica_count=validate_replica_count(
                options.replica_count if options.replica_count is not None else 1
            ),
            storage_type=(
                parse_choice(StorageType, options.storage_type, "storage account type")
                if options.storage_type is not None
                else StorageType.STANDARD_LRS
            ),
            exclude_from_latest=bool(options.exclude_from_latest),
            end_of_life=parse_datetime(options.end_of_life, "end-of-life date")
            if options.end_of_life
            else None,
            published=self._now(),
        )
        statuses = tuple(
            _status_for(profile, target, ReplicationState.REPLICATING, "publishing the source")
            if target.name == source_region
            else _status_for(profile, target, ReplicationState.UNKNOWN, f"{WAITING} from {source_region}")
            for target in targets
        )
        record = GalleryImageVersion(
            gallery=gallery,
            image=image,
            version=number,
            location=source_region,
            publishing_profile=profile,
            safety_profile=SafetyProfile(bool(options.allow_replicated_location_deletion)),
            provisioning_state=ProvisioningState.CREATING,
            regions=statuses,
        )
        redo = await self._record_new_version(record)
        async with hold_operation(self._catalog, gallery, image, number, "", OperationKind.CREATE):
            if redo:
                await self._catalog.reset_version(record, expected=ProvisioningState.FAILED)
            return await self._publish_version(record, regions, source, chunking, progress, on_published)

    async def _record_new_version(self, record: GalleryImageVersion) -> bool:
        """Record ``record``; True if instead a Failed create of it is there to redo.

        Raises:
            ConflictError: the version exists and is not a Failed create without a blob.
        """
        try:
            await self._catalog.create_version(record)
        except ConflictError:
            existing = await self._catalog.get_version(record.gallery, record.image, record.version)
            if existing.provisioning_state is not ProvisioningState.FAILED or existing.blob is not None:
                raise
            return True
        return False

    async def _publish_version(
        self,
        record: GalleryImageVersion,
        regions: Mapping[str, RegionConfig],
        source: str | os.PathLike[str],
        chunking: ChunkingSpec | None,
        progress: ProgressCallback | None,
        on_published: Callable[[PublishResult], None] | None,
    ) -> GalleryImageVersion:
        gallery, image, number = record.gallery, record.image, record.version
        profile, source_region = record.publishing_profile, record.location
        source_target = profile.target(source_region)
        assert source_target is not None
        count = profile.effective_replica_count(source_target)
        region = regions[source_region]
        try:
            stores = [self._store(region, replica, create=True) for replica in range(1, count + 1)]
            result = await publish(
                source,
                stores,
                gallery,
                BlobName(image, number),
                chunking=chunking,
                progress=progress,
                replace=True,
            )
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                reason = str(exc) or type(exc).__name__
                if not isinstance(exc, Exception):
                    reason = "publishing was interrupted"
                await self._catalog.set_region_status(
                    gallery, image, number, _failed(record, source_region, f"publish failed: {reason}")
                )
                await self._catalog.update_version(
                    dataclasses.replace(record, provisioning_state=ProvisioningState.FAILED)
                )
            raise
        if on_published is not None:
            on_published(result)
        blob = BlobInfo(result.size, result.digest, result.stored_bytes, result.chunks, result.manifest_pin)
        done = dataclasses.replace(record, provisioning_state=ProvisioningState.SUCCEEDED, blob=blob)
        await self._catalog.update_version(done)
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
            ResourceNotFoundError: no such version, or no version can be ``latest`` in that region
                (the message says why each candidate was skipped).
        """
        if version != LATEST:
            number = ImageVersion.parse(version)
            await self._check(caller, Action.READ, ResourceId.of_version(gallery, image, number))
            return await self._catalog.get_version(gallery, image, number)
        return await self.resolve_latest(caller, gallery, image, location=location)

    async def resolve_latest(
        self, caller: str, gallery: str, image: str, *, location: str | None = None
    ) -> GalleryImageVersion:
        """The highest version Completed in the region and not excluded from latest there."""
        definition_id = ResourceId.of_image(gallery, image)
        authorizer = await self._authorizer(caller)
        if not authorizer.sees(definition_id):
            authorizer.check(Action.READ, definition_id)
        region = (
            normalize_region(location)
            if location is not None
            else (await self._catalog.get_gallery(gallery)).location
        )
        versions = await self._catalog.list_versions(gallery, image)
        chosen = resolve_latest(versions, region)
        if chosen is None:
            raise ResourceNotFoundError(
                f"{definition_id}/versions/latest has no version usable in {region}: "
                + latest_error_detail(versions, region)
            )
        authorizer.check(Action.READ, ResourceId.of_version(gallery, image, chosen.version))
        return chosen

    async def resolve_image(
        self, caller: str, image_id: str, *, location: str | None = None
    ) -> GalleryImageVersion:
        """The version an image reference names in a region.

        ``image_id`` is a version id (``/galleries/G/images/I/versions/1.0.0``), its
        ``.../versions/latest`` form, or the definition id alone, which also means latest.
        ``latest`` resolves in ``location`` (default: the gallery's home region).

        Raises:
            InvalidNameError: the id is malformed or names a gallery or the home.
        """
        reference = ResourceId.parse(image_id)
        if reference.kind not in (ResourceKind.IMAGE_DEFINITION, ResourceKind.IMAGE_VERSION):
            raise InvalidNameError(
                f"{image_id!r} names a {reference.kind}, not an image: give a definition id"
                " (/galleries/G/images/I), .../versions/latest or .../versions/X.Y.Z"
            )
        assert reference.gallery is not None and reference.image is not None
        if reference.version is not None:
            return await self.show_version(caller, reference.gallery, reference.image, str(reference.version))
        return await self.resolve_latest(caller, reference.gallery, reference.image, location=location)

    async def list_versions(self, caller: str, gallery: str, image: str) -> list[GalleryImageVersion]:
        """The definition's versions the caller can see, in version order."""
        definition_id = ResourceId.of_image(gallery, image)
        authorizer = await self._authorizer(caller)
        if not authorizer.sees(definition_id):
            authorizer.check(Action.READ, definition_id)
        return [
            version
            for version in await self._catalog.list_versions(gallery, image)
            if authorizer.sees(ResourceId.of_version(gallery, image, version.version))
        ]

    async def update_version(
        self, caller: str, gallery: str, image: str, version: str, options: VersionOptions
    ) -> GalleryImageVersion:
        """Change target regions, replica counts, exclude-from-latest, end of life, safety.

        Added regions and raised counts wait for replication; a lowered count removes the
        manifests of the replicas above it; a removed region (allowed only by the safety
        profile) loses its manifests first, then its status. Storage types never change.

        The new profile is recorded first (the version ``Updating``), then the replicas it no
        longer wants are removed: a kill in between leaves the catalog saying less than the
        stores hold, never more, and recovery finishes the removal.

        Raises:
            BusyError: another live process is creating, updating or deleting the version.
        """
        number = ImageVersion.parse(version)
        await self._check(caller, Action.WRITE, ResourceId.of_version(gallery, image, number))
        old = await self._catalog.get_version(gallery, image, number)
        safety = old.safety_profile
        if options.allow_replicated_location_deletion is not None:
            safety = SafetyProfile(options.allow_replicated_location_deletion)
        profile = old.publishing_profile
        if options.target_regions is not None or options.regional_exclude_from_latest is not None:
            given = _targets(options.target_regions, options.regional_exclude_from_latest)
            if options.target_regions is None:  # only flags: keep the targets, set their flags
                flags = {target.name: target.exclude_from_latest for target in given}
                unknown = set(flags) - {target.name for target in profile.target_regions}
                check_known_regions(sorted(unknown), [target.name for target in profile.target_regions])
                given = [
                    dataclasses.replace(target, exclude_from_latest=flags[target.name])
                    if target.name in flags
                    else target
                    for target in profile.target_regions
                ]
            new_targets = resolve_target_regions(old.location, given)
        else:
            new_targets = profile.target_regions
        check_known_regions((target.name for target in new_targets), await self._regions())
        plan = plan_target_update(
            profile,
            new_targets,
            new_replica_count=options.replica_count,
            allow_deletion=safety.allow_deletion_of_replicated_locations,
            location=old.location,
        )
        profile = plan.profile
        if options.exclude_from_latest is not None:
            profile = dataclasses.replace(profile, exclude_from_latest=options.exclude_from_latest)
        if options.end_of_life is not None:
            profile = dataclasses.replace(
                profile, end_of_life=parse_datetime(options.end_of_life, "end-of-life date")
            )
        if options.storage_type is not None:
            wanted = parse_choice(StorageType, options.storage_type, "storage account type")
            if wanted is not profile.storage_type:
                raise ImmutableFieldError(
                    f"storageAccountType of {ResourceId.of_version(gallery, image, number)} is"
                    f" {profile.storage_type} and is fixed at creation"
                )
        final_state = (
            ProvisioningState.SUCCEEDED
            if old.provisioning_state is ProvisioningState.UPDATING
            else old.provisioning_state
        )
        async with hold_operation(self._catalog, gallery, image, number, "", OperationKind.UPDATE):
            # The profile first: from here on replication aims at the new targets, and a kill
            # leaves the version Updating for recovery to finish (see _apply_profile).
            new = dataclasses.replace(
                old,
                publishing_profile=profile,
                safety_profile=safety,
                provisioning_state=ProvisioningState.UPDATING,
            )
            await self._catalog.update_version(new)
            for target in profile.target_regions:
                status = _updated_status(profile, target, old, plan.rescaled)
                if status is not None:
                    await self._catalog.set_region_status(gallery, image, number, status)
            await self._apply_profile(gallery, image, number)
            await self._catalog.update_version(dataclasses.replace(new, provisioning_state=final_state))
        return await self._catalog.get_version(gallery, image, number)

    async def _apply_profile(self, gallery: str, image: str, number: ImageVersion) -> None:
        """Remove what the profile no longer wants: replicas above a region's count, regions no
        longer targeted (manifests first, then their status). Idempotent, so recovery can
        finish an update a killed process began.
        """
        version = await self._catalog.get_version(gallery, image, number)
        profile = version.publishing_profile
        regions = await self._regions()
        for status in version.regions:
            target = profile.target(status.region)
            keep = 0 if target is None else profile.effective_replica_count(target)
            await self._drop_replicas(version, regions.get(status.region), keep=keep)
            if target is None:
                await self._catalog.delete_region_status(gallery, image, number, status.region)

    async def delete_version(self, caller: str, gallery: str, image: str, version: str) -> None:
        """Delete a version: its manifests in every replica first, then its record.

        Its chunks stay until garbage collection, since other versions may share them.
        """
        number = ImageVersion.parse(version)
        await self._check(caller, Action.DELETE, ResourceId.of_version(gallery, image, number))
        async with hold_operation(self._catalog, gallery, image, number, "", OperationKind.DELETE):
            old = await self._catalog.get_version(gallery, image, number)
            await self._catalog.update_version(
                dataclasses.replace(old, provisioning_state=ProvisioningState.DELETING)
            )
            await self._finish_delete(old)

    async def _finish_delete(self, old: GalleryImageVersion) -> None:
        """Drop the version's manifest from every replica of every region it had, then its record.

        Idempotent, so recovery can finish a deletion a killed process began.
        """
        regions = await self._regions()
        for status in old.regions:
            await self._drop_replicas(old, regions.get(status.region), keep=0, collect=False)
        await self._catalog.delete_version(old.gallery, old.image, old.version)

    async def _drop_replicas(
        self, version: GalleryImageVersion, region: RegionConfig | None, *, keep: int, collect: bool = True
    ) -> None:
        """Delete the version's manifest from the replicas numbered above ``keep`` in ``region``,
        then (``collect``) the chunks no other manifest there references: manifest first, so no
        reader ever finds a manifest whose chunks are gone.
        """
        if region is None:
            return
        numbers = await anyio.to_thread.run_sync(self._home.replica_numbers, region)
        blob = BlobName(version.image, version.version)
        dropped = [self._store(region, replica, create=False) for replica in numbers if replica > keep]
        for store in dropped:
            await delete_manifest(store, version.gallery, blob)
        if dropped and collect:
            await gc_gallery(dropped, version.gallery, grace=0.0)


def _updated_status(
    profile: PublishingProfile, target: TargetRegion, old: GalleryImageVersion, rescaled: Collection[str]
) -> RegionStatus | None:
    """The status of ``target`` after an update: waiting if added, its counts lowered or raised
    if rescaled (replicas above a lowered count stop counting before they are removed), None if
    unchanged."""
    target_count = profile.effective_replica_count(target)
    status = old.status(target.name)
    if status is None:
        return _status_for(profile, target, ReplicationState.UNKNOWN, f"{WAITING} from {old.location}")
    if target.name not in rescaled:
        return None
    completed = min(status.completed_replicas, target_count)
    state = status.state
    if state is ReplicationState.COMPLETED and completed < target_count:
        state = ReplicationState.REPLICATING
    return dataclasses.replace(
        status,
        state=state,
        completed_replicas=completed,
        target_replicas=target_count,
        progress=100 * completed // target_count,
        details="" if completed == target_count else f"{WAITING}: {completed} of {target_count} replicas",
    )


def _failed(record: GalleryImageVersion, region: str, details: str) -> RegionStatus:
    status = record.status(region)
    assert status is not None
    return dataclasses.replace(status, state=ReplicationState.FAILED, progress=0, details=details)
