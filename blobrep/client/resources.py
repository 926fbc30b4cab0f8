"""ARM resources read back into the gallery model, so the CLI prints them with its own code.

The daemon serves each view of :mod:`blobrep.service.views` as an ARM resource: identity at
the top (``id``, ``name``, ``type``, ``location``), the rest under ``properties``. Reading one
back gives the very value the service returned to the daemon, as far as the view shows it; the
CLI then renders it with the same view functions and tables as a local command. For a version
the view shows each target region's effective replica count, storage type and
exclude-from-latest flag, and the value read back carries those as the region's own: what the
view (and the CLI) derives from it is the same.

A document the daemon sent is input like any other: a missing or mistyped field is an
:class:`~blobrep.client.errors.EndpointError` naming it, never a ``KeyError``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from blobrep.client.errors import EndpointError
from blobrep.core.access import Principal, PrincipalType, Role, RoleAssignment
from blobrep.core.gallery import (
    Architecture,
    BlobInfo,
    DataDisk,
    Gallery,
    GalleryImageVersion,
    HyperVGeneration,
    ImageDefinition,
    ImageIdentifier,
    OsState,
    OsType,
    ProvisioningState,
    PublishingProfile,
    RegionStatus,
    ReplicationState,
    ResourceRange,
    RetentionMark,
    RetentionPolicy,
    SafetyProfile,
    StorageType,
    TargetRegion,
)
from blobrep.core.ids import ResourceId, ResourceKind
from blobrep.errors import BlobrepError

JSON = dict[str, Any]
_T = TypeVar("_T")
_Choice = TypeVar("_Choice", ProvisioningState, OsType, OsState, HyperVGeneration, Architecture)


class _Document:
    """Typed access to the fields of one JSON object; ``where`` names it in messages."""

    __slots__ = ("fields", "where")

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise EndpointError(f"the daemon answered {where} that is not a JSON object")
        self.fields: JSON = value
        self.where = where

    def _get(self, key: str, kind: type[_T] | tuple[type, ...], optional: bool) -> Any:
        value = self.fields.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise EndpointError(f"the daemon answered {self.where} whose {key!r} is {_shown(value)}")
        return value

    def text(self, key: str) -> str:
        value: str = self._get(key, str, False)
        return value

    def maybe_text(self, key: str) -> str | None:
        value: str | None = self._get(key, str, True)
        return value

    def whole(self, key: str) -> int:
        value: int = self._get(key, int, False)
        return value

    def maybe_whole(self, key: str) -> int | None:
        value: int | None = self._get(key, int, True)
        return value

    def flag(self, key: str) -> bool:
        value: bool = self._get(key, bool, False)
        return value

    def section(self, key: str) -> _Document:
        return _Document(self._get(key, dict, False), f"{self.where} whose {key!r}")

    def maybe_section(self, key: str) -> _Document | None:
        value = self._get(key, dict, True)
        return None if value is None else _Document(value, f"{self.where} whose {key!r}")

    def items(self, key: str) -> list[_Document]:
        values: list[object] = self._get(key, list, False)
        return [_Document(value, f"{self.where} whose {key!r}") for value in values]

    def moment(self, key: str) -> datetime | None:
        text = self.maybe_text(key)
        if text is None:
            return None
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            raise EndpointError(f"the daemon answered {self.where} whose {key!r} is {_shown(text)}") from None

    def choice(self, key: str, kind: type[_Choice]) -> _Choice:
        text = self.text(key)
        try:
            return kind(text)
        except ValueError:
            raise EndpointError(f"the daemon answered {self.where} whose {key!r} is {_shown(text)}") from None

    def resource_id(self, kind: ResourceKind) -> ResourceId:
        text = self.text("id")
        try:
            parsed = ResourceId.parse(text)
        except BlobrepError:
            parsed = None
        if parsed is None or parsed.kind is not kind or parsed.latest:
            raise EndpointError(f"the daemon answered {self.where} whose id {text!r} names no {kind}")
        return parsed


def _shown(value: object) -> str:
    return "missing" if value is None else f"{type(value).__name__} {str(value)[:60]!r}"


def gallery_from(resource: JSON) -> Gallery:
    """The gallery an ARM gallery resource describes."""
    document = _Document(resource, "a gallery")
    properties = document.section("properties")
    return Gallery(
        name=document.resource_id(ResourceKind.GALLERY).gallery or "",
        location=document.text("location"),
        description=properties.maybe_text("description") or "",
        provisioning_state=properties.choice("provisioningState", ProvisioningState),
    )


def _range(document: _Document, key: str) -> ResourceRange:
    limits = document.maybe_section(key)
    if limits is None:
        return ResourceRange()
    return ResourceRange(limits.maybe_whole("min"), limits.maybe_whole("max"))


def definition_from(resource: JSON) -> ImageDefinition:
    """The image definition an ARM definition resource describes."""
    document = _Document(resource, "an image definition")
    ids = document.resource_id(ResourceKind.IMAGE_DEFINITION)
    properties = document.section("properties")
    identifier = properties.section("identifier")
    recommended = properties.maybe_section("recommended") or _Document({}, "recommended")
    assert ids.gallery is not None and ids.image is not None
    return ImageDefinition(
        gallery=ids.gallery,
        name=ids.image,
        identifier=ImageIdentifier(
            identifier.text("publisher"), identifier.text("offer"), identifier.text("sku")
        ),
        os_type=properties.choice("osType", OsType),
        os_state=properties.choice("osState", OsState),
        hyper_v_generation=properties.choice("hyperVGeneration", HyperVGeneration),
        architecture=properties.choice("architecture", Architecture),
        recommended_vcpus=_range(recommended, "vCPUs"),
        recommended_memory_gib=_range(recommended, "memory"),
        end_of_life=properties.moment("endOfLifeDate"),
        description=properties.maybe_text("description") or "",
        provisioning_state=properties.choice("provisioningState", ProvisioningState),
        retention_policy=None
        if (policy := properties.maybe_section("retentionPolicy")) is None
        else RetentionPolicy(policy.whole("keepGlobal"), policy.text("homeRegion")),
        exclude_end_of_life_from_latest=properties.flag("excludeEndOfLifeFromLatest"),
    )


def _storage_type(document: _Document, key: str) -> StorageType:
    text = document.text(key)
    try:
        return StorageType(text)
    except ValueError:
        raise EndpointError(f"the daemon answered {document.where} whose {key!r} is {_shown(text)}") from None


def _publishing_profile(document: _Document) -> PublishingProfile:
    return PublishingProfile(
        target_regions=tuple(
            TargetRegion(
                name=target.text("name"),
                replica_count=target.whole("regionalReplicaCount"),
                storage_type=_storage_type(target, "storageAccountType"),
                exclude_from_latest=target.flag("excludeFromLatest"),
            )
            for target in document.items("targetRegions")
        ),
        replica_count=document.whole("replicaCount"),
        storage_type=_storage_type(document, "storageAccountType"),
        exclude_from_latest=document.flag("excludeFromLatest"),
        end_of_life=document.moment("endOfLifeDate"),
        published=document.moment("publishedDate"),
    )


def _blob(document: _Document | None) -> BlobInfo | None:
    """The published blob a ``storageProfile`` describes; None before the disk is published."""
    if document is None or document.fields.get("sizeInBytes") is None:
        return None
    return BlobInfo(
        size=document.whole("sizeInBytes"),
        digest=document.text("digest"),
        stored_bytes=document.whole("storedBytes"),
        chunks=document.whole("chunks"),
    )


def _source_id(document: _Document | None) -> str | None:
    """The version a ``storageProfile`` says the disk was copied from; None for an own disk."""
    source = None if document is None else document.maybe_section("source")
    return None if source is None else source.text("id")


def _region_status(document: _Document) -> RegionStatus:
    state = document.text("state")
    try:
        parsed = ReplicationState(state)
    except ValueError:
        raise EndpointError(
            f"the daemon answered {document.where} whose 'state' is {_shown(state)}"
        ) from None
    replicas = document.section("replicas")
    return RegionStatus(
        region=document.text("region"),
        state=parsed,
        progress=document.whole("progress"),
        completed_replicas=replicas.whole("completed"),
        target_replicas=replicas.whole("target"),
        details=document.maybe_text("details") or "",
    )


def _data_disks(document: _Document | None) -> tuple[DataDisk, ...]:
    """The data disks a ``storageProfile`` lists (``dataDiskImages``), by LUN; none if it has none."""
    if document is None or document.fields.get("dataDiskImages") is None:
        return ()
    return tuple(DataDisk(disk.whole("lun"), _blob(disk)) for disk in document.items("dataDiskImages"))


def version_from(resource: JSON) -> GalleryImageVersion:
    """The image version an ARM version resource describes.

    Its replication status per region comes from ``replicationStatus``, which the daemon
    adds only when asked (``$expand=ReplicationStatus``): without it the value has none.
    """
    document = _Document(resource, "an image version")
    ids = document.resource_id(ResourceKind.IMAGE_VERSION)
    properties = document.section("properties")
    replication = properties.maybe_section("replicationStatus")
    safety = properties.section("safetyProfile")
    assert ids.gallery is not None and ids.image is not None and ids.version is not None
    return GalleryImageVersion(
        gallery=ids.gallery,
        image=ids.image,
        version=ids.version,
        location=document.text("location"),
        publishing_profile=_publishing_profile(properties.section("publishingProfile")),
        safety_profile=SafetyProfile(
            safety.flag("allowDeletionOfReplicatedLocations"), safety.flag("blockDeletionBeforeEndOfLife")
        ),
        provisioning_state=properties.choice("provisioningState", ProvisioningState),
        blob=_blob(properties.maybe_section("storageProfile")),
        source_id=_source_id(properties.maybe_section("storageProfile")),
        data_disks=_data_disks(properties.maybe_section("storageProfile")),
        regions=()
        if replication is None
        else tuple(_region_status(status) for status in replication.items("summary")),
        retention=_retention(properties.maybe_section("retention")),
    )


def _retention(document: _Document | None) -> RetentionMark | None:
    """What the retention policy did to a version; None if it never acted on it."""
    if document is None:
        return None
    at = document.moment("date")
    if at is None:
        raise EndpointError(f"the daemon answered {document.where} without a 'date'")
    return RetentionMark(at, document.flag("shrunk"), document.text("details"))


def principal_from(resource: JSON) -> Principal:
    """The principal a principal resource describes (its type in ``properties.principalType``)."""
    document = _Document(resource, "a principal")
    kind = document.section("properties").text("principalType")
    try:
        principal_type = PrincipalType(kind)
    except ValueError:
        raise EndpointError(
            f"the daemon answered a principal whose 'principalType' is {_shown(kind)}"
        ) from None
    return Principal(name=document.text("name"), type=principal_type)


def member_from(resource: JSON) -> str:
    """The member a group-member resource names (``properties.principalName``)."""
    return _Document(resource, "a group member").section("properties").text("principalName")


def assignment_from(resource: JSON) -> RoleAssignment:
    """The role assignment a role-assignment resource describes (``principalName``,
    ``roleDefinitionName`` and ``scope`` under ``properties``)."""
    properties = _Document(resource, "a role assignment").section("properties")
    role, scope = properties.text("roleDefinitionName"), properties.text("scope")
    try:
        return RoleAssignment(properties.text("principalName"), Role(role), ResourceId.parse(scope))
    except (ValueError, BlobrepError):
        raise EndpointError(
            f"the daemon answered a role assignment of role {role!r} at {scope!r}, which this client"
            " cannot read"
        ) from None
