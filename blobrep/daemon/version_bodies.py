"""The JSON body of a version PUT or PATCH, checked field by field into :class:`VersionOptions`.

A body is ARM's image version: ``{"location", "properties": {"publishingProfile",
"safetyProfile", "storageProfile"}}``. Read-only fields a client may send back from a GET
(``provisioningState``, ``replicationStatus``, ``publishedDate``, the blob's sizes) are
accepted and ignored, so a GET body can be PUT again; any other unknown field is refused, so a
typo never passes silently. Target regions become the tokens the CLI takes
(``name[=count][=storage type]``), so both faces share one parser of them. A new version's
disk is uploaded to its own route (``osDiskImage.source.uri`` may name it) or is another
version's (``source.id``, :func:`version_source`). Its data disks are described by LUN in
``dataDiskImages`` (:func:`data_disk_luns`), each uploaded to its own route after; they are
fixed once the version exists, so an update may send them back only as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from blobrep.core.disks import check_luns
from blobrep.core.ids import ResourceId
from blobrep.core.names import MAX_LUN
from blobrep.daemon import bodies
from blobrep.errors import ImmutableFieldError, InvalidParameterError
from blobrep.service.version_options import VersionOptions

if TYPE_CHECKING:
    from blobrep.core.gallery import GalleryImageVersion

_PROPERTIES: Final = {
    "publishingProfile",
    "safetyProfile",
    "storageProfile",
    "provisioningState",
    "replicationStatus",
    "retention",
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
_FIGURES: Final = {"sizeInBytes", "digest", "storedBytes", "chunks"}
_STORAGE: Final = {"osDiskImage", "source", "dataDiskImages", *_FIGURES}
_WHERE: Final = "properties.storageProfile"
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
    bodies.only(
        safety,
        {"allowDeletionOfReplicatedLocations", "blockDeletionBeforeEndOfLife"},
        "properties.safetyProfile",
    )
    _check_source(bodies.section(properties, "storageProfile", "properties"), content_path, create)
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
        block_deletion_before_end_of_life=bodies.flag(
            safety, "blockDeletionBeforeEndOfLife", "properties.safetyProfile"
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


def _check_source(storage: dict[str, Any], content_path: str, create: bool) -> None:
    """Check where the disk comes from: the version's own upload route, or another version
    (``source.id``, a text), never both; a copy takes its source's data disks, so a create
    naming both a source and ``dataDiskImages`` is refused."""
    bodies.only(storage, _STORAGE, _WHERE)
    luns = _luns(storage.get("dataDiskImages"))
    copied = bodies.section(storage, "source", _WHERE)
    bodies.only(copied, {"id"}, f"{_WHERE}.source")
    source_id = bodies.text(copied, "id", f"{_WHERE}.source")
    disk = bodies.section(storage, "osDiskImage", "properties.storageProfile")
    # The disk's figures are read-only (a GET shows them): accepted back and ignored.
    bodies.only(disk, {"source", *_FIGURES}, "properties.storageProfile.osDiskImage")
    source = bodies.section(disk, "source", "properties.storageProfile.osDiskImage")
    bodies.only(source, {"uri"}, "properties.storageProfile.osDiskImage.source")
    uri = bodies.text(source, "uri", "properties.storageProfile.osDiskImage.source")
    if uri is not None and not uri.endswith(content_path):
        raise InvalidParameterError(
            f"properties.storageProfile.osDiskImage.source.uri {uri!r} is not this version's upload"
            f" route: a disk is uploaded with PUT {content_path} (leave the source out, or name that)"
        )
    if create and source_id is not None and luns:
        raise InvalidParameterError(
            f"{_WHERE} names a version to copy (source.id) and dataDiskImages: a copy takes the data"
            " disks of the version it copies; leave dataDiskImages out"
        )
    if uri is not None and source_id is not None:
        raise InvalidParameterError(
            f"{_WHERE} names both a version to copy (source.id) and an upload (osDiskImage.source.uri):"
            " a disk comes from one of them; leave the other out"
        )


def _luns(value: Any) -> tuple[int, ...]:
    """The LUNs ``dataDiskImages`` lists, checked (each an object with a ``lun``, 0..63, none
    twice; the figures a GET shows beside it accepted and ignored)."""
    where = f"{_WHERE}.dataDiskImages"
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidParameterError(f'{where} must be a list of objects like {{"lun": 0}}')
    luns: list[int] = []
    for index, item in enumerate(value):
        place = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise InvalidParameterError(f'{place} must be an object like {{"lun": 0}}')
        bodies.only(item, {"lun", *_FIGURES}, place)
        lun = bodies.whole(item, "lun", place, maximum=MAX_LUN, meaning="a data disk's logical unit number")
        if lun is None:
            raise InvalidParameterError(f"{place} needs its lun, a whole number from 0 to 63")
        luns.append(lun)
    return check_luns(luns)


def data_disk_luns(body: dict[str, Any]) -> tuple[int, ...] | None:
    """The LUNs of the data disks ``body`` describes (``dataDiskImages``), or None if it names
    none; from a body :func:`version_options` accepted."""
    storage = bodies.section(bodies.section(body, "properties"), "storageProfile", "properties")
    value = storage.get("dataDiskImages")
    return None if value is None else _luns(value)


def check_same_data_disks(version: GalleryImageVersion, luns: tuple[int, ...] | None) -> None:
    """Accept ``dataDiskImages`` on an update only as the version has them (a GET sent back).

    Raises:
        ImmutableFieldError: the body lists other LUNs than the version's data disks.
    """
    have = tuple(sorted(disk.lun for disk in version.data_disks))
    if luns is None or luns == have:
        return
    version_id = ResourceId.of_version(version.gallery, version.image, version.version)
    raise ImmutableFieldError(
        f"the data disks of {version_id} ({_listed(have)}) cannot change, and the body lists"
        f" {_listed(luns)}: send them as a GET shows them, or leave dataDiskImages out"
    )


def version_source(body: dict[str, Any]) -> str | None:
    """The id of the version whose disk the version takes (``properties.storageProfile.source.id``,
    ARM's spelling), or None if its disk is uploaded; from a body :func:`version_options`
    accepted, which checked the field."""
    storage = bodies.section(bodies.section(body, "properties"), "storageProfile", "properties")
    return bodies.text(bodies.section(storage, "source", _WHERE), "id", f"{_WHERE}.source")


def _listed(luns: tuple[int, ...]) -> str:
    return f"LUN {', '.join(map(str, luns))}" if luns else "no data disk"
