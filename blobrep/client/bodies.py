"""Request bodies: what a command was given, in the JSON the daemon reads.

Only what was given is sent: a field left out means "not given" to the daemon exactly as
``None`` does to the service (the default on create, unchanged on update), so a request and
the equivalent local call mean the same. Values go as the user typed them (an OS type in any
letter case, a date in any accepted spelling): the daemon hands them to the same parsers as
the CLI, which then report a mistake in the same words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from blobrep.service.version_options import targets_from

if TYPE_CHECKING:
    from blobrep.core.gallery import TargetRegion
    from blobrep.service import DefinitionFields, VersionOptions

JSON = dict[str, Any]


def _given(**fields: Any) -> JSON:
    """The fields whose value is not None (nor an empty object)."""
    return {key: value for key, value in fields.items() if value is not None and value != {}}


def gallery_body(location: str | None, description: str | None) -> JSON:
    return _given(location=location, properties=_given(description=description))


def definition_body(fields: DefinitionFields) -> JSON:
    """An image definition's body: ``{"properties": {...}}`` with the fields given."""
    identifier = _given(publisher=fields.publisher, offer=fields.offer, sku=fields.sku)
    recommended = _given(
        vCPUs=_given(min=fields.min_vcpus, max=fields.max_vcpus),
        memory=_given(min=fields.min_memory_gib, max=fields.max_memory_gib),
    )
    properties = _given(
        identifier=identifier,
        osType=fields.os_type,
        osState=fields.os_state,
        hyperVGeneration=fields.hyper_v_generation,
        architecture=fields.architecture,
        recommended=recommended,
        endOfLifeDate=fields.end_of_life,
        excludeEndOfLifeFromLatest=fields.exclude_end_of_life_from_latest,
        description=fields.description,
    )
    if fields.keep_global == 0:
        properties["retentionPolicy"] = None  # removes the policy
    else:
        policy = _given(keepGlobal=fields.keep_global, homeRegion=fields.home_region)
        if policy:
            properties["retentionPolicy"] = policy
    return {"properties": properties}


def _target(target: TargetRegion) -> JSON:
    return _given(
        name=target.name,
        regionalReplicaCount=target.replica_count,
        storageAccountType=None if target.storage_type is None else str(target.storage_type),
        excludeFromLatest=target.exclude_from_latest,
    )


def version_body(
    options: VersionOptions,
    *,
    location: str | None = None,
    source: str | None = None,
    targets: Sequence[TargetRegion] | None = None,
    data_disks: Sequence[int] = (),
) -> JSON:
    """A version's body: its publishing and safety profiles as given, its source region
    (``location``), the upload route its disk comes from (``source``) and the LUNs of the data
    disks it waits for (``data_disks``).

    Target regions are ``targets`` if given, else parsed from the options with the CLI's own
    parser (they were checked when the command line was read), per-region
    exclude-from-latest flags folded in as the service folds them.
    """
    if targets is None and (
        options.target_regions is not None or options.regional_exclude_from_latest is not None
    ):
        targets = targets_from(options.target_regions, options.regional_exclude_from_latest)
    publishing = _given(
        targetRegions=None if targets is None else [_target(target) for target in targets],
        replicaCount=options.replica_count,
        storageAccountType=options.storage_type,
        excludeFromLatest=options.exclude_from_latest,
        endOfLifeDate=options.end_of_life,
    )
    safety = _given(
        allowDeletionOfReplicatedLocations=options.allow_replicated_location_deletion,
        blockDeletionBeforeEndOfLife=options.block_deletion_before_end_of_life,
    )
    storage: JSON | None = None if source is None else {"osDiskImage": {"source": {"uri": source}}}
    if data_disks:
        storage = {**(storage or {}), "dataDiskImages": [{"lun": lun} for lun in data_disks]}
    properties = _given(publishingProfile=publishing, safetyProfile=safety, storageProfile=storage)
    return {**_given(location=location), "properties": properties}
