"""Updating a version's publishing profile, and removing the replicas a profile no longer wants.

An update records the new profile first (the version ``Updating``), then removes the
replicas it no longer wants: a kill in between leaves the catalog saying less than the stores
hold, never more, and recovery (:mod:`blobrep.service.recovery`) finishes the removal with
the same idempotent step. Deleting a version (:mod:`blobrep.service.versions`) removes every
replica the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import TYPE_CHECKING

from blobrep.core.access import Action
from blobrep.core.definitions import parse_datetime
from blobrep.core.disks import version_disks
from blobrep.core.gallery import (
    GalleryImageVersion,
    ProvisioningState,
    PublishingProfile,
    RegionStatus,
    ReplicationState,
    RetentionMark,
    SafetyProfile,
    StorageType,
    TargetRegion,
    parse_choice,
)
from blobrep.core.ids import ResourceId
from blobrep.core.lifecycle import check_safety_profile
from blobrep.core.operations import OperationKind
from blobrep.core.regions import check_known_regions, plan_target_update, resolve_target_regions
from blobrep.core.version import ImageVersion
from blobrep.errors import ImmutableFieldError
from blobrep.service._base import _Base
from blobrep.service.operations import hold_operation
from blobrep.service.version_options import WAITING, VersionOptions, status_for, targets_from

if TYPE_CHECKING:
    from blobrep.service.home import RegionConfig


class _VersionUpdates(_Base):
    """The update path of versions, and the removal of replicas it shares with delete and recovery."""

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
        profile, safety, rescaled = await self._updated_profile(old, options)
        check_safety_profile(safety, profile.end_of_life, str(ResourceId.of_version(gallery, image, number)))
        return await self._record_update(old, profile, safety, rescaled, old.retention)

    async def _record_update(
        self,
        old: GalleryImageVersion,
        profile: PublishingProfile,
        safety: SafetyProfile,
        rescaled: Collection[str],
        retention: RetentionMark | None,
    ) -> GalleryImageVersion:
        """Record ``old`` with a checked new profile (and ``retention``), then remove the
        replicas the profile no longer wants; the version ends as it was before (or Succeeded
        if it was left Updating by a killed update)."""
        gallery, image, number = old.gallery, old.image, old.version
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
                retention=retention,
            )
            await self._catalog.update_version(new)
            for target in profile.target_regions:
                status = _updated_status(profile, target, old, rescaled)
                if status is not None:
                    await self._catalog.set_region_status(gallery, image, number, status)
            await self._apply_profile(gallery, image, number)
            await self._catalog.update_version(dataclasses.replace(new, provisioning_state=final_state))
        return await self._catalog.get_version(gallery, image, number)

    async def _updated_profile(
        self, old: GalleryImageVersion, options: VersionOptions
    ) -> tuple[PublishingProfile, SafetyProfile, Collection[str]]:
        """The publishing and safety profiles ``options`` ask for, checked against ``old``, and
        the regions whose replica count changes.

        Raises:
            InvalidRegionError: an unknown region, a flag for a region that is not a target,
                or a removal the safety profile forbids.
            ImmutableFieldError: a different storage type.
        """
        safety = old.safety_profile
        if options.allow_replicated_location_deletion is not None:
            safety = dataclasses.replace(
                safety, allow_deletion_of_replicated_locations=options.allow_replicated_location_deletion
            )
        if options.block_deletion_before_end_of_life is not None:
            safety = dataclasses.replace(
                safety, block_deletion_before_end_of_life=options.block_deletion_before_end_of_life
            )
        profile = old.publishing_profile
        if options.target_regions is not None or options.regional_exclude_from_latest is not None:
            from blobrep.core.regions import check_target_regions

            given = targets_from(options.target_regions, options.regional_exclude_from_latest)
            # Every region named must exist before the targets are judged as a whole: "unknown
            # region" is the mistake to report, not the source missing from a list with a typo.
            check_known_regions((target.name for target in given), await self._regions())
            if options.target_regions is None:  # only flags: keep the targets, set their flags
                flags = {target.name: target.exclude_from_latest for target in given}
                version_id = ResourceId.of_version(old.gallery, old.image, old.version)
                check_target_regions(flags, profile, str(version_id))
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
                    f"storageAccountType of {ResourceId.of_version(old.gallery, old.image, old.version)} is"
                    f" {profile.storage_type} and is fixed at creation"
                )
        return profile, safety, plan.rescaled

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

    async def _drop_replicas(
        self, version: GalleryImageVersion, region: RegionConfig | None, *, keep: int, collect: bool = True
    ) -> None:
        """Delete the manifests of every disk of the version (OS disk and data disks) from the
        replicas numbered above ``keep`` in ``region``, then (``collect``) the chunks no other
        manifest there references: manifests first, so no reader ever finds a manifest whose
        chunks are gone.
        """
        from blobrep.engine.gc import gc_gallery
        from blobrep.engine.manifests import delete_manifest

        if region is None:
            return
        # Any of them may be absent (removed before, or never written): nothing to remove there.
        numbers = await self._replica_numbers(region)
        dropped = [self._store(region, replica, create=True) for replica in numbers if replica > keep]
        for store in dropped:
            for disk in version_disks(version):
                await delete_manifest(store, version.gallery, disk.name)
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
        return status_for(profile, target, ReplicationState.UNKNOWN, f"{WAITING} from {old.location}")
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
