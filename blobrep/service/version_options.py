"""The publishing options of a version as a caller gives them, and how a target region starts.

Create and update (:mod:`blobrep.service.versions`, :mod:`blobrep.service.version_updates`)
both read the same options and both add target regions, so the parsing of the target tokens
and the status of a region that waits for replication are kept in one place for the two.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from blobrep.core.gallery import PublishingProfile, RegionStatus, ReplicationState, TargetRegion
from blobrep.core.regions import normalize_region, parse_target_region

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
