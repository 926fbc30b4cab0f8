"""Version rows and the model: the columns a version is written as, and the version a row reads as.

A published disk (the OS disk in the version row, a data disk in its own row) is written
with the same columns, ``blob_*`` and ``manifest_*``, so :func:`blob_columns` and
:func:`blob_of_row` serve both tables. A manifest pin is checked before it is written: the
catalog otherwise stores what it is given, but a pin no document can match would make every
replica of the version look damaged to every reader, so it is refused here rather than
discovered there.
"""

from __future__ import annotations

import json
import re
import sqlite3

from blobrep.catalog._columns import int_to_bool, optional_choice, text_to_time, time_to_text, to_choice
from blobrep.core.gallery import (
    BlobInfo,
    DataDisk,
    GalleryImageVersion,
    ProvisioningState,
    PublishingProfile,
    RegionStatus,
    RetentionMark,
    SafetyProfile,
    StorageType,
    TargetRegion,
)
from blobrep.core.pins import ManifestPin
from blobrep.core.version import ImageVersion
from blobrep.errors import InvalidParameterError, StorageError

_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_pin(pin: ManifestPin | None, what: str) -> ManifestPin | None:
    """``pin``, once it is known to be whole; ``what`` names its disk in the error.

    Raises:
        InvalidParameterError: the size is missing or negative, or the SHA-256 is missing or
            not 64 lower-case hex characters.
    """
    if pin is None:
        return None
    size: object = pin.size
    sha256: object = pin.sha256
    problem = None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        problem = f"its size is {size!r}, not a byte count"
    elif not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        problem = f"its SHA-256 is {sha256!r}, not 64 lower-case hex characters"
    if problem is not None:
        raise InvalidParameterError(f"the manifest pin of {what} is incomplete: {problem}")
    return pin


def blob_columns(blob: BlobInfo | None, what: str) -> dict[str, object]:
    """The ``blob_*`` and ``manifest_*`` columns of a disk (all NULL while unpublished)."""
    pin = None if blob is None else check_pin(blob.manifest, what)
    return {
        "blob_size": None if blob is None else blob.size,
        "blob_digest": None if blob is None else blob.digest,
        "blob_stored_bytes": None if blob is None else blob.stored_bytes,
        "blob_chunks": None if blob is None else blob.chunks,
        "manifest_size": None if pin is None else pin.size,
        "manifest_sha256": None if pin is None else pin.sha256,
    }


def blob_of_row(row: sqlite3.Row) -> BlobInfo | None:
    """The disk a row's ``blob_*`` and ``manifest_*`` columns describe; None if unpublished."""
    if row["blob_size"] is None:
        return None
    pin = None if row["manifest_size"] is None else ManifestPin(row["manifest_size"], row["manifest_sha256"])
    return BlobInfo(row["blob_size"], row["blob_digest"], row["blob_stored_bytes"], row["blob_chunks"], pin)


def version_columns(v: GalleryImageVersion) -> dict[str, object]:
    """The columns of ``v``'s row but its key (gallery, image, number)."""
    profile = v.publishing_profile
    mark = v.retention
    what = f"image version '{v.version}' in image definition {v.image!r} of gallery {v.gallery!r}"
    return {
        "location": v.location,
        "replica_count": profile.replica_count,
        "storage_type": profile.storage_type.value,
        "exclude_from_latest": int(profile.exclude_from_latest),
        "end_of_life": time_to_text(profile.end_of_life, "end of life"),
        "published": time_to_text(profile.published, "published time"),
        "allow_deletion_of_replicated_locations": int(
            v.safety_profile.allow_deletion_of_replicated_locations
        ),
        "block_deletion_before_end_of_life": int(v.safety_profile.block_deletion_before_end_of_life),
        "retention_at": None if mark is None else time_to_text(mark.at, "retention time"),
        "retention_shrunk": None if mark is None else int(mark.shrunk),
        "retention_details": None if mark is None else mark.details,
        "retention_previous": None if mark is None or not mark.previous else _targets_text(mark.previous),
        "source_id": v.source_id,
        "provisioning_state": v.provisioning_state.value,
        **blob_columns(v.blob, what),
    }


def target_of_row(row: sqlite3.Row) -> TargetRegion:
    return TargetRegion(
        name=row["region"],
        replica_count=row["replica_count"],
        storage_type=optional_choice(StorageType, row["storage_type"], "storage type"),
        exclude_from_latest=int_to_bool(row["exclude_from_latest"]),
    )


def version_of_row(
    row: sqlite3.Row,
    targets: tuple[TargetRegion, ...],
    statuses: tuple[RegionStatus, ...],
    disks: tuple[DataDisk, ...] = (),
) -> GalleryImageVersion:
    """The version a row of ``image_versions`` describes, with its targets, status and data disks."""
    return GalleryImageVersion(
        gallery=row["gallery"],
        image=row["image"],
        version=ImageVersion(row["major"], row["minor"], row["patch"]),
        location=row["location"],
        publishing_profile=PublishingProfile(
            target_regions=targets,
            replica_count=row["replica_count"],
            storage_type=to_choice(StorageType, row["storage_type"], "storage type"),
            exclude_from_latest=bool(row["exclude_from_latest"]),
            end_of_life=text_to_time(row["end_of_life"]),
            published=text_to_time(row["published"]),
        ),
        safety_profile=SafetyProfile(
            bool(row["allow_deletion_of_replicated_locations"]),
            bool(row["block_deletion_before_end_of_life"]),
        ),
        provisioning_state=to_choice(ProvisioningState, row["provisioning_state"], "provisioning state"),
        blob=blob_of_row(row),
        regions=statuses,
        retention=_retention(row),
        source_id=row["source_id"],
        data_disks=disks,
    )


def _retention(row: sqlite3.Row) -> RetentionMark | None:
    at = text_to_time(row["retention_at"])
    if at is None:
        return None
    previous = _targets_of_text(row["retention_previous"])
    return RetentionMark(at, bool(row["retention_shrunk"]), row["retention_details"], previous)


def _targets_text(targets: tuple[TargetRegion, ...]) -> str:
    return json.dumps(
        [
            {
                "name": target.name,
                "replicaCount": target.replica_count,
                "storageType": None if target.storage_type is None else target.storage_type.value,
                "excludeFromLatest": target.exclude_from_latest,
            }
            for target in targets
        ]
    )


def _targets_of_text(text: str | None) -> tuple[TargetRegion, ...]:
    """The target regions ``retention_previous`` holds (none for NULL).

    Raises:
        StorageError: the column holds something else than such a list (the catalog was
            edited by hand, or written by a newer blobrep).
    """
    if text is None:
        return ()
    try:
        items = json.loads(text)
        if not isinstance(items, list):
            raise TypeError("not a list")
        return tuple(_target_of_item(item) for item in items)
    except (ValueError, TypeError, KeyError) as exc:
        raise StorageError(
            f"the catalog holds retention_previous {text[:80]!r}, which is not a list of target"
            f" regions ({exc}); was it written by a newer blobrep?"
        ) from None


def _target_of_item(item: object) -> TargetRegion:
    if not isinstance(item, dict) or not isinstance(item["name"], str):
        raise TypeError("a target region without a name")
    count, storage, excluded = item["replicaCount"], item["storageType"], item["excludeFromLatest"]
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise TypeError(f"replicaCount {count!r}")
    if excluded is not None and not isinstance(excluded, bool):
        raise TypeError(f"excludeFromLatest {excluded!r}")
    if storage is not None and not isinstance(storage, str):
        raise TypeError(f"storageType {storage!r}")
    return TargetRegion(item["name"], count, optional_choice(StorageType, storage, "storage type"), excluded)
