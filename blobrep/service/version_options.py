"""The publishing options of a version as a caller gives them, and how a target region starts.

Create and update (:mod:`blobrep.service.versions`, :mod:`blobrep.service.version_updates`)
both read the same options and both add target regions, so the parsing of the target tokens
and the status of a region that waits for replication are kept in one place for the two.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from blobrep.core.definitions import parse_datetime
from blobrep.core.gallery import (
    DataDisk,
    GalleryImageVersion,
    ProvisioningState,
    PublishingProfile,
    RegionStatus,
    ReplicationState,
    StorageType,
    TargetRegion,
    parse_choice,
)
from blobrep.core.regions import normalize_region, parse_target_region, validate_replica_count

if TYPE_CHECKING:
    from datetime import datetime

WAITING = "waiting for replication"

#: The details of the source region of a version recorded before its disk arrives.
AWAITING_DISK = "waiting for its disk to be uploaded"

#: The details of a version with data disks while some of its disks are awaited; the disks
#: still to come follow (``"...: the OS disk, LUN 0"``), so that ``show`` says which.
AWAITING_DISKS = "waiting for its disks to be uploaded"


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
    block_deletion_before_end_of_life: bool | None = None


def targets_from(
    tokens: Sequence[str] | None, regional_exclude: Mapping[str, bool] | None
) -> list[TargetRegion]:
    """The target regions the tokens ``region[=count][=storage type]`` name, with the
    per-region exclude-from-latest flags applied; a flag for a region no token names adds it."""
    targets = [parse_target_region(token) for token in tokens or ()]
    excludes = {normalize_region(region): flag for region, flag in (regional_exclude or {}).items()}
    result = [
        dataclasses.replace(target, exclude_from_latest=excludes.pop(target.name))
        if target.name in excludes
        else target
        for target in targets
    ]
    return result + [TargetRegion(region, exclude_from_latest=flag) for region, flag in excludes.items()]


def status_for(
    profile: PublishingProfile, target: TargetRegion, state: ReplicationState, details: str
) -> RegionStatus:
    """The status of ``target`` while none of its replicas is complete yet."""
    return RegionStatus(target.name, state, 0, 0, profile.effective_replica_count(target), details)


def new_profile(
    options: VersionOptions, targets: tuple[TargetRegion, ...], published: datetime
) -> PublishingProfile:
    """The publishing profile of a new version: ``options`` parsed, defaults filled in."""
    return PublishingProfile(
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
        end_of_life=None
        if options.end_of_life is None
        else parse_datetime(options.end_of_life, "end-of-life date"),
        published=published,
    )


def first_statuses(profile: PublishingProfile, source_region: str) -> tuple[RegionStatus, ...]:
    """Each target's status while a new version is published: the source region Replicating,
    the others waiting for replication from it."""
    return tuple(
        status_for(profile, target, ReplicationState.REPLICATING, "publishing the source")
        if target.name == source_region
        else status_for(profile, target, ReplicationState.UNKNOWN, f"{WAITING} from {source_region}")
        for target in profile.target_regions
    )


def awaiting_disk(status: RegionStatus, details: str = AWAITING_DISK) -> RegionStatus:
    """``status`` of a source region waiting for disks to be uploaded (``details``: which)."""
    return dataclasses.replace(status, state=ReplicationState.UNKNOWN, progress=0, details=details)


def awaiting_details(record: GalleryImageVersion) -> str:
    """The source region's details while ``record`` waits for uploads: for a version with
    data disks, which of its disks are still awaited, by name."""
    if not record.data_disks:
        return AWAITING_DISK
    awaited = ["the OS disk"] if record.blob is None else []
    awaited += [f"LUN {disk.lun}" for disk in record.data_disks if disk.blob is None]
    return f"{AWAITING_DISKS}: {', '.join(awaited)}"


def failed_create(record: GalleryImageVersion) -> GalleryImageVersion:
    """``record`` as a create that failed leaves it: Failed, and none of its disks recorded
    (the disks uploaded before the one that failed included), so that describing it again
    redoes it whole; their chunks stay in the replicas for the redo to reuse."""
    return dataclasses.replace(
        record,
        provisioning_state=ProvisioningState.FAILED,
        blob=None,
        data_disks=tuple(DataDisk(disk.lun) for disk in record.data_disks),
    )


def may_describe_again(record: GalleryImageVersion) -> bool:
    """True if describing ``record`` again starts it over: a Failed create without a blob, or a
    version still waiting for its disks (``begin_version`` resets either)."""
    failed = record.provisioning_state is ProvisioningState.FAILED and record.blob is None
    return failed or is_awaiting_disk(record)


def is_awaiting_disk(record: GalleryImageVersion) -> bool:
    """True if ``record`` is a version recorded by ``begin_version`` with a disk still to be
    uploaded, and no upload running."""
    status = record.status(record.location)
    return (
        record.provisioning_state is ProvisioningState.CREATING
        and not record.published
        and status is not None
        and status.state is ReplicationState.UNKNOWN
        and status.details.startswith((AWAITING_DISK, AWAITING_DISKS))
    )
