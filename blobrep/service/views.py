"""JSON views of the gallery model, in the shape users of ``az sig`` know (camelCase, ids).

The CLI prints these and the daemon will serve them, so both faces show the same document
for the same resource. ``replicationStatus`` appears only when asked for (``--expand
ReplicationStatus``), as in the model blobrep follows; it is cheap here, but scripts written
against that model expect it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from blobrep.core.definitions import format_datetime
from blobrep.core.ids import ResourceId

if TYPE_CHECKING:
    from blobrep.core.access import Principal, RoleAssignment
    from blobrep.core.gallery import BlobInfo, Gallery, GalleryImageVersion, ImageDefinition, ResourceRange
    from blobrep.engine.deploy import DeploymentResult, DeploymentSummary
    from blobrep.engine.version_read import ReaderStatistics
    from blobrep.service.regions import RegionInfo

JSON = dict[str, Any]


def _when(value: datetime | None) -> str | None:
    return None if value is None else format_datetime(value)


def _range(value: ResourceRange) -> JSON:
    return {"min": value.min, "max": value.max}


def region_view(region: RegionInfo) -> JSON:
    return {
        "name": region.name,
        "displayName": region.display_name,
        "kind": region.kind,
        "path": None if region.path is None else str(region.path),
        "url": region.url,
        "profile": region.profile,
        "replicas": region.replicas,
        "reachable": region.reachable,
        "problem": region.problem,
    }


def gallery_view(gallery: Gallery) -> JSON:
    return {
        "id": str(ResourceId.of_gallery(gallery.name)),
        "name": gallery.name,
        "location": gallery.location,
        "description": gallery.description,
        "provisioningState": str(gallery.provisioning_state),
        "type": "gallery",
    }


def definition_view(definition: ImageDefinition) -> JSON:
    return {
        "id": str(ResourceId.of_image(definition.gallery, definition.name)),
        "name": definition.name,
        "identifier": {
            "publisher": definition.identifier.publisher,
            "offer": definition.identifier.offer,
            "sku": definition.identifier.sku,
        },
        "osType": str(definition.os_type),
        "osState": str(definition.os_state),
        "hyperVGeneration": str(definition.hyper_v_generation),
        "architecture": str(definition.architecture),
        "recommended": {
            "vCPUs": _range(definition.recommended_vcpus),
            "memory": _range(definition.recommended_memory_gib),
        },
        "endOfLifeDate": _when(definition.end_of_life),
        "excludeEndOfLifeFromLatest": definition.exclude_end_of_life_from_latest,
        "retentionPolicy": None
        if (policy := definition.retention_policy) is None
        else {"keepGlobal": policy.keep_global, "homeRegion": policy.home_region},
        "description": definition.description,
        "provisioningState": str(definition.provisioning_state),
        "type": "imageDefinition",
    }


def _storage_profile(version: GalleryImageVersion) -> JSON | None:
    """The disks once they are published and, for a version created from another version,
    that version's id (ARM's ``source.id``), shown from the moment the copy is recorded.

    The OS disk is ARM's ``osDiskImage``, and also the flat fields it always was (clients
    written before data disks read those); ``dataDiskImages`` lists the data disks by LUN,
    each with its figures once published (a LUN alone while its upload is awaited)."""
    blob, source = version.blob, version.source_id
    if blob is None and source is None and not version.data_disks:
        return None
    profile: JSON = {}
    if blob is not None:
        profile.update(_disk_figures(blob))
        profile["osDiskImage"] = _disk_figures(blob)
    if version.data_disks:  # left out without any, as a body without data disks is written
        profile["dataDiskImages"] = [
            {"lun": disk.lun, **({} if disk.blob is None else _disk_figures(disk.blob))}
            for disk in version.data_disks
        ]
    if source is not None:
        profile["source"] = {"id": source}
    return profile


def _disk_figures(blob: BlobInfo) -> JSON:
    return {
        "sizeInBytes": blob.size,
        "digest": blob.digest,
        "storedBytes": blob.stored_bytes,
        "chunks": blob.chunks,
    }


def version_view(version: GalleryImageVersion, *, expand_replication: bool = False) -> JSON:
    profile = version.publishing_profile
    safety = version.safety_profile
    view: JSON = {
        "id": str(ResourceId.of_version(version.gallery, version.image, version.version)),
        "name": str(version.version),
        "location": version.location,
        "publishingProfile": {
            "targetRegions": [
                {
                    "name": target.name,
                    "regionalReplicaCount": profile.effective_replica_count(target),
                    "storageAccountType": str(profile.effective_storage_type(target)),
                    "excludeFromLatest": profile.excluded_from_latest(target.name),
                }
                for target in profile.target_regions
            ],
            "replicaCount": profile.replica_count,
            "storageAccountType": str(profile.storage_type),
            "excludeFromLatest": profile.exclude_from_latest,
            "endOfLifeDate": _when(profile.end_of_life),
            "publishedDate": _when(profile.published),
        },
        "safetyProfile": {
            "allowDeletionOfReplicatedLocations": safety.allow_deletion_of_replicated_locations,
            "blockDeletionBeforeEndOfLife": safety.block_deletion_before_end_of_life,
        },
        "storageProfile": _storage_profile(version),
        "provisioningState": str(version.provisioning_state),
        "retention": None
        if (mark := version.retention) is None
        else {"shrunk": mark.shrunk, "date": _when(mark.at), "details": mark.details},
        "replicationStatus": None,
        "type": "imageVersion",
    }
    if expand_replication:
        view["replicationStatus"] = {
            "aggregatedState": str(version.aggregated_state),
            "summary": [
                {
                    "region": status.region,
                    "state": str(status.state),
                    "progress": status.progress,
                    "replicas": {"completed": status.completed_replicas, "target": status.target_replicas},
                    "details": status.details,
                }
                for status in version.regions
            ],
        }
    return view


def principal_view(principal: Principal) -> JSON:
    return {"name": principal.name, "type": str(principal.type)}


def assignment_view(assignment: RoleAssignment) -> JSON:
    return {
        "principalName": assignment.principal,
        "roleDefinitionName": str(assignment.role),
        "scope": str(assignment.scope),
    }


def reader_statistics_view(statistics: ReaderStatistics) -> JSON:
    return {
        "replicas": {
            name: {
                "bytesServed": served.bytes_served,
                "requests": served.requests,
                "failures": served.failures,
            }
            for name, served in statistics.replicas.items()
        },
        "chunks": statistics.chunks,
        "failovers": statistics.failovers,
        "repairs": statistics.repairs,
        "repairFailures": statistics.repair_failures,
    }


def deployment_view(result: DeploymentResult) -> JSON:
    """One VM's deployment, as ``vm create`` prints it: the OS disk's figures and, for a
    version with data disks, each data disk's by LUN (in the scale set's camelCase)."""
    view: JSON = {
        "output": result.output,
        "seconds": result.seconds,
        "sizeInBytes": result.size,
        "digest": result.digest,
        "ok": result.ok,
        "bytesRead": result.bytes_read,
    }
    if result.lun is not None:
        view["lun"] = result.lun
    if result.data_disks:
        view["dataDisks"] = [deployment_view(disk) for disk in result.data_disks]
    return view


def deployment_summary_view(summary: DeploymentSummary) -> JSON:
    return {
        "count": summary.count,
        "succeeded": summary.succeeded,
        "errors": summary.errors,
        "p50Seconds": summary.p50,
        "p99Seconds": summary.p99,
        "makespanSeconds": summary.makespan,
        "sizeInBytes": summary.size,
        "seconds": list(summary.seconds),
        "failures": list(summary.failures),
        "statistics": reader_statistics_view(summary.statistics),
    }
