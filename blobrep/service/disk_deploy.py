"""Deploying every disk of one VM: the OS disk, then each data disk, each through its own reader.

Each disk is a blob of its own, read and verified as a deployment always is (sparse file,
whole-disk digest checked, fsync, rename). The files sit together below the VM's directory,
``D/{name}/osdisk.img`` and ``D/{name}/lun{N}.img`` (:mod:`blobrep.core.vm_names`). A VM
missing a disk would boot wrong, so a disk that fails removes the disk files written before
it, and an output *file* (which can hold one disk) is refused for a version with data disks
rather than silently writing its OS disk alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from blobrep.core.ids import ResourceId
from blobrep.engine.disk_dirs import write_disks_in_turn
from blobrep.errors import InvalidParameterError

if TYPE_CHECKING:
    from blobrep.core.disks import VersionDisk
    from blobrep.core.gallery import GalleryImageVersion
    from blobrep.core.selection import Policy
    from blobrep.engine.deploy import DeploymentResult
    from blobrep.engine.publish import ProgressCallback
    from blobrep.engine.version_read import VersionReader
    from blobrep.storage.base import Store


def check_single_file(version: GalleryImageVersion, output: Path | None) -> None:
    """Refuse an output file for a version with data disks: the file would hold the OS disk
    alone, and the user would lose the data disks without noticing.

    Raises:
        InvalidParameterError: ``output`` is given and the version has data disks.
    """
    if output is None or not version.data_disks:
        return
    luns = ", ".join(str(disk.lun) for disk in version.data_disks)
    version_id = ResourceId.of_version(version.gallery, version.image, version.version)
    raise InvalidParameterError(
        f"{version_id} has data disks (LUN {luns}) besides its OS disk, and an output file holds"
        f" one disk: use --output-dir to write every disk"
    )


@asynccontextmanager
async def disk_reader(
    version: GalleryImageVersion, stores: list[Store], disk: VersionDisk, policy: Policy
) -> AsyncIterator[VersionReader]:
    """A reader of one disk of ``version`` over the region's Completed replicas ``stores``."""
    from blobrep.engine.version_read import VersionReader

    async with VersionReader(stores, version.gallery, disk.name, expect=disk.info, policy=policy) as reader:
        yield reader


async def deploy_disks(
    version: GalleryImageVersion,
    stores: list[Store],
    target: Path | None,
    name: str,
    policy: Policy,
    progress: ProgressCallback | None,
) -> DeploymentResult:
    """Deploy every disk of ``version``: the OS disk at ``target`` and each data disk beside it
    (``lun{N}.img`` in ``target``'s directory), or read and discard them all (``target`` None).

    The result is the OS disk's, with the data disks' in ``data_disks``. If a disk fails, the
    files of the disks before it are removed before the error goes on.
    """
    from blobrep.engine.deploy import deploy

    async def write(disk: VersionDisk, path: Path | None, done: ProgressCallback | None) -> DeploymentResult:
        async with disk_reader(version, stores, disk, policy) as reader:
            return await deploy(reader, path, progress=done)

    return await write_disks_in_turn(version, target, name, write, progress)
