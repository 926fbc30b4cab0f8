"""The JSON body of a version PUT or PATCH, checked field by field into :class:`VersionOptions`.

A body is ARM's image version: ``{"location", "properties": {"publishingProfile",
"safetyProfile", "storageProfile"}}``. Read-only fields a client may send back from a GET
(``provisioningState``, ``replicationStatus``, ``publishedDate``, the blob's sizes) are
accepted and ignored, so a GET body can be PUT again; any other unknown field is refused, so a
typo never passes silently. Target regions become the tokens the CLI takes
(``name[=count][=storage type]``), so both faces share one parser of them.
"""

from __future__ import annotations

from typing import Any, Final

from blobrep.daemon import bodies
from blobrep.errors import InvalidParameterError
from blobrep.service.version_options import VersionOptions

_PROPERTIES: Final = {
    "publishingProfile",
    "safetyProfile",
    "storageProfile",
    "provisioningState",
    "replicationStatus",
}
_PUBLISHING: Final = {
    "targetRegions",
    "replicaCount",
    "storageAccountType",
    "excludeFromLatest",
    "endOfLifeDate",
    "publishedDate",
}
_TARGET: Final = {"name", "regionalReplicaCount", "storageAccountType", "excludeFromLatest"}
_STORAGE: Final = {"osDiskImage", "sizeInBytes", "digest", "storedBytes", "chunks"}
#: What a version's disk may come from over HTTP: its own upload route.
CONTENT_SUFFIX: Final = "/content"


def version_options(body: dict[str, Any], *, content_path: str, create: bool) -> VersionOptions:
    """The options ``body`` gives; ``content_path`` is the version's upload route, the one
    source a disk may name.

    Raises:
        InvalidParameterError: an unknown field, a field of the wrong type, a location on an
            update, or a source other than the version's upload route.
    """
    bodies.only(body, {"location", "properties", "id", "name", "type"}, "the body")
    if not create and body.get("location") is not None:
        bodies.text(body, "location", "the body")  # its type is checked all the same
    properties = bodies.section(body, "properties")
    bodies.only(properties, _PROPERTIES, "properties")
    publishing = bodies.section(properties, "publishingProfile", "properties")
    bodies.only(publishing, _PUBLISHING, "properties.publishingProfile")
    safety = bodies.section(properties, "safetyProfile", "properties")
    bodies.only(safety, {"allowDeletionOfReplicatedLocations"}, "properties.safetyProfile")
    _check_source(bodies.section(properties, "storageProfile", "properties"), content_path)
    tokens, excludes = _targets(publishing.get("targetRegions"))
    return VersionOptions(
        target_regions=tokens,
        replica_count=bodies.whole(publishing, "replicaCount", "properties.publishingProfile"),
        storage_type=bodies.text(publishing, "storageAccountType", "properties.publishingProfile"),
        exclude_from_latest=bodies.flag(publishing, "excludeFromLatest", "properties.publishingProfile"),
        regional_exclude_from_latest=excludes or None,
        end_of_life=bodies.text(publishing, "endOfLifeDate", "properties.publishingProfile"),
        allow_replicated_location_deletion=bodies.flag(
            safety, "allowDeletionOfReplicatedLocations", "properties.safetyProfile"
        ),
    )


def _targets(value: Any) -> tuple[list[str] | None, dict[str, bool]]:
    """``targetRegions`` as CLI tokens, and the regions' exclude-from-latest flags."""
    where = "properties.publishingProfile.targetRegions"
    if value is None:
        return None, {}
    if not isinstance(value, list):
        raise InvalidParameterError(f"{where} must be a list of objects")
    tokens: list[str] = []
    excludes: dict[str, bool] = {}
    for index, item in enumerate(value):
        place = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise InvalidParameterError(f"{place} must be an object with a name")
        bodies.only(item, _TARGET, place)
        name = bodies.text(item, "name", place)
        if not name or "=" in name:
            raise InvalidParameterError(f"{place} needs a region name (without '=')")
        count = bodies.whole(item, "regionalReplicaCount", place)
        storage = bodies.text(item, "storageAccountType", place)
        parts = [name, *([str(count)] if count is not None else []), *([storage] if storage else [])]
        tokens.append("=".join(parts))
        exclude = bodies.flag(item, "excludeFromLatest", place)
        if exclude is not None:
            excludes[name] = exclude
    return tokens, excludes


def _check_source(storage: dict[str, Any], content_path: str) -> None:
    bodies.only(storage, _STORAGE, "properties.storageProfile")
    disk = bodies.section(storage, "osDiskImage", "properties.storageProfile")
    bodies.only(disk, {"source"}, "properties.storageProfile.osDiskImage")
    source = bodies.section(disk, "source", "properties.storageProfile.osDiskImage")
    bodies.only(source, {"uri"}, "properties.storageProfile.osDiskImage.source")
    uri = bodies.text(source, "uri", "properties.storageProfile.osDiskImage.source")
    if uri is not None and not uri.endswith(content_path):
        raise InvalidParameterError(
            f"properties.storageProfile.osDiskImage.source.uri {uri!r} is not this version's upload"
            f" route: a disk is uploaded with PUT {content_path} (leave the source out, or name that)"
        )
