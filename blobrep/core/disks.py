"""A version's disks: its OS disk and its data disks, each a blob of its own.

Everything that walks a version's data (replication, scrub's expectations, fsck, deletion,
deployment) walks the same list, in the same order: the OS disk first, then the data disks
by LUN. Keeping that list here, as a pure function of the version, means no caller can
forget a disk or name one differently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from blobrep.core.gallery import DataDisk
from blobrep.core.names import MAX_LUN, BlobName, validate_lun
from blobrep.errors import InvalidParameterError

if TYPE_CHECKING:
    from blobrep.core.gallery import BlobInfo, GalleryImageVersion


@dataclass(frozen=True, slots=True)
class VersionDisk:
    """One disk of a version: its blob's name (which carries the LUN) and what the catalog
    recorded of it (None while it is not published)."""

    name: BlobName
    info: BlobInfo | None

    @property
    def lun(self) -> int | None:
        return self.name.lun


def version_disks(version: GalleryImageVersion) -> tuple[VersionDisk, ...]:
    """The OS disk, then every data disk by LUN."""
    os_disk = VersionDisk(BlobName(version.image, version.version), version.blob)
    data = (
        VersionDisk(BlobName(version.image, version.version, disk.lun), disk.blob)
        for disk in sorted(version.data_disks, key=lambda disk: disk.lun)
    )
    return (os_disk, *data)


def check_luns(luns: Iterable[object]) -> tuple[int, ...]:
    """The LUNs given, sorted, if each is 0..63 and none repeats.

    Raises:
        InvalidNameError: a LUN is not a whole number from 0 to 63.
        InvalidParameterError: a LUN is given twice.
    """
    seen: set[int] = set()
    for lun in luns:
        number = validate_lun(lun)
        if number in seen:
            raise InvalidParameterError(
                f"data disk LUN {number} is given twice: each data disk needs its own LUN (0..{MAX_LUN})"
            )
        seen.add(number)
    return tuple(sorted(seen))


def pending_disks(luns: Iterable[int]) -> tuple[DataDisk, ...]:
    """Data disks at ``luns``, none published yet (what a version waiting for uploads records)."""
    return tuple(DataDisk(lun) for lun in check_luns(luns))


def with_data_disk(version: GalleryImageVersion, lun: int, info: BlobInfo) -> tuple[DataDisk, ...]:
    """``version``'s data disks with the one at ``lun`` now published as ``info``."""
    return tuple(
        DataDisk(disk.lun, info) if disk.lun == lun else disk
        for disk in sorted(version.data_disks, key=lambda disk: disk.lun)
    )


def data_disk_map(disks: Iterable[DataDisk]) -> Mapping[int, BlobInfo | None]:
    """LUN -> blob (None while unpublished)."""
    return {disk.lun: disk.blob for disk in disks}
